//! Planning `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)`: a rank node
//! under the select list that names it, its limit taken from the
//! enclosing query's `WHERE rn <= N` (Flink's Top-N and deduplication
//! patterns; see [`crate::sql::rank`]).
//!
//! The select list's `ROW_NUMBER()` becomes the rank's last column. The
//! enclosing query's conjuncts `rn <= N`, `rn < N` and `rn = 1` (either way
//! round) set the rank's limit and leave the `WHERE`; a rank left without a
//! limit is refused, as Flink refuses a `ROW_NUMBER` it cannot bound.

use sqlparser::ast::{BinaryOperator, Expr, SelectItem, WindowType};

use super::join::split_conjuncts;
use super::{at, unsupported, Plan, PlanNode};
use crate::sql::bind::{bind, Scope, ScopeColumn};
use crate::sql::error::{Position, SqlError};
use crate::sql::expr::{BoundExpr, CompareOp};
use crate::sql::sql_type::SqlType;
use crate::sql::value::{Row, Value};

/// Whether `expr` is a `ROW_NUMBER() OVER (…)` call.
pub(super) fn is_row_number(expr: &Expr) -> bool {
    matches!(expr, Expr::Function(f) if f.over.is_some() && f.name.to_string().eq_ignore_ascii_case("ROW_NUMBER"))
}

/// `input` under the rank the select list `items` asks for, if any, and
/// the column that holds its row number.
pub(super) fn row_number_input(
    input: Plan,
    items: &[SelectItem],
    scope: &Scope,
) -> Result<(Plan, Option<usize>), SqlError> {
    let calls = items.iter().filter_map(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    });
    let mut found = None;
    for expr in calls {
        let Expr::Function(function) = expr else {
            continue;
        };
        let Some(over) = &function.over else {
            continue;
        };
        if !is_row_number(expr) {
            return Err(unsupported(
                at(expr),
                &format!("{}() OVER (only ROW_NUMBER() is)", function.name),
            ));
        }
        if found.is_some() {
            return Err(unsupported(
                at(expr),
                "a second ROW_NUMBER() in one select list",
            ));
        }
        found = Some((expr, over));
    }
    let Some((expr, over)) = found else {
        return Ok((input, None));
    };
    let position = at(expr);
    let WindowType::WindowSpec(spec) = over else {
        return Err(unsupported(position, "a named window in OVER"));
    };
    if spec.window_frame.is_some() {
        return Err(unsupported(position, "a window frame for ROW_NUMBER()"));
    }
    if input.is_updating() {
        return Err(unsupported(
            position,
            "ROW_NUMBER() over the result of an unbounded GROUP BY (an updating table)",
        ));
    }
    let column_of = |e: &Expr, clause: &str| -> Result<usize, SqlError> {
        match bind(e, scope)? {
            (BoundExpr::Column(i), _) => Ok(i),
            _ => Err(unsupported(
                at(e),
                &format!("{clause} an expression in ROW_NUMBER() (compute it in a subquery)"),
            )),
        }
    };
    let mut texts = Vec::new();
    let mut partition = Vec::new();
    for e in &spec.partition_by {
        partition.push(column_of(e, "PARTITION BY")?);
        texts.push(e.to_string());
    }
    if spec.order_by.is_empty() {
        return Err(SqlError::new(
            position,
            "ROW_NUMBER() needs ORDER BY in its OVER clause",
        ));
    }
    let mut order = Vec::new();
    for key in &spec.order_by {
        if key.options.nulls_first.is_some() {
            return Err(unsupported(at(&key.expr), "NULLS FIRST or NULLS LAST"));
        }
        let descending = key.options.asc == Some(false);
        order.push((column_of(&key.expr, "ORDER BY")?, descending));
    }
    let order_text = spec
        .order_by
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let width = input.schema.len();
    let mut schema = input.schema.clone();
    schema.push(ScopeColumn {
        qualifier: None,
        name: "ROW_NUMBER()".into(),
        ty: SqlType::BigInt,
    });
    let plan = Plan {
        node: PlanNode::Rank {
            input: Box::new(input),
            partition,
            order,
            limit: None,
            partition_texts: texts,
            order_text,
            position,
        },
        schema,
        // An updating table: no event time attribute survives it.
        rowtime: None,
    };
    Ok((plan, Some(width)))
}

/// The column of `plan` that is the row number of a rank below it that
/// has no limit yet, if there is one.
fn unlimited_rank_number(plan: &Plan) -> Option<usize> {
    match &plan.node {
        PlanNode::Rank { limit: None, .. } => Some(plan.schema.len() - 1),
        PlanNode::Filter { input, .. } => unlimited_rank_number(input),
        PlanNode::Project { input, exprs, .. } => {
            let below = unlimited_rank_number(input)?;
            exprs
                .iter()
                .position(|e| matches!(e, BoundExpr::Column(i) if *i == below))
        }
        _ => None,
    }
}

fn set_limit(plan: &mut Plan, new: usize) {
    match &mut plan.node {
        PlanNode::Rank { limit, .. } => *limit = Some(new),
        PlanNode::Filter { input, .. } | PlanNode::Project { input, .. } => set_limit(input, new),
        _ => unreachable!("set_limit follows unlimited_rank_number"),
    }
}

/// Takes the conjuncts of `selection` that bound the row number of a rank
/// below `input` as its limit; returns the rest of `selection`, if any.
pub(super) fn take_rank_limit(
    input: &mut Plan,
    selection: &Expr,
    scope: &Scope,
) -> Result<Option<Expr>, SqlError> {
    let Some(number) = unlimited_rank_number(input) else {
        return Ok(Some(selection.clone()));
    };
    let mut conjuncts = Vec::new();
    split_conjuncts(selection, &mut conjuncts);
    let mut rest: Vec<&Expr> = Vec::new();
    let mut limit = None;
    for conjunct in conjuncts {
        let (bound, _) = bind(conjunct, scope)?;
        match bound_limit(&bound, number) {
            Some(n) if n >= 1 && limit.is_none() => limit = Some(n),
            Some(_) if limit.is_none() => {
                return Err(SqlError::new(
                    at(conjunct),
                    format!("`{conjunct}` keeps no row: a Top-N needs a row number of at least 1"),
                ))
            }
            _ => rest.push(conjunct),
        }
    }
    if let Some(n) = limit {
        set_limit(input, n as usize);
    }
    Ok(rest
        .into_iter()
        .cloned()
        .reduce(|left, right| Expr::BinaryOp {
            left: Box::new(left),
            op: BinaryOperator::And,
            right: Box::new(right),
        }))
}

/// The limit `bound` sets on row number column `number`: `rn <= N` is N,
/// `rn < N` is N - 1, `rn = 1` is 1 (and the same written the other way).
fn bound_limit(bound: &BoundExpr, number: usize) -> Option<i64> {
    let BoundExpr::Compare { op, left, right } = bound else {
        return None;
    };
    let (op, n) = match (
        left.as_ref(),
        constant_int(right),
        constant_int(left),
        right.as_ref(),
    ) {
        (BoundExpr::Column(c), Some(n), _, _) if *c == number => (*op, n),
        (_, _, Some(n), BoundExpr::Column(c)) if *c == number => {
            let flipped = match op {
                CompareOp::GtEq => CompareOp::LtEq,
                CompareOp::Gt => CompareOp::Lt,
                CompareOp::LtEq => CompareOp::GtEq,
                CompareOp::Lt => CompareOp::Gt,
                other => *other,
            };
            (flipped, n)
        }
        _ => return None,
    };
    match op {
        CompareOp::LtEq => Some(n),
        CompareOp::Lt => Some(n - 1),
        CompareOp::Eq if n == 1 => Some(1),
        _ => None,
    }
}

/// The value of `expr` if it is a constant integer (`10`, `9 + 1`).
fn constant_int(expr: &BoundExpr) -> Option<i64> {
    let mut reads = false;
    expr.visit_columns(&mut |_| reads = true);
    if reads {
        return None;
    }
    match expr.eval(&Row(Vec::new())) {
        Ok(Value::Int(n)) => Some(n),
        _ => None,
    }
}

/// Where a rank below `plan` has no limit (no `WHERE rn <= N` above it).
pub(super) fn unlimited_rank(plan: &Plan) -> Option<Position> {
    match &plan.node {
        PlanNode::Rank {
            limit: None,
            position,
            ..
        } => Some(*position),
        _ => plan.inputs().into_iter().find_map(unlimited_rank),
    }
}

/// Where a Top-N of more than one row below `plan` has its row number
/// dropped by `plan`'s columns: a row that leaves the top N would then need
/// a retraction, which Sluice's upsert streams cannot carry.
pub(super) fn top_n_without_number(plan: &Plan) -> Option<Position> {
    fn rank_number(plan: &Plan) -> Option<(Option<usize>, usize, Position)> {
        match &plan.node {
            PlanNode::Rank {
                limit: Some(limit),
                position,
                ..
            } => Some((Some(plan.schema.len() - 1), *limit, *position)),
            PlanNode::Filter { input, .. } => rank_number(input),
            PlanNode::Project { input, exprs, .. } => {
                let (below, limit, position) = rank_number(input)?;
                let here = below.and_then(|b| {
                    exprs
                        .iter()
                        .position(|e| matches!(e, BoundExpr::Column(i) if *i == b))
                });
                Some((here, limit, position))
            }
            _ => None,
        }
    }
    match rank_number(plan)? {
        (None, limit, position) if limit > 1 => Some(position),
        _ => None,
    }
}
