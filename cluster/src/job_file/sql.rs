//! `sql = """…"""` or `sql_file = "q5.sql"`: a job written in SQL.
//!
//! The script is compiled by the engine's SQL front end
//! ([`SqlProgram::compile`]); then every table the job reads becomes a
//! source and every table it writes a sink, their `WITH` options read by
//! the same code as a job file's `[source]` and `[sink]` sections (so the
//! options and their errors are those of the TOML reference: `'events' =
//! '1000'` is `events = 1000`). Each option value is read as a TOML value
//! when it is one (`'1000'`, `'true'`, `'["a.csv", "b.csv"]'`) and as a
//! string otherwise. Event time comes from the table's `WATERMARK` (a table
//! without one is read in processing time, and so is one that a window of
//! `PROCTIME()` reads), so `time` and
//! `out_of_orderness_ms` (nor a Kafka table's `timestamps`) are not
//! options. Flink's connector names `print` and `filesystem` are Sluice's
//! `stdout` and `file`; a Kafka table may use Flink's option names
//! ([`kafka_options`]), its message values read as a file table's lines
//! are, or as Nexmark events (`'format' = 'nexmark'`, and so may a
//! `filesystem` table's lines). A table the job looks
//! up (`FOR SYSTEM_TIME AS OF`) is a `filesystem` table read whole here,
//! when the job file is read, its bad lines named by file and line before
//! anything starts. Every error points at
//! the script's line and column: in the job file for `sql`, in the script
//! file for `sql_file`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_engine::checkpoint::CheckpointConfig;
use sluice_engine::connectors::nexmark::NexmarkConfig;
use sluice_engine::connectors::{BadRecordPolicy, GeneratorSource, RecordFormat};
use sluice_engine::sql::catalog::Table;
use sluice_engine::sql::output::OutputLayout;
use sluice_engine::sql::scan::{generator_schema, nexmark_schema, RowMaker};
use sluice_engine::sql::sql_type::SqlType;
use sluice_engine::sql::text_rows::TextRows;
use sluice_engine::sql::{Position, Row, SqlError, SqlProgram};
use sluice_engine::JobConfig;

use super::sink::{parse_sink, SinkSpec};
use crate::kafka::{KafkaSourceConfig, PayloadFormat};
use partitioned::partitioning;
pub use partitioned::SqlPartitioning;

mod kafka_options;
mod partitioned;
use super::source::{parse_source, EventTimeSpec, SourceSpec};
use super::{FileContext, JobFileError};

/// Where a script's text is, for positions in errors: one or more pieces,
/// each the whole of a file or the `sql` string of the job file.
#[derive(Debug, Clone)]
pub(super) struct ScriptOrigin {
    pieces: Vec<ScriptPiece>,
}

#[derive(Debug, Clone)]
struct ScriptPiece {
    /// The file that holds the piece.
    path: PathBuf,
    /// The piece starts at this line of the script (from 1).
    script_line: u64,
    /// ... which is this line of `path`.
    file_line: u64,
    /// Columns of the piece's first line are shifted by this much in `path`.
    first_column_shift: u64,
}

impl ScriptOrigin {
    /// The script in `sql = …` of the job file `path` whose text is `text`.
    pub fn inline(text: &str, sql: &toml::Spanned<String>, path: &Path) -> ScriptOrigin {
        let start = sql.span().start.min(text.len());
        let before = &text[..start];
        let line = before.matches('\n').count() as u64 + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
        let rest = &text[start..];
        let quote = if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
            3
        } else {
            1
        };
        let after = &rest[quote.min(rest.len())..];
        // TOML drops a newline right after the opening quotes.
        let (file_line, first_column_shift) =
            if quote == 3 && (after.starts_with('\n') || after.starts_with("\r\n")) {
                (line + 1, 0)
            } else {
                (line, column - 1 + quote as u64)
            };
        ScriptOrigin {
            pieces: vec![ScriptPiece {
                path: path.to_owned(),
                script_line: 1,
                file_line,
                first_column_shift,
            }],
        }
    }

    /// The script made of `files` (path and text), one after another; and
    /// that script's text.
    pub fn files(files: Vec<(PathBuf, String)>) -> (ScriptOrigin, String) {
        let mut script = String::new();
        let mut pieces = Vec::new();
        for (path, text) in files {
            pieces.push(ScriptPiece {
                path,
                script_line: script.matches('\n').count() as u64 + 1,
                file_line: 1,
                first_column_shift: 0,
            });
            script.push_str(&text);
            if !text.ends_with('\n') {
                script.push('\n');
            }
        }
        (ScriptOrigin { pieces }, script)
    }

    fn error(&self, error: SqlError) -> JobFileError {
        let Position { line, column } = error.position;
        let piece = self
            .pieces
            .iter()
            .rev()
            .find(|p| p.script_line <= line)
            .unwrap_or(&self.pieces[0]);
        let line_in_piece = line.saturating_sub(piece.script_line);
        let column = if line_in_piece == 0 {
            column + piece.first_column_shift
        } else {
            column
        };
        JobFileError::Sql {
            file: piece.path.clone(),
            line: piece.file_line + line_in_piece,
            column,
            message: error.message,
        }
    }
}

/// The connectors a SQL table can read.
#[derive(Debug, Clone)]
pub enum TableConnector {
    Nexmark(NexmarkConfig),
    Generator(GeneratorSource),
    /// Lines of files, JSON or CSV, made rows by the table's columns.
    File {
        paths: Vec<PathBuf>,
        split_bytes: u64,
        bad_records: BadRecordPolicy,
        text: Arc<TextRows>,
    },
    /// Messages of Kafka topics, each value a JSON or CSV line made a row
    /// by the table's columns.
    Kafka {
        config: KafkaSourceConfig,
        text: Arc<TextRows>,
    },
    /// Nexmark events (as JSON) in Kafka topics, the `nexmark` connector's
    /// columns.
    KafkaNexmark {
        config: KafkaSourceConfig,
    },
    /// Nexmark events in files (JSON lines, as `sluice nexmark generate`
    /// writes them), the `nexmark` connector's columns.
    FileNexmark {
        paths: Vec<PathBuf>,
        split_bytes: u64,
        bad_records: BadRecordPolicy,
    },
}

/// A table the job reads: its connector, event time and row layout.
#[derive(Debug, Clone)]
pub struct SqlSource {
    pub table: String,
    pub connector: TableConnector,
    /// What the table's options say, as a `[source]` section would.
    pub spec: SourceSpec,
    pub event_time: EventTimeSpec,
    /// Makes the rows; their event-time column (`rows.rowtime()`, with a
    /// `WATERMARK`) stamps each.
    pub rows: RowMaker,
}

/// A table the job writes.
#[derive(Debug, Clone)]
pub struct SqlSink {
    pub table: String,
    pub spec: SinkSpec,
    /// The columns the sink writes (a partitioned table's others).
    pub layout: OutputLayout,
    /// `PARTITIONED BY`: a directory per partition, committed by its time.
    pub partitioning: Option<SqlPartitioning>,
}

/// A job file's SQL, compiled, with its tables' connectors.
#[derive(Debug, Clone)]
pub struct SqlJob {
    pub program: Arc<SqlProgram>,
    pub sources: Vec<SqlSource>,
    pub sinks: Vec<SqlSink>,
    /// The rows of each table the job looks up, read when the job file was.
    pub lookups: HashMap<String, Arc<[Row]>>,
}

impl SqlJob {
    pub(super) fn compile(
        file: &FileContext,
        origin: &ScriptOrigin,
        script: &str,
        config: &mut JobConfig,
    ) -> Result<SqlJob, JobFileError> {
        let udfs = crate::jobs::udfs::registered();
        let program = SqlProgram::compile(script, &udfs).map_err(|e| origin.error(e))?;
        let mut sources = Vec::new();
        for (name, layout) in &program.sources {
            let table = program.catalog.table(name).expect("planned tables exist");
            let processing_time = program.processing_time_tables.contains(name);
            sources.push(source_of(
                file,
                origin,
                table,
                layout,
                processing_time,
                config,
            )?);
        }
        let mut lookups = HashMap::new();
        for name in &program.lookups {
            let table = program.catalog.table(name).expect("planned tables exist");
            lookups.insert(name.clone(), lookup_rows(file, origin, table, config)?);
        }
        let mut sinks: Vec<SqlSink> = Vec::new();
        for insert in &program.inserts {
            if sinks.iter().any(|s| s.table == insert.table) {
                continue;
            }
            let table = program.catalog.table(&insert.table).expect("planned");
            let source = sources.first().map(|s| &s.spec);
            let columns: Vec<(String, SqlType)> = (insert.columns.iter())
                .map(|c| (c.name.clone(), c.ty.clone()))
                .collect();
            let (spec, partitioning) = sink_of(
                file,
                origin,
                table,
                &columns,
                source,
                config.checkpoint.as_ref(),
            )?;
            // A partitioned table's files hold its other columns only.
            let written = match &partitioning {
                Some(p) => p.rows.written().iter().map(|&i| &columns[i]).collect(),
                None => columns.iter().collect::<Vec<_>>(),
            };
            let layout = OutputLayout::intern(written.into_iter().map(|(n, t)| (n.as_str(), t)));
            sinks.push(SqlSink {
                table: insert.table.clone(),
                spec,
                layout,
                partitioning,
            });
        }
        Ok(SqlJob {
            program: Arc::new(program),
            sources,
            sinks,
            lookups,
        })
    }
}

/// `table`'s options as a TOML table (the `connector` name mapped from
/// Flink's where they differ).
fn options_table(table: &Table) -> toml::Table {
    let mut out = toml::Table::new();
    for option in &table.options {
        let (key, text) = &option.node;
        let value = if key == "connector" {
            toml::Value::String(
                match text.as_str() {
                    "print" => "stdout",
                    "filesystem" => "file",
                    other => other,
                }
                .to_owned(),
            )
        } else {
            toml_value(text)
        };
        out.insert(key.clone(), value);
    }
    out
}

/// `text` as the TOML value it spells, else as a string.
fn toml_value(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut table) if table.len() == 1 => table
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.to_owned())),
        _ => toml::Value::String(text.to_owned()),
    }
}

/// A `[source]`/`[sink]` error about `table`, moved to the option it is
/// about (or the table's `CREATE`).
fn option_error(
    origin: &ScriptOrigin,
    table: &Table,
    section: &str,
    error: JobFileError,
) -> JobFileError {
    let (field, message) = match error {
        JobFileError::Invalid { field, message, .. } => (field, message),
        other => return other,
    };
    let key = field
        .strip_prefix(section)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(|k| k.split('[').next().unwrap_or(k).to_owned())
        .or_else(|| {
            // "unknown field `x`": the option is named in the message.
            message
                .split('`')
                .nth(1)
                .filter(|k| table.option(k).is_some())
                .map(str::to_owned)
        })
        .or_else(|| {
            // "invalid type: string \"many\"": the option is the one with that value.
            table
                .options
                .iter()
                .find(|o| {
                    let value = &o.node.1;
                    o.node.0 != "connector"
                        && (message.contains(&format!("\"{value}\""))
                            || message.contains(&format!("`{value}`")))
                })
                .map(|o| o.node.0.clone())
        });
    // Flink's option names ('path', 'topic', …) for Sluice's fields.
    let key = key.map(|k| {
        kafka_options::written_option(table, &k)
            .map(str::to_owned)
            .unwrap_or(k)
    });
    let (position, text) = match key.as_deref().and_then(|k| table.option(k).map(|o| (k, o))) {
        Some((k, option)) => (
            option.position,
            format!("table `{}`: option '{k}' {message}", table.name),
        ),
        None => match key {
            Some(k) => {
                // Not written: named as a Flink user would write it too
                // (Kafka's option names belong to Kafka tables only).
                let flink = if connector_name(table) == "kafka" {
                    kafka_options::flink_name(&k)
                } else {
                    (k == "paths").then_some("path")
                };
                let name = match flink {
                    Some(flink) => format!("'{flink}' (or '{k}')"),
                    None => format!("'{k}'"),
                };
                (
                    table.position,
                    format!("table `{}`: option {name} {message}", table.name),
                )
            }
            None => (table.position, format!("table `{}`: {message}", table.name)),
        },
    };
    origin.error(SqlError::new(position, text))
}

/// The `connector` option of `table` as written.
fn connector_name(table: &Table) -> String {
    table
        .option("connector")
        .map(|o| o.node.1.clone())
        .unwrap_or_default()
}

/// An error about `table`'s option `key`, placed where it is written (or at
/// the table when it is not).
fn refused_at_option(
    origin: &ScriptOrigin,
    table: &Table,
    key: &str,
    message: &str,
) -> JobFileError {
    let position = table.option(key).map_or(table.position, |o| o.position);
    origin.error(SqlError::new(
        position,
        format!("table `{}`: {message}", table.name),
    ))
}

/// `table`'s options read as a `[source]` section would be, in event time
/// if it has a `WATERMARK` unless `processing_time`.
fn source_spec(
    file: &FileContext,
    origin: &ScriptOrigin,
    table: &Table,
    processing_time: bool,
    config: &mut JobConfig,
) -> Result<(SourceSpec, EventTimeSpec), JobFileError> {
    let mut options = options_table(table);
    // Flink's filesystem table reads one path; Sluice's file source a list.
    if let Some(path) = options.remove("path") {
        options.insert("paths".into(), toml::Value::Array(vec![path]));
    }
    if connector_name(table) == "kafka" {
        kafka_options::kafka_fields(origin, table, &mut options, true)?;
    }
    for key in ["time", "out_of_orderness_ms", "timestamps"] {
        if table.option(key).is_some() {
            return Err(refused_at_option(
                origin,
                table,
                key,
                &format!("option '{key}' does not apply to SQL tables: event time is the table's WATERMARK FOR clause"),
            ));
        }
    }
    match table.watermark {
        Some(watermark) if !processing_time => {
            options.insert("time".into(), "event".into());
            options.insert("out_of_orderness_ms".into(), watermark.delay_ms.into());
        }
        _ => {
            options.insert("time".into(), "processing".into());
        }
    }
    parse_source(file, options, config).map_err(|e| option_error(origin, table, "source", e))
}

fn source_of(
    file: &FileContext,
    origin: &ScriptOrigin,
    table: &Table,
    layout: &[usize],
    processing_time: bool,
    config: &mut JobConfig,
) -> Result<SqlSource, JobFileError> {
    let (spec, event_time) = source_spec(file, origin, table, processing_time, config)?;
    let refuse_format = || {
        let key = kafka_options::written_option(table, "format").unwrap_or("format");
        refused_at_option(
            origin,
            table,
            key,
            &format!("option '{key}' of a SQL table is 'json' or 'csv' (its columns are read from each line)"),
        )
    };
    let text_rows = |format| match format {
        RecordFormat::Text => Err(refuse_format()),
        format => TextRows::of_table(table, format, layout)
            .map(Arc::new)
            .map_err(|e| origin.error(e)),
    };
    let connector = match &spec {
        SourceSpec::Nexmark(n) => TableConnector::Nexmark(n.clone()),
        SourceSpec::Generator(g) => TableConnector::Generator(g.clone()),
        SourceSpec::File {
            paths,
            nexmark: true,
            split_bytes,
            bad_records,
            ..
        } => TableConnector::FileNexmark {
            paths: paths.clone(),
            split_bytes: *split_bytes,
            bad_records: bad_records.clone(),
        },
        SourceSpec::File {
            paths,
            format,
            split_bytes,
            bad_records,
            ..
        } => TableConnector::File {
            paths: paths.clone(),
            split_bytes: *split_bytes,
            bad_records: bad_records.clone(),
            text: text_rows(*format)?,
        },
        SourceSpec::Kafka(kafka) if kafka.nexmark => TableConnector::KafkaNexmark {
            config: kafka.config.clone(),
        },
        SourceSpec::Kafka(kafka) => match kafka.config.format {
            PayloadFormat::Text(format) => TableConnector::Kafka {
                config: kafka.config.clone(),
                text: text_rows(format)?,
            },
            PayloadFormat::Raw => return Err(refuse_format()),
        },
    };
    let rows = match &connector {
        TableConnector::Nexmark(_)
        | TableConnector::KafkaNexmark { .. }
        | TableConnector::FileNexmark { .. } => {
            RowMaker::new(table, "nexmark", &nexmark_schema(), layout)
        }
        TableConnector::Generator(_) => {
            RowMaker::new(table, "generator", &generator_schema(), layout)
        }
        TableConnector::File { text, .. } | TableConnector::Kafka { text, .. } => {
            Ok(text.rows.clone())
        }
    }
    .map_err(|e| origin.error(e))?;
    Ok(SqlSource {
        table: table.name.clone(),
        connector,
        spec,
        event_time,
        rows,
    })
}

/// The rows of the lookup table `table`, every column: its files read
/// whole, now. A line that does not parse fails the job (naming the file
/// and line) unless the table skips bad records.
fn lookup_rows(
    file: &FileContext,
    origin: &ScriptOrigin,
    table: &Table,
    config: &JobConfig,
) -> Result<Arc<[Row]>, JobFileError> {
    // A lookup table is no source: its options leave the job's alone.
    let (spec, _) = source_spec(file, origin, table, false, &mut config.clone())?;
    let SourceSpec::File {
        paths,
        format,
        nexmark,
        bad_records,
        ..
    } = spec
    else {
        let connector = connector_name(table);
        return Err(refused_at_option(
            origin,
            table,
            "connector",
            &format!("it is looked up with FOR SYSTEM_TIME AS OF: a lookup table is a 'filesystem' table, read whole when the job starts (connector '{connector}' is a stream)"),
        ));
    };
    if format == RecordFormat::Text
        || nexmark
        || matches!(bad_records, BadRecordPolicy::SideOutput { .. })
    {
        let (key, message) = if format == RecordFormat::Text || nexmark {
            ("format", "option 'format' of a SQL table is 'json' or 'csv' (its columns are read from each line)")
        } else {
            ("on_bad_record", "a lookup table fails on a bad line or skips it ('fail' or 'skip'): it is read before the job starts, with nowhere to send it")
        };
        return Err(refused_at_option(origin, table, key, message));
    }
    let every_column: Vec<usize> = (0..table.columns.len()).collect();
    let text = TextRows::of_table(table, format, &every_column).map_err(|e| origin.error(e))?;
    let option = if table.option("path").is_some() {
        "path"
    } else {
        "paths"
    };
    let mut out = Vec::new();
    for path in &paths {
        let content = std::fs::read_to_string(path).map_err(|e| {
            refused_at_option(
                origin,
                table,
                option,
                &format!("reading `{}`: {e}", path.display()),
            )
        })?;
        for (i, line) in content.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match text.parse(line) {
                Ok(row) => out.push(row),
                Err(_) if bad_records == BadRecordPolicy::Skip => {}
                Err(message) => {
                    return Err(refused_at_option(
                        origin,
                        table,
                        option,
                        &format!("{}:{}: {message}", path.display(), i + 1),
                    ))
                }
            }
        }
    }
    Ok(out.into())
}

/// The sink `table` is, and its partitioning; the rows written are
/// `columns` (name, type).
fn sink_of(
    file: &FileContext,
    origin: &ScriptOrigin,
    table: &Table,
    columns: &[(String, SqlType)],
    source: Option<&SourceSpec>,
    checkpoint: Option<&CheckpointConfig>,
) -> Result<(SinkSpec, Option<SqlPartitioning>), JobFileError> {
    if table.watermark.is_some() {
        return Err(origin.error(SqlError::new(
            table.position,
            format!(
                "table `{}` is written by INSERT INTO: a WATERMARK applies to tables a job reads",
                table.name
            ),
        )));
    }
    let mut options = options_table(table);
    if connector_name(table) == "kafka" {
        kafka_options::kafka_fields(origin, table, &mut options, false)?;
    }
    let partitioning = partitioning(origin, table, columns, &mut options)?;
    let spec = parse_sink(file, options, source, checkpoint)
        .map_err(|e| option_error(origin, table, "sink", e))?;
    if let SinkSpec::Kafka(kafka) = &spec {
        if let Some(field) =
            (kafka.key_fields.iter()).find(|f| !columns.iter().any(|(c, _)| c == *f))
        {
            let key = kafka_options::written_option(table, "key_fields").unwrap_or("key_fields");
            let names: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
            return Err(refused_at_option(
                origin,
                table,
                key,
                &format!(
                    "option '{key}' names `{field}`, which is not a column the table is written with ({})",
                    names.join(", ")
                ),
            ));
        }
    }
    if partitioning.is_some() && !matches!(spec, SinkSpec::File { .. }) {
        return Err(refused_at_option(
            origin,
            table,
            "connector",
            "PARTITIONED BY applies to 'filesystem' sink tables (a directory per partition)",
        ));
    }
    Ok((spec, partitioning))
}

/// The scripts of `sql_file` (one file or a list, read one after another),
/// resolved against the job file's directory: where they are and the script.
pub(super) fn read_scripts(
    file: &FileContext,
    paths: &SqlFiles,
) -> Result<(ScriptOrigin, String), JobFileError> {
    let list: Vec<&PathBuf> = match paths {
        SqlFiles::One(path) => vec![path],
        SqlFiles::Many(paths) => paths.iter().collect(),
    };
    if list.is_empty() {
        return Err(file.invalid("sql_file", "is an empty list, expected at least one file"));
    }
    let mut files = Vec::new();
    for path in list {
        let full = file.resolve(path);
        match std::fs::read_to_string(&full) {
            Ok(text) => files.push((full, text)),
            Err(e) => return Err(file.invalid("sql_file", format!("`{}`: {e}", full.display()))),
        }
    }
    Ok(ScriptOrigin::files(files))
}

/// `sql_file`: one script, or several read as one.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub(super) enum SqlFiles {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl SqlFiles {
    /// The last file, usually the query after shared DDL (its stem names the job).
    pub fn last(&self) -> Option<&Path> {
        match self {
            SqlFiles::One(path) => Some(path),
            SqlFiles::Many(paths) => paths.last().map(PathBuf::as_path),
        }
    }
}
