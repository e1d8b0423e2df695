//! The logical plan of a query: what each operator computes, over rows of
//! which columns, with which column as event time.
//!
//! [`plan_query`] binds a query against the catalog. Views and subqueries
//! are planned where they are read (a view is its query, inlined). A
//! projection that passes the event-time column through unchanged keeps it
//! as the event time (Flink's time attribute); anything computed from it is
//! a plain TIMESTAMP. Constructs not planned yet are refused by name.

use std::fmt::Write;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor,
};

use std::cell::RefCell;
use std::rc::Rc;

use super::aggregate::AggregateCall;
use super::bind::grouping::{arguments_text, FoundAggregate, GroupWindow, Grouping};
use super::bind::{bind, common_type, Scope, ScopeColumn};
use super::catalog::Catalog;
use super::dialect::{PARTITIONED_TABLE_ARGUMENT, TABLE_ARGUMENT};
use super::error::{quoted, Position, SqlError};
use super::expr::BoundExpr;
use super::functions::Scalar;
use super::group_aggregate::{MAX_CALLS, MAX_DISTINCT_CALLS};
use super::interval_join::TimeCondition;
use super::sql_type::SqlType;
use super::value::Value;
use super::window_aggregate::SqlWindow;

/// A node of the plan and the rows it yields.
#[derive(Debug, Clone)]
pub struct Plan {
    pub node: PlanNode,
    /// The output columns, in row order.
    pub schema: Vec<ScopeColumn>,
    /// The output column that is the rows' event time, if any.
    pub rowtime: Option<usize>,
}

/// The key of the updating table an aggregation takes its rows from: a row
/// replaces the one before it with the same key.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamKey {
    /// Where the aggregation's rows carry it.
    pub columns: Vec<usize>,
    /// Its columns' names, for EXPLAIN.
    pub names: Vec<String>,
}

/// An operator.
#[derive(Debug, Clone)]
pub enum PlanNode {
    /// Every column of a table, stored then computed in declaration order.
    Scan { table: String },
    Filter {
        input: Box<Plan>,
        predicate: BoundExpr,
        text: String,
    },
    Project {
        input: Box<Plan>,
        exprs: Vec<BoundExpr>,
        texts: Vec<String>,
    },
    /// `UNION ALL`: the inputs' rows, coerced to the common types.
    Union { inputs: Vec<Plan> },
    /// Unbounded `GROUP BY`: over rows whose first `keys` columns are the
    /// group (its input is the projection that computes them and the
    /// calls' arguments and filters), one row per group, updated as rows
    /// come: the keys, then one column per call.
    Aggregate {
        input: Box<Plan>,
        keys: usize,
        calls: Vec<AggregateCall>,
        /// The keys and calls as written, for EXPLAIN.
        texts: Vec<String>,
        /// Over an updating input: where its rows carry the upstream key.
        upstream_key: Option<UpstreamKey>,
    },
    /// A window table function over `input`: its columns, then
    /// `window_start`, `window_end` and `window_time` (the event time).
    /// Only a window aggregation reads it, and assigns the windows itself:
    /// planning the aggregation removes this node.
    WindowTvf {
        input: Box<Plan>,
        window: SqlWindow,
        /// SESSION's `PARTITION BY` columns (sessions are per partition).
        partition: Vec<usize>,
        /// Windows of the processing time (`DESCRIPTOR` names a
        /// `PROCTIME()` column) rather than of event time.
        processing_time: bool,
        /// The column `DESCRIPTOR` names.
        time_column: usize,
        position: Position,
    },
    /// Windowed `GROUP BY`: over rows whose first `keys` columns are the
    /// group (besides the window), one row per group and window once the
    /// watermark passes the window's end: the keys, `window_start`,
    /// `window_end`, `window_time`, then one column per call. Append-only.
    WindowAggregate {
        input: Box<Plan>,
        keys: usize,
        calls: Vec<AggregateCall>,
        window: SqlWindow,
        /// The keys and calls as written, for EXPLAIN.
        texts: Vec<String>,
        /// Windows of the processing time: the rows' time is when their
        /// source read them (the job reads the tables below in processing
        /// time), and the output has no event-time attribute.
        processing_time: bool,
    },
    /// An inner join of two append-only inputs on equal keys (see
    /// [`join`]): the left columns, then the right. Append-only, no event
    /// time attribute.
    Join {
        left: Box<Plan>,
        right: Box<Plan>,
        left_keys: Vec<usize>,
        right_keys: Vec<usize>,
        /// The key equalities as written, for EXPLAIN.
        texts: Vec<String>,
        /// Each side's key columns by name, for EXPLAIN.
        key_names: [Vec<String>; 2],
        /// An interval join's bound on the two sides' event times (none: a
        /// regular join).
        interval: Option<TimeCondition>,
    },
    /// A lookup join, `JOIN t FOR SYSTEM_TIME AS OF l.proc_time ON …` (see
    /// [`join`]): each row of `input` joined with the rows of the bounded
    /// table `table` whose `right_keys` columns equal its `left_keys`
    /// columns. The first `left_width` input columns, then the table's
    /// (the input's further columns are key expressions computed for the
    /// lookup). Append-only, stateless; keeps the input's event time.
    LookupJoin {
        input: Box<Plan>,
        left_width: usize,
        table: String,
        left_keys: Vec<usize>,
        right_keys: Vec<usize>,
        /// The key equalities as written, for EXPLAIN.
        texts: Vec<String>,
    },
    /// `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` bounded by the
    /// enclosing `WHERE` (see [`rank`]): the input's columns, then the row
    /// number. An upsert stream.
    Rank {
        input: Box<Plan>,
        partition: Vec<usize>,
        /// `(column, descending)` per ORDER BY key.
        order: Vec<(usize, bool)>,
        /// The `N` of `rn <= N`, once the enclosing query gave it.
        limit: Option<usize>,
        partition_texts: Vec<String>,
        order_text: String,
        position: Position,
    },
}

/// Where a plan's rows have window bounds: a window table function's
/// columns (not yet assigned: the rows are the table's), or a window
/// aggregation's (each row is one window's result).
#[derive(Debug, Clone)]
pub struct Windowing {
    pub window: SqlWindow,
    pub start: usize,
    pub end: usize,
    pub time: Option<usize>,
    pub assigned: bool,
    /// A SESSION table function's partition columns (`usize::MAX` for one
    /// a projection dropped).
    pub partition: Vec<usize>,
    /// Windows of the processing time.
    pub processing_time: bool,
}

fn at(expr: &impl Spanned) -> Position {
    Position::of_span(expr.span())
}

fn unsupported(position: Position, what: &str) -> SqlError {
    SqlError::new(position, format!("{what} is not supported yet"))
}

/// Plans `query` against `catalog`.
pub fn plan_query(query: &Query, catalog: &Catalog) -> Result<Plan, SqlError> {
    let plan = plan_subquery(query, catalog)?;
    if let Some(position) = rank::unlimited_rank(&plan) {
        return Err(unsupported(
            position,
            "ROW_NUMBER() without a bound on it in the enclosing query's WHERE (rn <= N)",
        ));
    }
    if let Some(position) = plan.window_tvf_left() {
        return Err(unsupported(
            position,
            "a window table function outside a window aggregation (GROUP BY window_start, window_end) or a window join (ON … AND l.window_start = r.window_start AND l.window_end = r.window_end)",
        ));
    }
    Ok(plan)
}

/// The first select item that is an aggregate function with OVER (not
/// ROW_NUMBER()): its name and position.
fn over_aggregate(projection: &[SelectItem]) -> Option<(String, Position)> {
    projection.iter().find_map(|item| {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => return None,
        };
        match expr {
            Expr::Function(f) if f.over.is_some() => {
                let name = f.name.to_string();
                let upper = name.to_ascii_uppercase();
                super::bind::AGGREGATES
                    .contains(&upper.as_str())
                    .then(|| (name, at(expr)))
            }
            _ => None,
        }
    })
}

/// Plans a query, a view's or a subquery's.
fn plan_subquery(query: &Query, catalog: &Catalog) -> Result<Plan, SqlError> {
    let position = at(query);
    if query.with.is_some() {
        return Err(unsupported(position, "WITH"));
    }
    if query.order_by.is_some() {
        return Err(unsupported(
            position,
            "ORDER BY outside ROW_NUMBER() OVER (a stream has no end to sort at)",
        ));
    }
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return Err(unsupported(position, "LIMIT"));
    }
    plan_set_expr(&query.body, catalog, position)
}

fn plan_set_expr(body: &SetExpr, catalog: &Catalog, position: Position) -> Result<Plan, SqlError> {
    match body {
        SetExpr::Select(select) => plan_select(select, catalog),
        SetExpr::Query(query) => plan_subquery(query, catalog),
        SetExpr::SetOperation {
            op: SetOperator::Union,
            set_quantifier: SetQuantifier::All,
            left,
            right,
        } => {
            let left = plan_set_expr(left, catalog, position)?;
            let right = plan_set_expr(right, catalog, position)?;
            union(vec![left, right], position)
        }
        SetExpr::SetOperation {
            op, set_quantifier, ..
        } => Err(unsupported(
            position,
            &format!("{op} {set_quantifier} (only UNION ALL is)").replace("  ", " "),
        )),
        _ => Err(unsupported(
            position,
            "this kind of query body (VALUES, TABLE …)",
        )),
    }
}

fn union(inputs: Vec<Plan>, position: Position) -> Result<Plan, SqlError> {
    let width = inputs[0].schema.len();
    if let Some(other) = inputs.iter().find(|p| p.schema.len() != width) {
        return Err(SqlError::new(
            position,
            format!("UNION ALL of {width} and {} columns", other.schema.len()),
        ));
    }
    let mut schema = inputs[0].schema.clone();
    for plan in &inputs[1..] {
        for (column, other) in schema.iter_mut().zip(&plan.schema) {
            column.ty = common_type(&column.ty, &other.ty).ok_or_else(|| {
                SqlError::new(
                    position,
                    format!(
                        "UNION ALL column `{}`: {} and {} have no common type",
                        column.name, column.ty, other.ty
                    ),
                )
            })?;
            column.qualifier = None;
        }
    }
    // Event time survives when every input has it in the same column.
    let rowtime = inputs[0]
        .rowtime
        .filter(|r| inputs.iter().all(|p| p.rowtime == Some(*r)));
    let inputs = inputs
        .into_iter()
        .map(|plan| coerce_plan(plan, &schema))
        .collect();
    Ok(Plan {
        node: PlanNode::Union { inputs },
        schema,
        rowtime,
    })
}

/// `plan` with its columns cast to the types of `schema` (a projection only
/// when some type differs).
fn coerce_plan(plan: Plan, schema: &[ScopeColumn]) -> Plan {
    if plan.schema.iter().zip(schema).all(|(a, b)| a.ty == b.ty) {
        return plan;
    }
    let exprs = plan
        .schema
        .iter()
        .zip(schema)
        .enumerate()
        .map(|(i, (from, to))| {
            if from.ty == to.ty {
                BoundExpr::Column(i)
            } else {
                BoundExpr::Cast {
                    expr: Box::new(BoundExpr::Column(i)),
                    from: from.ty.clone(),
                    to: to.ty.clone(),
                }
            }
        })
        .collect();
    let texts = schema
        .iter()
        .map(|c| format!("CAST({} AS {})", c.name, c.ty))
        .collect();
    let rowtime = plan.rowtime;
    Plan {
        schema: schema.to_vec(),
        rowtime,
        node: PlanNode::Project {
            input: Box::new(plan),
            exprs,
            texts,
        },
    }
}

fn plan_select(select: &Select, catalog: &Catalog) -> Result<Plan, SqlError> {
    let position = Position::of_span(select.select_token.0.span);
    if select.distinct.is_some() {
        return Err(unsupported(position, "SELECT DISTINCT"));
    }
    let group_by = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.as_slice(),
        _ => {
            return Err(unsupported(
                position,
                "GROUP BY ALL, ROLLUP, CUBE and GROUPING SETS",
            ))
        }
    };
    let (mut input, selection) = match select.from.as_slice() {
        [one] if one.joins.is_empty() => (
            plan_relation(&one.relation, catalog)?,
            select.selection.as_ref(),
        ),
        [] => {
            return Err(SqlError::new(
                position,
                "a streaming query needs a FROM clause",
            ))
        }
        from => (
            join::plan_joins(from, select.selection.as_ref(), catalog)?,
            None,
        ),
    };
    let scope = Scope {
        columns: input.schema.clone(),
        udfs: catalog.functions.clone(),
        grouping: None,
    };
    let selection = match selection {
        Some(s) => rank::take_rank_limit(&mut input, s, &scope)?,
        None => None,
    };
    let selection = selection.as_ref();
    if input.is_updating() && selection.is_some() {
        return Err(unsupported(
            position,
            "WHERE over an updating table (the result of an unbounded GROUP BY or a Top-N)",
        ));
    }
    if let Some(selection) = selection {
        let (predicate, ty) = bind(selection, &scope)?;
        if !matches!(ty, SqlType::Boolean | SqlType::Null) {
            return Err(SqlError::new(
                at(selection),
                format!("WHERE needs a BOOLEAN condition, found {ty}"),
            ));
        }
        let schema = input.schema.clone();
        let rowtime = input.rowtime;
        input = Plan {
            node: PlanNode::Filter {
                input: Box::new(input),
                predicate,
                text: selection.to_string(),
            },
            schema,
            rowtime,
        };
    }
    if input.is_updating() {
        if let Some((name, position)) = over_aggregate(&select.projection) {
            return Err(SqlError::new(
                position,
                format!("{name}(…) OVER (an OVER aggregation) over an updating table (the result of an unbounded GROUP BY or a Top-N) is not supported: an OVER aggregation reads append-only rows, and Flink refuses it too"),
            ));
        }
    }
    if group_by.is_empty() && !has_aggregate(&select.projection, &scope)? {
        if let Some(having) = &select.having {
            return Err(SqlError::new(
                at(having),
                "HAVING needs GROUP BY or an aggregate in the select list",
            ));
        }
        let plan = project(input, &select.projection, &scope)?;
        if let Some(position) = rank::top_n_without_number(&plan) {
            return Err(unsupported(
                position,
                "a Top-N of more than one row without its row number in the select list (a row leaving the top N would need a retraction)",
            ));
        }
        return Ok(plan);
    }
    plan_grouped(input, select, group_by, scope)
}

/// Whether the select list calls an aggregate function (a global
/// aggregation when there is no `GROUP BY`).
fn has_aggregate(items: &[SelectItem], scope: &Scope) -> Result<bool, SqlError> {
    let grouping = Rc::new(Grouping {
        input: scope.clone(),
        keys: Vec::new(),
        calls: RefCell::new(Vec::new()),
        detecting: true,
        group_window: None,
    });
    let detecting = Scope {
        grouping: Some(grouping.clone()),
        ..scope.clone()
    };
    for item in items {
        if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
            if !rank::is_row_number(expr) {
                bind(expr, &detecting)?;
            }
        }
    }
    let found = !grouping.calls.borrow().is_empty();
    Ok(found)
}

/// A `GROUP BY` expression, bound, and what it is.
struct GroupKey {
    text: String,
    bound: BoundExpr,
    ty: SqlType,
    column: ScopeColumn,
    /// A window bound of the input (0 start, 1 end, 2 time), if it is one.
    window_role: Option<usize>,
}

/// A grouped select over `input`: the projection of keys and the calls'
/// arguments, the aggregation (windowed when it groups by a window), then
/// `HAVING` and the select list over the keys and the calls' results.
fn plan_grouped(
    input: Plan,
    select: &Select,
    group_by: &[Expr],
    scope: Scope,
) -> Result<Plan, SqlError> {
    let position = Position::of_span(select.select_token.0.span);
    let windowing = input.windowing();
    let mut group_window: Option<(SqlWindow, GroupWindow)> = None;
    let mut found = Vec::new();
    for expr in group_by {
        if let Some(window) = legacy_group_window(expr, &input, &scope)? {
            if group_window.is_some() {
                return Err(SqlError::new(at(expr), "a GROUP BY has one group window"));
            }
            group_window = Some(window);
            continue;
        }
        let (bound, ty) = bind(expr, &scope)?;
        let window_role = match (&bound, &windowing) {
            (BoundExpr::Column(i), Some(w)) => [Some(w.start), Some(w.end), w.time]
                .iter()
                .position(|c| *c == Some(*i)),
            _ => None,
        };
        let column = match &bound {
            BoundExpr::Column(i) => scope.columns[*i].clone(),
            _ => ScopeColumn {
                qualifier: None,
                name: expr.to_string(),
                ty: ty.clone(),
            },
        };
        found.push(GroupKey {
            text: expr.to_string(),
            bound,
            ty,
            column,
            window_role,
        });
    }
    let by_window = found.iter().any(|k| k.window_role == Some(0))
        && found.iter().any(|k| k.window_role == Some(1));
    let window = match (&windowing, &group_window) {
        (_, Some(_)) if by_window => {
            return Err(unsupported(
                position,
                "a group window besides window_start and window_end",
            ))
        }
        (_, Some((window, _))) => Some(*window),
        (Some(w), None) if by_window => Some(match (w.assigned, w.window) {
            (false, window) => window,
            (
                true,
                SqlWindow::Tumble { size, .. }
                | SqlWindow::Hop { size, .. }
                | SqlWindow::Assigned { size },
            ) => SqlWindow::Assigned { size },
            (true, other) => {
                return Err(unsupported(
                    position,
                    &format!("a window aggregation over the windows of a {other} aggregation"),
                ))
            }
        }),
        (Some(w), None) if !w.assigned => {
            return Err(SqlError::new(
                group_by.first().map(at).unwrap_or(position),
                "GROUP BY over a window table function must group by both window_start and window_end (a window aggregation); other uses of window table functions are not supported yet",
            ))
        }
        _ => None,
    };
    let Some(window) = window else {
        let keys = found.into_iter().map(|k| (k.bound, k.ty, k.column, k.text));
        return plan_unbounded(input, select, keys.collect(), scope);
    };
    let processing_time =
        group_window.is_none() && windowing.as_ref().is_some_and(|w| w.processing_time);
    if let (Some(w), None, SqlWindow::Session { .. }) = (&windowing, &group_window, window) {
        // The window operator forms sessions per group: that is the
        // table function's only when the groups are its partitions.
        let mut grouped: Vec<usize> = (found.iter())
            .filter(|k| k.window_role.is_none())
            .map(|k| match k.bound {
                BoundExpr::Column(c) => c,
                _ => usize::MAX - 1,
            })
            .collect();
        let mut partition = w.partition.clone();
        grouped.sort_unstable();
        partition.sort_unstable();
        if grouped != partition {
            return Err(unsupported(
                position,
                "a SESSION window aggregation whose GROUP BY columns (besides window_start and window_end) are not the table function's PARTITION BY columns",
            ));
        }
    }
    if input.is_updating() {
        return Err(unsupported(
            position,
            "a window aggregation over the result of an unbounded GROUP BY (an updating table)",
        ));
    }
    // The keys the rows carry, then the window's start, end and time.
    let mut keys = Vec::new();
    let mut key_columns = Vec::new();
    let mut key_texts = Vec::new();
    for key in &found {
        if key.window_role.is_none() || group_window.is_some() {
            keys.push((key.bound.clone(), key.ty.clone()));
            key_columns.push(key.column.clone());
            key_texts.push(key.text.clone());
        }
    }
    let row_keys = keys.len();
    let timestamp = SqlType::Timestamp { precision: 3 };
    let bounds = match (&windowing, &group_window) {
        (Some(w), None) => [Some(w.start), Some(w.end), w.time],
        _ => [None; 3],
    };
    for (role, name) in ["window_start", "window_end", "window_time"]
        .iter()
        .enumerate()
    {
        // A group window's bounds are no expression of the input.
        let bound = BoundExpr::Column(bounds[role].unwrap_or(usize::MAX - role));
        let name =
            bounds[role].map_or_else(|| (*name).to_owned(), |c| scope.columns[c].name.clone());
        keys.push((bound, timestamp.clone()));
        key_columns.push(ScopeColumn {
            qualifier: None,
            name,
            ty: timestamp.clone(),
        });
    }
    let grouping = Rc::new(Grouping {
        input: scope.clone(),
        keys,
        calls: RefCell::new(Vec::new()),
        detecting: false,
        group_window: group_window.map(|(_, g)| GroupWindow {
            start_key: row_keys,
            ..g
        }),
    });
    let mut output_scope = Scope {
        columns: key_columns.clone(),
        udfs: scope.udfs.clone(),
        grouping: Some(grouping.clone()),
    };
    // The select list and HAVING find the calls.
    bind_select_list(select, &output_scope)?;
    if let Some(having) = &select.having {
        bind(having, &output_scope)?;
    }
    let calls = grouping.calls.borrow().clone();
    // Window bounds are not in the rows before the window assigns them.
    let unassigned: Vec<usize> = match &windowing {
        Some(w) if !w.assigned => [Some(w.start), Some(w.end), w.time]
            .into_iter()
            .flatten()
            .collect(),
        _ => Vec::new(),
    };
    for call in &calls {
        let mut reads_window = false;
        for expr in call.arg.iter().map(|(e, _)| e).chain(&call.filter) {
            expr.visit_columns(&mut |i| reads_window |= unassigned.contains(&i));
        }
        if reads_window {
            return Err(unsupported(
                position,
                &format!(
                    "`{}`: an aggregate of window_start, window_end or window_time",
                    call.text
                ),
            ));
        }
    }
    let input = if unassigned.is_empty() {
        input
    } else {
        without_window_tvf(input, position)?
    };
    let row_key_list: Vec<(BoundExpr, SqlType, ScopeColumn, String)> = grouping.keys[..row_keys]
        .iter()
        .zip(&key_columns)
        .zip(&key_texts)
        .map(|(((b, t), c), text)| (b.clone(), t.clone(), c.clone(), text.clone()))
        .collect();
    let (pre, aggregate_calls) = aggregated_rows(input, &row_key_list, &calls, position)?;
    let mut schema = key_columns;
    schema.extend(calls.iter().map(|c| ScopeColumn {
        qualifier: None,
        name: c.text.clone(),
        ty: c.result_type.clone(),
    }));
    let mut texts = key_texts;
    texts.extend(calls.iter().map(|c| c.text.clone()));
    let aggregated = Plan {
        node: PlanNode::WindowAggregate {
            input: Box::new(pre),
            keys: row_keys,
            calls: aggregate_calls,
            window,
            texts,
            processing_time,
        },
        schema: schema.clone(),
        // A processing-time window's time is no event time.
        rowtime: (!processing_time).then_some(row_keys + 2),
    };
    output_scope.columns = schema;
    let filtered = match &select.having {
        Some(having) => {
            let (predicate, ty) = bind(having, &output_scope)?;
            if !matches!(ty, SqlType::Boolean | SqlType::Null) {
                return Err(SqlError::new(
                    at(having),
                    format!("HAVING needs a BOOLEAN condition, found {ty}"),
                ));
            }
            Plan {
                schema: aggregated.schema.clone(),
                rowtime: aggregated.rowtime,
                node: PlanNode::Filter {
                    input: Box::new(aggregated),
                    predicate,
                    text: having.to_string(),
                },
            }
        }
        None => aggregated,
    };
    project(filtered, &select.projection, &output_scope)
}

/// Binds the select list of a grouped query (which finds its calls).
fn bind_select_list(select: &Select, scope: &Scope) -> Result<(), SqlError> {
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                bind(expr, scope)?;
            }
            _ => return Err(unsupported(at(item), "`*` in a grouped query")),
        }
    }
    Ok(())
}

/// `GROUP BY TUMBLE(ts, size)`, `HOP(ts, slide, size)` or `SESSION(ts,
/// gap)` (Flink's group windows), over the input's event time.
fn legacy_group_window(
    expr: &Expr,
    input: &Plan,
    scope: &Scope,
) -> Result<Option<(SqlWindow, GroupWindow)>, SqlError> {
    let Expr::Function(function) = expr else {
        return Ok(None);
    };
    let upper = function.name.to_string().to_ascii_uppercase();
    if !matches!(upper.as_str(), "TUMBLE" | "HOP" | "SESSION") {
        return Ok(None);
    }
    let args = unnamed_arguments(function, at(expr))?;
    let Some((time, intervals)) = args.split_first() else {
        return Err(SqlError::new(
            at(expr),
            format!("{upper} needs the event-time column and its interval(s)"),
        ));
    };
    let (bound, _) = bind(time, scope)?;
    let is_rowtime = matches!(bound, BoundExpr::Column(i) if input.rowtime == Some(i));
    if !is_rowtime {
        return Err(SqlError::new(
            at(*time),
            format!("{upper}'s first argument {} must be the event-time attribute (the column of a WATERMARK), passed through unchanged", quoted(time)),
        ));
    }
    let intervals = interval_arguments(intervals)?;
    let window = match (upper.as_str(), intervals.as_slice()) {
        ("TUMBLE", [size]) => SqlWindow::Tumble {
            size: *size,
            offset: 0,
        },
        ("HOP", [slide, size]) => hop(*slide, *size, 0, at(expr))?,
        ("SESSION", [gap]) => SqlWindow::Session { gap: *gap },
        _ => {
            return Err(SqlError::new(
                at(expr),
                format!(
                    "{upper} takes the event-time column and {}",
                    match upper.as_str() {
                        "HOP" => "the slide and size intervals",
                        "SESSION" => "the gap interval",
                        _ => "the size interval",
                    }
                ),
            ))
        }
    };
    Ok(Some((
        window,
        GroupWindow {
            function: upper,
            arguments: arguments_text(function),
            start_key: 0,
        },
    )))
}

/// A function's arguments, which must all be positional.
fn unnamed_arguments(
    function: &sqlparser::ast::Function,
    position: Position,
) -> Result<Vec<&Expr>, SqlError> {
    let FunctionArguments::List(list) = &function.args else {
        return Ok(Vec::new());
    };
    list.args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            other => Err(unsupported(
                position,
                &format!(
                    "the argument {} (pass arguments by position)",
                    quoted(other)
                ),
            )),
        })
        .collect()
}

/// Constant positive intervals, in ms.
fn interval_arguments(args: &[&Expr]) -> Result<Vec<i64>, SqlError> {
    args.iter()
        .map(|arg| match bind(arg, &Scope::default()) {
            Ok((BoundExpr::Literal(Value::Int(ms)), SqlType::Interval)) if ms > 0 => Ok(ms),
            Ok((_, SqlType::Interval)) => Err(SqlError::new(
                at(*arg),
                format!("window interval {} must be positive", quoted(arg)),
            )),
            _ => Err(SqlError::new(
                at(*arg),
                format!(
                    "{} is not a constant interval (INTERVAL '10' SECOND)",
                    quoted(arg)
                ),
            )),
        })
        .collect()
}

fn hop(slide: i64, size: i64, offset: i64, position: Position) -> Result<SqlWindow, SqlError> {
    if size % slide != 0 {
        return Err(SqlError::new(
            position,
            format!("HOP needs a size that is a whole multiple of the slide, got size {size} ms and slide {slide} ms"),
        ));
    }
    Ok(SqlWindow::Hop {
        slide,
        size,
        offset,
    })
}

/// `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), size [, offset]))`, `HOP(…,
/// slide, size [, offset])` or `CUMULATE(…, step, size [, offset])`: `t`'s
/// columns, then `window_start`, `window_end` and `window_time`.
fn plan_window_tvf(expr: &Expr, catalog: &Catalog) -> Result<Plan, SqlError> {
    let position = at(expr);
    let Expr::Function(function) = expr else {
        return Err(unsupported(position, "this table function"));
    };
    let upper = function.name.to_string().to_ascii_uppercase();
    if !matches!(upper.as_str(), "TUMBLE" | "HOP" | "CUMULATE" | "SESSION") {
        return Err(SqlError::new(
            position,
            format!("unknown table function `{}`: the window table functions are TUMBLE, HOP, CUMULATE and SESSION", function.name),
        ));
    }
    let args = unnamed_arguments(function, position)?;
    let (table, descriptor, intervals) = match args.as_slice() {
        [table, descriptor, intervals @ ..] => (table, descriptor, intervals),
        _ => {
            return Err(SqlError::new(
                position,
                format!("{upper} takes TABLE t, DESCRIPTOR(time column) and intervals"),
            ))
        }
    };
    let name_of = |table: &Expr| match table {
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()),
        _ => None,
    };
    let (table_name, partition) = match table {
        Expr::Prefixed { prefix, value } if prefix.value == TABLE_ARGUMENT => {
            (name_of(value), None)
        }
        Expr::Prefixed { prefix, value } if prefix.value == PARTITIONED_TABLE_ARGUMENT => {
            match value.as_ref() {
                Expr::Tuple(parts) if !parts.is_empty() => (name_of(&parts[0]), Some(&parts[1..])),
                _ => (None, None),
            }
        }
        _ => (None, None),
    };
    if partition.is_some() && upper != "SESSION" {
        return Err(unsupported(
            at(*table),
            &format!("PARTITION BY in {upper} (only SESSION takes it)"),
        ));
    }
    let Some(table_name) = table_name else {
        return Err(SqlError::new(
            at(*table),
            format!("{upper}'s first argument is `TABLE name`, found `{table}`"),
        ));
    };
    let input = plan_named(&table_name, at(*table), catalog)?;
    let time = match descriptor {
        Expr::Function(d) if d.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") => {
            match unnamed_arguments(d, at(*descriptor))?.as_slice() {
                [Expr::Identifier(column)] => Some(column.value.clone()),
                _ => None,
            }
        }
        _ => None,
    };
    let Some(time) = time else {
        return Err(SqlError::new(
            at(*descriptor),
            format!("{upper}'s second argument is DESCRIPTOR(time column), found `{descriptor}`"),
        ));
    };
    let scope = Scope {
        columns: input.schema.clone(),
        ..Scope::default()
    };
    let column = scope.resolve(None, &time, at(*descriptor))?;
    let partition = match partition {
        Some(columns) => columns
            .iter()
            .map(|c| match c {
                Expr::Identifier(name) => scope.resolve(None, &name.value, at(c)),
                other => Err(SqlError::new(at(other), "PARTITION BY takes columns")),
            })
            .collect::<Result<Vec<usize>, SqlError>>()?,
        None => Vec::new(),
    };
    let processing_time = input.rowtime != Some(column);
    if processing_time && !input.is_proctime(column, catalog) {
        return Err(SqlError::new(
            at(*descriptor),
            format!("DESCRIPTOR({time}) must name a time attribute of `{table_name}`: its event time (the column of its WATERMARK) or its processing time (a column defined as PROCTIME()), passed through unchanged"),
        ));
    }
    if input.is_updating() {
        return Err(unsupported(
            position,
            "a window table function over an updating table",
        ));
    }
    let intervals = interval_arguments(intervals)?;
    let window = match (upper.as_str(), intervals.as_slice()) {
        ("TUMBLE", [size, offset @ ..]) if offset.len() <= 1 => SqlWindow::Tumble {
            size: *size,
            offset: offset.first().copied().unwrap_or(0),
        },
        ("HOP", [slide, size, offset @ ..]) if offset.len() <= 1 => hop(
            *slide,
            *size,
            offset.first().copied().unwrap_or(0),
            position,
        )?,
        ("SESSION", [gap]) => SqlWindow::Session { gap: *gap },
        ("CUMULATE", [step, size, offset @ ..]) if offset.len() <= 1 => {
            if size % step != 0 {
                return Err(SqlError::new(
                    position,
                    format!("CUMULATE needs a size that is a whole multiple of the step, got size {size} ms and step {step} ms"),
                ));
            }
            SqlWindow::Cumulate {
                step: *step,
                size: *size,
                offset: offset.first().copied().unwrap_or(0),
            }
        }
        _ => {
            return Err(SqlError::new(
                position,
                format!(
                    "{upper} takes TABLE t, DESCRIPTOR(time column), {}",
                    match upper.as_str() {
                        "TUMBLE" => "the size and an optional offset",
                        "HOP" => "the slide, the size and an optional offset",
                        "SESSION" => "the gap",
                        _ => "the step, the size and an optional offset",
                    }
                ),
            ))
        }
    };
    let width = input.schema.len();
    let mut schema = input.schema.clone();
    for name in ["window_start", "window_end", "window_time"] {
        schema.push(ScopeColumn {
            qualifier: None,
            name: name.into(),
            ty: SqlType::Timestamp { precision: 3 },
        });
    }
    Ok(Plan {
        node: PlanNode::WindowTvf {
            input: Box::new(input),
            window,
            partition,
            processing_time,
            time_column: column,
            position,
        },
        schema,
        rowtime: (!processing_time).then_some(width + 2),
    })
}

/// `plan` (rows of a window table function, through filters and
/// projections) without the function: the window aggregation above
/// assigns the windows. What read the window bounds reads NULL instead;
/// only the aggregation's keys may name them.
fn without_window_tvf(plan: Plan, position: Position) -> Result<Plan, SqlError> {
    let bounds = window_columns(&plan);
    let Plan {
        node,
        schema,
        rowtime,
    } = plan;
    let node = match node {
        PlanNode::WindowTvf { input, .. } => return Ok(*input),
        PlanNode::Filter {
            input,
            predicate,
            text,
        } => {
            if reads_any(&predicate, &bounds) {
                return Err(unsupported(
                    position,
                    &format!("WHERE {text}: a condition on window_start, window_end or window_time before the window aggregation"),
                ));
            }
            PlanNode::Filter {
                input: Box::new(without_window_tvf(*input, position)?),
                predicate,
                text,
            }
        }
        PlanNode::Project {
            input,
            mut exprs,
            texts,
        } => {
            let input_bounds = window_columns(&input);
            for (expr, text) in exprs.iter_mut().zip(&texts) {
                match expr {
                    BoundExpr::Column(i) if input_bounds.contains(i) => {
                        *expr = BoundExpr::Literal(Value::Null)
                    }
                    _ if reads_any(expr, &input_bounds) => {
                        return Err(unsupported(
                            position,
                            &format!("`{text}`: an expression of window_start, window_end or window_time before the window aggregation"),
                        ));
                    }
                    _ => {}
                }
            }
            PlanNode::Project {
                input: Box::new(without_window_tvf(*input, position)?),
                exprs,
                texts,
            }
        }
        other => other,
    };
    Ok(Plan {
        node,
        schema,
        rowtime,
    })
}

/// The columns of `plan` that hold window bounds (window_start,
/// window_end, window_time), if its rows come from a window table function.
fn window_columns(plan: &Plan) -> Vec<usize> {
    plan.windowing().map_or_else(Vec::new, |w| {
        [Some(w.start), Some(w.end), w.time]
            .into_iter()
            .flatten()
            .collect()
    })
}

/// Whether `expr` reads any of `columns`.
fn reads_any(expr: &BoundExpr, columns: &[usize]) -> bool {
    let mut reads = false;
    expr.visit_columns(&mut |i| reads |= columns.contains(&i));
    reads
}

/// An unbounded `GROUP BY` over `input` by `keys` (bound, type, column,
/// text): an upsert stream keyed by the group.
fn plan_unbounded(
    input: Plan,
    select: &Select,
    keys: Vec<(BoundExpr, SqlType, ScopeColumn, String)>,
    scope: Scope,
) -> Result<Plan, SqlError> {
    let position = Position::of_span(select.select_token.0.span);
    if let Some(having) = &select.having {
        return Err(unsupported(
            at(having),
            "HAVING on an unbounded GROUP BY (a group would have to leave the result)",
        ));
    }
    let key_columns: Vec<ScopeColumn> = keys.iter().map(|k| k.2.clone()).collect();
    let grouping = Rc::new(Grouping {
        input: scope.clone(),
        keys: keys.iter().map(|k| (k.0.clone(), k.1.clone())).collect(),
        calls: RefCell::new(Vec::new()),
        detecting: false,
        group_window: None,
    });
    // Bind the select list first: it finds the calls, which are columns
    // of the aggregation's output.
    let mut output_scope = Scope {
        columns: key_columns.clone(),
        udfs: scope.udfs.clone(),
        grouping: Some(grouping.clone()),
    };
    bind_select_list(select, &output_scope)?;
    let calls = grouping.calls.borrow().clone();
    let (input, keys, calls, upstream) = match input.is_updating() {
        false => (input, keys, calls, None),
        true => {
            let over = over_upstream_aggregate(input, keys, calls, position)?;
            (over.base, over.keys, over.calls, Some(over.upstream))
        }
    };
    let (mut pre, aggregate_calls) = aggregated_rows(input, &keys, &calls, position)?;
    let cannot_retract = calls
        .iter()
        .zip(&aggregate_calls)
        .find(|(_, c)| !c.retracts());
    if let (Some(_), Some((found, _))) = (&upstream, cannot_retract) {
        return Err(unsupported(
            position,
            &format!(
                "`{}` over the result of an unbounded GROUP BY (an updating table): only COUNT, SUM and AVG without DISTINCT take back a replaced row",
                found.text
            ),
        ));
    }
    let upstream_key = upstream.map(|(columns, names)| UpstreamKey {
        columns: append_columns(&mut pre, &columns),
        names,
    });
    let mut schema = key_columns;
    schema.extend(calls.iter().map(|c| ScopeColumn {
        qualifier: None,
        name: c.text.clone(),
        ty: c.result_type.clone(),
    }));
    let mut agg_texts: Vec<String> = keys.iter().map(|k| k.3.clone()).collect();
    agg_texts.extend(calls.iter().map(|c| c.text.clone()));
    let aggregated = Plan {
        node: PlanNode::Aggregate {
            input: Box::new(pre),
            keys: keys.len(),
            calls: aggregate_calls,
            texts: agg_texts,
            upstream_key,
        },
        schema: schema.clone(),
        rowtime: None,
    };
    output_scope.columns = schema;
    project(aggregated, &select.projection, &output_scope)
}

/// A key, with its type, scope column and text as written.
type BoundKey = (BoundExpr, SqlType, ScopeColumn, String);

/// An aggregation rewritten to read the upstream aggregation's rows.
struct OverUpstream {
    /// The upstream aggregation.
    base: Plan,
    keys: Vec<BoundKey>,
    calls: Vec<FoundAggregate>,
    /// The upstream key's columns in `base`'s rows, and their names.
    upstream: (Vec<usize>, Vec<String>),
}

/// An unbounded aggregation over `input`, the upserts of another one (seen
/// through projections): the keys and calls rewritten to read that
/// aggregation's rows directly, which carry its key (the upstream key).
/// Refused unless each group key is an upstream key column, so that the
/// rows of one upstream key stay in one group (which then never empties).
fn over_upstream_aggregate(
    input: Plan,
    mut keys: Vec<BoundKey>,
    mut calls: Vec<FoundAggregate>,
    position: Position,
) -> Result<OverUpstream, SqlError> {
    let Some((base, to_base)) = upstream_aggregate(input) else {
        return Err(unsupported(
            position,
            "GROUP BY over an updating table other than an unbounded GROUP BY's result (a Top-N, or a UNION with one)",
        ));
    };
    let PlanNode::Aggregate {
        keys: upstream_keys,
        ..
    } = &base.node
    else {
        unreachable!("upstream_aggregate finds an aggregation");
    };
    let upstream: Vec<usize> = (0..*upstream_keys).collect();
    let names: Vec<String> = base.schema[..*upstream_keys]
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let rewrite = |e: &mut BoundExpr| e.rewrite_columns(&mut |i| to_base[i].clone());
    for key in &mut keys {
        rewrite(&mut key.0);
        if !matches!(key.0, BoundExpr::Column(c) if upstream.contains(&c)) {
            return Err(unsupported(
                position,
                &format!(
                    "GROUP BY {} over the result of an unbounded GROUP BY (an updating table) that is not grouped by it: group by columns of its key ({})",
                    quoted(&key.3),
                    names.join(", ")
                ),
            ));
        }
    }
    for call in &mut calls {
        if let Some((arg, _)) = &mut call.arg {
            rewrite(arg);
        }
        if let Some(filter) = &mut call.filter {
            rewrite(filter);
        }
    }
    Ok(OverUpstream {
        base,
        keys,
        calls,
        upstream: (upstream, names),
    })
}

/// An updating `plan` as the unbounded aggregation it shows (through
/// projections), and its columns as expressions over that aggregation's.
fn upstream_aggregate(plan: Plan) -> Option<(Plan, Vec<BoundExpr>)> {
    if let PlanNode::Aggregate { .. } = &plan.node {
        let columns = (0..plan.schema.len()).map(BoundExpr::Column).collect();
        return Some((plan, columns));
    }
    let PlanNode::Project {
        input, mut exprs, ..
    } = plan.node
    else {
        return None;
    };
    let (base, inner) = upstream_aggregate(*input)?;
    for expr in &mut exprs {
        expr.rewrite_columns(&mut |i| inner[i].clone());
    }
    Some((base, exprs))
}

/// Adds `columns` of a projection's input to its output (where it does not
/// output them already); returns where they are.
fn append_columns(projection: &mut Plan, columns: &[usize]) -> Vec<usize> {
    let PlanNode::Project {
        input,
        exprs,
        texts,
    } = &mut projection.node
    else {
        unreachable!("an aggregation's rows are a projection");
    };
    columns
        .iter()
        .map(|&c| {
            if let Some(at) = exprs
                .iter()
                .position(|e| matches!(e, BoundExpr::Column(i) if *i == c))
            {
                return at;
            }
            exprs.push(BoundExpr::Column(c));
            texts.push(input.schema[c].name.clone());
            projection.schema.push(input.schema[c].clone());
            exprs.len() - 1
        })
        .collect()
}

/// The rows an aggregation takes: its `keys`, then each distinct argument
/// and filter of `calls` once; and the calls over those columns.
fn aggregated_rows(
    input: Plan,
    keys: &[(BoundExpr, SqlType, ScopeColumn, String)],
    calls: &[FoundAggregate],
    position: Position,
) -> Result<(Plan, Vec<AggregateCall>), SqlError> {
    let distinct = calls.iter().filter(|c| c.distinct).count();
    if calls.len() > MAX_CALLS {
        return Err(SqlError::new(
            position,
            format!(
                "{} aggregates in one query; at most {MAX_CALLS} are supported",
                calls.len()
            ),
        ));
    }
    if distinct > MAX_DISTINCT_CALLS {
        return Err(SqlError::new(
            position,
            format!("{distinct} DISTINCT aggregates in one query; at most {MAX_DISTINCT_CALLS} are supported"),
        ));
    }
    let mut exprs: Vec<BoundExpr> = keys.iter().map(|k| k.0.clone()).collect();
    let mut texts: Vec<String> = keys.iter().map(|k| k.3.clone()).collect();
    let mut pre_schema: Vec<ScopeColumn> = keys.iter().map(|k| k.2.clone()).collect();
    let mut column_of =
        |expr: &BoundExpr, ty: &SqlType, written: &str, exprs: &mut Vec<BoundExpr>| {
            let key = format!("{expr:?}");
            if let Some(i) = exprs.iter().position(|e| format!("{e:?}") == key) {
                return i;
            }
            exprs.push(expr.clone());
            texts.push(written.to_owned());
            pre_schema.push(ScopeColumn {
                qualifier: None,
                name: format!("${}", exprs.len() - 1),
                ty: ty.clone(),
            });
            exprs.len() - 1
        };
    let mut aggregate_calls = Vec::new();
    for call in calls {
        let arg = call.arg.as_ref().map(|(expr, ty)| {
            column_of(expr, ty, call.arg_text.as_deref().unwrap_or(""), &mut exprs)
        });
        let filter = call.filter.as_ref().map(|expr| {
            column_of(
                expr,
                &SqlType::Boolean,
                call.filter_text.as_deref().unwrap_or(""),
                &mut exprs,
            )
        });
        aggregate_calls.push(AggregateCall {
            kind: call.kind,
            arg,
            arg_type: call
                .arg
                .as_ref()
                .map_or(SqlType::Null, |(_, ty)| ty.clone()),
            filter,
            distinct: call.distinct,
            result_type: call.result_type.clone(),
        });
    }
    let pre = Plan {
        node: PlanNode::Project {
            input: Box::new(input),
            exprs,
            texts,
        },
        schema: pre_schema,
        rowtime: None,
    };
    Ok((pre, aggregate_calls))
}

fn project(input: Plan, items: &[SelectItem], scope: &Scope) -> Result<Plan, SqlError> {
    let (input, row_number) = rank::row_number_input(input, items, scope)?;
    let mut exprs = Vec::new();
    let mut texts = Vec::new();
    let mut schema = Vec::new();
    let mut rowtime = None;
    let mut push =
        |bound: BoundExpr, ty: SqlType, name: String, text: String, qualifier: Option<String>| {
            if let (BoundExpr::Column(i), Some(r)) = (&bound, input.rowtime) {
                if *i == r && rowtime.is_none() {
                    rowtime = Some(schema.len());
                }
            }
            exprs.push(bound);
            texts.push(text);
            schema.push(ScopeColumn {
                qualifier,
                name,
                ty,
            });
        };
    for (n, item) in items.iter().enumerate() {
        match item {
            SelectItem::UnnamedExpr(expr) if rank::is_row_number(expr) => push(
                BoundExpr::Column(row_number.expect("planned above")),
                SqlType::BigInt,
                format!("EXPR${n}"),
                expr.to_string(),
                None,
            ),
            SelectItem::ExprWithAlias { expr, alias } if rank::is_row_number(expr) => push(
                BoundExpr::Column(row_number.expect("planned above")),
                SqlType::BigInt,
                alias.value.clone(),
                format!("{expr} AS {alias}"),
                None,
            ),
            SelectItem::UnnamedExpr(expr) => {
                let (bound, ty) = bind(expr, scope)?;
                let (name, qualifier) = match (&bound, expr) {
                    (BoundExpr::Column(i), _) => (
                        scope.columns[*i].name.clone(),
                        scope.columns[*i].qualifier.clone(),
                    ),
                    // Flink's name for an unnamed expression: by its place.
                    _ => (format!("EXPR${n}"), None),
                };
                // A nested field projected bare is named by its last part.
                let name = match expr {
                    Expr::CompoundIdentifier(parts) if name.contains('.') => {
                        parts.last().map_or(name, |p| p.value.clone())
                    }
                    _ => name,
                };
                push(bound, ty, name, expr.to_string(), qualifier);
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let (bound, ty) = bind(expr, scope)?;
                push(
                    bound,
                    ty,
                    alias.value.clone(),
                    format!("{expr} AS {alias}"),
                    None,
                );
            }
            SelectItem::Wildcard(_) => {
                for (i, c) in scope.columns.iter().enumerate() {
                    push(
                        BoundExpr::Column(i),
                        c.ty.clone(),
                        c.name.clone(),
                        c.name.clone(),
                        c.qualifier.clone(),
                    );
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let qualifier = match kind {
                    SelectItemQualifiedWildcardKind::ObjectName(name) => name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map(|i| i.value.clone())
                        .unwrap_or_default(),
                    SelectItemQualifiedWildcardKind::Expr(e) => {
                        return Err(unsupported(at(e), "an expression before `.*`"))
                    }
                };
                let mut any = false;
                for (i, c) in scope.columns.iter().enumerate() {
                    if c.qualifier.as_deref() == Some(qualifier.as_str()) {
                        any = true;
                        push(
                            BoundExpr::Column(i),
                            c.ty.clone(),
                            c.name.clone(),
                            c.name.clone(),
                            c.qualifier.clone(),
                        );
                    }
                }
                if !any {
                    return Err(SqlError::new(
                        at(item),
                        format!("unknown table `{qualifier}` in `{qualifier}.*`"),
                    ));
                }
            }
        }
    }
    Ok(Plan {
        node: PlanNode::Project {
            input: Box::new(input),
            exprs,
            texts,
        },
        schema,
        rowtime,
    })
}

/// A table, view or subquery, its columns qualified by its alias or name.
fn plan_relation(relation: &TableFactor, catalog: &Catalog) -> Result<Plan, SqlError> {
    let position = at(relation);
    let (mut plan, qualifier) = match relation {
        TableFactor::Table {
            name,
            alias,
            args,
            version,
            ..
        } => {
            if args.is_some() {
                return Err(unsupported(position, "a table function here"));
            }
            if version.is_some() {
                return Err(unsupported(
                    position,
                    "FOR SYSTEM_TIME AS OF outside JOIN … ON (a lookup join reads `a JOIN t FOR SYSTEM_TIME AS OF a.proc_time ON …`)",
                ));
            }
            let name = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .unwrap_or_default();
            let plan = plan_named(&name, position, catalog)?;
            (plan, alias.as_ref().map_or(name, |a| a.name.value.clone()))
        }
        TableFactor::Derived {
            subquery,
            alias,
            lateral: false,
        } => {
            let plan = plan_subquery(subquery, catalog)?;
            (
                plan,
                alias
                    .as_ref()
                    .map_or_else(String::new, |a| a.name.value.clone()),
            )
        }
        TableFactor::TableFunction { expr, alias } => (
            plan_window_tvf(expr, catalog)?,
            alias
                .as_ref()
                .map_or_else(String::new, |a| a.name.value.clone()),
        ),
        _ => return Err(unsupported(position, "this FROM item")),
    };
    for column in &mut plan.schema {
        column.qualifier = (!qualifier.is_empty()).then(|| qualifier.clone());
    }
    Ok(plan)
}

/// The table or view `name`.
fn plan_named(name: &str, position: Position, catalog: &Catalog) -> Result<Plan, SqlError> {
    if let Some(table) = catalog.table(name) {
        Ok(Plan {
            node: PlanNode::Scan {
                table: name.to_owned(),
            },
            schema: table.scope(name),
            rowtime: table.watermark.map(|w| w.column),
        })
    } else if let Some(view) = catalog.view(name) {
        plan_subquery(&view.query, catalog)
    } else {
        let mut known: Vec<&str> = catalog.tables.iter().map(|t| t.name.as_str()).collect();
        known.extend(catalog.views.iter().map(|v| v.name.as_str()));
        Err(SqlError::new(
            position,
            format!(
                "unknown table `{name}`; the script creates {}",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        ))
    }
}

impl Plan {
    /// Whether `column` is a processing-time attribute: `PROCTIME()`
    /// computed in a projection or a table's computed column, passed
    /// through unchanged.
    pub(crate) fn is_proctime(&self, column: usize, catalog: &Catalog) -> bool {
        let is_call = |e: &BoundExpr| {
            matches!(
                e,
                BoundExpr::Call {
                    function: Scalar::Proctime,
                    ..
                }
            )
        };
        match &self.node {
            PlanNode::Scan { table } => catalog
                .table(table)
                .and_then(|t| t.columns.get(column))
                .and_then(|c| c.computed.as_ref())
                .is_some_and(is_call),
            PlanNode::Filter { input, .. } => input.is_proctime(column, catalog),
            PlanNode::Project { input, exprs, .. } => match &exprs[column] {
                BoundExpr::Column(i) => input.is_proctime(*i, catalog),
                other => is_call(other),
            },
            PlanNode::LookupJoin {
                input, left_width, ..
            } => column < *left_width && input.is_proctime(column, catalog),
            PlanNode::Union { inputs } => inputs.iter().all(|i| i.is_proctime(column, catalog)),
            // A regular join, an aggregation or a rank materializes time.
            _ => false,
        }
    }

    /// Whether the rows are updates of a table keyed by some columns (an
    /// unbounded aggregation's) rather than appended rows.
    pub fn is_updating(&self) -> bool {
        match &self.node {
            PlanNode::Scan { .. } => false,
            PlanNode::Aggregate { .. } | PlanNode::Rank { .. } => true,
            PlanNode::WindowAggregate { .. } | PlanNode::Join { .. } => false,
            // Planning refuses a lookup join of an updating table.
            PlanNode::LookupJoin { .. } => false,
            PlanNode::WindowTvf { input, .. } => input.is_updating(),
            PlanNode::Filter { input, .. } | PlanNode::Project { input, .. } => input.is_updating(),
            PlanNode::Union { inputs } => inputs.iter().any(Plan::is_updating),
        }
    }

    /// Where the rows have window bounds, if they have.
    pub fn windowing(&self) -> Option<Windowing> {
        match &self.node {
            PlanNode::WindowTvf {
                input,
                window,
                partition,
                processing_time,
                ..
            } => {
                let width = input.schema.len();
                Some(Windowing {
                    window: *window,
                    start: width,
                    end: width + 1,
                    time: Some(width + 2),
                    assigned: false,
                    partition: partition.clone(),
                    processing_time: *processing_time,
                })
            }
            PlanNode::WindowAggregate {
                keys,
                window,
                processing_time,
                ..
            } => Some(Windowing {
                window: *window,
                start: *keys,
                end: keys + 1,
                time: Some(keys + 2),
                assigned: true,
                partition: Vec::new(),
                processing_time: *processing_time,
            }),
            PlanNode::Filter { input, .. } => input.windowing(),
            PlanNode::Project { input, exprs, .. } => {
                let below = input.windowing()?;
                let find = |column: usize| {
                    exprs
                        .iter()
                        .position(|e| matches!(e, BoundExpr::Column(i) if *i == column))
                };
                Some(Windowing {
                    start: find(below.start)?,
                    end: find(below.end)?,
                    time: below.time.and_then(find),
                    partition: (below.partition.iter())
                        .map(|&c| find(c).unwrap_or(usize::MAX))
                        .collect(),
                    ..below
                })
            }
            PlanNode::Scan { .. }
            | PlanNode::Union { .. }
            | PlanNode::Aggregate { .. }
            | PlanNode::Join { .. }
            | PlanNode::LookupJoin { .. }
            | PlanNode::Rank { .. } => None,
        }
    }

    /// Where a window table function is left that no window aggregation
    /// took (which nothing can run yet).
    fn window_tvf_left(&self) -> Option<Position> {
        match &self.node {
            PlanNode::WindowTvf { position, .. } => Some(*position),
            PlanNode::Scan { .. } => None,
            PlanNode::Filter { input, .. }
            | PlanNode::Project { input, .. }
            | PlanNode::Aggregate { input, .. }
            | PlanNode::Rank { input, .. }
            | PlanNode::LookupJoin { input, .. }
            | PlanNode::WindowAggregate { input, .. } => input.window_tvf_left(),
            PlanNode::Union { inputs } => inputs.iter().find_map(Plan::window_tvf_left),
            // A window join's inputs assign their windows themselves.
            PlanNode::Join {
                left,
                right,
                interval: Some(TimeCondition { window: true, .. }),
                ..
            } => left
                .window_tvf_left_below_assignment()
                .or_else(|| right.window_tvf_left_below_assignment()),
            PlanNode::Join { left, right, .. } => {
                left.window_tvf_left().or_else(|| right.window_tvf_left())
            }
        }
    }

    /// As [`Plan::window_tvf_left`], the first window table function
    /// reached through filters and projections excepted (it assigns the
    /// windows of a window join's input).
    fn window_tvf_left_below_assignment(&self) -> Option<Position> {
        match &self.node {
            PlanNode::Filter { input, .. } | PlanNode::Project { input, .. } => {
                input.window_tvf_left_below_assignment()
            }
            PlanNode::WindowTvf { input, .. } => input.window_tvf_left(),
            _ => self.window_tvf_left(),
        }
    }

    /// The plan as an indented tree, one operator per line, with its columns.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        self.explain_into(&mut out, 0);
        out
    }

    fn explain_into(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        let columns: Vec<String> = self
            .schema
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let time = if self.rowtime == Some(i) {
                    " *ROWTIME*"
                } else {
                    ""
                };
                format!("{} {}{time}", c.name, c.ty)
            })
            .collect();
        let _ = match &self.node {
            PlanNode::Scan { table } => writeln!(out, "{pad}Scan {table} [{}]", columns.join(", ")),
            PlanNode::Filter { text, .. } => writeln!(out, "{pad}Filter {text}"),
            PlanNode::Project { texts, .. } => writeln!(
                out,
                "{pad}Project [{}] -> [{}]",
                texts.join(", "),
                columns.join(", ")
            ),
            PlanNode::Union { .. } => writeln!(out, "{pad}UnionAll [{}]", columns.join(", ")),
            PlanNode::Aggregate {
                keys,
                texts,
                upstream_key,
                ..
            } => writeln!(
                out,
                "{pad}Aggregate group by [{}] compute [{}]{} -> [{}]",
                texts[..*keys].join(", "),
                texts[*keys..].join(", "),
                upstream_key.as_ref().map_or(String::new(), |k| format!(
                    " replacing rows by [{}]",
                    k.names.join(", ")
                )),
                columns.join(", ")
            ),
            PlanNode::WindowTvf { window, .. } => {
                writeln!(out, "{pad}WindowTvf {window} -> [{}]", columns.join(", "))
            }
            PlanNode::WindowAggregate {
                keys,
                window,
                texts,
                ..
            } => writeln!(
                out,
                "{pad}WindowAggregate {window} group by [{}] compute [{}] -> [{}]",
                texts[..*keys].join(", "),
                texts[*keys..].join(", "),
                columns.join(", ")
            ),
            PlanNode::Join {
                texts, interval, ..
            } => writeln!(
                out,
                "{pad}{} -> [{}]",
                join_head(texts, interval.as_ref()),
                columns.join(", ")
            ),
            PlanNode::LookupJoin { table, texts, .. } => writeln!(
                out,
                "{pad}LookupJoin {table} on [{}] -> [{}]",
                texts.join(", "),
                columns.join(", ")
            ),
            PlanNode::Rank {
                partition_texts,
                order_text,
                limit,
                ..
            } => writeln!(
                out,
                "{pad}Rank ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {order_text}) <= {} -> [{}]",
                partition_texts.join(", "),
                limit.map_or("?".into(), |l| l.to_string()),
                columns.join(", ")
            ),
        };
        match &self.node {
            PlanNode::Scan { .. } => {}
            PlanNode::Filter { input, .. }
            | PlanNode::Project { input, .. }
            | PlanNode::Aggregate { input, .. }
            | PlanNode::WindowTvf { input, .. }
            | PlanNode::Rank { input, .. }
            | PlanNode::LookupJoin { input, .. }
            | PlanNode::WindowAggregate { input, .. } => input.explain_into(out, depth + 1),
            PlanNode::Union { inputs } => {
                for input in inputs {
                    input.explain_into(out, depth + 1);
                }
            }
            PlanNode::Join { left, right, .. } => {
                left.explain_into(out, depth + 1);
                right.explain_into(out, depth + 1);
            }
        }
    }
}

mod join;

/// `Join inner on [keys]`, or `IntervalJoin inner on [keys] within [time
/// bounds]`, for EXPLAIN.
pub(crate) fn join_head(keys: &[String], interval: Option<&TimeCondition>) -> String {
    match interval {
        None => format!("Join inner on [{}]", keys.join(", ")),
        Some(time) if time.window => format!("WindowJoin inner on [{}]", keys.join(", ")),
        Some(time) => format!(
            "IntervalJoin inner on [{}] within [{}]",
            keys.join(", "),
            time.texts.join(", ")
        ),
    }
}
mod rank;

impl Plan {
    /// The plans this one reads.
    fn inputs(&self) -> Vec<&Plan> {
        match &self.node {
            PlanNode::Scan { .. } => Vec::new(),
            PlanNode::Filter { input, .. }
            | PlanNode::Project { input, .. }
            | PlanNode::Aggregate { input, .. }
            | PlanNode::WindowTvf { input, .. }
            | PlanNode::WindowAggregate { input, .. }
            | PlanNode::LookupJoin { input, .. }
            | PlanNode::Rank { input, .. } => vec![input],
            PlanNode::Union { inputs } => inputs.iter().collect(),
            PlanNode::Join { left, right, .. } => vec![left, right],
        }
    }
}

#[cfg(test)]
mod tests;
