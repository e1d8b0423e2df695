//! Helpers for the end-to-end tests: process memory, sinks with behavior the
//! tests need (a deliberately slow one), a real S3-compatible server
//! ([`s3_server`]) and a real Kafka-API broker ([`kafka_broker`]).

pub mod etcd_server;
pub mod kafka_broker;
pub mod s3_server;

use std::time::Duration;

// For `s3_server` (see its module docs).
use sluice_state::checkpoint_store::S3Settings;

use sluice_engine::connectors::{Sink, SinkWriter};
use sluice_engine::Rec;

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// A sink that sleeps for `pause` after every batch: slower than any source.
#[derive(Debug, Clone, Copy)]
pub struct SlowSink {
    pub pause: Duration,
}

struct SlowWriter {
    pause: Duration,
}

impl<T> SinkWriter<T> for SlowWriter {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        std::hint::black_box(batch);
        std::thread::sleep(self.pause);
        Ok(())
    }
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

impl<T: 'static> Sink<T> for SlowSink {
    fn open(&self, _shard: u32, _shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        Ok(Box::new(SlowWriter { pause: self.pause }))
    }
}
