//! Reading a section's fields one by one, so that every error names the field.
//!
//! A connector section (`[source]`, `[sink]`) is read in two steps: the
//! section as a TOML table, then its connector's fields from it. The field
//! names a connector accepts come from its serde derive ([`struct_fields`]),
//! so a field is never listed twice, and the errors say which field of which
//! section is wrong, as the rest of the file's errors do.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::Deserialize;

use super::{plain_type_names, FileContext, JobFileError};

/// The field names `T`'s serde derive reads (a struct with named fields).
pub(super) fn struct_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut probe = FieldProbe { fields: &[] };
    // The probe always fails after noting the fields: only the note matters.
    let _ = T::deserialize(&mut probe);
    probe.fields
}

/// A deserializer that notes the fields a struct asks for, then stops.
struct FieldProbe {
    fields: &'static [&'static str],
}

#[derive(Debug)]
struct ProbeStop;

impl std::fmt::Display for ProbeStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for ProbeStop {}

impl de::Error for ProbeStop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        ProbeStop
    }
}

impl<'de> de::Deserializer<'de> for &mut FieldProbe {
    type Error = ProbeStop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeStop> {
        Err(ProbeStop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeStop> {
        self.fields = fields;
        Err(ProbeStop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// A connector: its name and the fields it takes (from [`struct_fields`]).
pub(super) type Connector = (&'static str, fn() -> &'static [&'static str]);

/// `shared`, then every field any of `connectors` takes, in the order they
/// list them.
pub(super) fn known_fields(shared: &[&'static str], connectors: &[Connector]) -> Vec<&'static str> {
    let mut known = shared.to_vec();
    for (_, fields) in connectors {
        for field in fields() {
            if !known.contains(field) {
                known.push(field);
            }
        }
    }
    known
}

/// Refuses a field of `table` that is not in `known`.
pub(super) fn refuse_unknown(
    file: &FileContext,
    table: &toml::Table,
    section: &str,
    known: &[&str],
) -> Result<(), JobFileError> {
    match table.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => {
            let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            Err(file.invalid(
                section,
                format!(
                    "unknown field `{unknown}`, expected one of {}",
                    expected.join(", ")
                ),
            ))
        }
    }
}

/// Takes field `key` out of `table` as a `T`; an error names `section.key`.
pub(super) fn take<T: DeserializeOwned>(
    file: &FileContext,
    table: &mut toml::Table,
    section: &str,
    key: &str,
) -> Result<Option<T>, JobFileError> {
    let Some(value) = table.remove(key) else {
        return Ok(None);
    };
    value.try_into().map(Some).map_err(|e: toml::de::Error| {
        file.invalid(
            &format!("{section}.{key}"),
            plain_type_names(e.message().trim_end()),
        )
    })
}

/// Reads what is left of `table` as a `T` whose fields are all optional or
/// defaulted; an error names `section`.
pub(super) fn rest<T: DeserializeOwned>(
    file: &FileContext,
    table: toml::Table,
    section: &str,
) -> Result<T, JobFileError> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            file.invalid(section, plain_type_names(e.message().trim_end()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Example {
        first: u32,
        #[serde(rename = "second_ms")]
        second: Option<u64>,
    }

    #[test]
    fn the_fields_are_those_the_derive_reads() {
        assert_eq!(struct_fields::<Example>(), ["first", "second_ms"]);
    }
}
