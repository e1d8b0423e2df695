//! CSV lines read and written with state reused from line to line: the
//! `csv` crate's reader and writer built per line (as the sources and sinks
//! did) cost their state machine (~11 µs per line, 96 % of a CSV line's
//! time) and an 8 KiB buffer each time.
//!
//! A line's split is `csv_core`'s, the machine under the `csv` crate, with
//! the `csv` crate's defaults (`,`, `"` doubled to escape it, no comments),
//! so a line is read exactly as before: its first record (a lone `\r` ends
//! it), quotes removed. Typed records are then deserialized from the fields
//! by the `csv` crate, and written by one `csv` writer per thread. Runs on
//! whatever shard reads or writes the lines; the state is that thread's.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use csv_core::{ReadRecordResult, Reader};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::FormatError;

/// A line's fields: the unquoted bytes and where each field ends, and the
/// reader that split it (its state machine is built once per thread).
pub struct CsvFields {
    reader: Reader,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Default for CsvFields {
    fn default() -> Self {
        CsvFields {
            reader: Reader::new(),
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<CsvFields> = RefCell::default();
    static RECORD: RefCell<csv::StringRecord> = RefCell::default();
    static WRITER: RefCell<LineWriter> = RefCell::new(LineWriter::new());
}

/// A `csv` writer of lines into a buffer the caller empties after each.
struct LineWriter {
    writer: csv::Writer<SharedBuffer>,
    written: Rc<RefCell<Vec<u8>>>,
}

/// The bytes a [`LineWriter`]'s writer flushed.
struct SharedBuffer(Rc<RefCell<Vec<u8>>>);

impl io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LineWriter {
    /// No header, and no check that records have the same length (records
    /// of different sinks share it; each line used to be written by a
    /// writer of its own).
    fn new() -> Self {
        let written = Rc::new(RefCell::new(Vec::new()));
        let writer = csv::WriterBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_writer(SharedBuffer(Rc::clone(&written)));
        LineWriter { writer, written }
    }

    fn write<T: Serialize>(&mut self, value: &T, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let result = (self.writer.serialize(value)).and_then(|()| Ok(self.writer.flush()?));
        if let Err(e) = result {
            // A record cut short leaves the writer inside it: start afresh.
            *self = LineWriter::new();
            return Err(FormatError(e.to_string()));
        }
        let mut written = self.written.borrow_mut();
        out.extend_from_slice(&written);
        written.clear();
        Ok(())
    }
}

impl CsvFields {
    /// Calls `with` with the fields of `line` (in this thread's buffers).
    pub fn of_line<R>(line: &str, with: impl FnOnce(&CsvFields) -> R) -> R {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut fields) => {
                fields.split(line.as_bytes());
                with(&fields)
            }
            // A nested call (none today) builds a reader of its own.
            Err(_) => {
                let mut fields = CsvFields::default();
                fields.split(line.as_bytes());
                with(&fields)
            }
        })
    }

    fn split(&mut self, line: &[u8]) {
        // Unquoting never lengthens a field, and a field ends at a comma
        // or at the end: both buffers are large enough for one call each.
        self.bytes.clear();
        self.bytes.resize(line.len().max(1), 0);
        self.ends.clear();
        self.ends
            .resize(memchr::memchr_iter(b',', line).count() + 1, 0);
        self.reader.reset();
        let (mut read, mut written, mut fields) = (0, 0, 0);
        loop {
            let (result, n_in, n_out, n_ends) = self.reader.read_record(
                &line[read..],
                &mut self.bytes[written..],
                &mut self.ends[fields..],
            );
            read += n_in;
            written += n_out;
            fields += n_ends;
            match result {
                // The rest of the line is consumed; an empty input next is
                // its end.
                ReadRecordResult::InputEmpty => continue,
                ReadRecordResult::Record | ReadRecordResult::End => break,
                // Sized for the whole line above; grown all the same.
                ReadRecordResult::OutputFull => {
                    let len = self.bytes.len();
                    self.bytes.resize(2 * len, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len();
                    self.ends.resize(2 * len, 0);
                }
            }
        }
        self.ends.truncate(fields);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `i`'s text.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // The reader drops or keeps only ASCII bytes (delimiter, quotes,
        // line ends), which never occur inside a multi-byte character.
        std::str::from_utf8(&self.bytes[start..self.ends[i]])
            .expect("a UTF-8 line split at ASCII bytes")
    }
}

/// Parses one line (without its newline) as a record of type `T`, its
/// fields in order.
pub fn parse_record<T: DeserializeOwned>(line: &str) -> Result<T, FormatError> {
    CsvFields::of_line(line, |fields| {
        if fields.len() == 0 {
            return Err(FormatError("empty CSV row".into()));
        }
        let deserialize = |record: &mut csv::StringRecord| {
            record.clear();
            for i in 0..fields.len() {
                record.push_field(fields.get(i));
            }
            record
                .deserialize(None)
                .map_err(|e| FormatError(format!("invalid CSV row: {e}")))
        };
        RECORD.with(|cell| match cell.try_borrow_mut() {
            Ok(mut record) => deserialize(&mut record),
            Err(_) => deserialize(&mut csv::StringRecord::new()),
        })
    })
}

/// Appends `value` as one CSV line (with its newline) to `out`.
pub fn write_record<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), FormatError> {
    WRITER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut writer) => writer.write(value, out),
        Err(_) => LineWriter::new().write(value, out),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// The former split of a CSV line, the model: the `csv` crate's reader.
    fn model_csv_fields(line: &str) -> Vec<String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        match reader.records().next() {
            Some(Ok(record)) => record.iter().map(str::to_owned).collect(),
            Some(Err(e)) => vec![format!("error: {e}")],
            None => Vec::new(),
        }
    }

    proptest! {
        #[test]
        fn csv_lines_split_as_the_csv_crate_splits_them(
            fields in prop::collection::vec(
                prop::sample::select(&["", "a", "12", "\"q\"", "\"a,b\"", "\"x\"\"y\"", " s ",
                    "\"", "a\"b", "\r", "\r\n", "\u{feff}", "é", "\"open"][..]),
                0..8,
            ),
        ) {
            for line in [fields.concat(), fields.join(",")] {
                let split = CsvFields::of_line(&line, |f| (0..f.len()).map(|i| f.get(i).to_owned()).collect::<Vec<_>>());
                prop_assert_eq!(split, model_csv_fields(&line), "line {:?}", line);
            }
        }
    }

    /// The former reading of a typed line: a reader built for it.
    fn model_parse<T: DeserializeOwned>(line: &str) -> Result<T, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        match reader.deserialize().next() {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("empty CSV row".into()),
        }
    }

    /// The former writing of a typed record: a writer built for it.
    fn model_write<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(&mut out);
        writer.serialize(value).unwrap();
        writer.flush().unwrap();
        drop(writer);
        out
    }

    #[test]
    fn typed_lines_read_and_write_as_a_writer_per_line_did() {
        type Typed = (i64, String, Option<f64>);
        for line in [
            "5,a,2.5",
            "-7,\"b, c\",",
            "1,\"q\"\"\",1e3",
            "x,a,1",
            "1,a",
            "",
        ] {
            let ours = parse_record::<Typed>(line).map_err(|e| e.0);
            match model_parse::<Typed>(line) {
                Ok(value) => assert_eq!(ours.unwrap(), value, "{line}"),
                Err(_) => assert!(ours.is_err(), "{line}: {ours:?}"),
            }
        }
        assert!(parse_record::<Typed>("x,a,1")
            .unwrap_err()
            .0
            .contains("invalid CSV row"));
        assert_eq!(parse_record::<Typed>("").unwrap_err().0, "empty CSV row");

        let mut out = Vec::new();
        let short = (1i64, "two, three".to_owned());
        let long = (4i64, "f\"ive".to_owned(), Some(6.5));
        write_record(&short, &mut out).unwrap();
        write_record(&long, &mut out).unwrap();
        // A record that fails halfway (maps are not CSV) leaves nothing
        // behind and the next line whole.
        let map: BTreeMap<i64, i64> = [(1, 2)].into();
        assert!(write_record(&(7i64, map), &mut out).is_err());
        write_record(&short, &mut out).unwrap();
        let expected = [model_write(&short), model_write(&long), model_write(&short)].concat();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }
}
