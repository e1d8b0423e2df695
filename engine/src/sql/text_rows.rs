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
//! record naming the column. Runs in the file source's reader (and the
//! Kafka source's), on the shard reading the split or partition.
//!
//! A line is read once, straight into the row: only the columns the job
//! reads are converted, and a string is copied only into the value a
//! VARCHAR column keeps ([`json_fields`], [`CsvFields`]); the scratch
//! space is the thread's, reused from line to line.

mod json_fields;

use std::cell::RefCell;

use self::json_fields::{Found, JsonFields};
use super::catalog::Table;
use super::error::SqlError;
use super::expr::{parse_text, EvalError};
use super::scan::RowMaker;
use super::sql_type::SqlType;
use super::value::{Row, Value};
use crate::connectors::csv_line::CsvFields;
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
    /// Where a JSON line's fields lead (the columns the rows read).
    json: JsonFields,
}

thread_local! {
    /// Each stored column's value of the JSON line being read.
    static FOUND: RefCell<Vec<Found>> = const { RefCell::new(Vec::new()) };
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
        let json = JsonFields::new(&columns, rows.reads());
        Ok(TextRows {
            format,
            columns,
            rows,
            json,
        })
    }

    /// The row of one line (without its newline).
    pub fn parse(&self, line: &str) -> Result<Row, String> {
        match self.format {
            RecordFormat::JsonLines => FOUND.with(|cell| {
                // A nested call (none today) gets a vector of its own.
                let mut own = Vec::new();
                let mut borrowed = cell.try_borrow_mut();
                let found = match borrowed.as_deref_mut() {
                    Ok(found) => found,
                    Err(_) => &mut own,
                };
                found.clear();
                found.resize_with(self.columns.len(), || None);
                let is_object =
                    (self.json.read(line, found)).map_err(|e| format!("invalid JSON: {e}"))?;
                if !is_object {
                    return Err(format!("expected a JSON object, found {line}"));
                }
                self.rows
                    .try_make(|c| match found[c].take() {
                        Some((_, value)) => value
                            .map_err(|e| EvalError(format!("column `{}`: {e}", self.columns[c].0))),
                        None => Ok(Value::Null),
                    })
                    .map_err(|e| e.0)
            }),
            RecordFormat::Csv => CsvFields::of_line(line, |fields| {
                if fields.len() != self.columns.len() {
                    return Err(format!(
                        "{} CSV field(s), the table has {} column(s)",
                        fields.len(),
                        self.columns.len()
                    ));
                }
                self.rows
                    .try_make(|c| {
                        let (name, ty) = &self.columns[c];
                        text_value(fields.get(c), ty)
                            .map_err(|e| EvalError(format!("column `{name}`: {e}")))
                    })
                    .map_err(|e| e.0)
            }),
            RecordFormat::Text => Err("a SQL table reads 'json' or 'csv' lines".into()),
        }
    }
}

/// A CSV field as a value of `ty`.
fn text_value(text: &str, ty: &SqlType) -> Result<Value, EvalError> {
    match ty {
        SqlType::Varchar => Ok(Value::Str(text.to_owned())),
        _ if text.is_empty() => Ok(Value::Null),
        _ => parse_text(text, ty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::catalog::Catalog;
    use crate::sql::scan::source_layout;
    use crate::sql::script::parse_script;
    use proptest::prelude::*;

    fn text_rows(format: RecordFormat, read: &[&str]) -> TextRows {
        table_rows(
            "CREATE TABLE f (id BIGINT, name VARCHAR, price DOUBLE, \
             person ROW<city VARCHAR>, ts TIMESTAMP(3), ok BOOLEAN, \
             n AS id * 2) WITH ('connector' = 'filesystem')",
            format,
            read,
        )
    }

    fn table_rows(ddl: &str, format: RecordFormat, read: &[&str]) -> TextRows {
        let mut catalog = Catalog::default();
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

    /// The former reading of a JSON line, the model: the whole line parsed
    /// into a `serde_json::Value`, then each column read looked up in it.
    fn model_json_row(rows: &TextRows, line: &str) -> Result<Row, String> {
        use serde_json::Value as J;
        let object: J = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
        if !object.is_object() {
            return Err(format!("expected a JSON object, found {line}"));
        }
        let field = |name: &str| -> J {
            if let Some(value) = object.get(name) {
                return value.clone();
            }
            let mut at = &object;
            for part in name.split('.') {
                match at.get(part) {
                    Some(inner) => at = inner,
                    None => return J::Null,
                }
            }
            at.clone()
        };
        let convert = |value: J, ty: &SqlType| -> Result<Value, EvalError> {
            let mismatch = || EvalError(format!("{value} is not a {ty}"));
            Ok(match (&value, ty) {
                (J::Null, _) => Value::Null,
                (J::String(s), SqlType::Varchar) => Value::Str(s.clone()),
                (other, SqlType::Varchar) => Value::Str(other.to_string()),
                (J::String(s), _) => parse_text(s, ty)?,
                (J::Bool(b), SqlType::Boolean) => Value::Bool(*b),
                (J::Number(n), t) if t.is_integer() => {
                    let v = n.as_i64().ok_or_else(mismatch)?;
                    crate::sql::expr::cast(Value::Int(v), &SqlType::BigInt, t)?
                }
                (J::Number(n), SqlType::Double | SqlType::Float) => {
                    Value::Double(n.as_f64().ok_or_else(mismatch)?)
                }
                (J::Number(n), SqlType::Decimal { .. }) => parse_text(&n.to_string(), ty)?,
                _ => return Err(mismatch()),
            })
        };
        rows.rows
            .try_make(|c| {
                let (name, ty) = &rows.columns[c];
                convert(field(name), ty).map_err(|e| EvalError(format!("column `{name}`: {e}")))
            })
            .map_err(|e| e.0)
    }

    const WIDE_TABLE: &str = "CREATE TABLE f (id BIGINT, name VARCHAR, price DOUBLE, \
         d DECIMAL(10, 2), small INT, person ROW<city VARCHAR, zip BIGINT>, \
         ts TIMESTAMP(3), ok BOOLEAN, n AS id * 2) WITH ('connector' = 'filesystem')";

    /// A JSON value with the keys and texts the wide table's columns meet.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value as J;
        static TEXTS: &[&str] = &[
            "42",
            "-7",
            " 12 ",
            "1.5",
            "12.345",
            "2024-01-02 03:04:05.678",
            "true",
            "x",
            "",
            "a\"b\\c",
            "é\u{1F600}",
            "9223372036854775808",
        ];
        let leaf = prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            any::<i64>().prop_map(J::from),
            (-1000i64..1000).prop_map(J::from),
            any::<u64>().prop_map(J::from),
            (-1e6f64..1e6).prop_map(J::from),
            prop::sample::select(TEXTS).prop_map(J::from),
        ];
        static KEYS: &[&str] = &[
            "id",
            "name",
            "price",
            "d",
            "small",
            "person",
            "city",
            "zip",
            "person.city",
            "ts",
            "ok",
            "n",
            "x",
            "é",
        ];
        leaf.prop_recursive(3, 24, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(J::Array),
                prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..6).prop_map(
                    |fields| J::Object(
                        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                    )
                ),
            ]
        })
    }

    /// A line: a JSON value, mostly an object, sometimes cut short or with
    /// a byte replaced.
    fn json_line() -> impl Strategy<Value = String> {
        let top = prop_oneof![
            4 => prop::collection::btree_map(
                prop::sample::select(&["id", "name", "price", "d", "small", "person",
                    "person.city", "ts", "ok", "n", "x"][..]),
                json_value(),
                0..9,
            )
            .prop_map(|fields| serde_json::Value::Object(
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
            1 => json_value(),
        ];
        (
            top,
            0..4u8,
            any::<prop::sample::Index>(),
            prop::sample::select(&["}", ",", "\"", "x", " "][..]),
        )
            .prop_map(|(value, damage, at, with)| {
                let line = value.to_string();
                let cut = at.index(line.len() + 1);
                let cut = (0..=cut)
                    .rev()
                    .find(|&i| line.is_char_boundary(i))
                    .unwrap_or(0);
                match damage {
                    0 => line[..cut].to_owned(),
                    1 => format!("{}{with}{}", &line[..cut], &line[cut..]),
                    _ => line,
                }
            })
    }

    /// `line L column C` of a serde_json error message.
    fn json_error_place(message: &str) -> &str {
        message
            .rfind(" at line ")
            .map_or(message, |at| &message[at..])
    }

    proptest! {
        #[test]
        fn json_lines_read_as_the_whole_value_read_them(
            line in json_line(),
            read in prop::sample::subsequence(
                vec!["id", "name", "price", "d", "small", "person.city", "person.zip", "ts", "ok", "n"],
                0..=10,
            ),
        ) {
            let rows = table_rows(WIDE_TABLE, RecordFormat::JsonLines, &read);
            let (read_now, model) = (rows.parse(&line), model_json_row(&rows, &line));
            match (&read_now, &model) {
                // Malformed JSON: the same place. serde_json words the cause
                // differently when it skips a value than when it builds one
                // (`-` at the end: "invalid number" against "EOF while
                // parsing a value"), and a field the table does not read is
                // skipped now.
                (Err(now), Err(then)) if then.starts_with("invalid JSON: ") => {
                    prop_assert!(now.starts_with("invalid JSON: "), "line {}: {}", line, now);
                    prop_assert_eq!(json_error_place(now), json_error_place(then), "line {}", line);
                }
                _ => prop_assert_eq!(read_now, model, "line {}", line),
            }
        }

    }

    #[test]
    fn a_name_both_a_column_and_a_way_to_nested_ones_is_both() {
        let rows = table_rows(
            "CREATE TABLE f (person VARCHAR, `person.city` VARCHAR, `person.zip` BIGINT) \
             WITH ('connector' = 'filesystem')",
            RecordFormat::JsonLines,
            &["person", "person.city", "person.zip"],
        );
        for line in [
            r#"{"person": {"city": "Oslo", "zip": "17"}, "person.city": "Bergen"}"#,
            r#"{"person.city": "Bergen", "person": {"city": "Oslo", "zip": 17}}"#,
            r#"{"person": {"city": "Oslo", "zip": 1.5}}"#,
            r#"{"person": [1, {"city": 2}]}"#,
            r#"{"person": 5, "x": {"person": {"city": "no"}}}"#,
        ] {
            assert_eq!(rows.parse(line), model_json_row(&rows, line), "{line}");
        }
        let row = rows
            .parse(r#"{"person": {"city": "Oslo", "zip": 17}}"#)
            .unwrap();
        assert_eq!(
            row.0,
            vec![
                Value::Str(r#"{"city":"Oslo","zip":17}"#.into()),
                Value::Str("Oslo".into()),
                Value::Int(17),
            ]
        );
    }
}
