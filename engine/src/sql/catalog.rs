//! The catalog of a SQL script: the tables, views and functions its
//! statements create, checked as they are created.
//!
//! A table's `ROW` columns are flattened into one column per leaf field
//! (`person.id`), so rows never nest; computed columns are bound against the
//! stored ones; the watermark must be a bounded delay on a TIMESTAMP(3)
//! column (`WATERMARK FOR ts AS ts - INTERVAL '4' SECOND`), which is what
//! Sluice's sources generate. Views keep their query, planned where used.
//! Functions come from the UDFs registered from Rust, found by the class
//! name or the name a `CREATE FUNCTION` gives.

use std::sync::Arc;

use sqlparser::ast::{BinaryOperator, Expr, Query, Spanned};

use super::bind::{bind, Scope, ScopeColumn};
use super::error::{Position, SqlError};
use super::expr::BoundExpr;
use super::functions::ScalarUdf;
use super::script::{ColumnKind, Located, Statement, TableDefinition};
use super::sql_type::{RowField, SqlType};

/// A column of a table, after flattening.
#[derive(Debug, Clone)]
pub struct TableColumn {
    /// The column's name (a nested field's is its path: `person.id`).
    pub name: String,
    pub ty: SqlType,
    /// For a computed column, its expression over the stored columns
    /// (indexes into [`Table::stored`]).
    pub computed: Option<BoundExpr>,
    pub position: Position,
}

/// `WATERMARK FOR column AS column - delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableWatermark {
    /// The event-time column (an index into [`Table::columns`]).
    pub column: usize,
    /// How far the watermark trails the largest time seen, in milliseconds.
    pub delay_ms: i64,
}

/// A table created by `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub position: Position,
    /// Every column, stored then computed, in declaration order.
    pub columns: Vec<TableColumn>,
    pub watermark: Option<TableWatermark>,
    pub primary_key: Vec<String>,
    pub partitioned_by: Vec<String>,
    /// The `WITH` options, in order, each where it was written.
    pub options: Vec<Located<(String, String)>>,
}

impl Table {
    /// The stored (not computed) columns, in order.
    pub fn stored(&self) -> impl Iterator<Item = &TableColumn> {
        self.columns.iter().filter(|c| c.computed.is_none())
    }

    /// The value of option `key`, if set.
    pub fn option(&self, key: &str) -> Option<&Located<(String, String)>> {
        self.options.iter().find(|o| o.node.0 == key)
    }

    /// The table's columns as a scope qualified by `qualifier`.
    pub fn scope(&self, qualifier: &str) -> Vec<ScopeColumn> {
        self.columns
            .iter()
            .map(|c| ScopeColumn {
                qualifier: Some(qualifier.to_owned()),
                name: c.name.clone(),
                ty: c.ty.clone(),
            })
            .collect()
    }
}

/// A view: its query, bound where the view is read.
#[derive(Debug, Clone)]
pub struct View {
    pub name: String,
    pub position: Position,
    pub query: Box<Query>,
}

/// What a script has created so far.
#[derive(Debug, Default)]
pub struct Catalog {
    pub tables: Vec<Table>,
    pub views: Vec<View>,
    /// The functions the script may call (those `CREATE FUNCTION` named).
    pub functions: Vec<Arc<ScalarUdf>>,
}

impl Catalog {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn view(&self, name: &str) -> Option<&View> {
        self.views.iter().find(|v| v.name == name)
    }

    fn check_new_name(&self, name: &str, position: Position) -> Result<(), SqlError> {
        if self.table(name).is_some() || self.view(name).is_some() {
            return Err(SqlError::new(
                position,
                format!("`{name}` already exists: a script creates each table or view once"),
            ));
        }
        Ok(())
    }

    /// Applies one `CREATE` statement; other statements are left to the
    /// planner (and returned `false`).
    pub fn apply(
        &mut self,
        statement: &Located<Statement>,
        registered: &[Arc<ScalarUdf>],
    ) -> Result<bool, SqlError> {
        match &statement.node {
            Statement::CreateTable(definition) => {
                self.check_new_name(&definition.name, statement.position)?;
                let table = build_table(definition, statement.position)?;
                self.tables.push(table);
            }
            Statement::CreateView { name, query } => {
                self.check_new_name(name, statement.position)?;
                self.views.push(View {
                    name: name.clone(),
                    position: statement.position,
                    query: query.clone(),
                });
            }
            Statement::CreateFunction { name, class } => {
                let simple_class = class.rsplit('.').next().unwrap_or(class);
                let found = registered.iter().find(|u| {
                    u.name.eq_ignore_ascii_case(name)
                        || u.name.eq_ignore_ascii_case(class)
                        || u.name.eq_ignore_ascii_case(simple_class)
                });
                let Some(found) = found else {
                    let names: Vec<&str> = registered.iter().map(|u| u.name.as_str()).collect();
                    return Err(SqlError::new(
                        statement.position,
                        format!(
                            "function `{name}` AS '{class}': no function of that name is registered in this binary (registered: {})",
                            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                        ),
                    ));
                };
                let mut udf_name = found.clone();
                if !found.name.eq_ignore_ascii_case(name) {
                    // Called by the name the script gives it.
                    udf_name = Arc::new(ScalarUdf {
                        name: name.clone(),
                        args: found.args.clone(),
                        result: found.result.clone(),
                        eval: {
                            let inner = found.clone();
                            Box::new(move |args| (inner.eval)(args))
                        },
                    });
                }
                self.functions
                    .retain(|f| !f.name.eq_ignore_ascii_case(name));
                self.functions.push(udf_name);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Flattens `ty` at `path` into leaf columns.
fn flatten(path: &str, ty: &SqlType, position: Position, out: &mut Vec<TableColumn>) {
    match ty {
        SqlType::Row(fields) => {
            for RowField { name, ty } in fields {
                flatten(&format!("{path}.{name}"), ty, position, out);
            }
        }
        _ => out.push(TableColumn {
            name: path.to_owned(),
            ty: ty.clone(),
            computed: None,
            position,
        }),
    }
}

fn build_table(definition: &TableDefinition, position: Position) -> Result<Table, SqlError> {
    let mut columns = Vec::new();
    for column in &definition.columns {
        if let ColumnKind::Physical(ty) = &column.node.kind {
            flatten(&column.node.name, ty, column.position, &mut columns);
        }
    }
    let stored = Scope {
        columns: columns
            .iter()
            .map(|c| ScopeColumn {
                qualifier: Some(definition.name.clone()),
                name: c.name.clone(),
                ty: c.ty.clone(),
            })
            .collect(),
        udfs: Vec::new(),
        grouping: None,
    };
    // Computed columns, bound over the stored ones, keep declaration order.
    let mut ordered = Vec::new();
    let mut stored_iter = columns.into_iter().peekable();
    for column in &definition.columns {
        match &column.node.kind {
            ColumnKind::Physical(_) => {
                let prefix = format!("{}.", column.node.name);
                while let Some(c) = stored_iter
                    .next_if(|c| c.name == column.node.name || c.name.starts_with(&prefix))
                {
                    ordered.push(c);
                }
            }
            ColumnKind::Computed(expr) => {
                let (bound, ty) = bind(expr, &stored)?;
                ordered.push(TableColumn {
                    name: column.node.name.clone(),
                    ty,
                    computed: Some(bound),
                    position: column.position,
                });
            }
        }
    }
    let mut table = Table {
        name: definition.name.clone(),
        position,
        columns: ordered,
        watermark: None,
        primary_key: definition.primary_key.clone(),
        partitioned_by: definition.partitioned_by.clone(),
        options: definition.options.clone(),
    };
    for (kind, names) in [
        ("PRIMARY KEY", &table.primary_key),
        ("PARTITIONED BY", &table.partitioned_by),
    ] {
        for name in names {
            if !table.columns.iter().any(|c| &c.name == name) {
                return Err(SqlError::new(
                    position,
                    format!(
                        "{kind} column `{name}` is not a column of table `{}`",
                        table.name
                    ),
                ));
            }
        }
    }
    if let Some(watermark) = &definition.watermark {
        table.watermark = Some(build_watermark(&table, watermark)?);
    }
    if table.option("connector").is_none() {
        return Err(SqlError::new(
            position,
            format!("table `{}` has no 'connector' option", table.name),
        ));
    }
    Ok(table)
}

fn build_watermark(
    table: &Table,
    watermark: &Located<super::script::Watermark>,
) -> Result<TableWatermark, SqlError> {
    let name = &watermark.node.column;
    let column = table
        .columns
        .iter()
        .position(|c| &c.name == name)
        .ok_or_else(|| {
            SqlError::new(
                watermark.position,
                format!(
                    "WATERMARK FOR `{name}`: no such column in table `{}`",
                    table.name
                ),
            )
        })?;
    if !matches!(
        table.columns[column].ty,
        SqlType::Timestamp { precision: 3 } | SqlType::TimestampLtz { precision: 3 }
    ) {
        return Err(SqlError::new(
            watermark.position,
            format!(
                "WATERMARK FOR `{name}`: the event-time column must be TIMESTAMP(3) or TIMESTAMP_LTZ(3), not {}",
                table.columns[column].ty
            ),
        ));
    }
    let is_column = |e: &Expr| match e {
        Expr::Identifier(i) => &i.value == name,
        _ => false,
    };
    let unsupported = || {
        SqlError::new(
            Position::of_span(watermark.node.expr.span()),
            format!("WATERMARK FOR `{name}`: only `{name}` or `{name} - INTERVAL '…' unit` (a bounded delay) is supported"),
        )
    };
    let delay_ms = match &watermark.node.expr {
        e if is_column(e) => 0,
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if is_column(left) => {
            let (bound, ty) = bind(right, &Scope::default()).map_err(|_| unsupported())?;
            match (bound, ty) {
                (BoundExpr::Literal(super::Value::Int(ms)), SqlType::Interval) if ms >= 0 => ms,
                _ => return Err(unsupported()),
            }
        }
        _ => return Err(unsupported()),
    };
    Ok(TableWatermark { column, delay_ms })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::script::parse_script;

    fn catalog(script: &str) -> Result<Catalog, SqlError> {
        let mut catalog = Catalog::default();
        let udf = Arc::new(ScalarUdf {
            name: "CountChar".into(),
            args: vec![SqlType::Varchar, SqlType::Varchar],
            result: SqlType::BigInt,
            eval: Box::new(|_| Ok(super::super::Value::Int(0))),
        });
        for statement in parse_script(script)? {
            catalog.apply(&statement, std::slice::from_ref(&udf))?;
        }
        Ok(catalog)
    }

    #[test]
    fn rows_flatten_and_computed_columns_bind() {
        let c = catalog(
            "CREATE TABLE datagen (
               event_type INT,
               person ROW<id BIGINT, `dateTime` TIMESTAMP(3)>,
               bid ROW<price BIGINT, `dateTime` TIMESTAMP(3)>,
               `dateTime` AS CASE WHEN event_type = 0 THEN person.`dateTime` ELSE bid.`dateTime` END,
               WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
             ) WITH ('connector' = 'nexmark');
             CREATE FUNCTION count_char AS 'com.github.nexmark.flink.udf.CountChar';",
        )
        .unwrap();
        let t = c.table("datagen").unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "event_type",
                "person.id",
                "person.dateTime",
                "bid.price",
                "bid.dateTime",
                "dateTime"
            ]
        );
        assert_eq!(t.stored().count(), 5);
        assert_eq!(t.columns[5].ty, SqlType::Timestamp { precision: 3 });
        assert_eq!(
            t.watermark,
            Some(TableWatermark {
                column: 5,
                delay_ms: 4000
            })
        );
        assert_eq!(c.functions[0].name, "count_char");
    }

    #[test]
    fn bad_tables_are_refused_where_written() {
        for (script, line, message) in [
            ("CREATE TABLE t (a BIGINT) WITH ('format' = 'csv')", 1, "has no 'connector' option"),
            ("CREATE TABLE t (a BIGINT,\n WATERMARK FOR b AS b) WITH ('connector' = 'x')", 2, "no such column"),
            ("CREATE TABLE t (a BIGINT,\n WATERMARK FOR a AS a) WITH ('connector' = 'x')", 2, "must be TIMESTAMP(3)"),
            ("CREATE TABLE t (a TIMESTAMP(3),\n WATERMARK FOR a AS a + INTERVAL '1' SECOND) WITH ('connector' = 'x')", 2, "bounded delay"),
            ("CREATE TABLE t (a BIGINT,\n b AS a + c) WITH ('connector' = 'x')", 2, "unknown column `c`"),
            ("CREATE TABLE t (a BIGINT) WITH ('connector' = 'x');\nCREATE VIEW t AS SELECT 1", 2, "`t` already exists"),
            ("CREATE FUNCTION f AS 'com.example.Nope'", 1, "no function of that name is registered"),
            ("CREATE TABLE t (a BIGINT, PRIMARY KEY (b) NOT ENFORCED) WITH ('connector' = 'x')", 1, "PRIMARY KEY column `b`"),
        ] {
            let e = catalog(script).unwrap_err();
            assert!(e.message.contains(message), "{script}: {e}");
            assert_eq!(e.position.line, line, "{script}: {e}");
        }
    }
}
