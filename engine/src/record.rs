//! A record on the fused path: a value and its event timestamp.

/// What every stream element must be: cloneable (for fan-out) and owned.
pub trait Data: Clone + 'static {}
impl<T: Clone + 'static> Data for T {}

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
