//! A file table's lines as rows: JSON lines or CSV, read by the table's
//! stored columns (the table *is* the schema, as Flink's `json` and `csv`
//! formats read a `filesystem` table).
//!
//! JSON: a column is the object's field of its name; a flattened ROW
//! column (`person.id`) is the nested field. A missing field or `null` is
//! NULL. A JSON value of the column's type is taken as is; a string is
//! converted as `CAST(text AS type)` converts it (so `"42"` is a BIGINT and
//! `"2024-01-02 03:04:05.678"` a TIMESTAMP(3), the SQL format Flink's JSON
//! format defaults to); a VARCHAR column takes any other value as its JSON
//! text. CSV: the fields are the stored columns in order; each is converted
//! from its text as by CAST, an empty field being NULL except for VARCHAR.
//! A line that does not parse, or a value that does not convert, is a bad
//! record naming the column. Runs in the file source's reader, on the shard
//! reading the split.

use super::catalog::Table;
use super::error::SqlError;
use super::expr::{cast, EvalError};
use super::scan::RowMaker;
use super::sql_type::SqlType;
use super::value::{Row, Value};
use crate::connectors::RecordFormat;

/// How a file table's lines become rows.
#[derive(Debug, Clone)]
pub struct TextRows {
    pub format: RecordFormat,
    /// The table's stored columns, in order: the "connector schema" of a
    /// file table.
    pub columns: Vec<(String, SqlType)>,
    /// Makes rows of the columns the job reads.
    pub rows: RowMaker,
}

impl TextRows {
    /// The rows of the file table `table` (its stored columns are the
    /// lines' fields), holding its columns `layout`.
    pub fn of_table(
        table: &Table,
        format: RecordFormat,
        layout: &[usize],
    ) -> Result<TextRows, SqlError> {
        let columns: Vec<(String, SqlType)> = (table.stored())
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect();
        let schema: Vec<(&str, SqlType)> = (columns.iter())
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect();
        let rows = RowMaker::new(table, "filesystem", &schema, layout)?;
        Ok(TextRows {
            format,
            columns,
            rows,
        })
    }

    /// The row of one line (without its newline).
    pub fn parse(&self, line: &str) -> Result<Row, String> {
        match self.format {
            RecordFormat::JsonLines => {
                let object: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
                if !object.is_object() {
                    return Err(format!("expected a JSON object, found {line}"));
                }
                self.rows
                    .try_make(|c| {
                        let (name, ty) = &self.columns[c];
                        json_value(field(&object, name), ty)
                            .map_err(|e| EvalError(format!("column `{name}`: {e}")))
                    })
                    .map_err(|e| e.0)
            }
            RecordFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(line.as_bytes());
                let record = match reader.records().next() {
                    Some(record) => record.map_err(|e| format!("invalid CSV: {e}"))?,
                    None => csv::StringRecord::new(),
                };
                if record.len() != self.columns.len() {
                    return Err(format!(
                        "{} CSV field(s), the table has {} column(s)",
                        record.len(),
                        self.columns.len()
                    ));
                }
                self.rows
                    .try_make(|c| {
                        let (name, ty) = &self.columns[c];
                        text_value(&record[c], ty)
                            .map_err(|e| EvalError(format!("column `{name}`: {e}")))
                    })
                    .map_err(|e| e.0)
            }
            RecordFormat::Text => Err("a SQL table reads 'json' or 'csv' lines".into()),
        }
    }
}

/// The field `name` of `object`: the key itself, else the path its dots
/// spell (a flattened ROW column).
fn field<'a>(object: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    if let Some(value) = object.get(name) {
        return value;
    }
    let mut at = object;
    for part in name.split('.') {
        match at.get(part) {
            Some(inner) => at = inner,
            None => return &serde_json::Value::Null,
        }
    }
    at
}

/// A JSON value as a value of `ty`.
fn json_value(value: &serde_json::Value, ty: &SqlType) -> Result<Value, EvalError> {
    use serde_json::Value as J;
    let mismatch = || EvalError(format!("{value} is not a {ty}"));
    Ok(match (value, ty) {
        (J::Null, _) => Value::Null,
        (J::String(s), SqlType::Varchar) => Value::Str(s.clone()),
        (other, SqlType::Varchar) => Value::Str(other.to_string()),
        (J::String(s), _) => cast(Value::Str(s.clone()), &SqlType::Varchar, ty)?,
        (J::Bool(b), SqlType::Boolean) => Value::Bool(*b),
        (J::Number(n), t) if t.is_integer() => {
            let v = n.as_i64().ok_or_else(mismatch)?;
            cast(Value::Int(v), &SqlType::BigInt, t)?
        }
        (J::Number(n), SqlType::Double | SqlType::Float) => {
            Value::Double(n.as_f64().ok_or_else(mismatch)?)
        }
        (J::Number(n), SqlType::Decimal { .. }) => {
            cast(Value::Str(n.to_string()), &SqlType::Varchar, ty)?
        }
        _ => return Err(mismatch()),
    })
}

/// A CSV field as a value of `ty`.
fn text_value(text: &str, ty: &SqlType) -> Result<Value, EvalError> {
    match ty {
        SqlType::Varchar => Ok(Value::Str(text.to_owned())),
        _ if text.is_empty() => Ok(Value::Null),
        _ => cast(Value::Str(text.to_owned()), &SqlType::Varchar, ty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::catalog::Catalog;
    use crate::sql::scan::source_layout;
    use crate::sql::script::parse_script;

    fn text_rows(format: RecordFormat, read: &[&str]) -> TextRows {
        let mut catalog = Catalog::default();
        let ddl = "CREATE TABLE f (id BIGINT, name VARCHAR, price DOUBLE, \
                   person ROW<city VARCHAR>, ts TIMESTAMP(3), ok BOOLEAN, \
                   n AS id * 2) WITH ('connector' = 'filesystem')";
        for statement in parse_script(ddl).unwrap() {
            catalog.apply(&statement, &[]).unwrap();
        }
        let table = catalog.table("f").unwrap();
        let needed: Vec<bool> = (table.columns.iter())
            .map(|c| read.contains(&c.name.as_str()))
            .collect();
        TextRows::of_table(table, format, &source_layout(table, &needed)).unwrap()
    }

    #[test]
    fn json_lines_become_rows_of_the_columns_read() {
        let rows = text_rows(RecordFormat::JsonLines, &["name", "person.city", "ts", "n"]);
        let row = rows
            .parse(
                r#"{"id": "21", "name": 7, "person": {"city": "Oslo"}, "ts": "2024-01-02 03:04:05.678"}"#,
            )
            .unwrap();
        // Layout: id (read by n), name, person.city, ts, n.
        assert_eq!(
            row.0,
            vec![
                Value::Int(21),
                Value::Str("7".into()),
                Value::Str("Oslo".into()),
                Value::Timestamp(1_704_164_645_678),
                Value::Int(42),
            ]
        );
        let missing = rows.parse(r#"{"id": null}"#).unwrap();
        assert!(missing.0.iter().all(Value::is_null));
        for (line, error) in [
            (r#"{"id": 1.5}"#, "column `id`: 1.5 is not a BIGINT"),
            (r#"{"id": "x1"}"#, "column `id`: cannot cast 'x1' to BIGINT"),
            (r#"{"ts": "yesterday"}"#, "column `ts`: cannot cast"),
            (r#"{"id": 1"#, "invalid JSON"),
            ("[1, 2]", "expected a JSON object"),
        ] {
            let got = rows.parse(line).unwrap_err();
            assert!(got.contains(error), "{line}: {got}");
        }
    }

    #[test]
    fn csv_fields_are_the_stored_columns_in_order() {
        let rows = text_rows(RecordFormat::Csv, &["id", "name", "price", "ok"]);
        let row = rows.parse(r#"5,"a, b",2.5,,,true"#).unwrap();
        assert_eq!(
            row.0,
            vec![
                Value::Int(5),
                Value::Str("a, b".into()),
                Value::Double(2.5),
                Value::Bool(true),
            ]
        );
        let empty = rows.parse(",,,,,").unwrap();
        assert_eq!(empty.0[1], Value::Str(String::new()));
        assert!(empty.0[0].is_null() && empty.0[2].is_null());
        for (line, error) in [
            ("5,a,2.5", "3 CSV field(s), the table has 6 column(s)"),
            ("x,a,2.5,,,true", "column `id`: cannot cast 'x'"),
            ("5,a,2.5,,,maybe", "column `ok`"),
        ] {
            let got = rows.parse(line).unwrap_err();
            assert!(got.contains(error), "{line}: {got}");
        }
    }
}
