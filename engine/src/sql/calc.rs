//! A fused stateless step of a SQL plan: filters, then a projection, applied
//! to one row at a time.
//!
//! The physical planner folds every `WHERE` and `SELECT` between two
//! stateful operators (or a source and a sink) into one [`Calc`], so a chain
//! of views costs one pass per row. Runs on each shard, inside the fused
//! operator chain ([`crate::Stream::try_filter_map`]). Invariants: filters
//! and projection read the input row; a subexpression written more than
//! once is computed once per row ([`share_subexpressions`]); a projected
//! column that is read exactly once and by nothing else is moved out of the
//! input row, not cloned, so passing a string through allocates nothing;
//! the output row reuses the input row's allocation.

use std::cell::RefCell;

use super::compiled_expr::{CompiledExpr, CompiledPredicate};
use super::expr::{BoundExpr, EvalError};
use super::shared_subexpressions::share_subexpressions;
use super::value::{Row, Value};

/// Filters and an optional projection over the same input row.
#[derive(Debug, Clone, Default)]
pub struct Calc {
    /// Conjuncts: a row passes when every one is TRUE.
    pub filters: Vec<BoundExpr>,
    /// The output row's columns; `None` passes the row through.
    pub projection: Option<Vec<BoundExpr>>,
}

/// One output column of a compiled projection.
#[derive(Debug, Clone)]
enum Output {
    /// Moved out of the input row (read nowhere else).
    Move(usize),
    Eval(CompiledExpr),
}

/// A [`Calc`] ready to run: shared subexpressions and moves decided once,
/// at build time, and every expression compiled to closures over the row.
#[derive(Debug, Clone)]
pub struct CompiledCalc {
    /// The input rows' width.
    width: usize,
    filters: Vec<CompiledPredicate>,
    /// Values appended to the row before each filter and the projection.
    shared: Vec<Vec<CompiledExpr>>,
    outputs: Option<Vec<Output>>,
}

impl Calc {
    /// The calc for input rows of `width` columns.
    pub fn compile(&self, width: usize) -> CompiledCalc {
        let mut filters = self.filters.clone();
        let mut projection = self.projection.clone();
        let shared = share_subexpressions(&mut filters, projection.as_deref_mut(), width);
        let outputs = projection.as_ref().map(|exprs| {
            let mut reads: std::collections::HashMap<usize, usize> = Default::default();
            for expr in exprs {
                expr.visit_columns(&mut |i| *reads.entry(i).or_default() += 1);
            }
            exprs
                .iter()
                .map(|expr| match expr {
                    BoundExpr::Column(i) if reads[i] == 1 => Output::Move(*i),
                    _ => Output::Eval(CompiledExpr::new(expr)),
                })
                .collect()
        });
        CompiledCalc {
            width,
            filters: filters.iter().map(CompiledPredicate::new).collect(),
            shared: shared
                .iter()
                .map(|stage| stage.iter().map(CompiledExpr::new).collect())
                .collect(),
            outputs,
        }
    }
}

thread_local! {
    /// The output values of the row being projected on this thread, before
    /// they move into the input row's allocation.
    static PROJECTED: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
}

impl CompiledCalc {
    /// The row this step makes of `row`, or `None` if a filter drops it.
    pub fn apply(&self, mut row: Row) -> Result<Option<Row>, EvalError> {
        for (filter, shared) in self.filters.iter().zip(&self.shared) {
            append_shared(&mut row, shared)?;
            if !filter.holds(&row)? {
                return Ok(None);
            }
        }
        let Some(outputs) = &self.outputs else {
            row.0.truncate(self.width);
            return Ok(Some(row));
        };
        append_shared(&mut row, &self.shared[self.filters.len()])?;
        PROJECTED.with_borrow_mut(|projected| {
            projected.clear();
            for output in outputs {
                // A moved column is read by this output only: taking it
                // now changes nothing another output reads.
                projected.push(match output {
                    Output::Move(i) => std::mem::take(&mut row.0[*i]),
                    Output::Eval(expr) => expr.eval(&row)?,
                });
            }
            row.0.clear();
            row.0.append(projected);
            Ok(Some(row))
        })
    }
}

fn append_shared(row: &mut Row, shared: &[CompiledExpr]) -> Result<(), EvalError> {
    for expr in shared {
        let value = expr.eval(row)?;
        row.0.push(value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::expr::CompareOp;

    fn row(values: &[Value]) -> Row {
        Row(values.to_vec())
    }

    #[test]
    fn filters_then_projects_moving_columns_read_once() {
        let calc = Calc {
            filters: vec![BoundExpr::Compare {
                op: CompareOp::Gt,
                left: Box::new(BoundExpr::Column(0)),
                right: Box::new(BoundExpr::Literal(Value::Int(1))),
            }],
            projection: Some(vec![
                BoundExpr::Column(1),
                BoundExpr::Column(0),
                BoundExpr::Column(0),
            ]),
        }
        .compile(2);
        let kept = calc
            .apply(row(&[Value::Int(2), Value::Str("a".into())]))
            .unwrap();
        assert_eq!(
            kept,
            Some(row(&[Value::Str("a".into()), Value::Int(2), Value::Int(2)]))
        );
        // NULL does not pass a filter.
        assert_eq!(calc.apply(row(&[Value::Null, Value::Null])).unwrap(), None);
        assert_eq!(
            calc.apply(row(&[Value::Int(1), Value::Null])).unwrap(),
            None
        );
    }
}
