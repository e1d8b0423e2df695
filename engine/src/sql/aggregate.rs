//! Aggregate functions: `COUNT`, `SUM`, `MIN`, `MAX` and `AVG`, with
//! `DISTINCT` and `FILTER (WHERE …)`; their result types and accumulators.
//!
//! Planning ([`super::plan`]) puts an aggregate's argument and its filter in
//! columns of the rows below the aggregation; an [`AggregateCall`] names
//! those columns. The operators that aggregate (group aggregation, windows)
//! keep one [`Accumulator`] per call in keyed state, so it is rkyv and
//! fixed in shape: a running value and a count of the values taken.
//!
//! Flink's rules, followed here:
//! - NULL arguments are skipped; a row whose `FILTER` is not TRUE is skipped.
//! - `COUNT` is BIGINT and never NULL; `COUNT(*)` counts rows.
//! - `SUM` keeps an integer or DOUBLE argument's type and makes a DECIMAL's
//!   DECIMAL(38, s); an integer sum wraps in its type's width (Java's
//!   overflow); a DECIMAL sum that leaves 38 digits is NULL from then on.
//! - `MIN` and `MAX` keep the argument's type (strings by code point).
//! - `AVG` of an integer type is that type: the sum (a BIGINT, wrapping)
//!   divided by the count, truncated; of a DOUBLE a DOUBLE; of a DECIMAL(p,
//!   s) a DECIMAL(38, max(s, 6)), rounded half up.
//! - `SUM`, `MIN`, `MAX` and `AVG` of no values are NULL.
//! - `DISTINCT` takes each distinct non-NULL value once (the operator keeps
//!   the values seen; see [`AggregateCall::distinct`]).

use std::cmp::Ordering;

use rkyv::{Archive, Deserialize, Serialize};

use super::expr::{divide_half_up, fit_decimal, wrap};
use super::sql_type::SqlType;
use super::value::{pow10, Value};

/// Which aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateKind {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

impl AggregateKind {
    /// The function of an (upper-case) SQL name.
    pub fn named(upper: &str) -> Option<AggregateKind> {
        Some(match upper {
            "COUNT" => AggregateKind::Count,
            "SUM" => AggregateKind::Sum,
            "MIN" => AggregateKind::Min,
            "MAX" => AggregateKind::Max,
            "AVG" => AggregateKind::Avg,
            _ => return None,
        })
    }

    /// The result type for an argument of type `arg` (`None`: `COUNT(*)`),
    /// or why the argument does not fit.
    pub fn result_type(self, arg: Option<&SqlType>) -> Result<SqlType, String> {
        let Some(arg) = arg else {
            return Ok(SqlType::BigInt);
        };
        let numeric = arg.is_integer()
            || matches!(
                arg,
                SqlType::Double | SqlType::Float | SqlType::Decimal { .. }
            );
        match self {
            AggregateKind::Count => Ok(SqlType::BigInt),
            AggregateKind::Min | AggregateKind::Max => match arg {
                SqlType::Row(_) | SqlType::Interval => Err(format!(
                    "{} cannot compare values of type {arg}",
                    self.sql_name()
                )),
                _ => Ok(arg.clone()),
            },
            AggregateKind::Sum | AggregateKind::Avg if !numeric => {
                Err(format!("{} takes a number, found {arg}", self.sql_name()))
            }
            AggregateKind::Sum => Ok(match arg {
                SqlType::Decimal { scale, .. } => SqlType::Decimal {
                    precision: 38,
                    scale: *scale,
                },
                other => other.clone(),
            }),
            AggregateKind::Avg => Ok(match arg {
                SqlType::Decimal { scale, .. } => SqlType::Decimal {
                    precision: 38,
                    scale: (*scale).max(6),
                },
                other => other.clone(),
            }),
        }
    }

    pub fn sql_name(self) -> &'static str {
        match self {
            AggregateKind::Count => "COUNT",
            AggregateKind::Sum => "SUM",
            AggregateKind::Min => "MIN",
            AggregateKind::Max => "MAX",
            AggregateKind::Avg => "AVG",
        }
    }
}

/// One aggregate of a query, over the columns of the rows it aggregates.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateCall {
    pub kind: AggregateKind,
    /// The column of its argument; `None` for `COUNT(*)`.
    pub arg: Option<usize>,
    /// The argument's type (NULL for `COUNT(*)`).
    pub arg_type: SqlType,
    /// The BOOLEAN column of its `FILTER (WHERE …)`.
    pub filter: Option<usize>,
    /// `DISTINCT`: each distinct value is taken once.
    pub distinct: bool,
    pub result_type: SqlType,
}

/// The running state of one aggregate call for one group.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Accumulator {
    /// The running sum, minimum or maximum (NULL before the first value,
    /// and for a DECIMAL sum that overflowed).
    pub value: Value,
    /// How many values it took.
    pub count: i64,
}

/// The width of an integer type, for Java's wrapping.
fn bits(ty: &SqlType) -> u32 {
    match ty {
        SqlType::TinyInt => 8,
        SqlType::SmallInt => 16,
        SqlType::Int => 32,
        _ => 64,
    }
}

impl AggregateCall {
    /// The value this call takes from `row`, or `None` when the row is
    /// skipped (filter not TRUE, NULL argument). `COUNT(*)` takes NULL.
    pub fn input<'r>(&self, row: &'r [Value]) -> Option<&'r Value> {
        if let Some(filter) = self.filter {
            if row[filter].as_bool() != Some(true) {
                return None;
            }
        }
        match self.arg {
            None => Some(&Value::Null),
            Some(column) => Some(&row[column]).filter(|v| !v.is_null()),
        }
    }

    /// Adds `value` (from [`Self::input`]) to `acc`.
    pub fn accumulate(&self, acc: &mut Accumulator, value: &Value) {
        let first = acc.count == 0;
        acc.count += 1;
        match self.kind {
            AggregateKind::Count => {}
            AggregateKind::Min | AggregateKind::Max => {
                let better = if self.kind == AggregateKind::Min {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
                if first || value.cmp(&acc.value) == better {
                    acc.value = value.clone();
                }
            }
            AggregateKind::Sum | AggregateKind::Avg => {
                // AVG sums integers in a BIGINT whatever their width.
                let width = if self.kind == AggregateKind::Sum {
                    bits(&self.arg_type)
                } else {
                    64
                };
                acc.value = match (first, &acc.value, value) {
                    (true, _, v) => v.clone(),
                    (false, Value::Int(a), Value::Int(b)) => {
                        Value::Int(wrap(a.wrapping_add(*b), width))
                    }
                    (false, Value::Double(a), Value::Double(b)) => Value::Double(a + b),
                    (false, Value::Decimal(a), Value::Decimal(b)) => {
                        fit_decimal(a.checked_add(*b), 38)
                    }
                    // An overflowed DECIMAL sum stays NULL.
                    (false, _, _) => Value::Null,
                };
            }
        }
    }

    /// Whether [`Self::retract`] can take a value back out of this call's
    /// accumulator: `COUNT`, `SUM` and `AVG`, not `DISTINCT`. (`MIN` and
    /// `MAX` would need every value kept, as Flink's retracting `MAX` does.)
    pub fn retracts(&self) -> bool {
        !self.distinct
            && matches!(
                self.kind,
                AggregateKind::Count | AggregateKind::Sum | AggregateKind::Avg
            )
    }

    /// Takes `value` (from [`Self::input`] of a row taken before) back out
    /// of `acc`, as Flink's retracting `COUNT`, `SUM` and `AVG` do: the
    /// count goes down, the sum by the value (wrapping as it went up); with
    /// no value left the call is back to its empty state (`SUM` NULL).
    /// Only for calls that [`Self::retracts`].
    pub fn retract(&self, acc: &mut Accumulator, value: &Value) {
        debug_assert!(self.retracts(), "bug: {:?} cannot retract", self.kind);
        acc.count -= 1;
        if acc.count <= 0 {
            *acc = Accumulator::default();
            return;
        }
        if self.kind == AggregateKind::Count {
            return;
        }
        let width = if self.kind == AggregateKind::Sum {
            bits(&self.arg_type)
        } else {
            64
        };
        acc.value = match (&acc.value, value) {
            (Value::Int(a), Value::Int(b)) => Value::Int(wrap(a.wrapping_sub(*b), width)),
            (Value::Double(a), Value::Double(b)) => Value::Double(a - b),
            (Value::Decimal(a), Value::Decimal(b)) => fit_decimal(a.checked_sub(*b), 38),
            // An overflowed DECIMAL sum stays NULL.
            _ => Value::Null,
        };
    }

    /// Adds what `other` took to `acc`, as if `acc` had taken those
    /// values too (panes of a window, merged sessions). `DISTINCT` calls
    /// are merged from their values instead (their accumulators cannot
    /// tell which values both took).
    pub fn merge(&self, acc: &mut Accumulator, other: &Accumulator) {
        if other.count == 0 {
            return;
        }
        if acc.count == 0 {
            *acc = other.clone();
            return;
        }
        let count = acc.count + other.count;
        if self.kind != AggregateKind::Count {
            // One more value: `other`'s running value (an overflowed
            // DECIMAL sum's NULL keeps the merged sum NULL).
            self.accumulate(acc, &other.value);
        }
        acc.count = count;
    }

    /// The call's result for `acc`.
    pub fn result(&self, acc: &Accumulator) -> Value {
        if self.kind == AggregateKind::Count {
            return Value::Int(acc.count);
        }
        if acc.count == 0 {
            return Value::Null;
        }
        match self.kind {
            AggregateKind::Avg => match &acc.value {
                Value::Int(sum) => Value::Int(wrap(sum / acc.count, bits(&self.result_type))),
                Value::Double(sum) => Value::Double(sum / acc.count as f64),
                Value::Decimal(sum) => {
                    let from = self.arg_type.as_decimal().map_or(0, |(_, s)| s);
                    let to = self.result_type.as_decimal().map_or(0, |(_, s)| s);
                    let scaled = sum.checked_mul(pow10(to.saturating_sub(from)));
                    fit_decimal(scaled.map(|s| divide_half_up(s, i128::from(acc.count))), 38)
                }
                _ => Value::Null,
            },
            _ => acc.value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(kind: AggregateKind, arg_type: SqlType) -> AggregateCall {
        AggregateCall {
            kind,
            arg: Some(0),
            result_type: kind.result_type(Some(&arg_type)).unwrap(),
            arg_type,
            filter: None,
            distinct: false,
        }
    }

    fn run(call: &AggregateCall, values: &[Value]) -> Value {
        let mut acc = Accumulator::default();
        for v in values {
            if let Some(v) = call.input(std::slice::from_ref(v)) {
                call.accumulate(&mut acc, v);
            }
        }
        call.result(&acc)
    }

    fn dec(precision: u8, scale: u8) -> SqlType {
        SqlType::Decimal { precision, scale }
    }

    /// (function, argument type, values, result type, result)
    #[test]
    fn aggregates_follow_flinks_rules() {
        use AggregateKind::*;
        use Value::{Decimal as D, Double as F, Int as I, Null as N};
        let s = |t: &str| Value::Str(t.into());
        let cases: Vec<(AggregateKind, SqlType, Vec<Value>, SqlType, Value)> = vec![
            (
                Count,
                SqlType::BigInt,
                vec![I(1), N, I(3)],
                SqlType::BigInt,
                I(2),
            ),
            (Count, SqlType::BigInt, vec![], SqlType::BigInt, I(0)),
            (
                Sum,
                SqlType::BigInt,
                vec![I(1), N, I(3)],
                SqlType::BigInt,
                I(4),
            ),
            (Sum, SqlType::BigInt, vec![N, N], SqlType::BigInt, N),
            (
                Sum,
                SqlType::BigInt,
                vec![I(i64::MAX), I(1)],
                SqlType::BigInt,
                I(i64::MIN),
            ),
            // INT sums wrap at 32 bits, as Java's int does.
            (
                Sum,
                SqlType::Int,
                vec![I(i32::MAX as i64), I(1)],
                SqlType::Int,
                I(i32::MIN as i64),
            ),
            (Sum, dec(5, 2), vec![D(150), D(275)], dec(38, 2), D(425)),
            (
                Sum,
                dec(38, 0),
                vec![D(pow10(37) * 9), D(pow10(37) * 9)],
                dec(38, 0),
                N,
            ),
            (
                Sum,
                dec(38, 0),
                vec![D(pow10(37) * 9), D(pow10(37) * 9), D(1)],
                dec(38, 0),
                N,
            ),
            (
                Sum,
                SqlType::Double,
                vec![F(0.5), F(0.25)],
                SqlType::Double,
                F(0.75),
            ),
            (
                Min,
                SqlType::BigInt,
                vec![I(3), N, I(-2), I(7)],
                SqlType::BigInt,
                I(-2),
            ),
            (
                Max,
                SqlType::BigInt,
                vec![I(3), N, I(-2), I(7)],
                SqlType::BigInt,
                I(7),
            ),
            (
                Max,
                SqlType::Varchar,
                vec![s("09:59"), s("10:00"), s("09:00")],
                SqlType::Varchar,
                s("10:00"),
            ),
            (Min, SqlType::Varchar, vec![N], SqlType::Varchar, N),
            // AVG of BIGINT is a BIGINT, truncated toward zero.
            (
                Avg,
                SqlType::BigInt,
                vec![I(1), I(2)],
                SqlType::BigInt,
                I(1),
            ),
            (
                Avg,
                SqlType::BigInt,
                vec![I(-1), I(-2)],
                SqlType::BigInt,
                I(-1),
            ),
            // AVG of INT sums in a BIGINT: no 32-bit overflow on the way.
            (
                Avg,
                SqlType::Int,
                vec![I(i32::MAX as i64), I(i32::MAX as i64)],
                SqlType::Int,
                I(i32::MAX as i64),
            ),
            (
                Avg,
                SqlType::Double,
                vec![F(1.0), F(2.0)],
                SqlType::Double,
                F(1.5),
            ),
            // AVG of DECIMAL(10, 2) is DECIMAL(38, 6), rounded half up.
            (
                Avg,
                dec(10, 2),
                vec![D(100), D(100), D(101)],
                dec(38, 6),
                D(1_003_333),
            ),
            (Avg, dec(10, 2), vec![D(-1), D(-2)], dec(38, 6), D(-15_000)),
            (Avg, SqlType::BigInt, vec![N], SqlType::BigInt, N),
        ];
        for (kind, arg, values, want_type, want) in cases {
            let c = call(kind, arg.clone());
            assert_eq!(c.result_type, want_type, "{kind:?}({arg})");
            assert_eq!(run(&c, &values), want, "{kind:?}({arg}) of {values:?}");
            // Any split of the values, accumulated apart and merged, gives
            // the same result (how panes and sessions combine).
            for split in 0..=values.len() {
                let mut parts = [Accumulator::default(), Accumulator::default()];
                for (i, v) in values.iter().enumerate() {
                    if let Some(v) = c.input(std::slice::from_ref(v)) {
                        c.accumulate(&mut parts[usize::from(i >= split)], v);
                    }
                }
                let [mut first, second] = parts;
                c.merge(&mut first, &second);
                assert_eq!(
                    c.result(&first),
                    want,
                    "{kind:?}({arg}) of {values:?} merged at {split}"
                );
            }
        }
    }

    #[test]
    fn count_star_counts_rows_that_pass_the_filter() {
        let c = AggregateCall {
            kind: AggregateKind::Count,
            arg: None,
            arg_type: SqlType::Null,
            filter: Some(1),
            distinct: false,
            result_type: SqlType::BigInt,
        };
        let mut acc = Accumulator::default();
        for row in [
            [Value::Null, Value::Bool(true)],
            [Value::Int(1), Value::Bool(false)],
            [Value::Int(1), Value::Null],
            [Value::Int(2), Value::Bool(true)],
        ] {
            if let Some(v) = c.input(&row) {
                c.accumulate(&mut acc, v);
            }
        }
        assert_eq!(c.result(&acc), Value::Int(2));
    }

    proptest::proptest! {
        /// Taking values and retracting some of them leaves what taking
        /// only the others gives, for every call that retracts (integer
        /// sums wrap both ways; the doubles are small integers, exact).
        #[test]
        fn retracting_values_leaves_what_the_others_give(
            values in proptest::collection::vec((proptest::option::of(-1_000i64..1_000), proptest::bool::ANY), 0..40),
            wrapping in proptest::bool::ANY,
        ) {
            let big = |v: i64| if wrapping { v.wrapping_mul(i64::MAX / 700) } else { v };
            for (kind, arg_type) in [
                (AggregateKind::Count, SqlType::BigInt),
                (AggregateKind::Sum, SqlType::BigInt),
                (AggregateKind::Sum, SqlType::Int),
                (AggregateKind::Avg, SqlType::BigInt),
                (AggregateKind::Sum, SqlType::Double),
                (AggregateKind::Avg, SqlType::Double),
                (AggregateKind::Sum, dec(10, 2)),
                (AggregateKind::Avg, dec(10, 2)),
            ] {
                let c = call(kind, arg_type.clone());
                proptest::prop_assert!(c.retracts());
                let value = |v: Option<i64>| match (v, &arg_type) {
                    (None, _) => Value::Null,
                    (Some(v), SqlType::Double) => Value::Double(v as f64),
                    (Some(v), SqlType::Decimal { .. }) => Value::Decimal(i128::from(v)),
                    (Some(v), SqlType::Int) => Value::Int(wrap(big(v), 32)),
                    (Some(v), _) => Value::Int(big(v)),
                };
                let mut acc = Accumulator::default();
                for (v, _) in &values {
                    if let Some(v) = c.input(std::slice::from_ref(&value(*v))) {
                        c.accumulate(&mut acc, v);
                    }
                }
                for (v, retracted) in &values {
                    if let (true, Some(v)) = (*retracted, c.input(std::slice::from_ref(&value(*v)))) {
                        c.retract(&mut acc, v);
                    }
                }
                let kept: Vec<Value> = values.iter().filter(|(_, r)| !r).map(|(v, _)| value(*v)).collect();
                proptest::prop_assert_eq!(c.result(&acc), run(&c, &kept), "{:?}({}) of {:?}", kind, arg_type, values);
            }
        }
    }

    #[test]
    fn min_max_and_distinct_do_not_retract() {
        assert!(!call(AggregateKind::Max, SqlType::BigInt).retracts());
        assert!(!call(AggregateKind::Min, SqlType::BigInt).retracts());
        let distinct = AggregateCall {
            distinct: true,
            ..call(AggregateKind::Count, SqlType::BigInt)
        };
        assert!(!distinct.retracts());
    }

    #[test]
    fn sum_and_avg_refuse_what_is_not_a_number() {
        let err = AggregateKind::Sum
            .result_type(Some(&SqlType::Varchar))
            .unwrap_err();
        assert!(err.contains("SUM takes a number, found STRING"), "{err}");
        assert!(AggregateKind::Max
            .result_type(Some(&SqlType::Varchar))
            .is_ok());
    }
}
