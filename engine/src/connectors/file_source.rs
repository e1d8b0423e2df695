//! The file source: records as lines of text files (JSON lines, CSV, text).
//!
//! Each file is cut into splits of at most `split_bytes`; every split is a
//! partition, read by shard `partition % shards`. A line belongs to the split in
//! which its first byte lies: a reader that starts inside a line skips to the
//! next one, and one that reaches its end finishes the line it is in. The
//! position is the byte offset of the next line. A malformed line is an error
//! naming the file and the line (or byte offset), or skipped as the source's
//! [`BadRecordPolicy`] says.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{BadRecordPolicy, BadRecords, RecordFormat, Source, SourcePoll, SourceReader};
use crate::record::NO_TIMESTAMP;
use crate::{Rec, SourceError};

/// Default split size.
pub const SPLIT_BYTES_DEFAULT: u64 = 64 << 20;

/// A byte range of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSplit {
    pub path: PathBuf,
    pub start: u64,
    pub end: u64,
}

/// Makes a record of one line (without its newline), or says why not.
pub type Parse<T> = Arc<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

pub struct FileSource<T> {
    splits: Vec<FileSplit>,
    parse: Parse<T>,
    bad_records: BadRecordPolicy,
}

impl<T: DeserializeOwned + 'static> FileSource<T> {
    /// Reads `paths` in `format`, cutting files into splits of `split_bytes`.
    /// Fails if a file cannot be opened, naming it.
    pub fn new(
        paths: &[PathBuf],
        format: RecordFormat,
        split_bytes: u64,
    ) -> Result<Self, SourceError> {
        let parse: Parse<T> = Arc::new(move |line| format.parse::<T>(line).map_err(|e| e.0));
        FileSource::parsed_by(paths, split_bytes, parse)
    }
}

impl<T: 'static> FileSource<T> {
    /// Reads `paths`, each line made a record by `parse` (a SQL table's
    /// rows), cutting files into splits of `split_bytes`.
    pub fn parsed_by(
        paths: &[PathBuf],
        split_bytes: u64,
        parse: Parse<T>,
    ) -> Result<Self, SourceError> {
        assert!(split_bytes > 0, "split size must be positive");
        let mut splits = Vec::new();
        for path in paths {
            let len = std::fs::metadata(path)
                .map_err(|source| SourceError::Io {
                    path: path.clone(),
                    source,
                })?
                .len();
            let mut start = 0;
            while start < len {
                let end = (start + split_bytes).min(len);
                splits.push(FileSplit {
                    path: path.clone(),
                    start,
                    end,
                });
                start = end;
            }
            if len == 0 {
                splits.push(FileSplit {
                    path: path.clone(),
                    start: 0,
                    end: 0,
                });
            }
        }
        Ok(FileSource {
            splits,
            parse,
            bad_records: BadRecordPolicy::Fail,
        })
    }

    /// What its readers do with a line they cannot parse (default: fail).
    pub fn with_bad_records(mut self, policy: BadRecordPolicy) -> Self {
        self.bad_records = policy;
        self
    }

    pub fn splits(&self) -> &[FileSplit] {
        &self.splits
    }
}

struct FileSplitReader<T> {
    split: FileSplit,
    reader: BufReader<File>,
    /// Byte offset of the next line.
    offset: u64,
    /// Line number of the next line, when the split starts at byte 0.
    line: Option<u64>,
    buffer: String,
    parse: Parse<T>,
    bad_records: BadRecords,
}

impl<T> FileSplitReader<T> {
    fn io(&self, source: std::io::Error) -> SourceError {
        SourceError::Io {
            path: self.split.path.clone(),
            source,
        }
    }

    fn where_(&self, offset: u64) -> String {
        match self.line {
            Some(line) => format!("{}:{}", self.split.path.display(), line),
            None => format!("{} at byte {}", self.split.path.display(), offset),
        }
    }
}

impl<T: 'static> SourceReader<T> for FileSplitReader<T> {
    fn poll(&mut self, out: &mut Vec<Rec<T>>, max: usize) -> Result<SourcePoll, SourceError> {
        for _ in 0..max {
            if self.offset >= self.split.end {
                return Ok(SourcePoll::End);
            }
            self.buffer.clear();
            let read = self
                .reader
                .read_line(&mut self.buffer)
                .map_err(|e| self.io(e))?;
            if read == 0 {
                return Ok(SourcePoll::End);
            }
            let line_start = self.offset;
            self.offset += read as u64;
            let line = self.buffer.trim_end_matches(['\n', '\r']);
            if !line.trim().is_empty() {
                match (self.parse)(line) {
                    Ok(value) => out.push(Rec {
                        ts: NO_TIMESTAMP,
                        value,
                    }),
                    Err(reason) => {
                        let location = self.where_(line_start);
                        self.bad_records.handle(location, reason, line)?;
                    }
                }
            }
            if let Some(n) = self.line.as_mut() {
                *n += 1;
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn position(&self) -> u64 {
        self.offset
    }

    fn seek(&mut self, position: u64) -> Result<(), SourceError> {
        if position < self.split.start || position > self.split.end.max(self.split.start) {
            return Err(SourceError::BadRecord {
                location: self.where_(position),
                reason: format!(
                    "a restored position outside this split (bytes {}..{})",
                    self.split.start, self.split.end
                ),
            });
        }
        self.reader
            .seek(SeekFrom::Start(position))
            .map_err(|e| self.io(e))?;
        self.offset = position;
        // Line numbers are known only when reading from the start.
        self.line = (position == 0).then_some(1);
        Ok(())
    }
}

impl<T: 'static> Source<T> for FileSource<T> {
    fn partitions(&self) -> u32 {
        self.splits.len() as u32
    }

    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let split = self.splits[partition as usize].clone();
        let file = File::open(&split.path).map_err(|source| SourceError::Io {
            path: split.path.clone(),
            source,
        })?;
        let mut reader = FileSplitReader {
            reader: BufReader::with_capacity(256 * 1024, file),
            offset: split.start,
            line: (split.start == 0).then_some(1),
            buffer: String::new(),
            parse: self.parse.clone(),
            bad_records: BadRecords::new(&self.bad_records, partition),
            split,
        };
        if reader.split.start > 0 {
            // Start at the first line that begins inside the split.
            let start = reader.split.start;
            reader
                .reader
                .seek(SeekFrom::Start(start - 1))
                .map_err(|e| reader.io(e))?;
            let mut skipped = Vec::new();
            let n = reader
                .reader
                .read_until(b'\n', &mut skipped)
                .map_err(|e| reader.io(e))?;
            reader.offset = start - 1 + n as u64;
        }
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read_all<T: 'static>(source: &FileSource<T>) -> Result<Vec<T>, SourceError> {
        let mut out = Vec::new();
        for p in 0..source.partitions() {
            let mut reader = source.open(p)?;
            while reader.poll(&mut out, 7)? != SourcePoll::End {}
        }
        Ok(out.into_iter().map(|r| r.value).collect())
    }

    #[test]
    fn every_line_read_once_whatever_the_split_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("words.txt");
        let lines: Vec<String> = (0..500)
            .map(|i| format!("line {i} {}", "x".repeat(i % 13)))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        for split in [1, 2, 5, 17, 100, 1 << 20] {
            let source =
                FileSource::<String>::new(std::slice::from_ref(&path), RecordFormat::Text, split)
                    .unwrap();
            assert_eq!(read_all(&source).unwrap(), lines, "split size {split}");
        }
    }

    #[test]
    fn malformed_json_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut f = File::create(&path).unwrap();
        writeln!(f, "{{\"a\": 1}}\n{{\"a\": 2}}\n{{\"a\": oops}}").unwrap();
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Row {
            a: i64,
        }
        let source = FileSource::<Row>::new(&[path], RecordFormat::JsonLines, 1 << 20).unwrap();
        let err = read_all(&source).unwrap_err().to_string();
        assert!(err.contains("events.jsonl:3"), "{err}");
        assert!(err.contains("invalid JSON"), "{err}");
    }

    #[test]
    fn missing_file_is_named() {
        let err = FileSource::<String>::new(
            &[PathBuf::from("/nonexistent/x.txt")],
            RecordFormat::Text,
            10,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("/nonexistent/x.txt"), "{err}");
    }
}
