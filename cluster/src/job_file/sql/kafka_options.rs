//! Flink's Kafka table options, read as the fields of Sluice's Kafka
//! `[source]` and `[sink]` sections.
//!
//! A SQL table with `'connector' = 'kafka'` may be written with Flink's
//! option names or with the job file's field names (`'topics'`,
//! `'bootstrap_servers'`, …); each Flink option below becomes the field it
//! means, and an error about that field is reported at the option as the
//! script wrote it ([`written_option`]). Giving both names of one setting
//! is refused.
//!
//! | Flink option                               | Sluice field |
//! |--------------------------------------------|--------------|
//! | `topic` (a source's may list `a;b`)        | `topics` (source), `topic` (sink) |
//! | `topic-pattern`                            | `topic_pattern` |
//! | `properties.bootstrap.servers`             | `bootstrap_servers` |
//! | `properties.group.id`                      | `group_id` (a sink has no group: ignored, as Flink does) |
//! | `properties.<name>`                        | `properties.<name>` (librdkafka's) |
//! | `scan.startup.mode`, `scan.startup.timestamp-millis` | `start` (`earliest-offset`, `latest-offset`, `group-offsets`, `timestamp`) |
//! | `scan.bounded.mode`                        | `stop` (`unbounded`, `latest-offset`) |
//! | `scan.topic-partition-discovery.interval`  | `discovery_interval_ms` |
//! | `format`, `value.format`                   | `format` (`json`, `csv`) |
//! | `json.ignore-parse-errors`, `csv.ignore-parse-errors` | `on_bad_record = 'skip'` |
//! | `key.fields` (`a;b`), `key.format` = `json` | `key_fields` (sink) |
//! | `sink.delivery-guarantee`                  | `delivery` |
//! | `sink.transactional-id-prefix`             | `transactional_id_prefix` |
//!
//! Not supported, refused by name: `specific-offsets` and bounded modes
//! other than `latest-offset`, key columns read from a source's message
//! keys, `value.fields-include` other than `ALL`.

use sluice_engine::sql::catalog::Table;

use super::partitioned::duration_ms;
use super::{refused_at_option, ScriptOrigin};
use crate::job_file::JobFileError;

/// Sluice's field and the Flink options that set it: an error about the
/// field is shown at whichever of them the table wrote.
const WRITTEN_AS: &[(&str, &[&str])] = &[
    ("paths", &["path"]),
    ("topics", &["topic"]),
    ("topic_pattern", &["topic-pattern"]),
    ("bootstrap_servers", &["properties.bootstrap.servers"]),
    ("group_id", &["properties.group.id"]),
    (
        "start",
        &["scan.startup.mode", "scan.startup.timestamp-millis"],
    ),
    ("stop", &["scan.bounded.mode"]),
    (
        "discovery_interval_ms",
        &["scan.topic-partition-discovery.interval"],
    ),
    ("format", &["value.format"]),
    (
        "on_bad_record",
        &["json.ignore-parse-errors", "csv.ignore-parse-errors"],
    ),
    ("key_fields", &["key.fields"]),
    ("delivery", &["sink.delivery-guarantee"]),
    ("transactional_id_prefix", &["sink.transactional-id-prefix"]),
];

/// The option of `table` that set Sluice's field `field`: the field itself
/// when written so, else the Flink option written for it.
pub(super) fn written_option<'t>(table: &'t Table, field: &str) -> Option<&'t str> {
    if let Some(option) = table.option(field) {
        return Some(&option.node.0);
    }
    let (_, flink) = WRITTEN_AS.iter().find(|(sluice, _)| *sluice == field)?;
    flink
        .iter()
        .find_map(|name| table.option(name).map(|o| o.node.0.as_str()))
}

/// Flink's name for Sluice's field `field`, if it has one.
pub(super) fn flink_name(field: &str) -> Option<&'static str> {
    WRITTEN_AS
        .iter()
        .find(|(sluice, _)| *sluice == field)
        .map(|(_, flink)| flink[0])
}

/// Rewrites the Flink options of the Kafka table `table` in `options` (its
/// `WITH` options as a TOML table) into the fields of a `[source]`
/// (`reading`) or `[sink]` section.
pub(super) fn kafka_fields(
    origin: &ScriptOrigin,
    table: &Table,
    options: &mut toml::Table,
    reading: bool,
) -> Result<(), JobFileError> {
    let refused = |key: &str, message: String| refused_at_option(origin, table, key, &message);
    let text = |key: &str| table.option(key).map(|o| o.node.1.trim().to_owned());
    let set = |options: &mut toml::Table,
               flink: &str,
               field: &str,
               value: toml::Value|
     -> Result<(), JobFileError> {
        if table.option(field).is_some() {
            return Err(refused(
                flink,
                format!("option '{flink}' and option '{field}' say the same: give one"),
            ));
        }
        options.insert(field.to_owned(), value);
        Ok(())
    };
    let list = |text: &str| -> toml::Value {
        toml::Value::Array(
            (text.split(';'))
                .map(|item| toml::Value::String(item.trim().to_owned()))
                .collect(),
        )
    };

    if let Some(topic) = text("topic") {
        options.remove("topic");
        if reading {
            set(options, "topic", "topics", list(&topic))?;
        } else if topic.contains(';') {
            return Err(refused(
                "topic",
                format!("option 'topic' is '{topic}': a sink table writes to one topic"),
            ));
        } else {
            options.insert("topic".into(), toml::Value::String(topic));
        }
    }
    if let Some(pattern) = text("topic-pattern") {
        options.remove("topic-pattern");
        set(options, "topic-pattern", "topic_pattern", pattern.into())?;
    }

    // `properties.*`: librdkafka's settings, two of them Sluice's fields.
    let property_keys: Vec<String> = (options.keys())
        .filter(|k| k.starts_with("properties."))
        .cloned()
        .collect();
    for key in property_keys {
        let value = options.remove(&key).expect("listed");
        let name = &key["properties.".len()..];
        let value_text = text(&key).unwrap_or_default();
        match name {
            "bootstrap.servers" => set(options, &key, "bootstrap_servers", value_text.into())?,
            "group.id" if reading => set(options, &key, "group_id", value_text.into())?,
            "group.id" => {}
            _ => {
                let properties = options
                    .entry("properties")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match properties {
                    toml::Value::Table(properties) => {
                        properties.insert(name.to_owned(), value);
                    }
                    _ => {
                        return Err(refused(
                            "properties",
                            "option 'properties' is not a table: write librdkafka's settings as 'properties.<name>'".into(),
                        ))
                    }
                }
            }
        }
    }

    if let Some(format) = text("value.format") {
        options.remove("value.format");
        set(options, "value.format", "format", format.into())?;
    }
    if let Some(include) = text("value.fields-include") {
        options.remove("value.fields-include");
        if !include.eq_ignore_ascii_case("ALL") {
            return Err(refused(
                "value.fields-include",
                format!("option 'value.fields-include' is '{include}': Sluice writes every column into the value ('ALL')"),
            ));
        }
    }
    for key in ["json.ignore-parse-errors", "csv.ignore-parse-errors"] {
        let Some(ignore) = text(key) else { continue };
        options.remove(key);
        if !reading {
            return Err(refused(
                key,
                format!("option '{key}' applies to tables the job reads"),
            ));
        }
        match ignore.to_ascii_lowercase().as_str() {
            "true" => set(options, key, "on_bad_record", "skip".into())?,
            "false" => {}
            _ => {
                return Err(refused(
                    key,
                    format!("option '{key}' is '{ignore}', expected 'true' or 'false'"),
                ))
            }
        }
    }

    if reading {
        source_fields(table, options, &refused, &set)?;
    } else {
        sink_fields(table, options, &refused, &set, &list)?;
    }
    Ok(())
}

type Refused<'a> = dyn Fn(&str, String) -> JobFileError + 'a;
type Set<'a> = dyn Fn(&mut toml::Table, &str, &str, toml::Value) -> Result<(), JobFileError> + 'a;

/// `scan.*` and the source's refusals.
fn source_fields(
    table: &Table,
    options: &mut toml::Table,
    refused: &Refused,
    set: &Set,
) -> Result<(), JobFileError> {
    let text = |key: &str| table.option(key).map(|o| o.node.1.trim().to_owned());
    let timestamp = text("scan.startup.timestamp-millis");
    options.remove("scan.startup.timestamp-millis");
    if let Some(mode) = text("scan.startup.mode") {
        options.remove("scan.startup.mode");
        let start = match mode.as_str() {
            "earliest-offset" => "earliest".to_owned(),
            "latest-offset" => "latest".to_owned(),
            "group-offsets" => "group-offsets".to_owned(),
            "timestamp" => match timestamp.as_deref().map(str::parse::<i64>) {
                Some(Ok(ms)) if ms >= 0 => format!("timestamp:{ms}"),
                Some(_) => {
                    return Err(refused(
                        "scan.startup.timestamp-millis",
                        format!(
                            "option 'scan.startup.timestamp-millis' is '{}', expected milliseconds since the epoch",
                            timestamp.unwrap_or_default()
                        ),
                    ))
                }
                None => {
                    return Err(refused(
                        "scan.startup.mode",
                        "option 'scan.startup.mode' is 'timestamp': give 'scan.startup.timestamp-millis'".into(),
                    ))
                }
            },
            other => {
                return Err(refused(
                    "scan.startup.mode",
                    format!("option 'scan.startup.mode' is '{other}', expected 'earliest-offset', 'latest-offset', 'group-offsets' or 'timestamp' (Sluice does not read 'specific-offsets')"),
                ))
            }
        };
        set(options, "scan.startup.mode", "start", start.into())?;
    }
    if timestamp.is_some() && text("scan.startup.mode").as_deref() != Some("timestamp") {
        return Err(refused(
            "scan.startup.timestamp-millis",
            "option 'scan.startup.timestamp-millis' applies to 'scan.startup.mode' = 'timestamp'"
                .into(),
        ));
    }
    if let Some(mode) = text("scan.bounded.mode") {
        options.remove("scan.bounded.mode");
        let stop = match mode.as_str() {
            "unbounded" => "never",
            "latest-offset" => "latest",
            other => {
                return Err(refused(
                    "scan.bounded.mode",
                    format!("option 'scan.bounded.mode' is '{other}', expected 'unbounded' or 'latest-offset' (the end offsets when the job starts)"),
                ))
            }
        };
        set(options, "scan.bounded.mode", "stop", stop.into())?;
    }
    const DISCOVERY: &str = "scan.topic-partition-discovery.interval";
    if let Some(interval) = text(DISCOVERY) {
        options.remove(DISCOVERY);
        let ms = duration_ms(&interval)
            .map_err(|m| refused(DISCOVERY, format!("option '{DISCOVERY}' {m}")))?;
        set(
            options,
            DISCOVERY,
            "discovery_interval_ms",
            toml::Value::Integer(ms.max(0)),
        )?;
    }
    for key in ["key.fields", "key.format"] {
        if table.option(key).is_some() {
            return Err(refused(
                key,
                format!("option '{key}': a source table's columns are read from the message value (Sluice does not read message keys)"),
            ));
        }
    }
    Ok(())
}

/// `sink.*`, `key.*` and the sink's refusals.
fn sink_fields(
    table: &Table,
    options: &mut toml::Table,
    refused: &Refused,
    set: &Set,
    list: &dyn Fn(&str) -> toml::Value,
) -> Result<(), JobFileError> {
    let text = |key: &str| table.option(key).map(|o| o.node.1.trim().to_owned());
    if let Some(delivery) = text("sink.delivery-guarantee") {
        options.remove("sink.delivery-guarantee");
        set(
            options,
            "sink.delivery-guarantee",
            "delivery",
            delivery.into(),
        )?;
    }
    if let Some(prefix) = text("sink.transactional-id-prefix") {
        options.remove("sink.transactional-id-prefix");
        set(
            options,
            "sink.transactional-id-prefix",
            "transactional_id_prefix",
            prefix.into(),
        )?;
    }
    if let Some(format) = text("key.format") {
        options.remove("key.format");
        if format != "json" {
            return Err(refused(
                "key.format",
                format!("option 'key.format' is '{format}': a message key is the JSON object of the key fields ('json')"),
            ));
        }
        if table.option("key.fields").is_none() {
            return Err(refused(
                "key.format",
                "option 'key.format' needs 'key.fields'".into(),
            ));
        }
    }
    if let Some(fields) = text("key.fields") {
        options.remove("key.fields");
        set(options, "key.fields", "key_fields", list(&fields))?;
    }
    for key in ["scan.startup.mode", "scan.bounded.mode"] {
        if table.option(key).is_some() {
            return Err(refused(
                key,
                format!("option '{key}' applies to tables the job reads"),
            ));
        }
    }
    Ok(())
}
