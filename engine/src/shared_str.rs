//! [`SharedStr`]: the string of a record field, built without an allocation
//! in the common cases and cloned without one always.
//!
//! Records carry strings (Nexmark's names, URLs and padding, Kafka values,
//! file lines), and a `String` per field costs an allocation and a copy each
//! time a record is built or cloned for a fan-out. A `SharedStr` is 24 bytes,
//! like a `String`, and is one of:
//! - **inline**: up to [`INLINE_CAPACITY`] bytes stored in the value itself
//!   (names, e-mail addresses, card numbers, channel names, short keys);
//! - **whole**: a reference-counted shared buffer, the count and the text in
//!   one allocation (cloning bumps the count);
//! - **interned**: a range of text that lives as long as the process
//!   ([`SharedStr::interned`]): a generator's fixed strings (URLs, padding)
//!   are cloned and cut with no count to bump — an atomic increment and
//!   decrement per field were a fifth of the generator's time.
//!
//! Equality, ordering, `Hash`, the stable key hash, serde and rkyv all see
//! only the text: a `SharedStr` archives as an rkyv `ArchivedString` and
//! serializes as a JSON string, so the wire, state and file formats are those
//! of `String`. Values are immutable; any thread may hold them (`Send + Sync`).
//!
//! # Layout
//!
//! Three machine words, the kind in the last byte (little-endian targets):
//! inline text fills bytes `0..22` and the last byte is `len + 1`; a shared
//! buffer or interned text keeps its pointer in word 0, its length in word 1
//! and [`WHOLE`] or [`INTERNED`] in the last byte. A value therefore moves
//! as three aligned words: an enum with its tag in byte 0 put its payload at
//! odd offsets, and its moves were piecewise copies that the next whole-word
//! load had to wait for (a fifth of a generated bid's time). The last word is
//! never zero, which leaves `Option<SharedStr>` as small as a `SharedStr`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;
use std::ops::{Deref, Range};
use std::sync::Arc;

use rkyv::rancor::{Fallible, Source};
use rkyv::string::{ArchivedString, StringResolver};
use rkyv::{Archive, Place, SerializeUnsized};
use sluice_state::StableKey;

#[cfg(not(all(target_endian = "little", target_pointer_width = "64")))]
compile_error!("SharedStr's layout assumes a little-endian 64-bit target");

/// The longest text stored inline, without a buffer.
pub const INLINE_CAPACITY: usize = 22;

/// The last byte of a value whose words 0 and 1 are an `Arc<str>`'s data
/// pointer and length (one strong count owned by the value).
const WHOLE: u8 = 0xFE;
/// The last byte of a value whose words 0 and 1 are a `&'static str`.
const INTERNED: u8 = 0xFF;

/// An immutable UTF-8 string, cheap to build when short and cheap to clone
/// always. See the module docs.
///
/// Invariants: the last byte (`last >> 56`) is `len + 1` with
/// `len <= INLINE_CAPACITY` and the first `len` bytes of the value valid
/// UTF-8, or [`WHOLE`] with words 0 and 1 from `Arc::into_raw` of an
/// `Arc<str>` whose one strong count this value owns, or [`INTERNED`] with
/// words 0 and 1 a `&'static str`.
#[repr(C)]
pub struct SharedStr {
    words: [u64; 2],
    last: NonZeroU64,
}

// SAFETY: a `SharedStr` is inline bytes, an `Arc<str>` (Send + Sync) or a
// `&'static str` (Send + Sync), and never mutated after it is built.
unsafe impl Send for SharedStr {}
// SAFETY: as for `Send`.
unsafe impl Sync for SharedStr {}

/// How a value holds its text (tests and `is_inline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inline,
    Whole,
    Interned,
}

/// Every distinct text [`SharedStr::interned`] was given, stored once.
static INTERNED_TEXTS: std::sync::Mutex<Option<std::collections::HashSet<&'static str>>> =
    std::sync::Mutex::new(None);

impl SharedStr {
    /// The empty string (inline).
    pub const fn new() -> Self {
        SharedStr {
            words: [0; 2],
            // Inline, empty: the last byte is `0 + 1`.
            last: match NonZeroU64::new(1 << 56) {
                Some(last) => last,
                None => unreachable!(),
            },
        }
    }

    /// A value holding the text at `pointer` by pointer and length, of kind
    /// `kind` ([`WHOLE`] or [`INTERNED`]; the caller keeps that kind's
    /// invariant).
    #[inline]
    fn pointing_at(pointer: *const u8, len: usize, kind: u8) -> Self {
        let last = NonZeroU64::new(u64::from(kind) << 56).expect("a kind is never zero");
        SharedStr {
            words: [pointer as u64, len as u64],
            last,
        }
    }

    /// `text` inline if it fits, else copied into a new shared buffer (one
    /// allocation: the count and the text together).
    pub fn copy_of(text: &str) -> Self {
        Self::inline(text).unwrap_or_else(|| {
            let buffer = Arc::into_raw(Arc::<str>::from(text));
            Self::pointing_at(buffer.cast::<u8>(), text.len(), WHOLE)
        })
    }

    /// `text` inline if it fits, else copied into a new shared buffer (as
    /// [`copy_of`](Self::copy_of); `text` is freed).
    pub fn from_string(text: String) -> Self {
        Self::copy_of(&text)
    }

    /// A string literal (no copy, no count).
    pub fn from_static(text: &'static str) -> Self {
        Self::pointing_at(text.as_ptr(), text.len(), INTERNED)
    }

    /// `text` from the process-wide intern table, added to it the first
    /// time: clones and slices of it cost no allocation and no atomic
    /// operation. The table is never freed, so this is for text a process
    /// keeps using (a generator's fixed strings, per seed), never for data.
    pub fn interned(text: &str) -> Self {
        let mut table = INTERNED_TEXTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let table = table.get_or_insert_with(Default::default);
        let stored = match table.get(text) {
            Some(stored) => *stored,
            None => {
                let stored: &'static str = Box::leak(text.to_owned().into_boxed_str());
                table.insert(stored);
                stored
            }
        };
        Self::from_static(stored)
    }

    #[inline]
    fn inline(text: &str) -> Option<Self> {
        if text.len() > INLINE_CAPACITY {
            return None;
        }
        let mut bytes = [0u8; 24];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        bytes[23] = text.len() as u8 + 1;
        let word = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let last = NonZeroU64::new(word(16))?;
        Some(SharedStr {
            words: [word(0), word(8)],
            last,
        })
    }

    /// The last byte: `len + 1` inline, else [`WHOLE`] or [`INTERNED`].
    #[inline(always)]
    fn tag(&self) -> u8 {
        (self.last.get() >> 56) as u8
    }

    fn kind(&self) -> Kind {
        match self.tag() {
            WHOLE => Kind::Whole,
            INTERNED => Kind::Interned,
            _ => Kind::Inline,
        }
    }

    /// The `Arc<str>` this value owns a count of, as `Arc::into_raw` gave it
    /// (only for [`WHOLE`] values).
    #[inline]
    fn whole_raw(&self) -> *const str {
        std::ptr::slice_from_raw_parts(self.words[0] as *const u8, self.words[1] as usize)
            as *const str
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        let tag = self.tag();
        let (pointer, len) = if tag <= INLINE_CAPACITY as u8 + 1 {
            ((self as *const Self).cast::<u8>(), tag as usize - 1)
        } else {
            (self.words[0] as *const u8, self.words[1] as usize)
        };
        // SAFETY: by the type's invariants, inline text is the value's first
        // `tag - 1` bytes, copied whole from a `&str`; otherwise words 0 and
        // 1 are a live `str`'s pointer and length (an `Arc` this value holds
        // a count of, or `'static` text). Neither changes while `self` lives.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(pointer, len)) }
    }

    /// The text's `range` (byte offsets): a cut of interned text in place
    /// (no copy), else a copy (inline when it fits).
    ///
    /// # Panics
    /// As `&str[range]` does: when the range is out of bounds or not on
    /// character boundaries.
    pub fn slice(&self, range: Range<usize>) -> Self {
        match self.kind() {
            Kind::Interned => {
                // A cut of `'static` text is `'static` (the kind's invariant).
                let text: &str = &self.as_str()[range];
                Self::pointing_at(text.as_ptr(), text.len(), INTERNED)
            }
            _ => Self::copy_of(&self.as_str()[range]),
        }
    }

    /// Whether the text is stored in the value itself.
    pub fn is_inline(&self) -> bool {
        self.kind() == Kind::Inline
    }
}

impl Clone for SharedStr {
    #[inline]
    fn clone(&self) -> Self {
        if self.tag() == WHOLE {
            // SAFETY: a WHOLE value holds one count of this `Arc` (alive
            // while `self` is); the clone owns the new count.
            unsafe { Arc::increment_strong_count(self.whole_raw()) };
        }
        SharedStr {
            words: self.words,
            last: self.last,
        }
    }
}

impl Drop for SharedStr {
    #[inline]
    fn drop(&mut self) {
        if self.tag() == WHOLE {
            // SAFETY: the count this value owns, given back once.
            unsafe { Arc::decrement_strong_count(self.whole_raw()) };
        }
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for SharedStr {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        Self::copy_of(text)
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        Self::from_string(text)
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> Self {
        text.as_str().to_owned()
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for SharedStr {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl StableKey for SharedStr {
    #[inline]
    fn stable_hash_seeded(&self, seed: u64) -> u64 {
        self.as_str().stable_hash_seeded(seed)
    }
}

impl serde::Serialize for SharedStr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SharedStr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl serde::de::Visitor<'_> for TextVisitor {
            type Value = SharedStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SharedStr, E> {
                Ok(SharedStr::copy_of(text))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<SharedStr, E> {
                Ok(SharedStr::from_string(text))
            }
        }
        deserializer.deserialize_string(TextVisitor)
    }
}

impl Archive for SharedStr {
    type Archived = ArchivedString;
    type Resolver = StringResolver;

    #[inline]
    fn resolve(&self, resolver: Self::Resolver, out: Place<Self::Archived>) {
        ArchivedString::resolve_from_str(self.as_str(), resolver, out);
    }
}

impl<S: Fallible + ?Sized> rkyv::Serialize<S> for SharedStr
where
    S::Error: Source,
    str: SerializeUnsized<S>,
{
    fn serialize(&self, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
        ArchivedString::serialize_from_str(self.as_str(), serializer)
    }
}

impl<D: Fallible + ?Sized> rkyv::Deserialize<SharedStr, D> for ArchivedString {
    fn deserialize(&self, _: &mut D) -> Result<SharedStr, D::Error> {
        Ok(SharedStr::copy_of(self.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn is_as_small_as_a_string() {
        assert_eq!(
            std::mem::size_of::<SharedStr>(),
            std::mem::size_of::<String>()
        );
        assert_eq!(
            std::mem::size_of::<Option<SharedStr>>(),
            std::mem::size_of::<String>()
        );
    }

    impl SharedStr {
        /// The strong count of a WHOLE value's buffer.
        fn strong_count(&self) -> usize {
            assert_eq!(self.kind(), Kind::Whole);
            // SAFETY: a WHOLE value's buffer is alive while it is; the count
            // taken here is given back before returning.
            unsafe {
                Arc::increment_strong_count(self.whole_raw());
                let arc = Arc::from_raw(self.whole_raw());
                Arc::strong_count(&arc) - 1
            }
        }
    }

    #[test]
    fn short_text_is_inline_and_long_text_shared() {
        assert!(SharedStr::copy_of("channel-1234").is_inline());
        assert!(SharedStr::copy_of(&"x".repeat(INLINE_CAPACITY)).is_inline());
        let long = SharedStr::copy_of(&"y".repeat(INLINE_CAPACITY + 1));
        assert!(!long.is_inline());
        assert_eq!(long.len(), INLINE_CAPACITY + 1);
        assert_eq!(long.kind(), Kind::Whole);
        assert!(!SharedStr::from_static("ab").is_inline());
    }

    #[test]
    fn slices_of_buffers_are_copies() {
        let buffer = SharedStr::copy_of(&"0123456789".repeat(10));
        assert_eq!(buffer.kind(), Kind::Whole);
        let slice = buffer.slice(5..65);
        assert_eq!(slice, &"0123456789".repeat(10)[5..65]);
        assert_eq!(slice.kind(), Kind::Whole);
        assert_eq!(buffer.strong_count(), 1);
        let clone = buffer.clone();
        assert_eq!(buffer.strong_count(), 2);
        drop(clone);
        assert_eq!(buffer.strong_count(), 1);
        assert!(buffer.slice(3..7).is_inline());
    }

    #[test]
    fn interned_text_is_stored_once_and_sliced_in_place() {
        let text = "https://www.nexmark.com/abc/def/ghi/item.htm?query=1";
        // The same text at another address.
        let copy: String = text.chars().collect();
        let (a, b) = (SharedStr::interned(text), SharedStr::interned(&copy));
        assert_eq!((a.kind(), b.kind()), (Kind::Interned, Kind::Interned));
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        let slice = a.slice(8..30);
        assert_eq!(slice, &text[8..30]);
        assert_eq!(slice.kind(), Kind::Interned);
        assert!(std::ptr::eq(slice.as_str(), &a.as_str()[8..30]));
        assert_eq!(SharedStr::from_static("lit"), "lit");
    }

    #[test]
    #[should_panic]
    fn slices_off_character_boundaries_panic_like_str() {
        let text = SharedStr::copy_of(&"é".repeat(20));
        let _ = text.slice(1..30);
    }

    #[test]
    fn serde_and_rkyv_see_a_plain_string() {
        let text = SharedStr::copy_of("a \"quoted\" and long enough string");
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(
            json,
            serde_json::to_string("a \"quoted\" and long enough string").unwrap()
        );
        let back: SharedStr = serde_json::from_str(&json).unwrap();
        assert_eq!(back, text);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&text).unwrap();
        let as_string = rkyv::from_bytes::<String, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(as_string, text.as_str());
        let as_shared = rkyv::from_bytes::<SharedStr, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(as_shared, text);
    }

    proptest! {
        /// Against `String` as the model: text, order, equality, hashes and
        /// slices agree whatever the representation.
        #[test]
        fn behaves_as_its_text(
            a in "\\PC{0,40}",
            b in "\\PC{0,40}",
            cut in (0usize..=40, 0usize..=40),
        ) {
            let (sa, sb) = (SharedStr::copy_of(&a), SharedStr::copy_of(&b));
            prop_assert_eq!(sa.as_str(), a.as_str());
            prop_assert_eq!(sb.as_str(), b.as_str());
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
            prop_assert_eq!(sa == sb, a == b);
            prop_assert_eq!(sa.stable_hash(), a.stable_hash());
            let (lo, hi) = (cut.0.min(cut.1), cut.0.max(cut.1));
            if let Some(text) = b.get(lo..hi) {
                let slice = sb.slice(lo..hi);
                prop_assert_eq!(slice.as_str(), text);
                prop_assert_eq!(SharedStr::interned(&b).slice(lo..hi), text);
                prop_assert_eq!(slice.slice(0..text.len()), text);
            }
        }
    }
}
