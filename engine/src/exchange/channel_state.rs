//! How records in flight at an unaligned checkpoint are written and read back.
//!
//! Both ends of an exchange keep channel state: the gate keeps the records
//! an unaligned barrier overtook on its way in (read from the channel but not
//! processed), the outbox the batches it overtook on its way out (queued for
//! the channel). Both write `(timestamp, value)` entries with the state codec
//! and read them back, on restore, into records that go before new input.
//! Runs on the shard that owns the gate or outbox.

use sluice_network::RecordBatch;
use sluice_state::{CodecError, EntryWriter, PartReader};

use crate::{ExchangeData, Rec};

/// Appends `records` to `writer`.
pub(crate) fn write_records<T: ExchangeData>(
    records: &[Rec<T>],
    writer: &mut EntryWriter,
) -> Result<(), CodecError> {
    for record in records {
        writer.entry(&[&|w| w.part(&record.ts), &|w| w.part(&record.value)])?;
    }
    Ok(())
}

/// Appends the records of `batch` to `writer`.
///
/// # Safety
/// `batch` must have been built by a `BatchBuilder<T>` of this process (a
/// batch of a typed edge of this job), as for
/// [`RecordBatch::read_trusted`].
pub(crate) unsafe fn write_batch<T: ExchangeData>(
    batch: &RecordBatch,
    writer: &mut EntryWriter,
) -> Result<(), CodecError> {
    for (i, &ts) in batch.timestamps().iter().enumerate() {
        // SAFETY: the caller's contract.
        let value: T = unsafe { batch.read_trusted::<T>(i) };
        writer.entry(&[&|w| w.part(&ts), &|w| w.part(&value)])?;
    }
    Ok(())
}

/// Reads back what [`write_records`] and [`write_batch`] wrote.
pub(crate) fn read_records<T: ExchangeData>(bytes: &[u8]) -> Result<Vec<Rec<T>>, String> {
    let context = |e: CodecError| format!("channel state: {e}");
    let mut reader = PartReader::new(bytes);
    let count = reader.count().map_err(context)?;
    // A corrupt count must not reserve memory it does not describe.
    let mut records = Vec::with_capacity((count as usize).min(bytes.len() / 8));
    for _ in 0..count {
        let ts: i64 = reader.part().map_err(context)?;
        let value: T = reader.part().map_err(context)?;
        records.push(Rec { ts, value });
    }
    reader.finish().map_err(context)?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use sluice_network::BatchBuilder;

    use super::*;

    #[test]
    fn records_and_batches_read_back_in_order() {
        let mut writer = EntryWriter::new();
        write_records(&[Rec::new(5, 50u64), Rec::new(6, 60)], &mut writer).unwrap();
        let mut builder = BatchBuilder::<u64>::new(1 << 16);
        builder.push(7, &70).unwrap();
        builder.push(8, &80).unwrap();
        // SAFETY: built just above for u64.
        unsafe { write_batch::<u64>(&builder.take(), &mut writer) }.unwrap();
        let records = read_records::<u64>(&writer.finish()).unwrap();
        let seen: Vec<(i64, u64)> = records.iter().map(|r| (r.ts, r.value)).collect();
        assert_eq!(seen, vec![(5, 50), (6, 60), (7, 70), (8, 80)]);
    }

    #[test]
    fn truncated_channel_state_is_an_error_not_a_panic() {
        let mut writer = EntryWriter::new();
        write_records(&[Rec::new(5, 50u64)], &mut writer).unwrap();
        let bytes = writer.finish();
        let error = read_records::<u64>(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(error.starts_with("channel state:"), "{error}");
    }
}
