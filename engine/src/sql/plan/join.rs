//! Planning a FROM clause of several tables: `a JOIN b ON …`, `a INNER
//! JOIN b ON …`, `a CROSS JOIN b` and the comma join `FROM a, b`, all
//! inner joins, left-deep in the order written.
//!
//! The conditions of every `ON` and the query's `WHERE` are split into
//! conjuncts and bound once against all the tables' columns (in FROM
//! order, which is the joined row's order). Each conjunct is placed at the
//! first join whose two sides have every column it reads: one that reads a
//! single side becomes a filter on that side, before the join stores its
//! rows; an equality of a column of each side becomes a join key; anything
//! else filters the join's output. (Moving `WHERE` conjuncts into the join
//! is exact for inner joins, and it is what Flink's optimizer does.) A join
//! without a key equality would be a cross product and is refused.
//!
//! Conjuncts that compare the two sides' event-time attributes, each moved
//! by constant intervals (`a.ts BETWEEN b.ts - INTERVAL '1' MINUTE AND
//! b.ts`, `a.ts > b.ts`, …), bound `a.ts - b.ts`; when they bound it from
//! below and above, the join is an interval join (see
//! [`crate::sql::interval_join`]) that applies them itself. With one bound
//! only, they filter a regular join's output, as in Flink.
//!
//! A table joined `FOR SYSTEM_TIME AS OF` the processing time is a lookup
//! join instead (see [`lookup`]).

use sqlparser::ast::{
    BinaryOperator, Expr, JoinConstraint, JoinOperator, TableFactor, TableVersion, TableWithJoins,
};

use super::{at, plan_relation, unsupported, Plan, PlanNode};
use crate::sql::bind::{bind, Scope};
use crate::sql::catalog::Catalog;
use crate::sql::error::{Position, SqlError};
use crate::sql::expr::{ArithKind, ArithOp, BoundExpr, CompareOp};
use crate::sql::interval_join::{TimeBounds, TimeCondition};
use crate::sql::sql_type::SqlType;
use crate::sql::value::Value;
use crate::sql::window_aggregate::SqlWindow;

/// A condition's conjunct, bound against the columns of every table.
struct Conjunct {
    bound: BoundExpr,
    text: String,
    /// The highest column it reads, if any.
    last_column: Option<usize>,
    first_column: Option<usize>,
}

/// The tables of `from` joined, with `selection` (the `WHERE`) applied.
pub(super) fn plan_joins(
    from: &[TableWithJoins],
    selection: Option<&Expr>,
    catalog: &Catalog,
) -> Result<Plan, SqlError> {
    // Each table, and the time it is looked up as of (a lookup table).
    let mut relations: Vec<(&TableFactor, Option<&Expr>)> = Vec::new();
    let mut conditions: Vec<(&Expr, &str)> = Vec::new();
    for item in from {
        relations.push((&item.relation, None));
        for join in &item.joins {
            let position = at(&join.relation);
            let constraint = match &join.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => c,
                JoinOperator::CrossJoin => &JoinConstraint::None,
                JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => {
                    return Err(unsupported(position, "LEFT JOIN (an outer join)"))
                }
                JoinOperator::Right(_) | JoinOperator::RightOuter(_) => {
                    return Err(unsupported(position, "RIGHT JOIN (an outer join)"))
                }
                JoinOperator::FullOuter(_) => {
                    return Err(unsupported(position, "FULL JOIN (an outer join)"))
                }
                JoinOperator::AsOf { .. } => return Err(unsupported(position, "ASOF JOIN")),
                _ => return Err(unsupported(position, "this kind of join")),
            };
            match constraint {
                JoinConstraint::On(on) => conditions.push((on, "ON")),
                JoinConstraint::None => {}
                JoinConstraint::Using(_) => {
                    return Err(unsupported(position, "JOIN … USING (write ON a.x = b.x)"))
                }
                JoinConstraint::Natural => return Err(unsupported(position, "NATURAL JOIN")),
            }
            relations.push((&join.relation, looked_up_as_of(&join.relation)));
        }
    }
    conditions.extend(selection.map(|s| (s, "WHERE")));

    let mut inputs = Vec::with_capacity(relations.len());
    for &(relation, as_of) in &relations {
        let plan = match as_of {
            Some(_) => lookup::lookup_table(relation, catalog)?,
            None => plan_relation(relation, catalog)?,
        };
        if plan.is_updating() {
            return Err(unsupported(
                at(relation),
                "a join of the result of an unbounded GROUP BY (an updating table)",
            ));
        }
        inputs.push((plan, at(relation), as_of));
    }
    let scope = Scope {
        columns: inputs
            .iter()
            .flat_map(|(p, _, _)| p.schema.iter().cloned())
            .collect(),
        udfs: catalog.functions.clone(),
        grouping: None,
    };
    let mut pending = Vec::new();
    for (condition, clause) in conditions {
        let mut parts = Vec::new();
        split_conjuncts(condition, &mut parts);
        for part in parts {
            let (bound, ty) = bind(part, &scope)?;
            if !matches!(ty, SqlType::Boolean | SqlType::Null) {
                return Err(SqlError::new(
                    at(part),
                    format!("{clause} needs a BOOLEAN condition, found {ty}"),
                ));
            }
            let (mut first_column, mut last_column) = (None::<usize>, None::<usize>);
            bound.visit_columns(&mut |i| {
                first_column = Some(first_column.map_or(i, |f| f.min(i)));
                last_column = Some(last_column.map_or(i, |l| l.max(i)));
            });
            pending.push(Conjunct {
                bound,
                text: part.to_string(),
                last_column,
                first_column,
            });
        }
    }

    let mut inputs = inputs.into_iter();
    let (mut left, _, _) = inputs.next().expect("a FROM clause names a table");
    for (right, position, as_of) in inputs {
        let left_width = left.schema.len();
        let end = left_width + right.schema.len();
        let (here, later): (Vec<Conjunct>, Vec<Conjunct>) = pending
            .into_iter()
            .partition(|c| c.last_column.is_none_or(|l| l < end));
        pending = later;
        left = match as_of {
            Some(as_of) => lookup::lookup_join(left, right, here, position, as_of, catalog)?,
            None => join_two(left, right, left_width, here, position)?,
        };
    }
    debug_assert!(pending.is_empty(), "every column is in the last join");
    Ok(left)
}

/// The time `relation` is looked up as of, if it is a lookup table.
fn looked_up_as_of(relation: &TableFactor) -> Option<&Expr> {
    match relation {
        TableFactor::Table {
            version: Some(TableVersion::ForSystemTimeAsOf(as_of)),
            ..
        } => Some(as_of),
        _ => None,
    }
}

/// `left` joined to `right` (whose columns follow the left's `left_width`
/// in the conjuncts), under the conjuncts that read only their columns.
fn join_two(
    left: Plan,
    right: Plan,
    left_width: usize,
    conjuncts: Vec<Conjunct>,
    position: Position,
) -> Result<Plan, SqlError> {
    let mut left_filters = Vec::new();
    let mut right_filters = Vec::new();
    let mut keys: Vec<(usize, usize, String)> = Vec::new();
    let mut residual = Vec::new();
    // The conjuncts that bound one side's event time by the other's.
    let times = left.rowtime.zip(right.rowtime.map(|r| r + left_width));
    let mut time_bounds: Vec<TimeConjunct> = Vec::new();
    for mut c in conjuncts {
        let only_left = c.last_column.is_some_and(|l| l < left_width);
        let only_right = c.first_column.is_some_and(|f| f >= left_width);
        if only_left {
            left_filters.push((c.bound, c.text));
        } else if only_right {
            c.bound
                .rewrite_columns(&mut |i| BoundExpr::Column(i - left_width));
            right_filters.push((c.bound, c.text));
        } else if let Some((l, r)) = key_pair(&c.bound, left_width) {
            keys.push((l, r - left_width, c.text));
        } else if let Some(bounds) = times.and_then(|(l, r)| time_bounds_of(&c.bound, l, r)) {
            time_bounds.push(TimeConjunct {
                bound: c.bound,
                text: c.text,
                limits: bounds,
            });
        } else {
            residual.push((c.bound, c.text));
        }
    }
    if keys.is_empty() {
        return Err(unsupported(
            position,
            "a join without an equality between a column of each side (a cross join)",
        ));
    }
    let same_windows = window_bounds(&left).zip(window_bounds(&right)).filter(
        |((left_start, left_end), (right_start, right_end))| {
            let keyed = |l: usize, r: usize| keys.iter().any(|k| (k.0, k.1) == (l, r));
            keyed(*left_start, *right_start) && keyed(*left_end, *right_end)
        },
    );
    let interval = match (times, interval_of(&time_bounds), same_windows) {
        (_, _, Some(((_, left_end), (_, right_end)))) if time_bounds.is_empty() => {
            Some(TimeCondition {
                bounds: TimeBounds {
                    left_time: left_end,
                    right_time: right_end,
                    lower: 0,
                    upper: 0,
                },
                texts: Vec::new(),
                window: true,
            })
        }
        (Some((left_time, right_time)), Some((lower, upper)), _) => Some(TimeCondition {
            bounds: TimeBounds {
                left_time,
                right_time: right_time - left_width,
                lower,
                upper,
            },
            texts: time_bounds.into_iter().map(|t| t.text).collect(),
            window: false,
        }),
        // One bound only: a regular join that filters its output (as Flink).
        _ => {
            residual.extend(time_bounds.into_iter().map(|t| (t.bound, t.text)));
            None
        }
    };
    let left = filtered(left, left_filters);
    let right = filtered(right, right_filters);
    let names = |plan: &Plan, column: usize| {
        let c = &plan.schema[column];
        match &c.qualifier {
            Some(q) => format!("{q}.{}", c.name),
            None => c.name.clone(),
        }
    };
    let key_names = [
        keys.iter().map(|k| names(&left, k.0)).collect(),
        keys.iter().map(|k| names(&right, k.1)).collect(),
    ];
    let schema = left.schema.iter().chain(&right.schema).cloned().collect();
    let join = Plan {
        node: PlanNode::Join {
            left_keys: keys.iter().map(|k| k.0).collect(),
            right_keys: keys.iter().map(|k| k.1).collect(),
            texts: keys.into_iter().map(|k| k.2).collect(),
            key_names,
            interval,
            left: Box::new(left),
            right: Box::new(right),
        },
        schema,
        // A regular join's rows come in no order of time: no event time
        // attribute survives it (as in Flink).
        rowtime: None,
    };
    Ok(filtered(join, residual))
}

/// A conjunct that bounds `l - r`, the left input's event time minus the
/// right's: `l - r op limit` for each of its limits.
struct TimeConjunct {
    bound: BoundExpr,
    text: String,
    limits: Vec<(CompareOp, i64)>,
}

/// The columns of `plan` that are the `window_start` and `window_end` of
/// an event-time window aggregation or window table function below it
/// (through filters and projections that keep them as they are), if it
/// has both.
fn window_bounds(plan: &Plan) -> Option<(usize, usize)> {
    match &plan.node {
        PlanNode::WindowAggregate {
            keys,
            processing_time: false,
            ..
        } => Some((*keys, keys + 1)),
        // The rows of a table function, windows assigned to each (SESSION
        // windows need the rows around them; processing time has no
        // watermark to end a window by).
        PlanNode::WindowTvf {
            input,
            window: SqlWindow::Tumble { .. } | SqlWindow::Hop { .. } | SqlWindow::Cumulate { .. },
            processing_time: false,
            ..
        } => Some((input.schema.len(), input.schema.len() + 1)),
        PlanNode::Filter { input, .. } => window_bounds(input),
        PlanNode::Project { input, exprs, .. } => {
            let (start, end) = window_bounds(input)?;
            let kept = |column: usize| {
                (exprs.iter()).position(|e| matches!(e, BoundExpr::Column(c) if *c == column))
            };
            Some((kept(start)?, kept(end)?))
        }
        _ => None,
    }
}

/// The bounds that `bound` puts on `l - r`, the left input's event time
/// (column `left_time`) minus the right's (column `right_time`): for a
/// comparison of the two, each moved by constant intervals, or a BETWEEN
/// of such (an AND of two comparisons).
fn time_bounds_of(
    bound: &BoundExpr,
    left_time: usize,
    right_time: usize,
) -> Option<Vec<(CompareOp, i64)>> {
    match bound {
        BoundExpr::And(parts) => (parts.iter())
            .map(|part| time_bounds_of(part, left_time, right_time))
            .collect::<Option<Vec<_>>>()
            .map(|bounds| bounds.concat()),
        BoundExpr::Compare { op, left, right } if *op != CompareOp::NotEq => {
            let (a, a_moved) = time_term(left)?;
            let (b, b_moved) = time_term(right)?;
            if (a, b) == (left_time, right_time) {
                // l + a_moved op r + b_moved  <=>  l - r op b_moved - a_moved
                Some(vec![(*op, b_moved.checked_sub(a_moved)?)])
            } else if (a, b) == (right_time, left_time) {
                // r + a_moved op l + b_moved  <=>  l - r op' a_moved - b_moved
                Some(vec![(mirrored(*op), a_moved.checked_sub(b_moved)?)])
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `op` with its operands swapped: `a < b` is `b > a`.
fn mirrored(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::LtEq => CompareOp::GtEq,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::GtEq => CompareOp::LtEq,
        same => same,
    }
}

/// `expr` as a column moved by a constant number of milliseconds, when it
/// is one: `ts`, `ts - INTERVAL '5' SECOND`, `INTERVAL '1' MINUTE + ts`.
fn time_term(expr: &BoundExpr) -> Option<(usize, i64)> {
    match expr {
        BoundExpr::Column(c) => Some((*c, 0)),
        BoundExpr::Cast { expr, from, to } if from.is_timestamp() && to.is_timestamp() => {
            time_term(expr)
        }
        BoundExpr::Arith {
            op,
            kind: ArithKind::TimestampInterval,
            left,
            right,
        } => match (left.as_ref(), right.as_ref(), op) {
            (term, BoundExpr::Literal(Value::Int(ms)), ArithOp::Add)
            | (BoundExpr::Literal(Value::Int(ms)), term, ArithOp::Add) => {
                let (column, moved) = time_term(term)?;
                Some((column, moved.checked_add(*ms)?))
            }
            (term, BoundExpr::Literal(Value::Int(ms)), ArithOp::Sub) => {
                let (column, moved) = time_term(term)?;
                Some((column, moved.checked_sub(*ms)?))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The interval `[lower, upper]` of `l - r` that the bounds allow (in
/// milliseconds, both ends included), if they bound it on both sides.
fn interval_of(bounds: &[TimeConjunct]) -> Option<(i64, i64)> {
    let (mut lower, mut upper) = (None::<i64>, None::<i64>);
    let mut at_least = |v: i64| lower = Some(lower.map_or(v, |l| l.max(v)));
    for time in bounds {
        for &(op, limit) in &time.limits {
            match op {
                CompareOp::GtEq => at_least(limit),
                CompareOp::Gt => at_least(limit.saturating_add(1)),
                CompareOp::Eq => at_least(limit),
                _ => {}
            }
        }
    }
    let mut at_most = |v: i64| upper = Some(upper.map_or(v, |u| u.min(v)));
    for time in bounds {
        for &(op, limit) in &time.limits {
            match op {
                CompareOp::LtEq | CompareOp::Eq => at_most(limit),
                CompareOp::Lt => at_most(limit.saturating_sub(1)),
                _ => {}
            }
        }
    }
    lower.zip(upper)
}

/// The two sides of `bound` if it is an equality.
fn equality_sides(bound: &BoundExpr) -> Option<(&BoundExpr, &BoundExpr)> {
    match bound {
        BoundExpr::Compare {
            op: CompareOp::Eq,
            left,
            right,
        } => Some((left, right)),
        _ => None,
    }
}

/// `(left column, right column)` if `bound` is `a = b` with `a` a column
/// of the left side and `b` of the right, or the other way round.
fn key_pair(bound: &BoundExpr, left_width: usize) -> Option<(usize, usize)> {
    match equality_sides(bound)? {
        (BoundExpr::Column(a), BoundExpr::Column(b)) if *a < left_width && *b >= left_width => {
            Some((*a, *b))
        }
        (BoundExpr::Column(a), BoundExpr::Column(b)) if *b < left_width && *a >= left_width => {
            Some((*b, *a))
        }
        _ => None,
    }
}

mod lookup;

/// `plan` under a filter of `conjuncts` (none: `plan` itself).
fn filtered(plan: Plan, conjuncts: Vec<(BoundExpr, String)>) -> Plan {
    if conjuncts.is_empty() {
        return plan;
    }
    let text = conjuncts
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut bound: Vec<BoundExpr> = conjuncts.into_iter().map(|(b, _)| b).collect();
    let predicate = if bound.len() == 1 {
        bound.pop().expect("one")
    } else {
        BoundExpr::And(bound)
    };
    let schema = plan.schema.clone();
    let rowtime = plan.rowtime;
    Plan {
        node: PlanNode::Filter {
            input: Box::new(plan),
            predicate,
            text,
        },
        schema,
        rowtime,
    }
}

/// The conjuncts of `expr`: its operands of `AND`, through parentheses.
pub(super) fn split_conjuncts<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_conjuncts(left, out);
            split_conjuncts(right, out);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                } | Expr::Nested(_)
            ) =>
        {
            split_conjuncts(inner, out)
        }
        other => out.push(other),
    }
}
