//! How a `(key group, key, namespace)` becomes a RocksDB key.
//!
//! `group (u16 big-endian) | key length (u32 big-endian) | key | namespace`:
//! the group comes first and big-endian, so one key group — and any range of
//! them — is one contiguous scan; the key's length makes the split between key
//! and namespace unambiguous, so a scan can decode both back.

use crate::{CodecError, KeyGroup, KeyGroupRange, StateCodec};

const GROUP_BYTES: usize = 2;
const LEN_BYTES: usize = 4;

/// Encodes the RocksDB key of `(group, key, namespace)` into `out` (cleared first).
pub fn encode_key<K: StateCodec, N: StateCodec>(
    group: KeyGroup,
    key: &K,
    namespace: &N,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    out.clear();
    out.extend_from_slice(&group.0.to_be_bytes());
    out.extend_from_slice(&[0; LEN_BYTES]);
    key.encode_state(out)?;
    let len = u32::try_from(out.len() - GROUP_BYTES - LEN_BYTES)
        .map_err(|_| CodecError::new("a state key over 4 GiB"))?;
    out[GROUP_BYTES..GROUP_BYTES + LEN_BYTES].copy_from_slice(&len.to_be_bytes());
    namespace.encode_state(out)
}

/// The key group of a stored key.
pub fn group_of(stored: &[u8]) -> Result<KeyGroup, CodecError> {
    match stored {
        [a, b, ..] => Ok(KeyGroup(u16::from_be_bytes([*a, *b]))),
        _ => Err(CodecError::new(format!(
            "a stored key of {} bytes has no key group",
            stored.len()
        ))),
    }
}

/// Decodes a stored key back into its group, key and namespace.
pub fn decode_key<K: StateCodec, N: StateCodec>(
    stored: &[u8],
) -> Result<(KeyGroup, K, N), CodecError> {
    let group = group_of(stored)?;
    let rest = &stored[GROUP_BYTES..];
    if rest.len() < LEN_BYTES {
        return Err(CodecError::new("a stored key is cut short"));
    }
    let len = u32::from_be_bytes(rest[..LEN_BYTES].try_into().expect("4 bytes")) as usize;
    let rest = &rest[LEN_BYTES..];
    if rest.len() < len {
        return Err(CodecError::new(format!(
            "a stored key says its key has {len} bytes but {} follow",
            rest.len()
        )));
    }
    let (key, namespace) = rest.split_at(len);
    Ok((group, K::decode_state(key)?, N::decode_state(namespace)?))
}

/// The `[lower, upper)` RocksDB key bounds of the groups in `range`.
pub fn range_bounds(range: KeyGroupRange) -> (Vec<u8>, Vec<u8>) {
    // Key groups are below 2^15, so `end` always fits.
    (
        range.start.to_be_bytes().to_vec(),
        range.end.to_be_bytes().to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn keys_round_trip_and_sort_by_group_first(
            a in (0u16..32_768, ".{0,12}", any::<u64>()),
            b in (0u16..32_768, ".{0,12}", any::<u64>()),
        ) {
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            encode_key(KeyGroup(a.0), &a.1, &a.2, &mut ka).unwrap();
            encode_key(KeyGroup(b.0), &b.1, &b.2, &mut kb).unwrap();
            let back: (KeyGroup, String, u64) = decode_key(&ka).unwrap();
            prop_assert_eq!(back, (KeyGroup(a.0), a.1.clone(), a.2));
            if a.0 != b.0 {
                prop_assert_eq!(ka.cmp(&kb), a.0.cmp(&b.0));
            }
            let (lower, upper) = range_bounds(KeyGroupRange { start: a.0, end: a.0 + 1 });
            prop_assert!(lower.as_slice() <= ka.as_slice() && ka.as_slice() < upper.as_slice());
            // Equal inputs, equal keys: lookups find what was stored.
            prop_assert_eq!(ka == kb, a == b);
        }
    }

    #[test]
    fn damaged_keys_are_errors() {
        assert!(group_of(&[1]).is_err());
        assert!(decode_key::<u64, u64>(&[0, 1, 0, 0]).is_err());
        assert!(decode_key::<u64, u64>(&[0, 1, 0, 0, 0, 9, 1]).is_err());
    }
}
