//! Bound, type-checked scalar expressions and their evaluation over a row.
//!
//! [`super::bind`] turns sqlparser's expressions into [`BoundExpr`]s: column
//! references are indexes into the row, every operand already has the
//! representation its operator works in (the binder inserts the casts), and
//! every node knows its result type. Evaluation walks the tree and allocates
//! only for strings it builds; fixed-size values stay inline in [`Value`].
//!
//! Flink's rules, followed here: NULL in, NULL out (three-valued AND, OR, NOT);
//! integer arithmetic wraps in its type's width, as Java's does; integer
//! division truncates and division or `MOD` by zero fails the job; DOUBLE
//! arithmetic is IEEE (division by zero gives ±Infinity or NaN); a DECIMAL
//! result that does not fit its precision is NULL, division rounds half up
//! to the result scale, and dividing a DECIMAL by zero fails the job.

use std::sync::Arc;

use super::functions::Scalar;
use super::sql_type::SqlType;
use super::value::{pow10, Row, Value};

/// A runtime error of an expression: the job fails with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

pub type EvalResult = Result<Value, EvalError>;

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// How an arithmetic node computes, decided by the binder from the types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithKind {
    /// Integers, wrapping at this many bits.
    Int {
        bits: u32,
    },
    Double,
    /// Decimals: the operands' scales and the result's precision and scale.
    Decimal {
        left_scale: u8,
        right_scale: u8,
        precision: u8,
        scale: u8,
    },
    /// TIMESTAMP ± INTERVAL (milliseconds).
    TimestampInterval,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CompareOp {
    /// Whether two operands ordered as `ordering` satisfy the operator.
    #[inline]
    pub fn holds_for(self, ordering: std::cmp::Ordering) -> bool {
        match self {
            CompareOp::Eq => ordering.is_eq(),
            CompareOp::NotEq => ordering.is_ne(),
            CompareOp::Lt => ordering.is_lt(),
            CompareOp::LtEq => ordering.is_le(),
            CompareOp::Gt => ordering.is_gt(),
            CompareOp::GtEq => ordering.is_ge(),
        }
    }
}

/// A scalar expression, bound to a row layout.
#[derive(Debug, Clone)]
pub enum BoundExpr {
    Column(usize),
    Literal(Value),
    Arith {
        op: ArithOp,
        kind: ArithKind,
        left: Box<BoundExpr>,
        right: Box<BoundExpr>,
    },
    /// Operands of one type (the binder casts them to a common one).
    Compare {
        op: CompareOp,
        left: Box<BoundExpr>,
        right: Box<BoundExpr>,
    },
    And(Vec<BoundExpr>),
    Or(Vec<BoundExpr>),
    Not(Box<BoundExpr>),
    IsNull {
        expr: Box<BoundExpr>,
        negated: bool,
    },
    /// `CASE WHEN c THEN r … ELSE e END` (a simple CASE is bound to this).
    Case {
        whens: Vec<(BoundExpr, BoundExpr)>,
        otherwise: Box<BoundExpr>,
    },
    Cast {
        expr: Box<BoundExpr>,
        from: SqlType,
        to: SqlType,
    },
    /// `expr [NOT] IN (values)` over constants of the expression's type.
    InList {
        expr: Box<BoundExpr>,
        list: Vec<Value>,
        negated: bool,
    },
    Call {
        function: Scalar,
        args: Vec<BoundExpr>,
    },
    /// A user-defined scalar function registered from Rust.
    Udf {
        function: Arc<super::functions::ScalarUdf>,
        args: Vec<BoundExpr>,
    },
}

impl BoundExpr {
    /// The expression's value for `row`.
    pub fn eval(&self, row: &Row) -> EvalResult {
        match self {
            BoundExpr::Column(i) => Ok(row.0[*i].clone()),
            BoundExpr::Literal(v) => Ok(v.clone()),
            BoundExpr::Arith {
                op,
                kind,
                left,
                right,
            } => left.with_value(row, |l| {
                right.with_value(row, |r| {
                    if l.is_null() || r.is_null() {
                        return Ok(Value::Null);
                    }
                    arith(*op, *kind, l, r)
                })?
            })?,
            BoundExpr::Compare { op, left, right } => left.with_value(row, |l| {
                right.with_value(row, |r| {
                    if l.is_null() || r.is_null() {
                        return Value::Null;
                    }
                    Value::Bool(op.holds_for(compare(l, r)))
                })
            })?,
            BoundExpr::And(terms) => {
                let mut unknown = false;
                for term in terms {
                    match term.eval(row)? {
                        Value::Bool(false) => return Ok(Value::Bool(false)),
                        Value::Null => unknown = true,
                        _ => {}
                    }
                }
                Ok(if unknown {
                    Value::Null
                } else {
                    Value::Bool(true)
                })
            }
            BoundExpr::Or(terms) => {
                let mut unknown = false;
                for term in terms {
                    match term.eval(row)? {
                        Value::Bool(true) => return Ok(Value::Bool(true)),
                        Value::Null => unknown = true,
                        _ => {}
                    }
                }
                Ok(if unknown {
                    Value::Null
                } else {
                    Value::Bool(false)
                })
            }
            BoundExpr::Not(e) => Ok(match e.eval(row)? {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            }),
            BoundExpr::IsNull { expr, negated } => {
                expr.with_value(row, |v| Value::Bool(v.is_null() != *negated))
            }
            BoundExpr::Case { whens, otherwise } => {
                for (condition, result) in whens {
                    if condition.eval(row)? == Value::Bool(true) {
                        return result.eval(row);
                    }
                }
                otherwise.eval(row)
            }
            BoundExpr::Cast { expr, from, to } => cast(expr.eval(row)?, from, to),
            BoundExpr::InList {
                expr,
                list,
                negated,
            } => expr.with_value(row, |v| {
                if v.is_null() {
                    return Value::Null;
                }
                // Constants are never NULL here (the binder keeps them out).
                Value::Bool(list.iter().any(|c| compare(v, c).is_eq()) != *negated)
            }),
            BoundExpr::Call { function, args } => function.call(args, row),
            BoundExpr::Udf { function, args } => {
                let values = args
                    .iter()
                    .map(|a| a.eval(row))
                    .collect::<Result<Vec<_>, _>>()?;
                let lent: Vec<&Value> = values.iter().collect();
                (function.eval)(&lent)
            }
        }
    }

    /// `f` of the expression's value for `row`, borrowed from the row or the
    /// plan when the expression is a column or a literal (no clone).
    pub fn with_value<R>(&self, row: &Row, f: impl FnOnce(&Value) -> R) -> Result<R, EvalError> {
        match self {
            BoundExpr::Column(i) => Ok(f(&row.0[*i])),
            BoundExpr::Literal(v) => Ok(f(v)),
            _ => Ok(f(&self.eval(row)?)),
        }
    }

    /// True if the predicate holds (NULL and FALSE do not).
    pub fn holds(&self, row: &Row) -> Result<bool, EvalError> {
        Ok(self.eval(row)? == Value::Bool(true))
    }

    /// The direct sub-expressions, for passes over the tree.
    pub fn children_mut(&mut self) -> Vec<&mut BoundExpr> {
        match self {
            BoundExpr::Column(_) | BoundExpr::Literal(_) => Vec::new(),
            BoundExpr::Arith { left, right, .. } | BoundExpr::Compare { left, right, .. } => {
                vec![left.as_mut(), right.as_mut()]
            }
            BoundExpr::And(terms)
            | BoundExpr::Or(terms)
            | BoundExpr::Call { args: terms, .. }
            | BoundExpr::Udf { args: terms, .. } => terms.iter_mut().collect(),
            BoundExpr::Not(e)
            | BoundExpr::IsNull { expr: e, .. }
            | BoundExpr::Cast { expr: e, .. }
            | BoundExpr::InList { expr: e, .. } => vec![e.as_mut()],
            BoundExpr::Case { whens, otherwise } => whens
                .iter_mut()
                .flat_map(|(c, r)| [c, r])
                .chain([otherwise.as_mut()])
                .collect(),
        }
    }

    /// Replaces every column reference `i` with `replace(i)` (planning only).
    pub fn rewrite_columns(&mut self, replace: &mut impl FnMut(usize) -> BoundExpr) {
        match self {
            BoundExpr::Column(i) => *self = replace(*i),
            _ => {
                for child in self.children_mut() {
                    child.rewrite_columns(replace);
                }
            }
        }
    }

    /// Calls `seen` with every column the expression reads, once per reference.
    pub fn visit_columns(&self, seen: &mut impl FnMut(usize)) {
        let mut copy = self.clone();
        copy.rewrite_columns(&mut |i| {
            seen(i);
            BoundExpr::Column(i)
        });
    }
}

/// Values of one type, compared; doubles by IEEE order (NaN equals itself
/// here, as Java's `Double.compare` has it).
pub(crate) fn compare(l: &Value, r: &Value) -> std::cmp::Ordering {
    match (l, r) {
        (Value::Double(a), Value::Double(b)) => a.partial_cmp(b).unwrap_or_else(|| a.total_cmp(b)),
        _ => l.cmp(r),
    }
}

/// Wraps `v` to a signed integer of `bits` bits (Java's overflow).
pub(crate) fn wrap(v: i64, bits: u32) -> i64 {
    match bits {
        8 => v as i8 as i64,
        16 => v as i16 as i64,
        32 => v as i32 as i64,
        _ => v,
    }
}

/// A DECIMAL result, or NULL when it does not fit `precision` digits.
pub(crate) fn fit_decimal(unscaled: Option<i128>, precision: u8) -> Value {
    match unscaled {
        Some(v) if v.unsigned_abs() < pow10(precision) as u128 => Value::Decimal(v),
        _ => Value::Null,
    }
}

/// `numerator / denominator`, rounded half away from zero.
pub(crate) fn divide_half_up(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder.unsigned_abs() * 2 >= denominator.unsigned_abs() {
        if (numerator < 0) == (denominator < 0) {
            quotient + 1
        } else {
            quotient - 1
        }
    } else {
        quotient
    }
}

pub(crate) fn arith(op: ArithOp, kind: ArithKind, l: &Value, r: &Value) -> EvalResult {
    match (kind, l, r) {
        (ArithKind::Int { bits }, Value::Int(a), Value::Int(b)) => {
            int_arith(op, bits, *a, *b).map(Value::Int)
        }
        (ArithKind::Double, Value::Double(a), Value::Double(b)) => {
            Ok(Value::Double(double_arith(op, *a, *b)))
        }
        (ArithKind::Decimal { .. }, Value::Decimal(a), Value::Decimal(b)) => {
            let decimal = DecimalArith::new(op, kind);
            Ok(decimal.apply(*a, *b)?.map_or(Value::Null, Value::Decimal))
        }
        (ArithKind::TimestampInterval, Value::Timestamp(t), Value::Int(ms)) => {
            Ok(Value::Timestamp(match op {
                ArithOp::Sub => t.wrapping_sub(*ms),
                _ => t.wrapping_add(*ms),
            }))
        }
        (ArithKind::TimestampInterval, Value::Int(ms), Value::Timestamp(t)) => {
            Ok(Value::Timestamp(t.wrapping_add(*ms)))
        }
        _ => Err(EvalError(format!(
            "bug: {op:?} of {l:?} and {r:?} bound as {kind:?}"
        ))),
    }
}

/// Integer arithmetic wrapping at `bits` bits, as Java's.
pub(crate) fn int_arith(op: ArithOp, bits: u32, a: i64, b: i64) -> Result<i64, EvalError> {
    let v = match op {
        ArithOp::Add => a.wrapping_add(b),
        ArithOp::Sub => a.wrapping_sub(b),
        ArithOp::Mul => a.wrapping_mul(b),
        ArithOp::Div if b == 0 => return Err(EvalError("division by zero".into())),
        ArithOp::Mod if b == 0 => return Err(EvalError("MOD by zero".into())),
        ArithOp::Div => a.wrapping_div(b),
        ArithOp::Mod => a.wrapping_rem(b),
    };
    Ok(wrap(v, bits))
}

/// IEEE arithmetic on doubles.
pub(crate) fn double_arith(op: ArithOp, a: f64, b: f64) -> f64 {
    match op {
        ArithOp::Add => a + b,
        ArithOp::Sub => a - b,
        ArithOp::Mul => a * b,
        ArithOp::Div => a / b,
        ArithOp::Mod => a % b,
    }
}

/// One DECIMAL operator with its scales' powers of ten worked out, so a
/// row pays for the arithmetic only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecimalArith {
    op: ArithOp,
    /// What brings each operand to the result's scale (Add, Sub, Mod);
    /// `None` when the power of ten is beyond i128 (the result is NULL).
    left_factor: Option<i128>,
    right_factor: Option<i128>,
    /// Division: the numerator's factor (≥ 0 shift) or the denominator's.
    numerator_factor: Option<i128>,
    denominator_factor: Option<i128>,
    /// 10^precision: results at or beyond it in magnitude are NULL.
    limit: u128,
}

impl DecimalArith {
    /// The operator `op` of a node bound as `kind` (a [`ArithKind::Decimal`]).
    pub(crate) fn new(op: ArithOp, kind: ArithKind) -> DecimalArith {
        let ArithKind::Decimal {
            left_scale,
            right_scale,
            precision,
            scale,
        } = kind
        else {
            unreachable!("DecimalArith of {kind:?}")
        };
        // a/10^ls ÷ b/10^rs at scale s: a × 10^(s - ls + rs) ÷ b.
        let shift = i32::from(scale) - i32::from(left_scale) + i32::from(right_scale);
        let factor = |exponent: i32| 10i128.checked_pow(exponent.max(0) as u32);
        DecimalArith {
            op,
            left_factor: factor(i32::from(scale) - i32::from(left_scale)),
            right_factor: factor(i32::from(scale) - i32::from(right_scale)),
            numerator_factor: factor(shift),
            denominator_factor: factor(-shift),
            limit: pow10(precision) as u128,
        }
    }

    /// `a op b` of unscaled operands; `None` (NULL) when the result does
    /// not fit the precision.
    pub(crate) fn apply(&self, a: i128, b: i128) -> Result<Option<i128>, EvalError> {
        let times = |v: i128, factor: Option<i128>| factor.and_then(|f| v.checked_mul(f));
        let rescaled = || times(a, self.left_factor).zip(times(b, self.right_factor));
        let v = match self.op {
            ArithOp::Add => rescaled().and_then(|(a, b)| a.checked_add(b)),
            ArithOp::Sub => rescaled().and_then(|(a, b)| a.checked_sub(b)),
            // The product's scale is the sum of the operands'.
            ArithOp::Mul => a.checked_mul(b),
            ArithOp::Div | ArithOp::Mod if b == 0 => {
                return Err(EvalError("division of a DECIMAL by zero".into()))
            }
            ArithOp::Div => times(a, self.numerator_factor)
                .zip(times(b, self.denominator_factor))
                .map(|(n, d)| divide_half_up(n, d)),
            ArithOp::Mod => rescaled().and_then(|(a, b)| a.checked_rem(b)),
        };
        Ok(v.filter(|v| v.unsigned_abs() < self.limit))
    }
}

/// `CAST(v AS to)` for a value of type `from`.
pub fn cast(v: Value, from: &SqlType, to: &SqlType) -> EvalResult {
    use SqlType as T;
    if v.is_null() || from == to {
        return Ok(v);
    }
    let bits = |t: &T| match t {
        T::TinyInt => 8,
        T::SmallInt => 16,
        T::Int => 32,
        _ => 64,
    };
    Ok(match (v, to) {
        (Value::Int(i), t) if t.is_integer() => Value::Int(wrap(i, bits(t))),
        (Value::Int(i), T::Double | T::Float) => Value::Double(i as f64),
        (Value::Int(i), T::Decimal { precision, scale }) => {
            fit_decimal(i128::from(i).checked_mul(pow10(*scale)), *precision)
        }
        (Value::Decimal(d), T::Decimal { precision, scale }) => {
            let (_, from_scale) = from.as_decimal().unwrap_or((38, 0));
            let v = if *scale >= from_scale {
                d.checked_mul(pow10(scale - from_scale))
            } else {
                Some(divide_half_up(d, pow10(from_scale - scale)))
            };
            fit_decimal(v, *precision)
        }
        (Value::Decimal(d), t) if t.is_integer() => {
            let (_, scale) = from.as_decimal().unwrap_or((38, 0));
            Value::Int(wrap((d / pow10(scale)) as i64, bits(t)))
        }
        (Value::Decimal(d), T::Double | T::Float) => {
            let (_, scale) = from.as_decimal().unwrap_or((38, 0));
            Value::Double(super::value::decimal_to_f64(d, scale))
        }
        (Value::Double(f), t) if t.is_integer() => Value::Int(wrap(f as i64, bits(t))),
        (Value::Double(f), T::Decimal { precision, scale }) => {
            let scaled = (f * pow10(*scale) as f64).round();
            fit_decimal(scaled.is_finite().then_some(scaled as i128), *precision)
        }
        (Value::Double(f), T::Double | T::Float) => Value::Double(f),
        (v, T::Varchar) => Value::Str(super::functions::to_text(&v, from)),
        (Value::Str(s), t) => parse_text(&s, t)?,
        (Value::Timestamp(t), T::Timestamp { .. } | T::TimestampLtz { .. }) => Value::Timestamp(t),
        (Value::Bool(b), T::Boolean) => Value::Bool(b),
        (v, _) => return Err(EvalError(format!("cannot cast {v:?} from {from} to {to}"))),
    })
}

/// A string cast to a type, as Flink's CAST reads it (a failure fails the job).
pub(crate) fn parse_text(s: &str, to: &SqlType) -> EvalResult {
    let t = s.trim();
    let bad = || EvalError(format!("cannot cast '{s}' to {to}"));
    Ok(match to {
        t_ if t_.is_integer() => {
            let v: i64 = t.parse().map_err(|_| bad())?;
            cast(Value::Int(v), &SqlType::BigInt, to)?
        }
        SqlType::Double | SqlType::Float => Value::Double(t.parse().map_err(|_| bad())?),
        SqlType::Decimal { .. } => {
            let v: f64 = t.parse().map_err(|_| bad())?;
            cast(Value::Double(v), &SqlType::Double, to)?
        }
        SqlType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad()),
        },
        SqlType::Timestamp { .. } | SqlType::TimestampLtz { .. } => {
            Value::Timestamp(super::functions::parse_timestamp(t).ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    })
}
