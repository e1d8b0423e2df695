//! How a record is a Kafka message's value: a line of text in one of the
//! file formats (JSON, CSV, text) without its newline, or the raw bytes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_engine::connectors::RecordFormat;

/// A message value's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// One record as a line of text in this format (JSON for the Nexmark
    /// event schema, as `sluice nexmark generate` writes it).
    Text(RecordFormat),
    /// The value's bytes: read into a string (UTF-8 checked) or a byte
    /// buffer; written as the record's JSON.
    Raw,
}

impl PayloadFormat {
    /// Reads one record from a message value.
    pub fn parse<T: DeserializeOwned>(self, value: &[u8]) -> Result<T, String> {
        match self {
            PayloadFormat::Text(format) => {
                let text = std::str::from_utf8(value)
                    .map_err(|e| format!("the value is not UTF-8 text: {e}"))?;
                format
                    .parse(text.trim_end_matches(['\n', '\r']))
                    .map_err(|e| e.0)
            }
            PayloadFormat::Raw => {
                let bytes =
                    serde::de::value::BytesDeserializer::<serde::de::value::Error>::new(value);
                T::deserialize(bytes).map_err(|e| format!("raw value: {e}"))
            }
        }
    }

    /// Writes one record as a message value into `out` (cleared first).
    pub fn write<T: Serialize>(self, value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        out.clear();
        let format = match self {
            PayloadFormat::Text(format) => format,
            PayloadFormat::Raw => RecordFormat::JsonLines,
        };
        format.write(value, out).map_err(|e| e.0)?;
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Row {
        key: u64,
        name: String,
    }

    #[test]
    fn values_round_trip_in_every_text_format() {
        let row = Row {
            key: 7,
            name: "a, \"b\"".into(),
        };
        let mut out = Vec::new();
        for format in [RecordFormat::JsonLines, RecordFormat::Csv] {
            let payload = PayloadFormat::Text(format);
            payload.write(&row, &mut out).unwrap();
            assert!(!out.ends_with(b"\n"));
            assert_eq!(payload.parse::<Row>(&out).unwrap(), row, "{format:?}");
        }
    }

    #[test]
    fn raw_values_read_as_strings_or_fail_clearly() {
        assert_eq!(
            PayloadFormat::Raw.parse::<String>(b"hello").unwrap(),
            "hello"
        );
        let err = PayloadFormat::Raw
            .parse::<String>(&[0xff, 0xfe])
            .unwrap_err();
        assert!(err.contains("raw value"), "{err}");
        let err = PayloadFormat::Text(RecordFormat::JsonLines)
            .parse::<Row>(&[0xff])
            .unwrap_err();
        assert!(err.contains("not UTF-8"), "{err}");
        let err = PayloadFormat::Text(RecordFormat::JsonLines)
            .parse::<Row>(b"{\"key\": oops}")
            .unwrap_err();
        assert!(err.contains("invalid JSON"), "{err}");
    }
}
