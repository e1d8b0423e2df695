//! A fault-injecting TCP proxy for the tests, on 127.0.0.1: what a bad
//! network does to a link between workers, since this kernel has no `tc
//! netem`. It forwards every connection to one target and can delay each
//! direction's bytes by a fixed time (a delay line: throughput is kept, every
//! byte arrives that much later), stall all forwarding for a while, and cut
//! every connection open at that moment (both sockets shut down, as a cable
//! pulled or a middlebox reset does). It can also tamper with the frames a
//! dialling worker sends once its link is up ([`Tamper`]): past the
//! handshake it reads the link's frame headers and spoils one batch frame of
//! each new connection, as a broken or hostile peer would.
//!
//! Threads: one accepting, two per connection (one reads into the delay
//! line, one writes out of it). Every wait is bounded: sockets have read
//! timeouts so the threads see a cut or the proxy's end within 50 ms.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);

/// What is done to one batch frame of a link (see [`FaultProxy::tamper_links`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Its length field says 4 GiB.
    HugeLength,
    /// Its record ends point past its records.
    BadRecordEnds,
    /// Half its payload is sent, then the connection ends.
    Truncated,
    /// Its kind byte is one no frame has.
    UnknownKind,
}

/// Bytes of a link frame's header (`sluice_network::wire`).
const FRAME_HEADER: usize = 16;
/// The kind byte of a batch frame.
const BATCH_KIND: u8 = 1;

#[derive(Default)]
struct Faults {
    delay_us: AtomicU64,
    stalled: AtomicBool,
    /// Bumped by every cut; a connection older than it is closed.
    cuts: AtomicU64,
    stopped: AtomicBool,
    /// Connections accepted, and bytes forwarded both ways.
    connections: AtomicU64,
    bytes: AtomicU64,
    /// For the next new connections, one each: what to spoil, and after how
    /// many intact batch frames.
    tampers: Mutex<std::collections::VecDeque<(Tamper, u32)>>,
}

/// See the module docs. Stops (and closes everything) when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    target: Arc<Mutex<Option<SocketAddr>>>,
    faults: Arc<Faults>,
    open: Arc<Mutex<Vec<(TcpStream, TcpStream)>>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1, any port; forwards to the target once it is
    /// set (until then a connection is closed at once).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = FaultProxy {
            address: listener.local_addr().unwrap(),
            target: Arc::default(),
            faults: Arc::default(),
            open: Arc::default(),
        };
        let (target, faults, open) = (
            proxy.target.clone(),
            proxy.faults.clone(),
            proxy.open.clone(),
        );
        std::thread::spawn(move || accept(listener, target, faults, open));
        proxy
    }

    /// Where connections are forwarded from now on.
    pub fn set_target(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = Some(target);
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every byte from now on arrives `delay` later.
    pub fn set_delay(&self, delay: Duration) {
        (self.faults.delay_us).store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    /// Stops (or resumes) forwarding in both directions.
    pub fn set_stalled(&self, stalled: bool) {
        self.faults.stalled.store(stalled, Ordering::SeqCst);
    }

    /// Shuts down every connection open now; later ones pass.
    pub fn cut(&self) {
        self.faults.cuts.fetch_add(1, Ordering::SeqCst);
        for (a, b) in self.open.lock().unwrap().drain(..) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
    }

    /// Each of the next connections gets one of `tampers`, in order: its
    /// dialler's batch frame number `after + 1` is spoiled.
    pub fn tamper_links(&self, tampers: &[Tamper], after: u32) {
        let mut queue = self.faults.tampers.lock().unwrap();
        queue.extend(tampers.iter().map(|&t| (t, after)));
    }

    pub fn connections(&self) -> u64 {
        self.faults.connections.load(Ordering::SeqCst)
    }

    pub fn bytes(&self) -> u64 {
        self.faults.bytes.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.faults.stopped.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn accept(
    listener: TcpListener,
    target: Arc<Mutex<Option<SocketAddr>>>,
    faults: Arc<Faults>,
    open: Arc<Mutex<Vec<(TcpStream, TcpStream)>>>,
) {
    while !faults.stopped.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(_) => continue,
        };
        let Some(target) = *target.lock().unwrap() else {
            continue;
        };
        let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
            continue; // the client sees its connection closed
        };
        faults.connections.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nonblocking(false);
        for stream in [&client, &server] {
            stream.set_read_timeout(Some(POLL)).unwrap();
            let _ = stream.set_nodelay(true);
        }
        open.lock()
            .unwrap()
            .push((client.try_clone().unwrap(), server.try_clone().unwrap()));
        let generation = faults.cuts.load(Ordering::SeqCst);
        let tamper = faults.tampers.lock().unwrap().pop_front();
        for (from, to, tamper) in [
            (
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                tamper,
            ),
            (server, client, None),
        ] {
            let faults = faults.clone();
            std::thread::spawn(move || pump(from, to, faults, generation, tamper));
        }
    }
}

/// Forwards `from` to `to` through a delay line until either closes or the
/// connection is cut.
fn pump(
    mut from: TcpStream,
    to: TcpStream,
    faults: Arc<Faults>,
    generation: u64,
    tamper: Option<(Tamper, u32)>,
) {
    let mut tamperer = tamper.map(|(tamper, after)| Tamperer::new(tamper, after));
    let cut = move |faults: &Faults| {
        faults.cuts.load(Ordering::SeqCst) != generation || faults.stopped.load(Ordering::SeqCst)
    };
    let (line, out) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer_faults = faults.clone();
    let mut writer_to = to.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let faults = writer_faults;
        while let Ok((due, bytes)) = out.recv() {
            while Instant::now() < due || faults.stalled.load(Ordering::SeqCst) {
                if cut(&faults) {
                    return;
                }
                let left = due.saturating_duration_since(Instant::now());
                std::thread::sleep(left.clamp(Duration::from_micros(100), POLL));
            }
            if cut(&faults) || writer_to.write_all(&bytes).is_err() {
                return;
            }
            faults.bytes.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        }
        // The reading side ended: pass the end on.
        let _ = writer_to.shutdown(Shutdown::Write);
    });
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        if cut(&faults) {
            break;
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let delay = Duration::from_micros(faults.delay_us.load(Ordering::SeqCst));
                let (bytes, end) = match &mut tamperer {
                    Some(tamperer) => tamperer.pass(&buffer[..n]),
                    None => (buffer[..n].to_vec(), false),
                };
                if line.send((Instant::now() + delay, bytes)).is_err() || end {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    drop(line);
    let _ = writer.join();
    if cut(&faults) {
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    }
}

/// Where a tampering pump is in the dialler's byte stream.
enum Stage {
    /// In the handshake: its bytes pass as they come; `passed` so far, of
    /// `need` (known once the hello's first 42 bytes are).
    Handshake {
        passed: usize,
        hello: Vec<u8>,
        need: Option<usize>,
    },
    /// Reading frames, counting batches.
    Frames { batches: u32 },
    /// Spoiled: the rest passes as it is.
    Done,
}

/// Spoils one batch frame of a dialler's stream (see [`Tamper`]).
struct Tamperer {
    tamper: Tamper,
    after: u32,
    stage: Stage,
    carry: Vec<u8>,
}

impl Tamperer {
    fn new(tamper: Tamper, after: u32) -> Self {
        Tamperer {
            tamper,
            after,
            stage: Stage::Handshake {
                passed: 0,
                hello: Vec::new(),
                need: None,
            },
            carry: Vec::new(),
        }
    }

    /// The bytes to forward for `chunk`, and whether the connection ends
    /// after them.
    fn pass(&mut self, chunk: &[u8]) -> (Vec<u8>, bool) {
        self.carry.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            match &mut self.stage {
                Stage::Handshake {
                    passed,
                    hello,
                    need,
                } => {
                    // The dialler's hello (magic, nonce, u16 context length,
                    // context), then, once answered, its proof:
                    // `sluice_network::auth`.
                    let take = hello.len().abs_diff(42).min(self.carry.len());
                    hello.extend_from_slice(&self.carry[..take]);
                    if need.is_none() && hello.len() == 42 {
                        let context = u16::from_le_bytes([hello[40], hello[41]]);
                        *need = Some(42 + usize::from(context) + 32);
                    }
                    let now = match *need {
                        Some(n) => (n - *passed).min(self.carry.len()),
                        None => self.carry.len(),
                    };
                    out.extend(self.carry.drain(..now));
                    *passed += now;
                    if Some(*passed) != *need {
                        return (out, false);
                    }
                    self.stage = Stage::Frames { batches: 0 };
                }
                Stage::Frames { batches } => {
                    if self.carry.len() < FRAME_HEADER {
                        return (out, false);
                    }
                    let len = u32::from_le_bytes(self.carry[..4].try_into().unwrap()) as usize;
                    let total = FRAME_HEADER + len;
                    if self.carry.len() < total {
                        return (out, false);
                    }
                    let mut frame: Vec<u8> = self.carry.drain(..total).collect();
                    if frame[4] == BATCH_KIND {
                        *batches += 1;
                        if *batches > self.after {
                            self.stage = Stage::Done;
                            let end = spoil(self.tamper, &mut frame);
                            out.extend(frame);
                            if end {
                                return (out, true);
                            }
                            continue;
                        }
                    }
                    out.extend(frame);
                }
                Stage::Done => {
                    out.append(&mut self.carry);
                    return (out, false);
                }
            }
        }
    }
}

/// Spoils one whole batch `frame`; true if the connection ends after what
/// is left of it.
fn spoil(tamper: Tamper, frame: &mut Vec<u8>) -> bool {
    match tamper {
        Tamper::HugeLength => frame[..4].copy_from_slice(&u32::MAX.to_le_bytes()),
        Tamper::UnknownKind => frame[4] = 0xEE,
        Tamper::Truncated => {
            let payload = frame.len() - FRAME_HEADER;
            frame.truncate(FRAME_HEADER + payload / 2);
            return true;
        }
        Tamper::BadRecordEnds => {
            // The payload: the archive, then `count` u32 record ends, then
            // `count` i64 timestamps, then a watermark when flagged.
            let count = u32::from_le_bytes(frame[12..16].try_into().unwrap()) as usize;
            let watermark = if frame[5] & 1 == 1 { 8 } else { 0 };
            let ends = frame.len() - watermark - 12 * count;
            frame[ends..ends + 4 * count].fill(0xFF);
        }
    }
    false
}
