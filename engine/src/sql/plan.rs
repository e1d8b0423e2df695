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
    Expr, GroupByExpr, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    SetOperator, SetQuantifier, Spanned, TableFactor, TableWithJoins,
};

use std::cell::RefCell;
use std::rc::Rc;

use super::aggregate::AggregateCall;
use super::bind::grouping::Grouping;
use super::bind::{bind, common_type, Scope, ScopeColumn};
use super::catalog::Catalog;
use super::error::{Position, SqlError};
use super::expr::BoundExpr;
use super::group_aggregate::{MAX_CALLS, MAX_DISTINCT_CALLS};
use super::sql_type::SqlType;

/// A node of the plan and the rows it yields.
#[derive(Debug, Clone)]
pub struct Plan {
    pub node: PlanNode,
    /// The output columns, in row order.
    pub schema: Vec<ScopeColumn>,
    /// The output column that is the rows' event time, if any.
    pub rowtime: Option<usize>,
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
    },
}

fn at(expr: &impl Spanned) -> Position {
    Position::of_span(expr.span())
}

fn unsupported(position: Position, what: &str) -> SqlError {
    SqlError::new(position, format!("{what} is not supported yet"))
}

/// Plans `query` against `catalog`.
pub fn plan_query(query: &Query, catalog: &Catalog) -> Result<Plan, SqlError> {
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
        SetExpr::Query(query) => plan_query(query, catalog),
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
    let mut input = match select.from.as_slice() {
        [one] => plan_from(one, catalog)?,
        [] => {
            return Err(SqlError::new(
                position,
                "a streaming query needs a FROM clause",
            ))
        }
        [_, second, ..] => return Err(unsupported(at(&second.relation), "a comma join")),
    };
    let scope = Scope {
        columns: input.schema.clone(),
        udfs: catalog.functions.clone(),
        grouping: None,
    };
    if input.is_updating() && (select.selection.is_some() || !group_by.is_empty()) {
        return Err(unsupported(
            position,
            "WHERE or GROUP BY over the result of an unbounded GROUP BY (an updating table)",
        ));
    }
    if let Some(selection) = &select.selection {
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
    if group_by.is_empty() && !has_aggregate(&select.projection, &scope)? {
        if let Some(having) = &select.having {
            return Err(SqlError::new(
                at(having),
                "HAVING needs GROUP BY or an aggregate in the select list",
            ));
        }
        return project(input, &select.projection, &scope);
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
    });
    let detecting = Scope {
        grouping: Some(grouping.clone()),
        ..scope.clone()
    };
    for item in items {
        if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
            bind(expr, &detecting)?;
        }
    }
    let found = !grouping.calls.borrow().is_empty();
    Ok(found)
}

/// A grouped select over `input`: the projection of keys and the calls'
/// arguments, the aggregation, then the select list (and `HAVING`) over
/// the keys and the calls' results.
fn plan_grouped(
    input: Plan,
    select: &Select,
    group_by: &[Expr],
    scope: Scope,
) -> Result<Plan, SqlError> {
    let position = Position::of_span(select.select_token.0.span);
    if let Some(having) = &select.having {
        return Err(unsupported(
            at(having),
            "HAVING on an unbounded GROUP BY (a group would have to leave the result)",
        ));
    }
    let mut keys = Vec::new();
    let mut key_columns = Vec::new();
    for expr in group_by {
        let (bound, ty) = bind(expr, &scope)?;
        let column = match &bound {
            BoundExpr::Column(i) => scope.columns[*i].clone(),
            _ => ScopeColumn {
                qualifier: None,
                name: expr.to_string(),
                ty: ty.clone(),
            },
        };
        key_columns.push(column);
        keys.push((bound, ty));
    }
    let grouping = Rc::new(Grouping {
        input: scope.clone(),
        keys,
        calls: RefCell::new(Vec::new()),
        detecting: false,
    });
    // Bind the select list first: it finds the calls, which are columns
    // of the aggregation's output.
    let mut output_scope = Scope {
        columns: key_columns.clone(),
        udfs: scope.udfs.clone(),
        grouping: Some(grouping.clone()),
    };
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                bind(expr, &output_scope)?;
            }
            _ => return Err(unsupported(at(item), "`*` in a grouped query")),
        }
    }
    let calls = grouping.calls.borrow().clone();
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
    // The rows aggregated: keys, then each distinct argument and filter once.
    let mut exprs: Vec<BoundExpr> = grouping.keys.iter().map(|(e, _)| e.clone()).collect();
    let mut texts: Vec<String> = group_by.iter().map(|e| e.to_string()).collect();
    let mut pre_schema = key_columns.clone();
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
    for call in &calls {
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
    let mut schema = key_columns;
    schema.extend(calls.iter().map(|c| ScopeColumn {
        qualifier: None,
        name: c.text.clone(),
        ty: c.result_type.clone(),
    }));
    let mut agg_texts: Vec<String> = group_by.iter().map(|e| e.to_string()).collect();
    agg_texts.extend(calls.iter().map(|c| c.text.clone()));
    let aggregated = Plan {
        node: PlanNode::Aggregate {
            input: Box::new(pre),
            keys: grouping.keys.len(),
            calls: aggregate_calls,
            texts: agg_texts,
        },
        schema: schema.clone(),
        rowtime: None,
    };
    output_scope.columns = schema;
    project(aggregated, &select.projection, &output_scope)
}

fn project(input: Plan, items: &[SelectItem], scope: &Scope) -> Result<Plan, SqlError> {
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

fn plan_from(from: &TableWithJoins, catalog: &Catalog) -> Result<Plan, SqlError> {
    if let Some(join) = from.joins.first() {
        return Err(unsupported(at(&join.relation), "JOIN"));
    }
    plan_relation(&from.relation, catalog)
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
                    "FOR SYSTEM_TIME AS OF (a temporal join)",
                ));
            }
            let name = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .unwrap_or_default();
            let plan = if let Some(table) = catalog.table(&name) {
                Plan {
                    node: PlanNode::Scan {
                        table: name.clone(),
                    },
                    schema: table.scope(&name),
                    rowtime: table.watermark.map(|w| w.column),
                }
            } else if let Some(view) = catalog.view(&name) {
                plan_query(&view.query, catalog)?
            } else {
                let mut known: Vec<&str> = catalog.tables.iter().map(|t| t.name.as_str()).collect();
                known.extend(catalog.views.iter().map(|v| v.name.as_str()));
                return Err(SqlError::new(
                    position,
                    format!(
                        "unknown table `{name}`; the script creates {}",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            (plan, alias.as_ref().map_or(name, |a| a.name.value.clone()))
        }
        TableFactor::Derived {
            subquery,
            alias,
            lateral: false,
        } => {
            let plan = plan_query(subquery, catalog)?;
            (
                plan,
                alias
                    .as_ref()
                    .map_or_else(String::new, |a| a.name.value.clone()),
            )
        }
        TableFactor::TableFunction { .. } => {
            return Err(unsupported(
                position,
                "window table functions (TUMBLE, HOP, CUMULATE, SESSION)",
            ))
        }
        _ => return Err(unsupported(position, "this FROM item")),
    };
    for column in &mut plan.schema {
        column.qualifier = (!qualifier.is_empty()).then(|| qualifier.clone());
    }
    Ok(plan)
}

impl Plan {
    /// Whether the rows are updates of a table keyed by some columns (an
    /// unbounded aggregation's) rather than appended rows.
    pub fn is_updating(&self) -> bool {
        match &self.node {
            PlanNode::Scan { .. } => false,
            PlanNode::Aggregate { .. } => true,
            PlanNode::Filter { input, .. } | PlanNode::Project { input, .. } => input.is_updating(),
            PlanNode::Union { inputs } => inputs.iter().any(Plan::is_updating),
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
            PlanNode::Aggregate { keys, texts, .. } => writeln!(
                out,
                "{pad}Aggregate group by [{}] compute [{}] -> [{}]",
                texts[..*keys].join(", "),
                texts[*keys..].join(", "),
                columns.join(", ")
            ),
        };
        match &self.node {
            PlanNode::Scan { .. } => {}
            PlanNode::Filter { input, .. }
            | PlanNode::Project { input, .. }
            | PlanNode::Aggregate { input, .. } => input.explain_into(out, depth + 1),
            PlanNode::Union { inputs } => {
                for input in inputs {
                    input.explain_into(out, depth + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
