//! The coordinator's writing end of one worker's control connection.
//!
//! Runs on whichever coordinator thread sends: the ticker (heartbeats,
//! deploys), the checkpoint leaders, the HTTP API's handlers. Invariant:
//! a message is written whole while the writer's lock is held, so frames
//! from different threads never interleave on the socket. (Writes through
//! separate handles of one socket do interleave: a write to a full send
//! buffer returns part-way or waits, and the kernel lets another thread's
//! write in between.) A write is bounded by the socket's write timeout; the
//! first that fails shuts the socket, so senders queued behind it fail at
//! once, and shutting it never waits for a write in progress.

use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;

use serde::Serialize;

use crate::control::{write_message, MessageError};

/// One worker connection's writer; see the module docs.
pub(crate) struct WorkerWriter {
    stream: Mutex<TcpStream>,
    /// The same socket, to shut it without taking the lock.
    socket: TcpStream,
}

impl WorkerWriter {
    /// Writes to `stream` (its write timeout already set).
    pub(crate) fn new(stream: TcpStream) -> std::io::Result<Self> {
        Ok(WorkerWriter {
            socket: stream.try_clone()?,
            stream: Mutex::new(stream),
        })
    }

    /// Writes `message` as one frame; on failure the socket is shut (the
    /// connection's reader then sees it closed).
    pub(crate) fn send<M: Serialize>(&self, message: &M) -> Result<(), MessageError> {
        let mut stream = self
            .stream
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let written = write_message(&mut *stream, message);
        if written.is_err() {
            self.shut();
        }
        written
    }

    /// Shuts the socket both ways (a write in progress fails).
    pub(crate) fn shut(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::control::{read_message, ToWorker};

    const THREADS: usize = 4;
    const MESSAGES: usize = 40;

    /// A large message whose every byte says who sent it.
    fn message(thread: usize, index: usize) -> ToWorker {
        ToWorker::Deploy {
            job: format!("{thread}/{index}"),
            attempt: index as u32,
            path: String::new(),
            text: char::from(b'a' + thread as u8)
                .to_string()
                .repeat(96 * 1024 + index),
            placement: Vec::new(),
            restore: None,
            restore_from: None,
        }
    }

    #[test]
    fn frames_sent_from_many_threads_at_once_arrive_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut reader = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let writer = Arc::new(WorkerWriter::new(stream).unwrap());
        let senders: Vec<_> = (0..THREADS)
            .map(|thread| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for index in 0..MESSAGES {
                        writer.send(&message(thread, index)).unwrap();
                    }
                })
            })
            .collect();
        // The senders fill the socket's buffers before anything is read:
        // their writes then wait part-way, where others could cut in.
        std::thread::sleep(Duration::from_millis(200));
        reader
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut next = [0usize; THREADS];
        for _ in 0..THREADS * MESSAGES {
            let received: ToWorker = read_message(&mut reader).expect("a whole frame");
            let ToWorker::Deploy { job, text, .. } = received else {
                panic!("not the message sent: {received:?}");
            };
            let (thread, index) = job.split_once('/').expect("thread/index");
            let (thread, index): (usize, usize) = (thread.parse().unwrap(), index.parse().unwrap());
            assert_eq!(index, next[thread], "thread {thread}'s messages in order");
            next[thread] += 1;
            let ToWorker::Deploy { text: sent, .. } = message(thread, index) else {
                unreachable!()
            };
            assert!(text == sent, "message {job} arrived changed");
        }
        for sender in senders {
            sender.join().unwrap();
        }
        assert_eq!(next, [MESSAGES; THREADS]);
    }

    #[test]
    fn a_failed_write_shuts_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let reader = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let writer = WorkerWriter::new(stream).unwrap();
        // Nobody reads: the buffers fill and a write times out.
        let failed = (0..1000).find_map(|index| writer.send(&message(0, index)).err());
        assert!(
            failed.is_some(),
            "a write to a reader that never reads fails"
        );
        assert!(
            writer.send(&ToWorker::Heartbeat).is_err(),
            "the connection stays shut"
        );
        drop(reader);
    }
}
