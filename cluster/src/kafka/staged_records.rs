//! The records of one checkpoint interval of one exactly-once sink shard,
//! as they are kept with the checkpoint until Kafka has committed them:
//! encoded keys and values, ready to send as they are.
//!
//! Layout: the magic `SLKSTG1\n`, then per record its timestamp (`i64`,
//! little endian, `i64::MIN` for none), its key's length (`u32`,
//! `u32::MAX` for no key) and bytes, its value's length (`u32`) and bytes.
//! Reading checks every length against what is left and names the byte
//! where a staged object stops making sense; it never panics.

const MAGIC: &[u8] = b"SLKSTG1\n";
const NO_KEY: u32 = u32::MAX;

/// Staged records being written: a buffer that starts with the magic.
pub struct StagedRecords {
    bytes: Vec<u8>,
    records: u64,
}

/// One staged record, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagedRecord<'a> {
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
}

impl Default for StagedRecords {
    fn default() -> Self {
        StagedRecords {
            bytes: MAGIC.to_vec(),
            records: 0,
        }
    }
}

impl StagedRecords {
    pub fn push(&mut self, record: StagedRecord<'_>) -> Result<(), String> {
        let too_long = |what: &str, len: usize| {
            format!("a record's {what} of {len} bytes is too long to stage")
        };
        let value_len = u32::try_from(record.value.len())
            .ok()
            .filter(|&len| len != NO_KEY)
            .ok_or_else(|| too_long("value", record.value.len()))?;
        let key_len = match record.key {
            None => NO_KEY,
            Some(key) => u32::try_from(key.len())
                .ok()
                .filter(|&len| len != NO_KEY)
                .ok_or_else(|| too_long("key", key.len()))?,
        };
        self.bytes
            .extend_from_slice(&record.timestamp.unwrap_or(i64::MIN).to_le_bytes());
        self.bytes.extend_from_slice(&key_len.to_le_bytes());
        if let Some(key) = record.key {
            self.bytes.extend_from_slice(key);
        }
        self.bytes.extend_from_slice(&value_len.to_le_bytes());
        self.bytes.extend_from_slice(record.value);
        self.records += 1;
        Ok(())
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// The encoded records; the buffer starts over.
    pub fn take(&mut self) -> Vec<u8> {
        self.records = 0;
        std::mem::replace(&mut self.bytes, MAGIC.to_vec())
    }
}

/// Reads staged records from `bytes` (one staged object), in order.
pub fn read_staged(bytes: &[u8]) -> Result<Vec<StagedRecord<'_>>, String> {
    if !bytes.starts_with(MAGIC) {
        return Err("not staged Kafka records (no SLKSTG1 header)".into());
    }
    let mut at = MAGIC.len();
    let mut records = Vec::new();
    while at < bytes.len() {
        let start = at;
        let truncated = |what: &str| {
            format!(
                "the record at byte {start} is cut short in its {what} (the object has {} bytes)",
                bytes.len()
            )
        };
        let mut take = |len: usize, what: &str| -> Result<&[u8], String> {
            let piece = bytes.get(at..at + len).ok_or_else(|| truncated(what))?;
            at += len;
            Ok(piece)
        };
        let timestamp = i64::from_le_bytes(take(8, "timestamp")?.try_into().expect("8 bytes"));
        let key_len = u32::from_le_bytes(take(4, "key length")?.try_into().expect("4 bytes"));
        let key = match key_len {
            NO_KEY => None,
            len => Some(take(len as usize, "key")?),
        };
        let value_len = u32::from_le_bytes(take(4, "value length")?.try_into().expect("4 bytes"));
        let value = take(value_len as usize, "value")?;
        records.push(StagedRecord {
            timestamp: (timestamp != i64::MIN).then_some(timestamp),
            key,
            value,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the tests spell it: timestamp, key, value.
    type Owned = (Option<i64>, Option<Vec<u8>>, Vec<u8>);

    fn sample() -> Vec<Owned> {
        vec![
            (Some(17), Some(b"{\"k\":1}".to_vec()), b"{\"v\":2}".to_vec()),
            (None, None, b"plain".to_vec()),
            (Some(-5), Some(Vec::new()), Vec::new()),
        ]
    }

    /// The sample, staged.
    fn staged_sample() -> StagedRecords {
        let mut staged = StagedRecords::default();
        for (timestamp, key, value) in &sample() {
            staged
                .push(StagedRecord {
                    timestamp: *timestamp,
                    key: key.as_deref(),
                    value,
                })
                .unwrap();
        }
        staged
    }

    #[test]
    fn records_read_back_as_they_were_staged() {
        let mut staged = staged_sample();
        assert_eq!(staged.records(), 3);
        let bytes = staged.take();
        assert_eq!(staged.records(), 0);
        let read: Vec<_> = read_staged(&bytes)
            .unwrap()
            .into_iter()
            .map(|r| (r.timestamp, r.key.map(<[u8]>::to_vec), r.value.to_vec()))
            .collect();
        assert_eq!(read, sample());
        assert!(read_staged(&staged.take()).unwrap().is_empty());
    }

    #[test]
    fn every_cut_of_a_staged_object_is_an_error_naming_the_record() {
        let bytes = staged_sample().take();
        let ends: Vec<usize> = {
            // Where each record ends: a cut there is a whole object.
            let mut at = MAGIC.len();
            let mut ends = vec![at];
            for (_, key, value) in sample() {
                at += 8 + 4 + key.map_or(0, |k| k.len()) + 4 + value.len();
                ends.push(at);
            }
            ends
        };
        for cut in 0..bytes.len() {
            let result = read_staged(&bytes[..cut]);
            if cut < MAGIC.len() {
                assert!(result.unwrap_err().contains("SLKSTG1"), "cut at {cut}");
            } else if ends.contains(&cut) {
                assert!(result.is_ok(), "cut at {cut}");
            } else {
                let error = result.unwrap_err();
                assert!(error.contains("cut short"), "cut at {cut}: {error}");
            }
        }
    }
}
