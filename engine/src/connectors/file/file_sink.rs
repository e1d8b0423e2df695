//! Sinks that write text: stdout, files (one part file per shard), and the
//! blackhole that only counts.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use serde::Serialize;

use super::{RecordFormat, Sink, SinkWriter};
use crate::Rec;

fn encode<T: Serialize>(
    format: RecordFormat,
    batch: &[Rec<T>],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    for r in batch {
        format
            .write(&r.value, out)
            .map_err(|e| format!("encoding a record as {format:?}: {e}"))?;
    }
    Ok(())
}

/// Writes records to standard output, a batch at a time (batches of different
/// shards never interleave within a line).
#[derive(Debug, Clone, Copy)]
pub struct StdoutSink {
    pub format: RecordFormat,
}

struct StdoutWriter {
    format: RecordFormat,
    buffer: Vec<u8>,
}

impl<T: Serialize + 'static> SinkWriter<T> for StdoutWriter {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        self.buffer.clear();
        encode(self.format, batch, &mut self.buffer)?;
        std::io::stdout()
            .lock()
            .write_all(&self.buffer)
            .map_err(|e| format!("writing to stdout: {e}"))
    }
    fn finish(&mut self) -> Result<(), String> {
        std::io::stdout()
            .lock()
            .flush()
            .map_err(|e| format!("flushing stdout: {e}"))
    }
}

impl<T: Serialize + 'static> Sink<T> for StdoutSink {
    fn open(&self, _shard: u32, _shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        Ok(Box::new(StdoutWriter {
            format: self.format,
            buffer: Vec::new(),
        }))
    }
}

/// Writes records into a directory: `part-<shard>.<ext>` per shard.
#[derive(Debug, Clone)]
pub struct FileSink {
    pub directory: PathBuf,
    pub format: RecordFormat,
}

struct FileWriter {
    path: PathBuf,
    format: RecordFormat,
    file: BufWriter<File>,
    buffer: Vec<u8>,
}

impl<T: Serialize + 'static> SinkWriter<T> for FileWriter {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        self.buffer.clear();
        encode(self.format, batch, &mut self.buffer)?;
        self.file
            .write_all(&self.buffer)
            .map_err(|e| format!("writing {}: {e}", self.path.display()))
    }
    fn finish(&mut self) -> Result<(), String> {
        self.file
            .flush()
            .map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        self.file
            .get_ref()
            .sync_all()
            .map_err(|e| format!("syncing {}: {e}", self.path.display()))
    }
}

impl<T: Serialize + 'static> Sink<T> for FileSink {
    fn open(&self, shard: u32, _shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        std::fs::create_dir_all(&self.directory).map_err(|e| {
            format!(
                "creating output directory {}: {e}",
                self.directory.display()
            )
        })?;
        let path = self
            .directory
            .join(format!("part-{shard:05}.{}", self.format.extension()));
        let file = File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(Box::new(FileWriter {
            path,
            format: self.format,
            file: BufWriter::with_capacity(1 << 20, file),
            buffer: Vec::new(),
        }))
    }
}

/// Drops every record (the shard metrics still count them).
#[derive(Debug, Clone, Copy, Default)]
pub struct BlackholeSink;

struct BlackholeWriter;

impl<T> SinkWriter<T> for BlackholeWriter {
    #[inline]
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        std::hint::black_box(batch);
        Ok(())
    }
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

impl<T: 'static> Sink<T> for BlackholeSink {
    fn open(&self, _shard: u32, _shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        Ok(Box::new(BlackholeWriter))
    }
}

/// Drops records, but takes at most `records_per_second` per shard: a slow
/// consumer (a database that keeps up with only so much), for trying
/// backpressure. A shard ahead of that pace sleeps on its core within the
/// batch's write, as a blocking client would.
#[derive(Debug, Clone, Copy)]
pub struct ThrottledBlackholeSink {
    pub records_per_second: u64,
}

struct ThrottledBlackholeWriter {
    records_per_second: u64,
    started: Option<std::time::Instant>,
    written: u64,
}

impl<T> SinkWriter<T> for ThrottledBlackholeWriter {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        std::hint::black_box(batch);
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        self.written += batch.len() as u64;
        let due = std::time::Duration::from_secs_f64(
            self.written as f64 / self.records_per_second.max(1) as f64,
        );
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(ahead);
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

impl<T: 'static> Sink<T> for ThrottledBlackholeSink {
    fn open(&self, _shard: u32, _shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        Ok(Box::new(ThrottledBlackholeWriter {
            records_per_second: self.records_per_second,
            started: None,
            written: 0,
        }))
    }
}
