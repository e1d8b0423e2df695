//! What a record type must be to travel in a batch.
//!
//! Any `Clone + Send + 'static` type deriving rkyv's `Archive`, `Serialize` and
//! `Deserialize` (with `bytecheck`) is a [`BatchRecord`] through the blanket
//! impl; jobs never implement it by hand. The trait hides rkyv's serializer
//! types from the rest of the engine. (The engine's `ExchangeData` adds that
//! state can keep the record too; this crate knows nothing of state.)

use rkyv::api::low::{LowDeserializer, LowSerializer};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::{Arena, ArenaHandle};
use rkyv::util::AlignedVec;
use rkyv::validation::archive::ArchiveValidator;
use rkyv::validation::Validator;
use rkyv::{Archive, Deserialize, Serialize};

type Ser<'a, 'b> = LowSerializer<&'a mut AlignedVec, ArenaHandle<'b>, rancor::Error>;
type Check<'a> = rancor::Strategy<Validator<ArchiveValidator<'a>, ()>, rancor::Error>;

/// A record that can be serialized into a batch and read back from it.
pub trait BatchRecord: Clone + Send + 'static {
    /// Appends the archived record to `buffer`; returns the end offset of its
    /// root (the record is read back from `buffer[..end]`).
    fn append_archived(
        &self,
        buffer: &mut AlignedVec,
        arena: &mut Arena,
    ) -> Result<usize, rancor::Error>;

    /// Reads a record from `bytes`, whose archived root ends at `bytes.len()`.
    ///
    /// # Safety
    /// `bytes` must be a prefix of a buffer written by [`append_archived`] for
    /// this same type, ending at an offset it returned, and the buffer's start must
    /// keep the alignment it was written with (an `AlignedVec` does).
    ///
    /// [`append_archived`]: BatchRecord::append_archived
    unsafe fn read_archived_unchecked(bytes: &[u8]) -> Self;

    /// Reads a record from untrusted bytes, validating them first.
    fn read_archived_checked(bytes: &[u8]) -> Result<Self, rancor::Error>;

    /// Validates untrusted bytes as an archived record whose root ends at
    /// `bytes.len()`, without reading it.
    fn check_archived(bytes: &[u8]) -> Result<(), rancor::Error>;
}

impl<T> BatchRecord for T
where
    T: Clone + Send + 'static + Archive,
    T: for<'a, 'b> Serialize<Ser<'a, 'b>>,
    T::Archived: Deserialize<T, LowDeserializer<rancor::Error>> + for<'a> CheckBytes<Check<'a>>,
{
    #[inline]
    fn append_archived(
        &self,
        buffer: &mut AlignedVec,
        arena: &mut Arena,
    ) -> Result<usize, rancor::Error> {
        rkyv::api::low::to_bytes_in_with_alloc(self, &mut *buffer, arena.acquire())?;
        Ok(buffer.len())
    }

    #[inline]
    unsafe fn read_archived_unchecked(bytes: &[u8]) -> Self {
        // SAFETY: forwarded to the caller (see the trait method's contract).
        let archived = unsafe { rkyv::access_unchecked::<T::Archived>(bytes) };
        match rkyv::api::low::deserialize::<T, rancor::Error>(archived) {
            Ok(value) => value,
            // Deserializing archived data that we wrote ourselves cannot fail for
            // the derived types this is used with; if it does, it is a bug.
            Err(e) => panic!("bug: deserializing a local batch failed: {e}"),
        }
    }

    fn read_archived_checked(bytes: &[u8]) -> Result<Self, rancor::Error> {
        let mut validator = Validator::new(ArchiveValidator::new(bytes), ());
        let archived =
            rkyv::api::access_with_context::<T::Archived, _, rancor::Error>(bytes, &mut validator)?;
        rkyv::api::low::deserialize::<T, rancor::Error>(archived)
    }

    fn check_archived(bytes: &[u8]) -> Result<(), rancor::Error> {
        let mut validator = Validator::new(ArchiveValidator::new(bytes), ());
        rkyv::api::access_with_context::<T::Archived, _, rancor::Error>(bytes, &mut validator)?;
        Ok(())
    }
}
