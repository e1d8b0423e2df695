//! Rows on their way into a sink: each value under its sink column's name.
//!
//! Sinks write records through serde (JSON lines, CSV), which wants field
//! names that live forever. The sink table's layout is interned once per
//! distinct layout in the process ([`OutputLayout::intern`]), so a row
//! carries a `&'static` pointer to it: no per-row allocation or reference
//! count shared between shards. DECIMALs are written as the double nearest
//! to them (which prints as the decimal itself up to 15 digits), timestamps
//! as epoch milliseconds, NULL as JSON `null` (an empty CSV field).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::sql_type::SqlType;
use super::value::{decimal_to_f64, Row, Value};

/// A sink column: its name and, for a DECIMAL, its scale.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutputColumn {
    pub name: &'static str,
    pub scale: u8,
}

/// The columns of a sink table, interned.
#[derive(Debug, Clone, Copy)]
pub struct OutputLayout(pub &'static [OutputColumn]);

type Interned = HashMap<Vec<(String, u8)>, &'static [OutputColumn]>;

impl OutputLayout {
    /// The layout of columns `(name, type)`, the same `&'static` slice for
    /// the same columns however often a job is built.
    pub fn intern<'a>(columns: impl IntoIterator<Item = (&'a str, &'a SqlType)>) -> OutputLayout {
        static LAYOUTS: OnceLock<Mutex<Interned>> = OnceLock::new();
        let key: Vec<(String, u8)> = columns
            .into_iter()
            .map(|(name, ty)| (name.to_owned(), ty.as_decimal().map_or(0, |(_, s)| s)))
            .collect();
        let mut layouts = LAYOUTS
            .get_or_init(Default::default)
            .lock()
            .expect("layouts lock");
        if let Some(found) = layouts.get(&key) {
            return OutputLayout(found);
        }
        let columns: Vec<OutputColumn> = key
            .iter()
            .map(|(name, scale)| OutputColumn {
                name: Box::leak(name.clone().into_boxed_str()),
                scale: *scale,
            })
            .collect();
        let leaked: &'static [OutputColumn] = Box::leak(columns.into_boxed_slice());
        layouts.insert(key, leaked);
        OutputLayout(leaked)
    }
}

/// A row with its sink columns: what a SQL job hands its sink.
#[derive(Debug, Clone)]
pub struct OutputRow {
    pub layout: OutputLayout,
    pub row: Row,
}

/// One value as a sink writes it.
struct OutputValue<'a>(&'a Value, u8);

impl Serialize for OutputValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_none(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(v) | Value::Timestamp(v) => serializer.serialize_i64(*v),
            Value::Double(v) => serializer.serialize_f64(*v),
            Value::Decimal(unscaled) => serializer.serialize_f64(decimal_to_f64(*unscaled, self.1)),
            Value::Str(s) => serializer.serialize_str(s),
        }
    }
}

impl Serialize for OutputRow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let columns = self.layout.0;
        let mut out = serializer.serialize_struct("row", columns.len())?;
        for (column, value) in columns.iter().zip(&self.row.0) {
            out.serialize_field(column.name, &OutputValue(value, column.scale))?;
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_serialize_under_their_column_names() {
        let price = SqlType::Decimal {
            precision: 23,
            scale: 3,
        };
        let columns = [
            ("auction", &SqlType::BigInt),
            ("price", &price),
            ("extra", &SqlType::Varchar),
        ];
        let layout = OutputLayout::intern(columns);
        let row = OutputRow {
            layout,
            row: Row(vec![Value::Int(7), Value::Decimal(2_724), Value::Null]),
        };
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"auction":7,"price":2.724,"extra":null}"#
        );
        let again = OutputLayout::intern(columns);
        assert!(std::ptr::eq(layout.0, again.0), "one layout, interned once");
    }
}
