//! The Nexmark queries in SQL, as `sluice bench nexmark --sql` runs them:
//! the files of `examples/nexmark-sql`, built into the binary, with the
//! events table's options set from the benchmark's arguments.

use std::path::Path;

/// The shared events table and views.
const NEXMARK_DDL: &str = include_str!("../../../examples/nexmark-sql/nexmark.sql");

/// The queries that have SQL files, by name.
const QUERIES: &[(&str, &str)] = &[
    ("q0", include_str!("../../../examples/nexmark-sql/q0.sql")),
    ("q1", include_str!("../../../examples/nexmark-sql/q1.sql")),
    ("q2", include_str!("../../../examples/nexmark-sql/q2.sql")),
    ("q3", include_str!("../../../examples/nexmark-sql/q3.sql")),
    ("q4", include_str!("../../../examples/nexmark-sql/q4.sql")),
    ("q5", include_str!("../../../examples/nexmark-sql/q5.sql")),
    ("q7", include_str!("../../../examples/nexmark-sql/q7.sql")),
    ("q8", include_str!("../../../examples/nexmark-sql/q8.sql")),
    ("q9", include_str!("../../../examples/nexmark-sql/q9.sql")),
    ("q11", include_str!("../../../examples/nexmark-sql/q11.sql")),
    ("q12", include_str!("../../../examples/nexmark-sql/q12.sql")),
    ("q13", include_str!("../../../examples/nexmark-sql/q13.sql")),
    ("q14", include_str!("../../../examples/nexmark-sql/q14.sql")),
    ("q15", include_str!("../../../examples/nexmark-sql/q15.sql")),
    ("q16", include_str!("../../../examples/nexmark-sql/q16.sql")),
    ("q17", include_str!("../../../examples/nexmark-sql/q17.sql")),
    ("q18", include_str!("../../../examples/nexmark-sql/q18.sql")),
    ("q19", include_str!("../../../examples/nexmark-sql/q19.sql")),
    ("q20", include_str!("../../../examples/nexmark-sql/q20.sql")),
    ("q21", include_str!("../../../examples/nexmark-sql/q21.sql")),
    ("q22", include_str!("../../../examples/nexmark-sql/q22.sql")),
];

/// The side table q13 looks up, as its file names it.
const SIDE_INPUT_PATH: &str = "'path' = 'side_input.csv'";

/// Where the script's events come from.
pub enum EventsFrom<'a> {
    /// `events` Nexmark events of `seed`, in `partitions` partitions.
    Generator {
        events: u64,
        seed: u64,
        partitions: u32,
    },
    /// The JSON lines of a file `sluice nexmark generate` wrote.
    File(&'a Path),
}

/// The script of `query` over `events`; q13 looks up `side_input` (a
/// file's path).
pub fn script(
    query: &str,
    events: EventsFrom<'_>,
    side_input: Option<&str>,
) -> Result<String, String> {
    let Some((_, text)) = QUERIES.iter().find(|(name, _)| *name == query) else {
        let names: Vec<&str> = QUERIES.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "query `{query}` has no SQL file yet; with --sql, expected one of: {}",
            names.join(", ")
        ));
    };
    let options = "'events' = '1000000'";
    if !NEXMARK_DDL.contains(options) {
        return Err(
            "examples/nexmark-sql/nexmark.sql lost its `'events' = '1000000'` option".into(),
        );
    }
    let with = match events {
        EventsFrom::Generator {
            events,
            seed,
            partitions,
        } => format!("'events' = '{events}', 'seed' = '{seed}', 'partitions' = '{partitions}'"),
        EventsFrom::File(path) => {
            let path = path.to_str().filter(|p| !p.contains(['\'', '"', '\\']));
            let path = path.ok_or("--events-file: the path must be UTF-8 without quotes or backslashes (it goes into the SQL text)")?;
            format!("'format' = 'nexmark', 'path' = '{path}'")
        }
    };
    let connector = "'connector' = 'nexmark'";
    if !NEXMARK_DDL.contains(connector) {
        return Err("examples/nexmark-sql/nexmark.sql lost its `'connector' = 'nexmark'`".into());
    }
    let ddl = NEXMARK_DDL.replace(options, &with);
    let ddl = match events {
        EventsFrom::Generator { .. } => ddl,
        EventsFrom::File(_) => ddl.replace(connector, "'connector' = 'filesystem'"),
    };
    let text = match side_input {
        Some(path) if text.contains(SIDE_INPUT_PATH) => {
            text.replace(SIDE_INPUT_PATH, &format!("'path' = '{path}'"))
        }
        Some(_) => return Err(format!("{query}.sql lost its `{SIDE_INPUT_PATH}` option")),
        None => text.to_string(),
    };
    Ok(format!("{ddl}\n{text}"))
}
