//! A record on the fused path: a value and its event timestamp.

use sluice_network::BatchRecord;
use sluice_state::StateCodec;

/// What every stream element must be: cloneable (for fan-out) and owned.
pub trait Data: Clone + 'static {}
impl<T: Clone + 'static> Data for T {}

/// What a record must be to cross a shard boundary: it travels in batches
/// ([`BatchRecord`]) and operators can keep it in checkpointed state
/// ([`StateCodec`]) — the same rkyv derive gives both, so jobs never
/// implement this by hand. (The two crates know nothing of each other; this
/// is where they meet.)
pub trait ExchangeData: BatchRecord + StateCodec {}
impl<T: BatchRecord + StateCodec> ExchangeData for T {}

/// Timestamp of a record that has none (processing time, or before assignment).
pub const NO_TIMESTAMP: i64 = i64::MIN;

/// One record with its event time in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec<T> {
    pub ts: i64,
    pub value: T,
}

impl<T> Rec<T> {
    #[inline]
    pub fn new(ts: i64, value: T) -> Self {
        Rec { ts, value }
    }
}
