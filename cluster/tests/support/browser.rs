//! Headless Chromium for the dashboard tests, driven over the DevTools
//! protocol on a pipe (`--remote-debugging-pipe`: the browser reads
//! NUL-terminated JSON commands on its fd 3 and answers on fd 4; no port
//! is opened): open a page, evaluate script in it, take screenshots. Every
//! wait is bounded.
//!
//! The browser is `$SLUICE_CHROMIUM`, else `chromium` (Debian's, which
//! `scripts/test` installs).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running headless Chromium and one page (tab) of it.
pub struct Browser {
    child: Child,
    commands: File,
    answers: Receiver<Value>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// A pipe whose ends close on exec and sit above the standard descriptors
/// and 3 and 4 (which the child's ends are moved to): (read, write).
fn pipe() -> (RawFd, RawFd) {
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors pipe2 writes.
    let made = unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(made, 0);
    let high = |fd: RawFd| {
        // SAFETY: `fd` is a descriptor this function just opened; the copy
        // replaces it, which is then closed once.
        let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        assert!(moved >= 10);
        // SAFETY: as above: closed once, never used again.
        unsafe { libc::close(fd) };
        moved
    };
    (high(ends[0]), high(ends[1]))
}

impl Browser {
    /// Starts Chromium with an empty page of `width`×`height`.
    pub fn start(width: u32, height: u32) -> Browser {
        let program = std::env::var("SLUICE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let profile = tempfile::tempdir().unwrap();
        let (browser_reads, we_write) = pipe();
        let (we_read, browser_writes) = pipe();
        let mut command = Command::new(&program);
        command
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--remote-debugging-pipe",
                &format!("--window-size={width},{height}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // In the child, before exec: its ends become fds 3 and 4 (dup2
        // clears close-on-exec on the copies; everything else closes).
        // SAFETY: the closure only calls dup2, which is async-signal-safe,
        // on descriptors that stay open until after the spawn.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(browser_reads, 3) < 0 || libc::dup2(browser_writes, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {program}: {e} (scripts/test installs Debian's chromium; \
                 or set SLUICE_CHROMIUM)"
            )
        });
        // SAFETY: the child has its copies; these are closed once here.
        unsafe {
            libc::close(browser_reads);
            libc::close(browser_writes);
        }
        // SAFETY: each descriptor is open and owned by nothing else: the
        // files take them over.
        let commands = unsafe { File::from_raw_fd(we_write) };
        // SAFETY: as above.
        let replies = BufReader::new(unsafe { File::from_raw_fd(we_read) });
        let (answer, answers) = channel();
        std::thread::spawn(move || {
            for message in replies.split(0).map_while(Result::ok) {
                let Ok(value) = serde_json::from_slice::<Value>(&message) else {
                    continue;
                };
                if answer.send(value).is_err() {
                    break;
                }
            }
        });
        let mut browser = Browser {
            child,
            commands,
            answers,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = browser.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let target = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser.page("Page.enable", json!({}));
        browser
    }

    /// Sends `method` (to the page's session, or the browser's) and waits
    /// for its answer; events in between are skipped.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = (self.answers.recv_timeout(left))
                .unwrap_or_else(|_| panic!("no answer to {method} within 60 s"));
            if answer["id"] != id {
                continue;
            }
            assert!(answer["error"].is_null(), "{method}: {answer}");
            return answer["result"].clone();
        }
    }

    fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    /// Opens `url` in the page.
    pub fn navigate(&mut self, url: &str) {
        self.page("Page.navigate", json!({ "url": url }));
    }

    /// The value of `expression` in the page (awaited if a promise).
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.page(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            result["exceptionDetails"].is_null(),
            "`{expression}` threw: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits (bounded) until `expression` is true in the page.
    pub fn wait_for(&mut self, expression: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.evaluate(expression) != json!(true) {
            assert!(
                Instant::now() < deadline,
                "`{expression}` not true within {within:?}; the page reads: {}",
                self.evaluate("document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the page as it is now.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.page("Page.captureScreenshot", json!({ "format": "png" }));
        base64_decode(shot["data"].as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut bits = 0u32;
        for (i, &d) in chunk.iter().enumerate() {
            bits |= (d as u32) << (18 - 6 * i);
        }
        out.extend(&bits.to_be_bytes()[1..chunk.len()]);
    }
    out
}
