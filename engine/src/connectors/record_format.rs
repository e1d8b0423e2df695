//! Text formats of records in files and on stdout: JSON lines, CSV, plain text.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// How records are written as (or read from) lines of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// One JSON value per line.
    JsonLines,
    /// One CSV row per line (no embedded newlines in fields).
    Csv,
    /// The line itself, as a string.
    Text,
}

/// A record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl RecordFormat {
    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            RecordFormat::JsonLines => "jsonl",
            RecordFormat::Csv => "csv",
            RecordFormat::Text => "txt",
        }
    }

    /// Appends one record and a newline to `out`.
    pub fn write<T: Serialize>(self, value: &T, out: &mut Vec<u8>) -> Result<(), FormatError> {
        match self {
            RecordFormat::JsonLines | RecordFormat::Text => {
                serde_json::to_writer(&mut *out, value).map_err(|e| FormatError(e.to_string()))?;
                out.push(b'\n');
            }
            RecordFormat::Csv => super::csv_line::write_record(value, out)?,
        }
        Ok(())
    }

    /// Parses one line (without its newline).
    pub fn parse<T: DeserializeOwned>(self, line: &str) -> Result<T, FormatError> {
        match self {
            RecordFormat::JsonLines => {
                serde_json::from_str(line).map_err(|e| FormatError(format!("invalid JSON: {e}")))
            }
            RecordFormat::Csv => super::csv_line::parse_record(line),
            RecordFormat::Text => {
                serde_json::from_value(serde_json::Value::String(line.to_owned())).map_err(|e| {
                    FormatError(format!("text lines can only be read as strings: {e}"))
                })
            }
        }
    }
}
