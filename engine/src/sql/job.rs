//! A whole SQL script compiled into a job: its catalog, and one physical
//! plan per `INSERT INTO`, each coerced to its sink table's column types.
//!
//! All INSERTs of a script form one dataflow: a table several of them (or
//! one of them several times) read is one source, filling the union of the
//! columns its readers need. `EXPLAIN` statements are planned like the
//! statement they wrap and kept as text. Runs once, where the job is built.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlparser::ast::Query;

use super::bind::ScopeColumn;
use super::catalog::{Catalog, Table};
use super::error::{Position, SqlError};
use super::expr::BoundExpr;
use super::functions::ScalarUdf;
use super::physical::{lower, Physical};
use super::plan::{plan_query, Plan, PlanNode};
use super::scan::source_layout;
use super::script::{parse_script, Located, Statement};
use super::sql_type::SqlType;
use super::value::Value;

/// One `INSERT INTO`: where it writes and what.
#[derive(Debug, Clone)]
pub struct Insert {
    /// The sink table.
    pub table: String,
    pub position: Position,
    /// The sink table's columns (its stored columns), which the rows fill in order.
    pub columns: Vec<ScopeColumn>,
    pub plan: Physical,
    /// The logical plan, for EXPLAIN.
    pub logical: Plan,
}

/// A compiled script.
#[derive(Debug)]
pub struct SqlProgram {
    pub catalog: Catalog,
    pub inserts: Vec<Insert>,
    /// The text of each `EXPLAIN` statement's plan, in script order.
    pub explains: Vec<String>,
    /// The tables the job reads, in script order, each with the columns
    /// its rows hold ([`source_layout`]: what any INSERT reads of it).
    pub sources: Vec<(String, Vec<usize>)>,
    /// The tables the job looks up (`FOR SYSTEM_TIME AS OF`), in script
    /// order: read whole when the job is built, every column.
    pub lookups: Vec<String>,
    /// The tables read in processing time (a window of `PROCTIME()` reads
    /// them), whatever their `WATERMARK`.
    pub processing_time_tables: Vec<String>,
}

impl SqlProgram {
    /// Parses, binds and plans `script`; `udfs` are the functions registered
    /// in the binary, which `CREATE FUNCTION` may name.
    pub fn compile(script: &str, udfs: &[Arc<ScalarUdf>]) -> Result<SqlProgram, SqlError> {
        let statements = parse_script(script)?;
        let mut program = SqlProgram {
            catalog: Catalog::default(),
            inserts: Vec::new(),
            explains: Vec::new(),
            sources: Vec::new(),
            lookups: Vec::new(),
            processing_time_tables: Vec::new(),
        };
        for statement in &statements {
            if program.catalog.apply(statement, udfs)? {
                continue;
            }
            match &statement.node {
                Statement::Insert {
                    table,
                    columns,
                    query,
                } => {
                    let insert =
                        plan_insert(&program.catalog, table, columns, query, statement.position)?;
                    program.inserts.push(insert);
                }
                Statement::Query(_) => return Err(SqlError::new(
                    statement.position,
                    "a query in a job needs somewhere to write: `INSERT INTO sink_table SELECT …` \
                         (or `EXPLAIN SELECT …` to see its plan)",
                )),
                Statement::Explain(inner) => {
                    let text = explain_statement(&program.catalog, inner)?;
                    program.explains.push(text);
                }
                // `Catalog::apply` took every CREATE.
                _ => {}
            }
        }
        if program.inserts.is_empty() {
            return Err(SqlError::new(
                Position::new(1, 1),
                "the script has no INSERT INTO: a job writes its results into a sink table",
            ));
        }
        let mut read = HashMap::new();
        let mut looked_up = HashSet::new();
        for insert in &program.inserts {
            insert.plan.tables_read(&mut read);
            insert.plan.tables_looked_up(&mut looked_up);
        }
        program.check_table_roles(&read, &looked_up)?;
        let processing_time = program.check_table_times()?;
        let layouts: HashMap<String, Vec<usize>> = read
            .iter()
            .map(|(name, needed)| {
                let table = program.catalog.table(name).expect("planned tables exist");
                (name.clone(), source_layout(table, needed))
            })
            .collect();
        for insert in &mut program.inserts {
            insert.plan.narrow(&layouts);
        }
        program.sources = (program.catalog.tables.iter())
            .filter_map(|t| Some((t.name.clone(), layouts.get(&t.name)?.clone())))
            .collect();
        program.processing_time_tables = (program.catalog.tables.iter())
            .filter(|t| processing_time.contains(&t.name))
            .map(|t| t.name.clone())
            .collect();
        program.lookups = (program.catalog.tables.iter())
            .filter(|t| looked_up.contains(&t.name))
            .map(|t| t.name.clone())
            .collect();
        Ok(program)
    }

    /// A table is read or written, not both (a job cannot read its output).
    fn check_table_roles(
        &self,
        read: &HashMap<String, Vec<bool>>,
        looked_up: &HashSet<String>,
    ) -> Result<(), SqlError> {
        for insert in &self.inserts {
            if read.contains_key(&insert.table) || looked_up.contains(&insert.table) {
                return Err(SqlError::new(
                    insert.position,
                    format!(
                        "table `{}` is both read and written by this job: a job cannot read its own output",
                        insert.table
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A table is read in one time: a window of the processing time reads
    /// it in processing time, so no window of the job may take its event
    /// time. Returns the tables read in processing time.
    fn check_table_times(&self) -> Result<HashSet<String>, SqlError> {
        let (mut processing, mut event) = (HashSet::new(), HashSet::new());
        for insert in &self.inserts {
            insert.plan.tables_by_time(&mut processing, &mut event);
            if let Some(table) = processing.intersection(&event).next() {
                return Err(SqlError::new(
                    insert.position,
                    format!(
                        "table `{table}` is windowed by its processing time (PROCTIME()) and by its event time in this job: a job reads a table in one time"
                    ),
                ));
            }
        }
        Ok(processing)
    }

    /// The whole job as text: each INSERT's sink over its operators.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let mut shown = HashSet::new();
        for insert in &self.inserts {
            explain_insert(insert, &mut out, &mut shown);
        }
        out
    }
}

fn explain_insert(insert: &Insert, out: &mut String, shown: &mut HashSet<String>) {
    let names: Vec<&str> = insert.columns.iter().map(|c| c.name.as_str()).collect();
    out.push_str(&format!("Sink {} [{}]\n", insert.table, names.join(", ")));
    insert.plan.explain_into(out, 1, shown);
}

fn explain_statement(
    catalog: &Catalog,
    statement: &Located<Statement>,
) -> Result<String, SqlError> {
    let mut out = String::new();
    match &statement.node {
        Statement::Insert {
            table,
            columns,
            query,
        } => {
            let insert = plan_insert(catalog, table, columns, query, statement.position)?;
            out.push_str("== Logical plan ==\n");
            out.push_str(&insert.logical.explain());
            out.push_str("== Physical plan ==\n");
            explain_insert(&insert, &mut out, &mut HashSet::new());
        }
        Statement::Query(query) => {
            let logical = plan_query(query, catalog)?;
            out.push_str("== Logical plan ==\n");
            out.push_str(&logical.explain());
            out.push_str("== Physical plan ==\n");
            lower(&logical).explain_into(&mut out, 0, &mut HashSet::new());
        }
        // The parser lets EXPLAIN wrap nothing else.
        _ => {}
    }
    Ok(out)
}

/// The sink table `name`, or an error that says what `name` is instead.
fn sink_table<'c>(
    catalog: &'c Catalog,
    name: &str,
    position: Position,
) -> Result<&'c Table, SqlError> {
    if let Some(table) = catalog.table(name) {
        return Ok(table);
    }
    let message = if catalog.view(name).is_some() {
        format!("`{name}` is a view: INSERT INTO writes into a table")
    } else {
        let known: Vec<&str> = catalog.tables.iter().map(|t| t.name.as_str()).collect();
        format!(
            "unknown table `{name}` (tables: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    };
    Err(SqlError::new(position, message))
}

fn plan_insert(
    catalog: &Catalog,
    table: &str,
    target_columns: &[String],
    query: &Query,
    position: Position,
) -> Result<Insert, SqlError> {
    let sink = sink_table(catalog, table, position)?;
    if let Some(computed) = sink.columns.iter().find(|c| c.computed.is_some()) {
        return Err(SqlError::new(
            computed.position,
            format!(
                "table `{table}` is written by INSERT INTO, so its column `{}` cannot be computed",
                computed.name
            ),
        ));
    }
    let columns: Vec<ScopeColumn> = sink.scope(table).into_iter().collect();
    // Which query column fills each sink column (None: NULL).
    let sources: Vec<Option<usize>> = if target_columns.is_empty() {
        (0..columns.len()).map(Some).collect()
    } else {
        let mut sources = vec![None; columns.len()];
        for (i, name) in target_columns.iter().enumerate() {
            let Some(at) = columns.iter().position(|c| &c.name == name) else {
                return Err(SqlError::new(
                    position,
                    format!("INSERT INTO `{table}`: `{name}` is not a column of the table"),
                ));
            };
            if sources[at].replace(i).is_some() {
                return Err(SqlError::new(
                    position,
                    format!("INSERT INTO `{table}`: column `{name}` is listed twice"),
                ));
            }
        }
        sources
    };
    let query_plan = plan_query(query, catalog)?;
    let expected = if target_columns.is_empty() {
        columns.len()
    } else {
        target_columns.len()
    };
    if query_plan.schema.len() != expected {
        let names: Vec<String> = query_plan.schema.iter().map(|c| c.name.clone()).collect();
        let sink_names: Vec<&str> = if target_columns.is_empty() {
            columns.iter().map(|c| c.name.as_str()).collect()
        } else {
            target_columns.iter().map(String::as_str).collect()
        };
        return Err(SqlError::new(
            position,
            format!(
                "INSERT INTO `{table}`: the query yields {} column(s) [{}], the sink takes {} [{}]",
                query_plan.schema.len(),
                names.join(", "),
                expected,
                sink_names.join(", ")
            ),
        ));
    }
    let mut exprs = Vec::with_capacity(columns.len());
    let mut texts = Vec::with_capacity(columns.len());
    for (column, source) in columns.iter().zip(&sources) {
        let Some(i) = *source else {
            exprs.push(BoundExpr::Literal(Value::Null));
            texts.push(format!("NULL AS {}", column.name));
            continue;
        };
        let from = &query_plan.schema[i];
        if !assignable(&from.ty, &column.ty) {
            return Err(SqlError::new(
                position,
                format!(
                    "INSERT INTO `{table}`: column `{}` is {}, but the query's column {} (`{}`) is {}, which does not convert to it implicitly",
                    column.name,
                    column.ty,
                    i + 1,
                    from.name,
                    from.ty
                ),
            ));
        }
        if same_representation(&from.ty, &column.ty) {
            exprs.push(BoundExpr::Column(i));
            texts.push(from.name.clone());
        } else {
            exprs.push(BoundExpr::Cast {
                expr: Box::new(BoundExpr::Column(i)),
                from: from.ty.clone(),
                to: column.ty.clone(),
            });
            texts.push(format!("CAST({} AS {})", from.name, column.ty));
        }
    }
    let rowtime = query_plan
        .rowtime
        .and_then(|r| sources.iter().position(|s| *s == Some(r)));
    let logical = Plan {
        node: PlanNode::Project {
            input: Box::new(query_plan),
            exprs,
            texts,
        },
        schema: columns.clone(),
        rowtime,
    };
    Ok(Insert {
        table: table.to_owned(),
        position,
        columns,
        plan: lower(&logical),
        logical,
    })
}

/// Whether INSERT INTO converts `from` to a sink column of type `to` by
/// itself (Flink's implicit casts: within numbers, strings, timestamps).
fn assignable(from: &SqlType, to: &SqlType) -> bool {
    from == to
        || *from == SqlType::Null
        || (from.is_numeric() && to.is_numeric())
        || (from.is_timestamp() && to.is_timestamp())
        || matches!((from, to), (SqlType::Varchar, SqlType::Varchar))
}

/// Whether values of `from` are already values of `to` (no cast needed).
fn same_representation(from: &SqlType, to: &SqlType) -> bool {
    from == to
        || *from == SqlType::Null
        || (from.is_integer() && *to == SqlType::BigInt)
        || (from.is_timestamp() && to.is_timestamp())
}
