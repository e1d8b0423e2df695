//! Scalar expressions compiled to closures over the row layout.
//!
//! Built once where the job is built ([`super::calc::Calc::compile`],
//! [`super::scan::RowMaker`]); run on every row by the shard's fused chain.
//! Compiling resolves, once, what the tree walk of [`BoundExpr::eval`]
//! decides again for every row: which operand is a column, which a
//! constant, which representation an arithmetic node works in. So:
//!
//! - a comparison of a column with a constant (`event_type = 2`) reads the
//!   column's integer, timestamp or string in place and answers a bool, not
//!   a [`Value`];
//! - integer, DOUBLE and DECIMAL arithmetic runs on `i64`, `f64` and `i128`
//!   from leaf to root, with NULL as `None`; only the root becomes a
//!   `Value` (`0.908 * price` casts and multiplies without building the
//!   intermediate values, and a DECIMAL's powers of ten are worked out
//!   here, not per row);
//! - predicates (`AND`, `OR`, `NOT`, `IS NULL`, `IN`, `CASE` conditions)
//!   run as three-valued bools (`Option<bool>`).
//!
//! Nothing allocates for fixed-size types. Function calls keep the tree
//! walk for their arguments (they read columns in place already).
//!
//! Invariant: a compiled expression gives exactly what [`BoundExpr::eval`]
//! gives for the same well-typed expression and row, errors included, and
//! evaluates its operands in the same order (the property test below holds
//! it to that). Why closures rather than the tree walk, with figures: see
//! bench/RESULTS.md, "SQL, compiled expressions".

use std::sync::Arc;

use super::expr::{
    arith, cast, compare, double_arith, int_arith, ArithKind, BoundExpr, CompareOp, DecimalArith,
    EvalError, EvalResult,
};
use super::functions::{split_index, Scalar, ScalarUdf};
use super::sql_type::SqlType;
use super::value::{pow10, Row, Value};

/// Three-valued truth: `None` is unknown (a NULL operand).
type Truth = Option<bool>;

/// A compiled expression's root, shared by the clones of its operator.
type Shared<T> = Arc<dyn Fn(&Row) -> Result<T, EvalError> + Send + Sync>;

/// A compiled step: a row to a `T`, or the row's failure.
type Compiled<T> = Box<dyn Fn(&Row) -> Result<T, EvalError> + Send + Sync>;

/// An expression compiled to its value.
#[derive(Clone)]
pub struct CompiledExpr {
    run: Shared<Value>,
    /// What was compiled, for `Debug`.
    source: BoundExpr,
}

impl CompiledExpr {
    pub fn new(expr: &BoundExpr) -> CompiledExpr {
        CompiledExpr {
            run: Arc::from(value(expr)),
            source: expr.clone(),
        }
    }

    /// The expression's value for `row`.
    #[inline]
    pub fn eval(&self, row: &Row) -> EvalResult {
        (self.run)(row)
    }
}

impl std::fmt::Debug for CompiledExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "compiled {:?}", self.source)
    }
}

/// A predicate compiled to its truth: `Some(bool)`, or `None` for unknown.
#[derive(Clone)]
pub struct CompiledPredicate {
    run: Shared<Truth>,
    source: BoundExpr,
}

impl CompiledPredicate {
    pub fn new(expr: &BoundExpr) -> CompiledPredicate {
        CompiledPredicate {
            run: Arc::from(truth(expr)),
            source: expr.clone(),
        }
    }

    /// True if the predicate holds (NULL and FALSE do not).
    #[inline]
    pub fn holds(&self, row: &Row) -> Result<bool, EvalError> {
        Ok((self.run)(row)? == Some(true))
    }
}

impl std::fmt::Debug for CompiledPredicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "compiled {:?}", self.source)
    }
}

/// An operand read in place when it is a column or a constant.
enum Operand {
    Column(usize),
    Constant(Value),
    Computed(Compiled<Value>),
}

impl Operand {
    fn of(expr: &BoundExpr) -> Operand {
        match expr {
            BoundExpr::Column(i) => Operand::Column(*i),
            BoundExpr::Literal(v) => Operand::Constant(v.clone()),
            _ => Operand::Computed(value(expr)),
        }
    }

    #[inline]
    fn with<R>(&self, row: &Row, f: impl FnOnce(&Value) -> R) -> Result<R, EvalError> {
        match self {
            Operand::Column(i) => Ok(f(&row.0[*i])),
            Operand::Constant(v) => Ok(f(v)),
            Operand::Computed(e) => Ok(f(&e(row)?)),
        }
    }
}

/// `expr` compiled to its value.
fn value(expr: &BoundExpr) -> Compiled<Value> {
    match expr {
        BoundExpr::Column(i) => {
            let i = *i;
            Box::new(move |row| Ok(row.0[i].clone()))
        }
        BoundExpr::Literal(v) => {
            let v = v.clone();
            Box::new(move |_| Ok(v.clone()))
        }
        BoundExpr::Arith {
            kind: ArithKind::Int { .. },
            ..
        } => as_value(int(expr), Value::Int),
        BoundExpr::Arith {
            kind: ArithKind::Double,
            ..
        } => as_value(double(expr), Value::Double),
        BoundExpr::Arith {
            kind: ArithKind::Decimal { .. },
            ..
        }
        | BoundExpr::Cast {
            to: SqlType::Decimal { .. },
            ..
        } if decimal_is_direct(expr) => as_value(decimal(expr), Value::Decimal),
        BoundExpr::Arith {
            op,
            kind,
            left,
            right,
        } => {
            let (op, kind) = (*op, *kind);
            let (left, right) = (Operand::of(left), Operand::of(right));
            Box::new(move |row| {
                left.with(row, |l| {
                    right.with(row, |r| {
                        if l.is_null() || r.is_null() {
                            return Ok(Value::Null);
                        }
                        arith(op, kind, l, r)
                    })?
                })?
            })
        }
        BoundExpr::Compare { .. }
        | BoundExpr::And(_)
        | BoundExpr::Or(_)
        | BoundExpr::Not(_)
        | BoundExpr::IsNull { .. }
        | BoundExpr::InList { .. } => as_value(truth(expr), Value::Bool),
        BoundExpr::Case { whens, otherwise } => {
            let whens: Vec<(Compiled<Option<bool>>, Compiled<Value>)> = whens
                .iter()
                .map(|(condition, result)| (truth(condition), value(result)))
                .collect();
            let otherwise = value(otherwise);
            Box::new(move |row| {
                for (condition, result) in &whens {
                    if condition(row)? == Some(true) {
                        return result(row);
                    }
                }
                otherwise(row)
            })
        }
        BoundExpr::Cast { expr, from, to } => {
            let (inner, from, to) = (value(expr), from.clone(), to.clone());
            Box::new(move |row| cast(inner(row)?, &from, &to))
        }
        BoundExpr::Call {
            function: Scalar::SplitIndex,
            args,
        } => match (&args[1], &args[2]) {
            (BoundExpr::Literal(sep), BoundExpr::Literal(index)) => {
                split_index_of_constants(Operand::of(&args[0]), sep, index)
            }
            _ => {
                let call = expr.clone();
                Box::new(move |row| call.eval(row))
            }
        },
        BoundExpr::Call { .. } => {
            let call = expr.clone();
            Box::new(move |row| call.eval(row))
        }
        BoundExpr::Udf { function, args } => udf_call(function.clone(), args),
    }
}

/// `SPLIT_INDEX(s, sep, index)` with a constant separator and index: the
/// string read in place, only the field copied out.
fn split_index_of_constants(s: Operand, sep: &Value, index: &Value) -> Compiled<Value> {
    // A NULL separator or index: NULL, the string still evaluated (its
    // errors are raised, as the tree walk raises them).
    let constants = match (sep, index) {
        (Value::Str(sep), &Value::Int(index)) => Some((sep.clone(), index)),
        _ => None,
    };
    Box::new(move |row| {
        s.with(row, |v| match (v, &constants) {
            (Value::Str(s), Some((sep, index))) => {
                split_index(s, sep, *index).map_or(Value::Null, |f| Value::Str(f.into()))
            }
            _ => Value::Null,
        })
    })
}

/// A UDF call whose column and constant arguments are lent to the function
/// in place; computed ones are evaluated first, left to right.
fn udf_call(function: Arc<ScalarUdf>, args: &[BoundExpr]) -> Compiled<Value> {
    /// Arguments lent from an array on the stack, not a vector.
    const LENT_ON_STACK: usize = 4;
    static NULL: Value = Value::Null;
    let operands: Vec<Operand> = args.iter().map(Operand::of).collect();
    let computed = operands.iter().any(|o| matches!(o, Operand::Computed(_)));
    if !computed && operands.len() <= LENT_ON_STACK {
        return Box::new(move |row| {
            let mut lent = [&NULL; LENT_ON_STACK];
            for (slot, operand) in lent.iter_mut().zip(&operands) {
                *slot = match operand {
                    Operand::Column(i) => &row.0[*i],
                    Operand::Constant(v) => v,
                    Operand::Computed(_) => unreachable!("no computed arguments here"),
                };
            }
            (function.eval)(&lent[..operands.len()])
        });
    }
    Box::new(move |row| {
        let values = operands
            .iter()
            .map(|o| match o {
                Operand::Computed(e) => e(row).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<Option<Value>>, _>>()?;
        let lent: Vec<&Value> = operands
            .iter()
            .zip(&values)
            .map(|(operand, value)| match (operand, value) {
                (Operand::Column(i), _) => &row.0[*i],
                (Operand::Constant(v), _) => v,
                (Operand::Computed(_), value) => value.as_ref().expect("evaluated above"),
            })
            .collect();
        (function.eval)(&lent)
    })
}

/// A typed step's result as a value: `None` is NULL.
fn as_value<T: 'static>(typed: Compiled<Option<T>>, wrap: fn(T) -> Value) -> Compiled<Value> {
    Box::new(move |row| Ok(typed(row)?.map_or(Value::Null, wrap)))
}

/// A value step read as a typed one (`unwrap` says `None` for NULL, and
/// fails on another variant: a binding bug).
fn from_value<T: 'static>(
    step: Compiled<Value>,
    unwrap: fn(&Value) -> Option<Option<T>>,
    what: &'static str,
) -> Compiled<Option<T>> {
    Box::new(move |row| {
        let v = step(row)?;
        unwrap(&v).ok_or_else(|| EvalError(format!("bug: {v:?} where {what} was bound")))
    })
}

/// `expr` as a three-valued truth.
fn truth(expr: &BoundExpr) -> Compiled<Option<bool>> {
    match expr {
        BoundExpr::Compare { op, left, right } => comparison(*op, left, right),
        BoundExpr::And(terms) => connective(terms, false),
        BoundExpr::Or(terms) => connective(terms, true),
        BoundExpr::Not(e) => {
            let inner = truth(e);
            Box::new(move |row| Ok(inner(row)?.map(|b| !b)))
        }
        BoundExpr::IsNull { expr, negated } => {
            let (operand, negated) = (Operand::of(expr), *negated);
            Box::new(move |row| operand.with(row, |v| Some(v.is_null() != negated)))
        }
        BoundExpr::InList {
            expr,
            list,
            negated,
        } => {
            let (operand, list, negated) = (Operand::of(expr), list.clone(), *negated);
            Box::new(move |row| {
                operand.with(row, |v| {
                    // Constants are never NULL here (the binder keeps them out).
                    (!v.is_null()).then(|| list.iter().any(|c| compare(v, c).is_eq()) != negated)
                })
            })
        }
        BoundExpr::Literal(v) => {
            let b = v.as_bool();
            Box::new(move |_| Ok(b))
        }
        _ => {
            let step = value(expr);
            Box::new(move |row| Ok(step(row)?.as_bool()))
        }
    }
}

/// AND (`decisive` false) or OR (`decisive` true) of `terms`, in SQL's
/// three-valued logic: the first term equal to `decisive` decides;
/// otherwise any unknown term makes the result unknown.
fn connective(terms: &[BoundExpr], decisive: bool) -> Compiled<Truth> {
    let terms: Vec<_> = terms.iter().map(truth).collect();
    Box::new(move |row| {
        let mut unknown = false;
        for term in &terms {
            match term(row)? {
                Some(b) if b == decisive => return Ok(Some(decisive)),
                None => unknown = true,
                Some(_) => {}
            }
        }
        Ok((!unknown).then_some(!decisive))
    })
}

/// `left op right`: a column against a constant integer, timestamp or
/// string reads the column in place; anything else compares values.
fn comparison(op: CompareOp, left: &BoundExpr, right: &BoundExpr) -> Compiled<Option<bool>> {
    let column_and_constant = match (left, right) {
        (BoundExpr::Column(i), BoundExpr::Literal(c)) => Some((*i, c, false)),
        (BoundExpr::Literal(c), BoundExpr::Column(i)) => Some((*i, c, true)),
        _ => None,
    };
    match column_and_constant {
        Some((i, constant, constant_first))
            if matches!(
                constant,
                Value::Int(_) | Value::Timestamp(_) | Value::Str(_)
            ) =>
        {
            let constant = constant.clone();
            Box::new(move |row| {
                let v = &row.0[i];
                let ordering = match (v, &constant) {
                    (Value::Null, _) => return Ok(None),
                    (Value::Int(a), Value::Int(b)) | (Value::Timestamp(a), Value::Timestamp(b)) => {
                        a.cmp(b)
                    }
                    (Value::Str(a), Value::Str(b)) => a.as_str().cmp(b.as_str()),
                    _ => compare(v, &constant),
                };
                Ok(Some(op.holds_for(oriented(ordering, constant_first))))
            })
        }
        _ => {
            let (left, right) = (Operand::of(left), Operand::of(right));
            Box::new(move |row| {
                left.with(row, |l| {
                    right.with(row, |r| {
                        (!l.is_null() && !r.is_null()).then(|| op.holds_for(compare(l, r)))
                    })
                })?
            })
        }
    }
}

/// The order of `column` against `constant` as written: reversed when the
/// constant is the left operand.
#[inline]
fn oriented(column_to_constant: std::cmp::Ordering, constant_first: bool) -> std::cmp::Ordering {
    if constant_first {
        column_to_constant.reverse()
    } else {
        column_to_constant
    }
}

/// An integer expression: `i64` from leaf to root.
fn int(expr: &BoundExpr) -> Compiled<Option<i64>> {
    match expr {
        BoundExpr::Column(i) => {
            let i = *i;
            Box::new(move |row| match &row.0[i] {
                Value::Int(v) => Ok(Some(*v)),
                Value::Null => Ok(None),
                v => Err(EvalError(format!("bug: {v:?} where an integer was bound"))),
            })
        }
        BoundExpr::Arith {
            op,
            kind: ArithKind::Int { bits },
            left,
            right,
        } => {
            let (op, bits, left, right) = (*op, *bits, int(left), int(right));
            Box::new(move |row| match (left(row)?, right(row)?) {
                (Some(a), Some(b)) => int_arith(op, bits, a, b).map(Some),
                _ => Ok(None),
            })
        }
        _ => from_value(
            value(expr),
            |v| match v {
                Value::Int(i) => Some(Some(*i)),
                Value::Null => Some(None),
                _ => None,
            },
            "an integer",
        ),
    }
}

/// A DOUBLE expression: `f64` from leaf to root.
fn double(expr: &BoundExpr) -> Compiled<Option<f64>> {
    match expr {
        BoundExpr::Column(i) => {
            let i = *i;
            Box::new(move |row| match &row.0[i] {
                Value::Double(v) => Ok(Some(*v)),
                Value::Null => Ok(None),
                v => Err(EvalError(format!("bug: {v:?} where a DOUBLE was bound"))),
            })
        }
        BoundExpr::Arith {
            op,
            kind: ArithKind::Double,
            left,
            right,
        } => {
            let (op, left, right) = (*op, double(left), double(right));
            Box::new(move |row| {
                let (a, b) = (left(row)?, right(row)?);
                Ok(a.zip(b).map(|(a, b)| double_arith(op, a, b)))
            })
        }
        _ => from_value(
            value(expr),
            |v| match v {
                Value::Double(d) => Some(Some(*d)),
                Value::Null => Some(None),
                _ => None,
            },
            "a DOUBLE",
        ),
    }
}

/// Whether [`decimal`] compiles `expr` itself (not through [`value`]).
fn decimal_is_direct(expr: &BoundExpr) -> bool {
    match expr {
        BoundExpr::Arith {
            kind: ArithKind::Decimal { .. },
            ..
        } => true,
        BoundExpr::Cast { from, to, .. } => from.is_integer() && to.as_decimal().is_some(),
        _ => false,
    }
}

/// A DECIMAL expression: its unscaled `i128` from leaf to root.
fn decimal(expr: &BoundExpr) -> Compiled<Option<i128>> {
    match expr {
        BoundExpr::Column(i) => {
            let i = *i;
            Box::new(move |row| match &row.0[i] {
                Value::Decimal(v) => Ok(Some(*v)),
                Value::Null => Ok(None),
                v => Err(EvalError(format!("bug: {v:?} where a DECIMAL was bound"))),
            })
        }
        BoundExpr::Literal(Value::Decimal(c)) => {
            let c = *c;
            Box::new(move |_| Ok(Some(c)))
        }
        BoundExpr::Arith {
            op,
            kind: kind @ ArithKind::Decimal { .. },
            left,
            right,
        } => {
            let (arithmetic, left, right) =
                (DecimalArith::new(*op, *kind), decimal(left), decimal(right));
            Box::new(move |row| match (left(row)?, right(row)?) {
                (Some(a), Some(b)) => arithmetic.apply(a, b),
                _ => Ok(None),
            })
        }
        BoundExpr::Cast {
            expr,
            from,
            to: SqlType::Decimal { precision, scale },
        } if from.is_integer() => {
            // CAST of an integer to DECIMAL(p, s): × 10^s, NULL beyond p digits.
            let (factor, limit) = (pow10(*scale), pow10(*precision) as u128);
            let integer = int(expr);
            Box::new(move |row| {
                Ok(integer(row)?
                    .and_then(|i| i128::from(i).checked_mul(factor))
                    .filter(|v| v.unsigned_abs() < limit))
            })
        }
        _ => from_value(
            value(expr),
            |v| match v {
                Value::Decimal(d) => Some(Some(*d)),
                Value::Null => Some(None),
                _ => None,
            },
            "a DECIMAL",
        ),
    }
}

#[cfg(test)]
mod tests;
