//! The exactly-once file sink: part files that become visible only when the
//! checkpoint covering their records completes (see
//! [`TransactionalFileWriter`] for the files' life).
//!
//! Each shard's writer lives on its shard; the job's checkpoint driver holds a
//! second handle to it as a [`Committer`] and commits from its own thread when
//! a checkpoint completes (renames only, off the record path). At the end of
//! the input the last part is pre-committed for the job's final checkpoint. A
//! job without checkpoints commits everything when its input ends.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::{RecordFormat, Sink, SinkContext, SinkWriter, TransactionalFileWriter};
use crate::checkpoint::{Committer, FINAL_CHECKPOINT};
use crate::Rec;

/// Writes `part-<shard>-<seq>.<ext>` files into `directory`, exactly once.
pub struct ExactlyOnceFileSink {
    pub directory: PathBuf,
    pub format: RecordFormat,
}

struct SharedWriter(Arc<Mutex<TransactionalFileWriter>>);

impl Committer for SharedWriter {
    fn commit(&mut self, checkpoint: u64) -> Result<(), String> {
        self.0.lock().expect("part writer lock").commit(checkpoint)
    }
}

struct ExactlyOnceWriter {
    parts: Arc<Mutex<TransactionalFileWriter>>,
    checkpointing: bool,
}

impl<T: Serialize + 'static> SinkWriter<T> for ExactlyOnceWriter {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        self.parts.lock().expect("part writer lock").write(batch)
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<(), String> {
        self.parts
            .lock()
            .expect("part writer lock")
            .pre_commit(checkpoint)
    }

    fn finish(&mut self) -> Result<(), String> {
        let mut parts = self.parts.lock().expect("part writer lock");
        if self.checkpointing {
            parts.pre_commit(FINAL_CHECKPOINT)
        } else {
            parts.finish()
        }
    }
}

impl<T: Serialize + 'static> Sink<T> for ExactlyOnceFileSink {
    fn open(&self, shard: u32, shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        let parts =
            TransactionalFileWriter::recover(&self.directory, self.format, shard, shards, None)?;
        Ok(Box::new(ExactlyOnceWriter {
            parts: Arc::new(Mutex::new(parts)),
            checkpointing: false,
        }))
    }

    fn open_in(&self, context: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, String> {
        let parts = TransactionalFileWriter::recover(
            &self.directory,
            self.format,
            context.shard,
            context.shards,
            context.restored,
        )?;
        let parts = Arc::new(Mutex::new(parts));
        if context.checkpointing {
            context
                .committers
                .lock()
                .expect("committers lock")
                .push(Arc::new(Mutex::new(SharedWriter(parts.clone()))));
        }
        Ok(Box::new(ExactlyOnceWriter {
            parts,
            checkpointing: context.checkpointing,
        }))
    }
}
