//! How state leaves memory: every state key and value is encoded to bytes for
//! checkpoints and savepoints (and, in the RocksDB backend, for every access).
//!
//! Any type deriving rkyv's `Archive`, `Serialize` and `Deserialize` (with
//! `bytecheck`) is [`StateCodec`] through the blanket impl, the same derive that
//! makes a record cross shards, so jobs never implement it by hand. Decoding
//! validates the bytes first: checkpoint files come from storage and are not
//! trusted beyond their checksums. Encoding runs on the shard's core with a
//! per-thread arena for scratch space and appends to the caller's buffer
//! directly (see [`Appender`]).

use std::cell::RefCell;
use std::hash::Hash;

use rkyv::api::low::{LowDeserializer, LowSerializer};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::{Arena, ArenaHandle};
use rkyv::ser::{Positional, Writer};
use rkyv::util::AlignedVec;
use rkyv::validation::archive::ArchiveValidator;
use rkyv::validation::Validator;
use rkyv::{Archive, Deserialize, Serialize};

use crate::FastHashMap;

type Ser<'a, 'b> = LowSerializer<Appender<'a>, ArenaHandle<'b>, rancor::Error>;
type Check<'a> = rancor::Strategy<Validator<ArchiveValidator<'a>, ()>, rancor::Error>;

/// A state key or value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(String);

impl CodecError {
    pub fn new(message: impl Into<String>) -> Self {
        CodecError(message.into())
    }
}

/// A value that state can encode to bytes and decode back; see the module docs.
pub trait StateCodec: Sized + 'static {
    /// Appends the encoding of `self` to `out` (not length-prefixed).
    fn encode_state(&self, out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Decodes a value from exactly the bytes `encode_state` appended.
    fn decode_state(bytes: &[u8]) -> Result<Self, CodecError>;
}

/// Appends an archive to a buffer, positions counted from where it starts:
/// the bytes are those an archive of its own would have (the padding that
/// aligns its parts depends on positions), so they decode from a copy at
/// offset 0, and no scratch buffer is needed.
pub struct Appender<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl Positional for Appender<'_> {
    #[inline]
    fn pos(&self) -> usize {
        self.out.len() - self.start
    }
}

impl<E> Writer<E> for Appender<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        self.out.extend_from_slice(bytes);
        Ok(())
    }
}

thread_local! {
    /// The serializer's scratch space (for values that need it), reused.
    static ARENA: RefCell<Arena> = RefCell::new(Arena::new());
}

impl<T> StateCodec for T
where
    T: 'static + Archive,
    T: for<'a, 'b> Serialize<Ser<'a, 'b>>,
    T::Archived: Deserialize<T, LowDeserializer<rancor::Error>> + for<'a> CheckBytes<Check<'a>>,
{
    fn encode_state(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        ARENA.with(|arena| {
            let mut arena = arena.borrow_mut();
            let start = out.len();
            let appender = Appender { out, start };
            if let Err(e) = rkyv::api::low::to_bytes_in_with_alloc(self, appender, arena.acquire())
            {
                // Nothing half-written stays behind.
                out.truncate(start);
                return Err(CodecError(e.to_string()));
            }
            Ok(())
        })
    }

    fn decode_state(bytes: &[u8]) -> Result<Self, CodecError> {
        // Archived data must be aligned; a slice of a state file is not.
        let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        let mut validator = Validator::new(ArchiveValidator::new(&aligned), ());
        let archived = rkyv::api::access_with_context::<T::Archived, _, rancor::Error>(
            &aligned,
            &mut validator,
        )
        .map_err(|e| CodecError(e.to_string()))?;
        rkyv::api::low::deserialize::<T, rancor::Error>(archived)
            .map_err(|e| CodecError(e.to_string()))
    }
}

/// Writes values one after another, each length-prefixed, for hand-written
/// [`StateCodec`] impls of generic types (where the rkyv derive cannot see that
/// a type parameter is encodable).
pub struct PartWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> PartWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        PartWriter { out }
    }

    /// Appends a `u64` (8 bytes, little-endian).
    pub fn count(&mut self, n: u64) {
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    /// Appends a tag (a `u64`); for entries whose kind comes first.
    pub fn tag(&mut self, tag: u64) -> Result<(), CodecError> {
        self.count(tag);
        Ok(())
    }

    /// Appends raw bytes, prefixed by their length.
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let len =
            u32::try_from(bytes.len()).map_err(|_| CodecError::new("a state value over 4 GiB"))?;
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Appends one encoded value, prefixed by its length.
    pub fn part(&mut self, value: &impl StateCodec) -> Result<(), CodecError> {
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        value.encode_state(self.out)?;
        let len = u32::try_from(self.out.len() - at - 4)
            .map_err(|_| CodecError::new("a state value over 4 GiB"))?;
        self.out[at..at + 4].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }
}

/// Reads what a [`PartWriter`] wrote; every read checks the bounds.
pub struct PartReader<'a> {
    bytes: &'a [u8],
}

impl<'a> PartReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        PartReader { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.bytes.len() < n {
            return Err(CodecError::new(format!(
                "truncated: {n} bytes wanted, {} left",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub fn count(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// The raw bytes of the next part.
    pub fn raw(&mut self) -> Result<&'a [u8], CodecError> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
        self.take(len as usize)
    }

    pub fn part<T: StateCodec>(&mut self) -> Result<T, CodecError> {
        T::decode_state(self.raw()?)
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), CodecError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(CodecError::new(format!(
                "{} bytes left over",
                self.bytes.len()
            )))
        }
    }
}

/// A list of encodable values, itself encodable: what generic code stores when
/// the element type is a type parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct StateVec<V>(pub Vec<V>);

impl<V> Default for StateVec<V> {
    fn default() -> Self {
        StateVec(Vec::new())
    }
}

impl<V: StateCodec> StateCodec for StateVec<V> {
    fn encode_state(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut w = PartWriter::new(out);
        w.count(self.0.len() as u64);
        self.0.iter().try_for_each(|v| w.part(v))
    }
    fn decode_state(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = PartReader::new(bytes);
        let n = r.count()?;
        // Each element takes at least its 4-byte length: bound the allocation.
        let mut list = Vec::with_capacity((n as usize).min(bytes.len() / 4));
        for _ in 0..n {
            list.push(r.part()?);
        }
        r.finish()?;
        Ok(StateVec(list))
    }
}

/// A map of encodable keys and values, itself encodable (see [`StateVec`]).
#[derive(Debug, Clone)]
pub struct StateMap<K, V>(pub FastHashMap<K, V>);

impl<K: Hash + Eq, V: PartialEq> PartialEq for StateMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K, V> Default for StateMap<K, V> {
    fn default() -> Self {
        StateMap(FastHashMap::default())
    }
}

impl<K: StateCodec + Hash + Eq, V: StateCodec> StateCodec for StateMap<K, V> {
    fn encode_state(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut w = PartWriter::new(out);
        w.count(self.0.len() as u64);
        self.0.iter().try_for_each(|(k, v)| {
            w.part(k)?;
            w.part(v)
        })
    }
    fn decode_state(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = PartReader::new(bytes);
        let n = r.count()?;
        let mut map = FastHashMap::default();
        map.reserve((n as usize).min(bytes.len() / 8));
        for _ in 0..n {
            let k = r.part()?;
            map.insert(k, r.part()?);
        }
        r.finish()?;
        Ok(StateMap(map))
    }
}

/// An optional encodable value, itself encodable (see [`StateVec`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StateOption<V>(pub Option<V>);

impl<V> Default for StateOption<V> {
    fn default() -> Self {
        StateOption(None)
    }
}

impl<V: StateCodec> StateCodec for StateOption<V> {
    fn encode_state(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut w = PartWriter::new(out);
        w.count(self.0.is_some() as u64);
        self.0.iter().try_for_each(|v| w.part(v))
    }
    fn decode_state(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = PartReader::new(bytes);
        let value = match r.count()? {
            0 => None,
            1 => Some(r.part()?),
            n => return Err(CodecError::new(format!("an option tagged {n}"))),
        };
        r.finish()?;
        Ok(StateOption(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: StateCodec + PartialEq + std::fmt::Debug>(value: T) {
        let mut bytes = Vec::new();
        value.encode_state(&mut bytes).unwrap();
        assert_eq!(T::decode_state(&bytes).unwrap(), value);
    }

    #[test]
    fn common_state_types_round_trip() {
        round_trip(42u64);
        round_trip(());
        round_trip((String::from("key"), -7i64));
        round_trip(vec![Some(1i32), None, Some(3)]);
        let mut map: FastHashMap<i64, u8> = FastHashMap::default();
        map.insert(5, 1);
        map.insert(-9, 2);
        round_trip(map.clone());
        // The hand-written wrappers for generic code.
        round_trip(StateVec(vec![String::from("a"), String::new()]));
        round_trip(StateMap(map));
        round_trip(StateOption(Some((1u8, 2u16))));
        round_trip(StateOption::<u8>(None));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        String::from("hello world, a longer string")
            .encode_state(&mut bytes)
            .unwrap();
        bytes.truncate(bytes.len() / 2);
        assert!(String::decode_state(&bytes).is_err());
        assert!(Vec::<u64>::decode_state(&[0xff; 3]).is_err());
        let mut list = Vec::new();
        StateVec(vec![1u64, 2, 3]).encode_state(&mut list).unwrap();
        for cut in 0..list.len() {
            assert!(
                StateVec::<u64>::decode_state(&list[..cut]).is_err(),
                "cut {cut}"
            );
        }
        list.push(0);
        assert!(
            StateVec::<u64>::decode_state(&list).is_err(),
            "trailing byte"
        );
    }
}
