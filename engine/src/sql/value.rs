//! A SQL value and a row of them: what SQL jobs carry between operators.
//!
//! A [`Row`] is a `Vec` of [`Value`]s in the order of its schema's columns;
//! it derives rkyv so rows cross shards in batches like any record, and
//! serde so sinks write them. Fixed-size values (booleans, integers of every
//! width, doubles, decimals, timestamps) live inline in the enum: evaluating
//! them allocates nothing. A DECIMAL is its unscaled integer; the scale is
//! the column type's (see [`super::SqlType`]). Timestamps are epoch
//! milliseconds, as event time is everywhere in Sluice.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use rkyv::{Archive, Deserialize, Serialize};
use sluice_state::StableKey;

/// One SQL value.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    /// TINYINT, SMALLINT, INT and BIGINT, kept within their type's range.
    Int(i64),
    /// FLOAT and DOUBLE.
    Double(f64),
    /// DECIMAL(p, s): the value × 10^s.
    Decimal(i128),
    Str(String),
    /// TIMESTAMP(p) and TIMESTAMP_LTZ(p): epoch milliseconds.
    Timestamp(i64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) | Value::Timestamp(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Values of one type compare as SQL orders them; NULL sorts first (as in
/// Flink's `ORDER BY … ASC`). Values of different variants never meet after
/// type checking; they order by variant so sorting stays total. Equality,
/// order and hash agree (doubles by their total order and bits), so values
/// can key state and group rows. SQL's `=` (where NULL is unknown) is the
/// evaluator's, not this.
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        use Value::*;
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (Null, _) => Ordering::Less,
            (_, Null) => Ordering::Greater,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) | (Timestamp(a), Timestamp(b)) => a.cmp(b),
            (Double(a), Double(b)) => a.total_cmp(b),
            (Decimal(a), Decimal(b)) => a.cmp(b),
            (Str(a), Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl Value {
    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Double(_) => 3,
            Value::Decimal(_) => 4,
            Value::Str(_) => 5,
            Value::Timestamp(_) => 6,
        }
    }
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Value::Null => {}
            Value::Bool(b) => b.hash(state),
            Value::Int(v) | Value::Timestamp(v) => v.hash(state),
            // Equal under total_cmp exactly when the bits are.
            Value::Double(v) => v.to_bits().hash(state),
            Value::Decimal(v) => v.hash(state),
            Value::Str(s) => s.hash(state),
        }
    }
}

/// A value as a key of state and of the exchange: the same hash on every
/// machine and version (see [`sluice_state::StableKey`]). A value hashes its
/// payload's canonical bytes as the stable hash defines them (integers and
/// timestamps as `i64`, decimals as `i128`, doubles as their bits, strings
/// as UTF-8); NULL hashes no bytes. The variant is not hashed: after type
/// checking a key column holds one variant (or NULL).
impl StableKey for Value {
    fn stable_hash_seeded(&self, seed: u64) -> u64 {
        match self {
            Value::Null => <[u8]>::stable_hash_seeded(&[], seed),
            Value::Bool(b) => b.stable_hash_seeded(seed),
            Value::Int(v) | Value::Timestamp(v) => v.stable_hash_seeded(seed),
            Value::Double(v) => v.to_bits().stable_hash_seeded(seed),
            Value::Decimal(v) => v.stable_hash_seeded(seed),
            Value::Str(s) => s.stable_hash_seeded(seed),
        }
    }
}

/// A row as a key (a GROUP BY key): its values chained as a tuple's are.
impl StableKey for Row {
    fn stable_hash_seeded(&self, seed: u64) -> u64 {
        self.0
            .iter()
            .fold(seed, |seed, value| value.stable_hash_seeded(seed))
    }
}

/// A row: one value per column of its schema.
#[derive(
    Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
)]
pub struct Row(pub Vec<Value>);

impl Row {
    pub fn get(&self, column: usize) -> &Value {
        &self.0[column]
    }

    /// The values of `columns`, in that order (a key of the row).
    pub fn select(&self, columns: &[usize]) -> Row {
        Row(columns.iter().map(|&c| self.0[c].clone()).collect())
    }
}

/// 10^scale, for DECIMAL arithmetic (scales are at most 38).
pub fn pow10(scale: u8) -> i128 {
    10i128.pow(u32::from(scale))
}

/// A DECIMAL as its exact text: `908.000` for 908000 at scale 3.
pub fn decimal_text(unscaled: i128, scale: u8) -> String {
    if scale == 0 {
        return unscaled.to_string();
    }
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    let sign = if unscaled < 0 { "-" } else { "" };
    format!("{sign}{whole}.{fraction}")
}

/// A DECIMAL as the double nearest to it (exactly the decimal's value when
/// it has at most 15 significant digits, so it prints as the decimal).
pub fn decimal_to_f64(unscaled: i128, scale: u8) -> f64 {
    if unscaled.unsigned_abs() < (1u128 << 53) && scale <= 22 {
        // Both exact as doubles; IEEE division rounds the quotient once.
        unscaled as f64 / 10f64.powi(i32::from(scale))
    } else {
        decimal_text(unscaled, scale).parse().unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_exactly() {
        assert_eq!(decimal_text(908_000, 3), "908.000");
        assert_eq!(decimal_text(2_724, 3), "2.724");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(42, 0), "42");
        assert_eq!(decimal_to_f64(2_724, 3).to_string(), "2.724");
        assert_eq!(decimal_to_f64(-5, 3), -0.005);
    }

    #[test]
    fn nulls_sort_first_and_rows_compare_by_column() {
        let mut values = vec![Value::Int(2), Value::Null, Value::Int(-1)];
        values.sort();
        assert_eq!(values, [Value::Null, Value::Int(-1), Value::Int(2)]);
        let a = Row(vec![Value::Str("a".into()), Value::Int(9)]);
        let b = Row(vec![Value::Str("b".into()), Value::Int(1)]);
        assert!(a < b);
    }

    #[test]
    fn rows_cross_shards_as_rkyv() {
        let row = Row(vec![
            Value::Int(7),
            Value::Decimal(908_000),
            Value::Str("x".into()),
            Value::Null,
            Value::Timestamp(1_000),
            Value::Double(0.5),
            Value::Bool(true),
        ]);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&row).unwrap();
        let back: Row = rkyv::from_bytes::<Row, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(back, row);
    }
}
