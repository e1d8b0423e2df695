//! What a source table's rows are made of: the connector's record turned
//! into a row of the table's columns.
//!
//! A connector has a fixed schema (Nexmark's events as Flink's `nexmark`
//! connector declares them, the generator's numeric events); a table may
//! declare any of its columns, in any order, with their exact types. Only
//! the columns the plan reads are filled ([`Physical::prune`] decides);
//! computed columns are computed after the stored ones, when read. Built
//! once per job; the conversion runs on every shard.
//!
//! [`Physical::prune`]: super::physical::Physical::prune

use super::catalog::Table;
use super::compiled_expr::CompiledExpr;
use super::error::SqlError;
use super::expr::{BoundExpr, EvalError};
use super::sql_type::SqlType;
use super::value::{Row, Value};
use crate::connectors::nexmark::Event;
use crate::connectors::GeneratedEvent;
use crate::SharedStr;

/// A connector's column: its name and type.
pub type ConnectorColumn = (&'static str, SqlType);

const TS3: SqlType = SqlType::Timestamp { precision: 3 };

/// The columns of the `nexmark` connector (Flink's Nexmark `datagen`
/// table, its ROW columns flattened), in order.
pub fn nexmark_schema() -> Vec<ConnectorColumn> {
    use SqlType::{BigInt, Int, Varchar};
    vec![
        ("event_type", Int),
        ("person.id", BigInt),
        ("person.name", Varchar),
        ("person.emailAddress", Varchar),
        ("person.creditCard", Varchar),
        ("person.city", Varchar),
        ("person.state", Varchar),
        ("person.dateTime", TS3),
        ("person.extra", Varchar),
        ("auction.id", BigInt),
        ("auction.itemName", Varchar),
        ("auction.description", Varchar),
        ("auction.initialBid", BigInt),
        ("auction.reserve", BigInt),
        ("auction.dateTime", TS3),
        ("auction.expires", TS3),
        ("auction.seller", BigInt),
        ("auction.category", BigInt),
        ("auction.extra", Varchar),
        ("bid.auction", BigInt),
        ("bid.bidder", BigInt),
        ("bid.price", BigInt),
        ("bid.channel", Varchar),
        ("bid.url", Varchar),
        ("bid.dateTime", TS3),
        ("bid.extra", Varchar),
    ]
}

/// The columns of the `generator` connector, in order.
pub fn generator_schema() -> Vec<ConnectorColumn> {
    vec![
        ("seq", SqlType::BigInt),
        ("key", SqlType::BigInt),
        ("value", SqlType::BigInt),
        ("ts", TS3),
    ]
}

/// The table columns a source's rows hold, in table order: those the job
/// reads (`needed`), the event-time column, and the stored columns a kept
/// computed column reads. A row is as wide as what the job reads, not as
/// the table; plans over the table are narrowed to the same layout
/// ([`Physical::narrow`]).
///
/// [`Physical::narrow`]: super::physical::Physical::narrow
pub fn source_layout(table: &Table, needed: &[bool]) -> Vec<usize> {
    let stored: Vec<usize> = (0..table.columns.len())
        .filter(|&i| table.columns[i].computed.is_none())
        .collect();
    let mut keep = needed.to_vec();
    if let Some(watermark) = table.watermark {
        keep[watermark.column] = true;
    }
    for (i, column) in table.columns.iter().enumerate() {
        if let (true, Some(expr)) = (keep[i], &column.computed) {
            expr.visit_columns(&mut |s| keep[stored[s]] = true);
        }
    }
    (0..keep.len()).filter(|&i| keep[i]).collect()
}

/// Where each of a table's `width` columns is in a row of `layout`
/// (`None`: not kept).
pub fn row_positions(layout: &[usize], width: usize) -> Vec<Option<usize>> {
    let mut at_in_row = vec![None; width];
    for (row_column, &column) in layout.iter().enumerate() {
        at_in_row[column] = Some(row_column);
    }
    at_in_row
}

/// How one source table's rows are made: the columns of
/// [`source_layout`], stored ones from the connector, then computed ones.
#[derive(Debug, Clone)]
pub struct RowMaker {
    /// Per row column, in order: the connector column it is read from, or
    /// `None` for a computed column (filled after the stored ones).
    fill: Vec<Option<usize>>,
    /// `(row column, expression over the row)` of the computed columns.
    computed: Vec<(usize, CompiledExpr)>,
    /// The row column of the table's event time, if it has a WATERMARK.
    rowtime: Option<usize>,
}

impl RowMaker {
    /// Checks `table`'s stored columns against `schema` (connector
    /// `connector`) and plans rows of the table columns `layout` (from
    /// [`source_layout`]).
    pub fn new(
        table: &Table,
        connector: &str,
        schema: &[(&str, SqlType)],
        layout: &[usize],
    ) -> Result<RowMaker, SqlError> {
        let at_in_row = row_positions(layout, table.columns.len());
        // A computed column's expression indexes the stored columns.
        let stored_in_row: Vec<Option<usize>> = (0..table.columns.len())
            .filter(|&i| table.columns[i].computed.is_none())
            .map(|i| at_in_row[i])
            .collect();
        let mut fill = vec![None; layout.len()];
        let mut computed = Vec::new();
        for (i, column) in table.columns.iter().enumerate() {
            if let Some(expr) = &column.computed {
                if let Some(row_column) = at_in_row[i] {
                    let mut expr = expr.clone();
                    expr.rewrite_columns(&mut |s| {
                        BoundExpr::Column(
                            stored_in_row[s].expect("layout keeps what computed columns read"),
                        )
                    });
                    computed.push((row_column, CompiledExpr::new(&expr)));
                }
                continue;
            }
            let Some(at) = schema.iter().position(|(name, _)| *name == column.name) else {
                let names: Vec<&str> = schema.iter().map(|(n, _)| *n).collect();
                return Err(SqlError::new(
                    column.position,
                    format!(
                        "table `{}`: connector '{connector}' has no column `{}` (its columns: {})",
                        table.name,
                        column.name,
                        names.join(", ")
                    ),
                ));
            };
            if schema[at].1 != column.ty {
                return Err(SqlError::new(
                    column.position,
                    format!(
                        "table `{}`: column `{}` of connector '{connector}' is {}, not {}",
                        table.name, column.name, schema[at].1, column.ty
                    ),
                ));
            }
            if let Some(row_column) = at_in_row[i] {
                fill[row_column] = Some(at);
            }
        }
        Ok(RowMaker {
            fill,
            computed,
            rowtime: table.watermark.and_then(|w| at_in_row[w.column]),
        })
    }

    /// The connector columns the rows read.
    pub fn reads(&self) -> impl Iterator<Item = usize> + '_ {
        self.fill.iter().flatten().copied()
    }

    /// The row column of the table's event time, if it has a WATERMARK.
    pub fn rowtime(&self) -> Option<usize> {
        self.rowtime
    }

    /// A row from the connector's values: `value(c)` yields connector column `c`.
    pub fn make(&self, mut value: impl FnMut(usize) -> Value) -> Result<Row, EvalError> {
        self.try_make(|c| Ok(value(c)))
    }

    /// A row from values that may fail to convert (a file's text).
    pub fn try_make(
        &self,
        mut value: impl FnMut(usize) -> Result<Value, EvalError>,
    ) -> Result<Row, EvalError> {
        // Pushed in order into an exact allocation: no NULLs written first
        // and then dropped.
        let mut values = Vec::with_capacity(self.fill.len());
        for at in &self.fill {
            values.push(match at {
                Some(at) => value(*at)?,
                None => Value::Null,
            });
        }
        let mut row = Row(values);
        for (column, expr) in &self.computed {
            row.0[*column] = expr.eval(&row)?;
        }
        Ok(row)
    }

    /// The row of a Nexmark event (its strings moved, not copied).
    pub fn nexmark_row(&self, event: Event) -> Result<Row, EvalError> {
        let mut event = event;
        self.make(|c| nexmark_value(&mut event, c))
    }

    /// The row of a generated event.
    pub fn generator_row(&self, event: GeneratedEvent) -> Result<Row, EvalError> {
        self.make(|c| match c {
            0 => Value::Int(event.seq as i64),
            1 => Value::Int(event.key as i64),
            2 => Value::Int(event.value),
            _ => Value::Timestamp(event.ts),
        })
    }
}

/// Column `c` of [`nexmark_schema`] for `event` (NULL for another kind's
/// columns); strings are taken out of the event.
fn nexmark_value(event: &mut Event, c: usize) -> Value {
    let take = |s: &mut SharedStr| Value::Str(String::from(std::mem::take(s)));
    match (event, c) {
        (Event::Person(_), 0) => Value::Int(0),
        (Event::Auction(_), 0) => Value::Int(1),
        (Event::Bid(_), 0) => Value::Int(2),
        (Event::Person(p), 1..=8) => match c {
            1 => Value::Int(p.id),
            2 => take(&mut p.name),
            3 => take(&mut p.email_address),
            4 => take(&mut p.credit_card),
            5 => take(&mut p.city),
            6 => take(&mut p.state),
            7 => Value::Timestamp(p.date_time),
            _ => take(&mut p.extra),
        },
        (Event::Auction(a), 9..=18) => match c {
            9 => Value::Int(a.id),
            10 => take(&mut a.item_name),
            11 => take(&mut a.description),
            12 => Value::Int(a.initial_bid),
            13 => Value::Int(a.reserve),
            14 => Value::Timestamp(a.date_time),
            15 => Value::Timestamp(a.expires),
            16 => Value::Int(a.seller),
            17 => Value::Int(a.category),
            _ => take(&mut a.extra),
        },
        (Event::Bid(b), 19..=25) => match c {
            19 => Value::Int(b.auction),
            20 => Value::Int(b.bidder),
            21 => Value::Int(b.price),
            22 => take(&mut b.channel),
            23 => take(&mut b.url),
            24 => Value::Timestamp(b.date_time),
            _ => take(&mut b.extra),
        },
        _ => Value::Null,
    }
}
