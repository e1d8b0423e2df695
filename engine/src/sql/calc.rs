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
//! the output row reuses the input row's allocation, and is written over
//! the input row in place when every output reads only columns at or after
//! its own position (the usual narrowing projection).

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
    /// Whether output `j` reads only input columns `>= j`, so outputs can
    /// be written over the input row in order (see [`reads_only_ahead`]).
    in_place: bool,
}

/// Whether every output `j` of `outputs` reads only input columns at or
/// after `j`, and there are no more outputs than input columns. Then
/// writing output `j` into column `j`, in order, never overwrites a
/// column a later output still reads: the projection needs no second
/// buffer. (Appended shared values sit after the input columns.)
fn reads_only_ahead(outputs: &[BoundExpr], width: usize) -> bool {
    outputs.len() <= width
        && outputs.iter().enumerate().all(|(j, output)| {
            let mut ahead = true;
            output.visit_columns(&mut |i| ahead &= i >= j);
            ahead
        })
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
        let in_place = projection
            .as_deref()
            .is_some_and(|outputs| reads_only_ahead(outputs, width));
        CompiledCalc {
            width,
            in_place,
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
        if self.in_place {
            for (j, output) in outputs.iter().enumerate() {
                let value = match output {
                    Output::Move(i) => std::mem::take(&mut row.0[*i]),
                    Output::Eval(expr) => expr.eval(&row)?,
                };
                row.0[j] = value;
            }
            row.0.truncate(outputs.len());
            return Ok(Some(row));
        }
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
        assert!(
            !calc.in_place,
            "output 1 reads column 0, already overwritten"
        );
        // NULL does not pass a filter.
        assert_eq!(calc.apply(row(&[Value::Null, Value::Null])).unwrap(), None);
        assert_eq!(
            calc.apply(row(&[Value::Int(1), Value::Null])).unwrap(),
            None
        );
    }

    #[test]
    fn projects_over_the_input_row_when_every_output_reads_ahead() {
        // Column 2 is read twice: evaluated (cloned) at 1, then at 2.
        let calc = Calc {
            filters: vec![],
            projection: Some(vec![
                BoundExpr::Column(0),
                BoundExpr::Column(2),
                BoundExpr::Column(2),
            ]),
        }
        .compile(3);
        assert!(calc.in_place);
        assert_eq!(
            calc.apply(row(&[Value::Str("a".into()), Value::Null, Value::Int(4)]))
                .unwrap(),
            Some(row(&[Value::Str("a".into()), Value::Int(4), Value::Int(4)]))
        );
    }
}
