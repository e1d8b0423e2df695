//! A checkpoint's manifest: which shared files it consists of (with sizes and
//! checksums) and each task's metadata (source positions, state handles).
//! Writing it is the moment a checkpoint counts.
//!
//! Encoded as a header line `sluice-manifest v1 xxh3=<16 hex digits>` and the
//! manifest as JSON; the checksum covers the JSON, so a torn or altered
//! manifest is refused with a message that names it.

use std::collections::BTreeMap;

/// A shared file as a manifest refers to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileInfo {
    pub size: u64,
    pub xxh3: u64,
}

impl FileInfo {
    pub fn of(bytes: &[u8]) -> Self {
        Self::of_chunks(&[bytes])
    }

    /// The same for the file made of `chunks` in order.
    pub fn of_chunks(chunks: &[&[u8]]) -> Self {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for chunk in chunks {
            hasher.update(chunk);
        }
        FileInfo {
            size: chunks.iter().map(|c| c.len() as u64).sum(),
            xxh3: hasher.digest(),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub checkpoint: u64,
    pub job: String,
    pub created_unix_ms: u64,
    /// Shared files (names under `shared/`) this checkpoint needs.
    pub files: BTreeMap<String, FileInfo>,
    /// Per task, what it recorded (opaque to the catalog).
    pub tasks: BTreeMap<u32, serde_json::Value>,
    /// The job had finished: every sink's remaining output commits with it.
    #[serde(default)]
    pub finished: bool,
}

const HEADER: &str = "sluice-manifest v1 xxh3=";

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_string_pretty(self).expect("a manifest serializes");
        let sum = xxhash_rust::xxh3::xxh3_64(body.as_bytes());
        format!("{HEADER}{sum:016x}\n{body}").into_bytes()
    }

    /// Decodes the manifest stored at `key`; errors say what is wrong.
    pub fn decode(key: &str, bytes: &[u8]) -> Result<Manifest, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| format!("{key}: not UTF-8"))?;
        let (header, body) = text
            .split_once('\n')
            .ok_or_else(|| format!("{key}: no header line"))?;
        let sum = header
            .strip_prefix(HEADER)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .ok_or_else(|| format!("{key}: the header {header:?} is not `{HEADER}<hex>`"))?;
        let actual = xxhash_rust::xxh3::xxh3_64(body.as_bytes());
        if actual != sum {
            return Err(format!(
                "{key}: checksum mismatch (header {sum:016x}, content {actual:016x}): torn or altered"
            ));
        }
        serde_json::from_str(body).map_err(|e| format!("{key}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            checkpoint: 3,
            job: "nexmark.q5".into(),
            created_unix_ms: 1_700_000_000_000,
            files: [("a.sst".to_owned(), FileInfo::of(b"abc"))].into(),
            tasks: [(0, serde_json::json!({"offsets": [1, 2]}))].into(),
            finished: true,
        }
    }

    #[test]
    fn round_trips_and_refuses_changes() {
        let m = manifest();
        let bytes = m.encode();
        assert_eq!(Manifest::decode("k", &bytes).unwrap(), m);
        let mut altered = bytes.clone();
        let last = altered.len() - 3;
        altered[last] ^= 1;
        let err = Manifest::decode("checkpoints/3/MANIFEST", &altered).unwrap_err();
        assert!(
            err.contains("checkpoints/3/MANIFEST") && err.contains("checksum"),
            "{err}"
        );
        let torn = &bytes[..bytes.len() / 2];
        assert!(Manifest::decode("k", torn)
            .unwrap_err()
            .contains("checksum"));
        assert!(Manifest::decode("k", b"{}").unwrap_err().contains("header"));
    }
}
