//! A source table: a connector's source whose records become rows of the
//! table as they are read.
//!
//! Wraps any [`Source`] and turns each record into a [`Row`] inside the
//! reader, on the shard that reads the partition, so the watermark strategy
//! sees rows and takes event time from the table's `WATERMARK FOR` column,
//! whatever the connector's own notion of time. A record that cannot become
//! a row (a computed column that fails) is a bad record of that partition.

use std::sync::Arc;

use super::value::Row;
use crate::connectors::{Source, SourcePoll, SourceReader};
use crate::{Rec, SourceError};

/// Makes a row of a connector record, or says why it cannot.
pub type MakeRow<T> = Arc<dyn Fn(T) -> Result<Row, String> + Send + Sync>;

/// `inner`'s records as rows.
pub struct RowSource<T, S> {
    pub inner: S,
    pub make_row: MakeRow<T>,
    /// Names the table in errors.
    pub table: String,
}

impl<T: 'static, S: Source<T>> Source<Row> for RowSource<T, S> {
    fn partitions(&self) -> u32 {
        self.inner.partitions()
    }

    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<Row>>, SourceError> {
        Ok(Box::new(RowReader {
            inner: self.inner.open(partition)?,
            make_row: self.make_row.clone(),
            records: Vec::new(),
            location: format!(
                "table `{}` partition {}",
                self.table,
                self.inner.partition_name(partition)
            ),
        }))
    }

    fn partition_name(&self, partition: u32) -> String {
        self.inner.partition_name(partition)
    }

    fn shard_of(&self, partition: u32, shards: u32) -> u32 {
        self.inner.shard_of(partition, shards)
    }

    fn discovery_interval(&self) -> Option<std::time::Duration> {
        self.inner.discovery_interval()
    }
}

struct RowReader<T> {
    inner: Box<dyn SourceReader<T>>,
    make_row: MakeRow<T>,
    /// The inner reader's batch, reused.
    records: Vec<Rec<T>>,
    location: String,
}

impl<T> SourceReader<Row> for RowReader<T> {
    fn poll(&mut self, out: &mut Vec<Rec<Row>>, max: usize) -> Result<SourcePoll, SourceError> {
        let poll = self.inner.poll(&mut self.records, max)?;
        for record in self.records.drain(..) {
            let value = (self.make_row)(record.value).map_err(|reason| SourceError::BadRecord {
                location: self.location.clone(),
                reason,
            })?;
            out.push(Rec {
                ts: record.ts,
                value,
            });
        }
        Ok(poll)
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }

    fn seek(&mut self, position: u64) -> Result<(), SourceError> {
        self.inner.seek(position)
    }

    fn ready_at(&self) -> Option<std::time::Instant> {
        self.inner.ready_at()
    }
}
