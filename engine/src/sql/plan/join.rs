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
//! A table joined `FOR SYSTEM_TIME AS OF` the processing time is a lookup
//! join instead (see [`lookup`]).

use sqlparser::ast::{
    BinaryOperator, Expr, JoinConstraint, JoinOperator, TableFactor, TableVersion, TableWithJoins,
};

use super::{at, plan_relation, unsupported, Plan, PlanNode};
use crate::sql::bind::{bind, Scope};
use crate::sql::catalog::Catalog;
use crate::sql::error::{Position, SqlError};
use crate::sql::expr::{BoundExpr, CompareOp};
use crate::sql::sql_type::SqlType;

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
