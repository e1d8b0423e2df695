//! A fault-injecting TCP proxy for the tests, on 127.0.0.1: what a bad
//! network does to a link between workers, since this kernel has no `tc
//! netem`. It forwards every connection to one target and can delay each
//! direction's bytes by a fixed time (a delay line: throughput is kept, every
//! byte arrives that much later), stall all forwarding for a while, and cut
//! every connection open at that moment (both sockets shut down, as a cable
//! pulled or a middlebox reset does).
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
}

/// See the module docs. Stops (and closes everything) when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    faults: Arc<Faults>,
    open: Arc<Mutex<Vec<(TcpStream, TcpStream)>>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1, any port, and forwards to `target`.
    pub fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = FaultProxy {
            address: listener.local_addr().unwrap(),
            faults: Arc::default(),
            open: Arc::default(),
        };
        let (faults, open) = (proxy.faults.clone(), proxy.open.clone());
        std::thread::spawn(move || accept(listener, target, faults, open));
        proxy
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
    target: SocketAddr,
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
        for (from, to) in [
            (client.try_clone().unwrap(), server.try_clone().unwrap()),
            (server, client),
        ] {
            let faults = faults.clone();
            std::thread::spawn(move || pump(from, to, faults, generation));
        }
    }
}

/// Forwards `from` to `to` through a delay line until either closes or the
/// connection is cut.
fn pump(mut from: TcpStream, to: TcpStream, faults: Arc<Faults>, generation: u64) {
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
                if line
                    .send((Instant::now() + delay, buffer[..n].to_vec()))
                    .is_err()
                {
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
