//! Record batches: records serialized once into one aligned buffer.
//!
//! Layout: `bytes` holds the archived records back to back (each aligned as
//! rkyv requires, relative to the buffer start); `ends[i]` is the offset where
//! record `i`'s archived root ends, so record `i` is read from `bytes[..ends[i]]`;
//! `timestamps[i]` is its event time. An optional `watermark` applies after the
//! last record. A batch is built on one shard and read on another; it moves
//! between them by pointer.
//!
//! Invariants (checked per batch): `ends.len() == timestamps.len() <=
//! BATCH_RECORDS_MAX`; `ends` is strictly increasing and its last entry is at most
//! `bytes.len()`.

use std::marker::PhantomData;

use rkyv::rancor;
use rkyv::ser::allocator::Arena;
use rkyv::util::AlignedVec;

use crate::BatchRecord;

/// Most records one batch may hold, whatever their size.
pub const BATCH_RECORDS_MAX: usize = 1 << 16;
/// Smallest byte limit a builder accepts (a limit of "one record" is expressed as
/// this: every record then fills a batch by itself).
pub const BATCH_BYTES_MIN: usize = 1;

/// A record could not be serialized or a batch could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("record {index} of the batch could not be serialized: {source}")]
    Serialize { index: usize, source: rancor::Error },
    #[error("record {index} of a received batch is malformed: {reason}")]
    Malformed { index: usize, reason: String },
}

/// Serialized records plus their timestamps; see the module docs.
#[derive(Debug, Default)]
pub struct RecordBatch {
    bytes: AlignedVec,
    ends: Vec<u32>,
    timestamps: Vec<i64>,
    /// Watermark that applies after the last record, if any.
    pub watermark: Option<i64>,
}

impl RecordBatch {
    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Serialized size in bytes.
    #[inline]
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    #[inline]
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// Reads record `index` of a batch built on this machine (or checked).
    ///
    /// # Safety
    /// The batch must have been built by a [`BatchBuilder<T>`] for this same `T`
    /// in this process (so its bytes are trusted and correctly aligned), or
    /// [`check_records::<T>`](Self::check_records) must have accepted it.
    #[inline]
    pub unsafe fn read_trusted<T: BatchRecord>(&self, index: usize) -> T {
        let end = self.ends[index] as usize;
        // SAFETY: `end` was returned by `append_archived` for a `T` into these
        // very bytes (caller's contract), and `AlignedVec` keeps the start aligned.
        unsafe { T::read_archived_unchecked(&self.bytes[..end]) }
    }

    /// Reads record `index` of a batch from an untrusted peer, validating it.
    pub fn read_checked<T: BatchRecord>(&self, index: usize) -> Result<T, BatchError> {
        let end = *self.ends.get(index).ok_or_else(|| BatchError::Malformed {
            index,
            reason: format!("the batch has only {} records", self.ends.len()),
        })? as usize;
        if end > self.bytes.len() {
            return Err(BatchError::Malformed {
                index,
                reason: format!("ends at byte {end} of a {}-byte buffer", self.bytes.len()),
            });
        }
        T::read_archived_checked(&self.bytes[..end]).map_err(|e| BatchError::Malformed {
            index,
            reason: e.to_string(),
        })
    }

    /// The archived records, back to back (see the module docs).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where each record's archived root ends in [`bytes`](Self::bytes).
    #[inline]
    pub fn ends(&self) -> &[u32] {
        &self.ends
    }

    /// A batch from its parts, as received from another machine: the
    /// structural invariants are checked, the records are not (see
    /// [`check_records`](Self::check_records)).
    pub fn from_parts(
        bytes: AlignedVec,
        ends: Vec<u32>,
        timestamps: Vec<i64>,
        watermark: Option<i64>,
    ) -> Result<Self, String> {
        let batch = RecordBatch {
            bytes,
            ends,
            timestamps,
            watermark,
        };
        batch.check_invariants()?;
        Ok(batch)
    }

    /// Validates every record as an archived `T` (a batch from an untrusted
    /// peer). Once this returned `Ok` for `T`, [`read_trusted`] may read the
    /// batch as `T`.
    ///
    /// [`read_trusted`]: Self::read_trusted
    pub fn check_records<T: BatchRecord>(&self) -> Result<(), BatchError> {
        self.check_invariants()
            .map_err(|reason| BatchError::Malformed { index: 0, reason })?;
        for (index, &end) in self.ends.iter().enumerate() {
            T::check_archived(&self.bytes[..end as usize]).map_err(|e| BatchError::Malformed {
                index,
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Checks the structural invariants (see the module docs).
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.ends.len() != self.timestamps.len() {
            return Err(format!(
                "{} record ends but {} timestamps",
                self.ends.len(),
                self.timestamps.len()
            ));
        }
        if self.ends.len() > BATCH_RECORDS_MAX {
            return Err(format!(
                "{} records, more than {BATCH_RECORDS_MAX}",
                self.ends.len()
            ));
        }
        let mut previous = 0u32;
        for (i, &end) in self.ends.iter().enumerate() {
            if end <= previous && i > 0 || end as usize > self.bytes.len() {
                return Err(format!(
                    "record {i} ends at {end}, after {previous}, buffer {}",
                    self.bytes.len()
                ));
            }
            previous = end;
        }
        Ok(())
    }
}

/// Builds batches of `T` for one destination, up to a byte limit.
///
/// Lives on the sending shard. The limit is a flush threshold: a batch is full once
/// it reaches `bytes_limit` (or `BATCH_RECORDS_MAX` records); one record larger
/// than the limit still travels, alone.
pub struct BatchBuilder<T> {
    batch: RecordBatch,
    bytes_limit: usize,
    arena: Arena,
    _records: PhantomData<fn(T)>,
}

impl<T: BatchRecord> BatchBuilder<T> {
    pub fn new(bytes_limit: usize) -> Self {
        assert!(bytes_limit >= BATCH_BYTES_MIN);
        BatchBuilder {
            batch: Self::fresh_batch(bytes_limit),
            bytes_limit,
            arena: Arena::new(),
            _records: PhantomData,
        }
    }

    fn fresh_batch(bytes_limit: usize) -> RecordBatch {
        // Room for the limit plus one typical record, so a batch rarely regrows.
        let capacity = bytes_limit.min(1 << 20) + 256;
        RecordBatch {
            bytes: AlignedVec::with_capacity(capacity),
            ends: Vec::with_capacity((capacity / 16).min(BATCH_RECORDS_MAX)),
            timestamps: Vec::with_capacity((capacity / 16).min(BATCH_RECORDS_MAX)),
            watermark: None,
        }
    }

    /// Serializes one record into the open batch.
    #[inline]
    pub fn push(&mut self, timestamp: i64, record: &T) -> Result<(), BatchError> {
        let start = self.batch.bytes.len();
        match record.append_archived(&mut self.batch.bytes, &mut self.arena) {
            Ok(end) => {
                let end = u32::try_from(end).expect("bug: a batch buffer grew past 4 GiB");
                self.batch.ends.push(end);
                self.batch.timestamps.push(timestamp);
                Ok(())
            }
            Err(source) => {
                // Drop the partial record so the batch stays well-formed.
                self.batch.bytes.resize(start, 0);
                Err(BatchError::Serialize {
                    index: self.batch.ends.len(),
                    source,
                })
            }
        }
    }

    /// Records a watermark that applies after the records pushed so far. A later
    /// watermark replaces an earlier one (watermarks only move forward).
    #[inline]
    pub fn set_watermark(&mut self, watermark: i64) {
        self.batch.watermark = Some(watermark);
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.batch.bytes.len() >= self.bytes_limit || self.batch.ends.len() >= BATCH_RECORDS_MAX
    }

    /// True if there is nothing to send (no records, no watermark).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.batch.ends.is_empty() && self.batch.watermark.is_none()
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.batch.ends.len()
    }

    /// Takes the open batch and starts a new one.
    pub fn take(&mut self) -> RecordBatch {
        let batch = std::mem::replace(&mut self.batch, Self::fresh_batch(self.bytes_limit));
        debug_assert_eq!(batch.check_invariants(), Ok(()));
        batch
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rkyv::{Archive, Deserialize, Serialize};

    use super::*;

    #[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
    struct Event {
        key: u64,
        name: String,
        values: Vec<i32>,
    }

    proptest! {
        #[test]
        fn records_read_back_in_order(
            records in proptest::collection::vec((any::<i64>(), any::<u64>(), ".{0,40}", proptest::collection::vec(any::<i32>(), 0..8)), 1..200),
            limit in 1usize..4096,
        ) {
            let mut builder = BatchBuilder::<Event>::new(limit);
            let mut batches = Vec::new();
            for (ts, key, name, values) in &records {
                builder.push(*ts, &Event { key: *key, name: name.clone(), values: values.clone() }).unwrap();
                if builder.is_full() {
                    batches.push(builder.take());
                }
            }
            builder.set_watermark(7);
            batches.push(builder.take());
            let mut read = Vec::new();
            for batch in &batches {
                prop_assert_eq!(batch.check_invariants(), Ok(()));
                for i in 0..batch.len() {
                    // SAFETY: built above by a BatchBuilder<Event> in this process.
                    let trusted = unsafe { batch.read_trusted::<Event>(i) };
                    let checked = batch.read_checked::<Event>(i).unwrap();
                    prop_assert_eq!(&trusted, &checked);
                    read.push((batch.timestamps()[i], trusted));
                }
            }
            prop_assert_eq!(batches.last().unwrap().watermark, Some(7));
            let expected: Vec<_> = records.iter().map(|(ts, key, name, values)| (*ts, Event { key: *key, name: name.clone(), values: values.clone() })).collect();
            prop_assert_eq!(read, expected);
        }
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        let mut builder = BatchBuilder::<Event>::new(1024);
        builder
            .push(
                1,
                &Event {
                    key: 1,
                    name: "abc".into(),
                    values: vec![1, 2],
                },
            )
            .unwrap();
        let mut batch = builder.take();
        // Every relative pointer and length now points far outside the buffer.
        for b in batch.bytes.as_mut_slice() {
            *b = 0xff;
        }
        assert!(batch.read_checked::<Event>(0).is_err());
        assert!(batch.read_checked::<Event>(5).is_err());
    }
}
