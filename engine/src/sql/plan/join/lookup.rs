//! Planning a lookup join: `a JOIN t FOR SYSTEM_TIME AS OF a.proc_time AS s
//! ON key(a) = s.k`, Flink's processing-time temporal join of a stream with
//! a bounded table, each row joined with the table's rows of its key at the
//! moment it is processed.
//!
//! The table is read whole when the job starts and does not change, so
//! "as of the processing time" is the table itself: the join keeps no
//! state and needs no exchange. `AS OF` must name a processing-time
//! attribute of the tables before it (a column defined as `PROCTIME()`);
//! an event-time attribute would ask for a versioned table, which Sluice
//! does not have, and is refused by name.
//!
//! Of the conjuncts placed at the join, an equality of a lookup table
//! column and an expression of the other side (`MOD(B.auction, 10000) =
//! S.key`) is a key: an expression that is not a plain column is computed
//! as an extra column below the join, which drops it. A conjunct of the
//! other side alone filters before the lookup; anything else filters the
//! joined rows (exact for an inner join). At least one key is required.

use sqlparser::ast::{Expr, TableFactor};

use super::super::{at, unsupported, Plan, PlanNode};
use super::{equality_sides, filtered, Conjunct};
use crate::sql::bind::{bind, Scope, ScopeColumn};
use crate::sql::catalog::Catalog;
use crate::sql::error::{Position, SqlError};
use crate::sql::expr::BoundExpr;

/// The columns of the table `relation` looks up (qualified by its alias).
pub(super) fn lookup_table(relation: &TableFactor, catalog: &Catalog) -> Result<Plan, SqlError> {
    let position = at(relation);
    let TableFactor::Table { name, alias, .. } = relation else {
        unreachable!("only a named table has a version")
    };
    let name = name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let Some(table) = catalog.table(&name) else {
        let message = if catalog.view(&name).is_some() {
            format!("`{name}` is a view: FOR SYSTEM_TIME AS OF looks up the rows of a table")
        } else {
            let known: Vec<&str> = catalog.tables.iter().map(|t| t.name.as_str()).collect();
            format!(
                "unknown lookup table `{name}`; the script creates tables {}",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        };
        return Err(SqlError::new(position, message));
    };
    let qualifier = alias.as_ref().map_or(&name, |a| &a.name.value);
    Ok(Plan {
        node: PlanNode::Scan {
            table: name.clone(),
        },
        schema: table.scope(qualifier),
        rowtime: None,
    })
}

/// `left` joined with the lookup table `table` (planned by
/// [`lookup_table`]) under the conjuncts that read only their columns.
pub(super) fn lookup_join(
    left: Plan,
    table: Plan,
    conjuncts: Vec<Conjunct>,
    position: Position,
    as_of: &Expr,
    catalog: &Catalog,
) -> Result<Plan, SqlError> {
    check_as_of(&left, as_of, catalog)?;
    let PlanNode::Scan { table: name } = table.node else {
        unreachable!("a lookup table is planned as a scan")
    };
    let left_width = left.schema.len();
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut keys: Vec<(BoundExpr, usize, String)> = Vec::new();
    for c in conjuncts {
        if c.last_column.is_some_and(|l| l < left_width) {
            before.push((c.bound, c.text));
        } else if let Some((expr, column)) = lookup_key(&c.bound, left_width) {
            keys.push((expr, column - left_width, c.text));
        } else {
            after.push((c.bound, c.text));
        }
    }
    if keys.is_empty() {
        return Err(SqlError::new(
            position,
            format!(
                "a lookup join needs an equality between a column of `{name}` and an expression \
                 of the tables before it, of the same type (as ON MOD(B.auction, 10000) = S.key)"
            ),
        ));
    }
    let left = filtered(left, before);
    let rowtime = left.rowtime;
    let mut schema = left.schema.clone();
    schema.extend(table.schema.iter().cloned());
    // Key expressions that are not plain columns become extra columns.
    let mut exprs: Vec<BoundExpr> = (0..left_width).map(BoundExpr::Column).collect();
    let mut texts: Vec<String> = (left.schema.iter())
        .map(|c| match &c.qualifier {
            Some(q) => format!("{q}.{}", c.name),
            None => c.name.clone(),
        })
        .collect();
    let mut input_schema = left.schema.clone();
    let mut left_keys = Vec::with_capacity(keys.len());
    for (expr, column, text) in &keys {
        match expr {
            BoundExpr::Column(i) => left_keys.push(*i),
            computed => {
                left_keys.push(exprs.len());
                exprs.push(computed.clone());
                texts.push(format!("the key of {text}"));
                input_schema.push(ScopeColumn {
                    qualifier: None,
                    name: format!("lookup key {}", left_keys.len()),
                    ty: table.schema[*column].ty.clone(),
                });
            }
        }
    }
    let input = if exprs.len() == left_width {
        left
    } else {
        Plan {
            node: PlanNode::Project {
                input: Box::new(left),
                exprs,
                texts,
            },
            schema: input_schema,
            rowtime,
        }
    };
    let join = Plan {
        node: PlanNode::LookupJoin {
            input: Box::new(input),
            left_width,
            table: name,
            left_keys,
            right_keys: keys.iter().map(|k| k.1).collect(),
            texts: keys.into_iter().map(|k| k.2).collect(),
        },
        schema,
        rowtime,
    };
    Ok(filtered(join, after))
}

/// `(left expression, right column)` if `bound` is `e = c` (or `c = e`)
/// with `c` a lookup table column (after `left_width`) and `e` reading
/// columns of the other side only. The binder gave both one type; an
/// integer column cast to a wider integer is still its plain value.
fn lookup_key(bound: &BoundExpr, left_width: usize) -> Option<(BoundExpr, usize)> {
    let (left, right) = equality_sides(bound)?;
    let table_column = |e: &BoundExpr| match e {
        BoundExpr::Column(c) if *c >= left_width => Some(*c),
        BoundExpr::Cast { expr, from, to } if from.is_integer() && to.is_integer() => {
            match expr.as_ref() {
                BoundExpr::Column(c) if *c >= left_width => Some(*c),
                _ => None,
            }
        }
        _ => None,
    };
    let of_left_side = |e: &BoundExpr| {
        let (mut reads, mut only_left) = (false, true);
        e.visit_columns(&mut |i| {
            reads = true;
            only_left &= i < left_width;
        });
        reads && only_left
    };
    match (table_column(left), table_column(right)) {
        (None, Some(c)) if of_left_side(left) => Some((left.clone(), c)),
        (Some(c), None) if of_left_side(right) => Some((right.clone(), c)),
        _ => None,
    }
}

/// `as_of` names a processing-time attribute of `left`.
fn check_as_of(left: &Plan, as_of: &Expr, catalog: &Catalog) -> Result<(), SqlError> {
    let scope = Scope {
        columns: left.schema.clone(),
        udfs: catalog.functions.clone(),
        grouping: None,
    };
    let (bound, _) = bind(as_of, &scope)?;
    let BoundExpr::Column(column) = bound else {
        return Err(SqlError::new(
            at(as_of),
            "FOR SYSTEM_TIME AS OF takes a column of the tables before it: their processing-time \
             attribute (a column defined as PROCTIME())",
        ));
    };
    if left.rowtime == Some(column) {
        return Err(unsupported(
            at(as_of),
            "FOR SYSTEM_TIME AS OF an event-time attribute (a temporal join against a versioned \
             table; Sluice looks tables up as of the processing time, a column defined as PROCTIME())",
        ));
    }
    if !left.is_proctime(column, catalog) {
        return Err(SqlError::new(
            at(as_of),
            format!(
                "FOR SYSTEM_TIME AS OF needs a processing-time attribute (a column defined as \
                 PROCTIME()), and `{}` is not one",
                left.schema[column].name
            ),
        ));
    }
    Ok(())
}
