//! The file that holds one shard's channel states of a checkpoint: the
//! records in flight that unaligned barriers overtook, by channel name
//! (`channel-<edge>` on the receiving side, `output-<edge>` on the sending
//! side).
//!
//! Written by the checkpoint driver, read back on restore; both off the
//! shards' cores. Layout: a count, then per channel its name and its encoded
//! records, each length-prefixed ([`PartWriter`]). A write error would leave
//! a file that no restore can decode, so it fails the checkpoint instead.

use sluice_state::{CodecError, PartReader, PartWriter};

use super::{ChannelStates, CheckpointError};

/// Encodes a shard's channel states into one file.
pub(super) fn encode_channels(channels: &ChannelStates) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::new();
    let mut w = PartWriter::new(&mut bytes);
    w.count(channels.len() as u64);
    for (name, records) in channels {
        w.bytes(name.as_bytes())?;
        w.bytes(records)?;
    }
    Ok(bytes)
}

/// Decodes the channel-state file `file`.
pub(super) fn decode_channels(file: &str, bytes: &[u8]) -> Result<ChannelStates, CheckpointError> {
    let context = |e: CodecError| CheckpointError::Unusable(format!("{file}: {e}"));
    let mut r = PartReader::new(bytes);
    let mut channels = ChannelStates::new();
    for _ in 0..r.count().map_err(context)? {
        let name = String::from_utf8(r.raw().map_err(context)?.to_vec()).map_err(|_| {
            CheckpointError::Unusable(format!("{file}: a channel name is not UTF-8"))
        })?;
        channels.insert(name, r.raw().map_err(context)?.to_vec());
    }
    r.finish().map_err(context)?;
    Ok(channels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_states_come_back_as_written_and_a_cut_file_is_refused() {
        let mut channels = ChannelStates::new();
        channels.insert("channel-0".into(), vec![1, 2, 3]);
        channels.insert("output-1".into(), Vec::new());
        let bytes = encode_channels(&channels).expect("encodes");
        assert_eq!(decode_channels("f", &bytes).expect("decodes"), channels);
        let cut = decode_channels("f.channels", &bytes[..bytes.len() - 1]);
        assert!(
            matches!(&cut, Err(CheckpointError::Unusable(m)) if m.starts_with("f.channels: ")),
            "{cut:?}"
        );
    }
}
