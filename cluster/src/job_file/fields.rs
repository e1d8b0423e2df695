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

/// A connector section's connector, checked: what [`connector_of`] found.
pub(super) struct ConnectorSection {
    pub name: String,
    /// The fields this connector takes.
    pub fields: &'static [&'static str],
    /// `shared`, then every field any connector takes, in the order the
    /// connectors list them.
    pub known: Vec<&'static str>,
}

/// Takes `connector` out of `table` (section `section`), finds it among
/// `connectors` and refuses a field that neither `shared` nor any connector
/// knows.
pub(super) fn connector_of(
    file: &FileContext,
    table: &mut toml::Table,
    section: &str,
    shared: &[&'static str],
    connectors: &[Connector],
) -> Result<ConnectorSection, JobFileError> {
    let name: String = take(file, table, section, "connector")?
        .ok_or_else(|| file.invalid(section, "missing field `connector`"))?;
    let Some((_, fields)) = connectors.iter().find(|(known, _)| *known == name) else {
        let names: Vec<&str> = connectors.iter().map(|(known, _)| *known).collect();
        return Err(file.invalid(
            &format!("{section}.connector"),
            format!("is \"{name}\", expected {}", one_of(&names)),
        ));
    };
    let mut known = shared.to_vec();
    for (_, fields) in connectors {
        for field in fields() {
            if !known.contains(field) {
                known.push(field);
            }
        }
    }
    if let Some(unknown) = table.keys().find(|k| !known.contains(&k.as_str())) {
        let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        return Err(file.invalid(
            section,
            format!(
                "unknown field `{unknown}`, expected one of {}",
                expected.join(", ")
            ),
        ));
    }
    Ok(ConnectorSection {
        name,
        fields: fields(),
        known,
    })
}

/// "\"a\", \"b\" or \"c\"".
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
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

    #[test]
    fn names_are_listed_as_a_reader_would() {
        assert_eq!(one_of(&["a"]), "\"a\"");
        assert_eq!(one_of(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
    }
}
