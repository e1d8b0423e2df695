//! Builds a SQL job: its tables' sources as streams of rows, each INSERT's
//! operators over them, and its sink tables.
//!
//! Every table read is one source, shared by all reads of it; rows are made
//! inside the source reader ([`RowSource`]), stamped with the table's
//! `WATERMARK FOR` column; a lookup table's rows, read with the job file,
//! are shared by every shard. INSERTs into the same table meet in one sink
//! (a union). The plans were made and checked when the job file was read;
//! this only wires them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use sluice_engine::connectors::nexmark::{Event, NexmarkSource};
use sluice_engine::connectors::TimePartitionedFileSink;
use sluice_engine::connectors::{FileSource, Parse};
use sluice_engine::record::NO_TIMESTAMP;
use sluice_engine::sql::output::OutputRow;
use sluice_engine::sql::partitioned_sink::{LastPartition, PartitionedRows};
use sluice_engine::sql::physical::JobTables;
use sluice_engine::sql::row_source::RowSource;
use sluice_engine::sql::Row;
use sluice_engine::{Stream, StreamEnv, WatermarkStrategy};

use super::attach_sink_spec;
use crate::job_file::{JobFileError, SinkSpec, SqlJob, SqlSource, TableConnector};
use crate::kafka::{KafkaSource, ParseValue};

/// Builds `sql` on `env`.
/// `job_file` names the job in errors.
pub fn build(sql: &SqlJob, job_file: &Path, env: &StreamEnv) -> Result<(), JobFileError> {
    let mut tables = JobTables {
        streams: HashMap::new(),
        lookups: sql.lookups.clone(),
    };
    for source in &sql.sources {
        let stream = table_stream(source, env).map_err(|message| JobFileError::Syntax {
            file: job_file.to_owned(),
            message: format!("table `{}`: {message}", source.table),
        })?;
        tables.streams.insert(source.table.clone(), stream);
    }
    let checkpointing = env.config().checkpoint.is_some();
    let mut built = HashMap::new();
    for sink in &sql.sinks {
        let outputs: Vec<Stream<Row>> = sql
            .program
            .inserts
            .iter()
            .filter(|insert| insert.table == sink.table)
            .map(|insert| insert.plan.build(&tables, &mut built))
            .collect();
        let rows = match outputs.split_first() {
            Some((first, [])) => first.clone(),
            Some((first, rest)) => first.union(rest),
            None => continue,
        };
        let layout = sink.layout;
        match (&sink.partitioning, &sink.spec) {
            (Some(partitioning), SinkSpec::File { directory, format }) => {
                let partitioned = partitioning.rows.clone();
                let last = LastPartition::default();
                let out = rows.try_filter_map(move |row| {
                    let row = partitioned.prepare(row, &last)?;
                    Ok(Some(OutputRow { layout, row }))
                });
                let paths = partitioning.rows.clone();
                out.sink(TimePartitionedFileSink::new(
                    directory.clone(),
                    *format,
                    // A partition is the instant of its time: it commits
                    // once the watermark passes that time plus the delay.
                    1,
                    partitioning.commit_delay_ms,
                    |out: &OutputRow| PartitionedRows::time_of_prepared(&out.row),
                    move |time| paths.path(time),
                ));
            }
            _ => {
                let out = rows.map(move |row| OutputRow { layout, row });
                attach_sink_spec(&sink.spec, checkpointing, &out);
            }
        }
    }
    Ok(())
}

/// The rows of a source table.
fn table_stream(source: &SqlSource, env: &StreamEnv) -> Result<Stream<Row>, String> {
    let mut strategy: WatermarkStrategy<Row> = source.event_time.strategy();
    if let (Some(column), false) = (source.rows.rowtime(), source.event_time.processing_time) {
        strategy = strategy
            .with_timestamps(move |row: &Row| row.0[column].as_i64().unwrap_or(NO_TIMESTAMP));
    }
    let rows = source.rows.clone();
    let table = source.table.clone();
    Ok(match &source.connector {
        TableConnector::Nexmark(config) => env.source(
            RowSource {
                inner: NexmarkSource {
                    config: config.clone(),
                },
                make_row: Arc::new(move |event| rows.nexmark_row(event).map_err(|e| e.0)),
                table,
            },
            strategy,
        ),
        TableConnector::Generator(generator) => env.source(
            RowSource {
                inner: generator.clone(),
                make_row: Arc::new(move |event| rows.generator_row(event).map_err(|e| e.0)),
                table,
            },
            strategy,
        ),
        TableConnector::File {
            paths,
            split_bytes,
            bad_records,
            text,
        } => {
            let text = text.clone();
            let parse: Parse<Row> = Arc::new(move |line| text.parse(line));
            let files = FileSource::parsed_by(paths, *split_bytes, parse)
                .map_err(|e| e.to_string())?
                .with_bad_records(bad_records.clone());
            env.source(files, strategy)
        }
        TableConnector::Kafka { config, text } => {
            let text = text.clone();
            let parse: ParseValue<Row> = Arc::new(move |value| {
                let line = std::str::from_utf8(value)
                    .map_err(|e| format!("the value is not UTF-8 text: {e}"))?;
                text.parse(line.trim_end_matches(['\n', '\r']))
            });
            let messages =
                KafkaSource::parsed_by(config.clone(), parse).map_err(|e| e.to_string())?;
            env.source(messages, strategy)
        }
        TableConnector::FileNexmark {
            paths,
            split_bytes,
            bad_records,
        } => {
            let parse: Parse<Row> = Arc::new(move |line| {
                let event: Event = serde_json::from_str(line).map_err(|e| e.to_string())?;
                rows.nexmark_row(event).map_err(|e| e.0)
            });
            let files = FileSource::parsed_by(paths, *split_bytes, parse)
                .map_err(|e| e.to_string())?
                .with_bad_records(bad_records.clone());
            env.source(files, strategy)
        }
        TableConnector::KafkaNexmark { config } => env.source(
            RowSource {
                inner: KafkaSource::<Event>::new(config.clone()).map_err(|e| e.to_string())?,
                make_row: Arc::new(move |event| rows.nexmark_row(event).map_err(|e| e.0)),
                table,
            },
            strategy,
        ),
    })
}
