//! A fused stateless step of a SQL plan: filters, then a projection, applied
//! to one row at a time.
//!
//! The physical planner folds every `WHERE` and `SELECT` between two
//! stateful operators (or a source and a sink) into one [`Calc`], so a chain
//! of views costs one pass per row. Runs on each shard, inside the fused
//! operator chain ([`crate::Stream::try_filter_map`]). Invariants: filters
//! and projection read the input row; a projected column that is read
//! exactly once and by nothing else is moved out of the input row, not
//! cloned, so passing a string through allocates nothing.

use super::expr::{BoundExpr, EvalError};
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
    Eval(BoundExpr),
}

/// A [`Calc`] ready to run: moves decided once, at build time.
#[derive(Debug, Clone)]
pub struct CompiledCalc {
    filters: Vec<BoundExpr>,
    outputs: Option<Vec<Output>>,
}

impl Calc {
    pub fn compile(&self) -> CompiledCalc {
        let outputs = self.projection.as_ref().map(|exprs| {
            let mut reads: std::collections::HashMap<usize, usize> = Default::default();
            for expr in exprs {
                expr.visit_columns(&mut |i| *reads.entry(i).or_default() += 1);
            }
            exprs
                .iter()
                .map(|expr| match expr {
                    BoundExpr::Column(i) if reads[i] == 1 => Output::Move(*i),
                    _ => Output::Eval(expr.clone()),
                })
                .collect()
        });
        CompiledCalc {
            filters: self.filters.clone(),
            outputs,
        }
    }
}

impl CompiledCalc {
    /// The row this step makes of `row`, or `None` if a filter drops it.
    pub fn apply(&self, mut row: Row) -> Result<Option<Row>, EvalError> {
        for filter in &self.filters {
            if !filter.holds(&row)? {
                return Ok(None);
            }
        }
        let Some(outputs) = &self.outputs else {
            return Ok(Some(row));
        };
        let mut out = Vec::with_capacity(outputs.len());
        for output in outputs {
            out.push(match output {
                Output::Move(_) => Value::Null,
                Output::Eval(expr) => expr.eval(&row)?,
            });
        }
        // Every expression has read the input: now the moves may take from it.
        for (slot, output) in out.iter_mut().zip(outputs) {
            if let Output::Move(i) = output {
                *slot = std::mem::take(&mut row.0[*i]);
            }
        }
        Ok(Some(Row(out)))
    }
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
        .compile();
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
