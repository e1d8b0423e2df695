//! One JSON object's fields picked out in a single pass: the values of the
//! columns a job reads, converted straight from the parser's tokens, and
//! everything else skipped without being built.
//!
//! A column is the field of its name at the top level (which wins), else
//! the path its dots spell through nested objects (a flattened ROW column,
//! `person.city`). Field names are compared where they lie in the line
//! (no allocation); a string value is copied once, into the `Value` a
//! VARCHAR column keeps, and text for other types is converted in place.
//! A name that is both a column and the way to nested columns (a VARCHAR
//! `person` next to `person.city`) is the one case that builds the value
//! as a `serde_json::Value`. The conversions are [`super::TextRows`]'s
//! (a JSON value of the column's type as is, a string as CAST converts
//! it, anything else for VARCHAR as its JSON text); a value that does not
//! convert is kept as that column's error, so a line's syntax errors come
//! first and a row's first failing column is reported, as before.
//! Runs on the shard reading the file split or the Kafka partition.

use std::fmt;

use serde::de::{
    self, value::MapAccessDeserializer, value::SeqAccessDeserializer, DeserializeSeed,
    Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::sql::expr::{cast, parse_text, EvalError};
use crate::sql::sql_type::SqlType;
use crate::sql::value::Value;

/// What a field name leads to at one level of the object.
#[derive(Debug, Clone)]
struct Field {
    name: Box<str>,
    /// The column the field's value is, and whether by its whole name
    /// (`true`: a top-level field named as the column) or as a path's end.
    column: Option<(usize, bool)>,
    /// The fields inside it that lead to columns (a flattened ROW).
    inner: Option<Box<Level>>,
}

/// The fields of one level that lead to columns.
#[derive(Debug, Clone, Default)]
struct Level {
    fields: Vec<Field>,
}

impl Level {
    fn find(&self, name: &str) -> Option<&Field> {
        // A few fields per level: comparing lengths first rejects most.
        self.fields
            .iter()
            .find(|f| f.name.len() == name.len() && &*f.name == name)
    }

    /// Leads the path `parts` from this level to `column`.
    fn insert_path(&mut self, parts: &[&str], column: usize) {
        let Some((first, rest)) = parts.split_first() else {
            return;
        };
        let field = self.entry(first);
        if rest.is_empty() {
            field.column.get_or_insert((column, false));
        } else {
            (field.inner.get_or_insert_with(Default::default)).insert_path(rest, column);
        }
    }

    fn entry(&mut self, name: &str) -> &mut Field {
        let at = match self.fields.iter().position(|f| &*f.name == name) {
            Some(at) => at,
            None => {
                self.fields.push(Field {
                    name: name.into(),
                    column: None,
                    inner: None,
                });
                self.fields.len() - 1
            }
        };
        &mut self.fields[at]
    }
}

/// The value found for a column: by its whole name or as a path's end
/// (the whole name wins), converted or failed to convert.
pub type Found = Option<(bool, Result<Value, EvalError>)>;

/// The fields of a line that lead to the columns read, and their types.
#[derive(Debug, Clone)]
pub struct JsonFields {
    top: Level,
    types: Vec<SqlType>,
}

impl JsonFields {
    /// Fields for the stored `columns` (name, type) of which `read` are
    /// the ones a job reads.
    pub fn new(columns: &[(String, SqlType)], read: impl IntoIterator<Item = usize>) -> Self {
        let mut top = Level::default();
        for c in read {
            let name = columns[c].0.as_str();
            top.entry(name).column = Some((c, true));
            if name.contains('.') {
                let parts: Vec<&str> = name.split('.').collect();
                top.insert_path(&parts, c);
            }
        }
        JsonFields {
            top,
            types: columns.iter().map(|(_, t)| t.clone()).collect(),
        }
    }

    /// Reads `line` into `found` (one entry per stored column, all `None`
    /// on entry). `Ok(false)`: the line is JSON but not an object.
    pub fn read(&self, line: &str, found: &mut [Found]) -> Result<bool, serde_json::Error> {
        let mut parser = serde_json::Deserializer::from_str(line);
        let is_object = (&mut parser).deserialize_any(ObjectAt {
            fields: self,
            level: &self.top,
            found,
        })?;
        parser.end()?;
        Ok(is_object)
    }
}

/// Reads one object's fields at `level`, skipping those that lead nowhere.
fn read_level<'de, A: MapAccess<'de>>(
    fields: &JsonFields,
    level: &Level,
    found: &mut [Found],
    mut map: A,
) -> Result<(), A::Error> {
    while let Some(field) = map.next_key_seed(FieldName(level))? {
        let Some(field) = field else {
            map.next_value::<IgnoredAny>()?;
            continue;
        };
        match (field.column, &field.inner) {
            (Some((column, whole)), None) => {
                let value = map.next_value_seed(ColumnValue(&fields.types[column]))?;
                keep(found, column, whole, value);
            }
            (None, Some(inner)) => {
                map.next_value_seed(ObjectAt {
                    fields,
                    level: inner,
                    found: &mut *found,
                })?;
            }
            (Some((column, whole)), Some(inner)) => {
                let value: serde_json::Value = map.next_value()?;
                let converted = ColumnValue(&fields.types[column])
                    .deserialize(&value)
                    .map_err(<A::Error as de::Error>::custom)?;
                keep(found, column, whole, converted);
                ObjectAt {
                    fields,
                    level: inner,
                    found: &mut *found,
                }
                .deserialize(&value)
                .map_err(<A::Error as de::Error>::custom)?;
            }
            (None, None) => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(())
}

/// Stores a column's value unless one found by the whole name is there.
fn keep(found: &mut [Found], column: usize, whole: bool, value: Result<Value, EvalError>) {
    let slot = &mut found[column];
    if !matches!(slot, Some((true, _))) || whole {
        *slot = Some((whole, value));
    }
}

/// A field's name, looked up at a level without copying it.
struct FieldName<'a>(&'a Level);

impl<'de, 'a> DeserializeSeed<'de> for FieldName<'a> {
    type Value = Option<&'a Field>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a> Visitor<'de> for FieldName<'a> {
    type Value = Option<&'a Field>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok(self.0.find(name))
    }
}

/// A value that holds columns if it is an object: the whole line (at the
/// top level), or a field with columns further in (a flattened ROW). An
/// object is read at its level; anything else is skipped, leaving those
/// columns NULL. Yields whether the value was an object (the caller
/// refuses a line that is not).
struct ObjectAt<'a, 'f> {
    fields: &'a JsonFields,
    level: &'a Level,
    found: &'f mut [Found],
}

impl<'de> DeserializeSeed<'de> for ObjectAt<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObjectAt<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        read_level(self.fields, self.level, self.found, map)?;
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// A column's value converted from the JSON value of its field.
struct ColumnValue<'a>(&'a SqlType);

impl ColumnValue<'_> {
    fn mismatch(&self, value: serde_json::Value) -> Result<Value, EvalError> {
        Err(EvalError(format!("{value} is not a {}", self.0)))
    }

    /// A number (as the parser read it) as a value of the column's type.
    fn number(&self, number: serde_json::Number) -> Result<Value, EvalError> {
        match self.0 {
            SqlType::Varchar => Ok(Value::Str(number.to_string())),
            t if t.is_integer() => match number.as_i64() {
                Some(v) => cast(Value::Int(v), &SqlType::BigInt, t),
                None => self.mismatch(serde_json::Value::Number(number)),
            },
            SqlType::Double | SqlType::Float => match number.as_f64() {
                Some(v) => Ok(Value::Double(v)),
                None => self.mismatch(serde_json::Value::Number(number)),
            },
            SqlType::Decimal { .. } => parse_text(&number.to_string(), self.0),
            _ => self.mismatch(serde_json::Value::Number(number)),
        }
    }

    /// An array or object: VARCHAR takes its JSON text.
    fn composite(&self, value: serde_json::Value) -> Result<Value, EvalError> {
        match self.0 {
            SqlType::Varchar => Ok(Value::Str(value.to_string())),
            _ => self.mismatch(value),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ColumnValue<'_> {
    type Value = Result<Value, EvalError>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ColumnValue<'_> {
    type Value = Result<Value, EvalError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Ok(Value::Null))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(match self.0 {
            SqlType::Boolean => Ok(Value::Bool(b)),
            SqlType::Varchar => Ok(Value::Str(b.to_string())),
            _ => self.mismatch(b.into()),
        })
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // The parser yields finite doubles only; a JSON value would hold
        // any other as null.
        Ok(match serde_json::Number::from_f64(v) {
            Some(number) => self.number(number),
            None => Ok(Value::Null),
        })
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(match self.0 {
            SqlType::Varchar => Ok(Value::Str(s.to_owned())),
            ty => parse_text(s, ty),
        })
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(match self.0 {
            SqlType::Varchar => Ok(Value::Str(s)),
            ty => parse_text(&s, ty),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = serde::Deserialize::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(self.composite(value))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = serde::Deserialize::deserialize(MapAccessDeserializer::new(map))?;
        Ok(self.composite(value))
    }
}
