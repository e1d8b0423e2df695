//! The Nexmark queries, as registered jobs `nexmark.q0` … `nexmark.q22`, with
//! the semantics of the Flink SQL definitions in the Nexmark repository (q6
//! from the original NEXMark paper). Each reads the `nexmark` source connector
//! and writes to the job file's sink. Records are projected to the fields a
//! query needs before they cross a key exchange.
//!
//! Output rows carry the column names of each reference query's sink table
//! (`nexmark_qN`), filled by position from its `SELECT` as Flink's `INSERT
//! INTO` does (q4's `id, final`, q7's swapped `bidder`/`price`, q8's `stime`);
//! exact types stay exact (q1's and q14's `0.908 * price` is a DECIMAL(23, 3),
//! printed as that decimal). Times are epoch milliseconds.
//!
//! Stateless: q0, q1, q2, q10 (partitioned files), q13 (side input), q14, q21,
//! q22. Joins: q3, q8 (windowed), q9, q4 and q6 (over closing prices), q20.
//! Windows: q5, q7, q11 (sessions), q12 (processing time). Unbounded group
//! aggregations and rankings, as upsert streams: q4, q6, q15, q16, q17, q18,
//! q19.

pub(crate) mod calendar;
mod price_ranks;
mod q10;
mod q11;
mod q12;
mod q13;
mod q14;
mod q15;
mod q16;
mod q17;
mod q18;
mod q19;
mod q20;
mod q21;
mod q22;
mod q3;
mod q4;
mod q5;
mod q6;
mod q7;
mod q8;
mod q9;
mod stateless;

pub use q10::q10;
pub use q11::q11;
pub use q12::q12;
pub use q13::q13;
pub use q14::{count_char, q14};
pub use q15::q15;
pub use q16::q16;
pub use q17::q17;
pub use q18::q18;
pub use q19::q19;
pub use q20::q20;
pub use q21::q21;
pub use q22::q22;
pub use q3::q3;
pub use q4::q4;
pub use q5::q5;
pub use q6::q6;
pub use q7::q7;
pub use q8::q8;
pub use q9::q9;
pub use stateless::{dollars_to_euros, q0, q1, q2};

use sluice_engine::connectors::nexmark::{Auction, Bid, Event, NexmarkSource, Person};
use sluice_engine::connectors::{FileSource, RecordFormat};
use sluice_engine::{Stream, StreamEnv, WatermarkStrategy};

use crate::job_file::{JobFileError, RegisteredJob, SourceSpec};
use crate::kafka::KafkaSource;

/// The context of the queries' keyed functions (all keyed by an `i64` id).
type Ctx<'a, O> = sluice_engine::operators::ProcessContext<'a, i64, O>;

/// The bids of the job file's `nexmark` source, timed as the job file says.
fn bids(file: &RegisteredJob, env: &StreamEnv, query: &str) -> Result<Stream<Bid>, JobFileError> {
    bids_with(file, env, query, file.event_time.strategy())
}

/// The events of the job file's `nexmark` source, with their time as `strategy` says.
fn events_with(
    file: &RegisteredJob,
    env: &StreamEnv,
    query: &str,
    strategy: WatermarkStrategy<Event>,
) -> Result<Stream<Event>, JobFileError> {
    let config = match &file.source {
        SourceSpec::Nexmark(config) => config,
        SourceSpec::Kafka(spec) if spec.nexmark => {
            let source = KafkaSource::<Event>::new(spec.config.clone())
                .map_err(|e| file.invalid("source", e.to_string()))?;
            let strategy = if spec.record_timestamps {
                strategy
            } else {
                strategy.with_timestamps(Event::date_time)
            };
            return Ok(env.source(source, strategy));
        }
        SourceSpec::File {
            paths,
            nexmark: true,
            split_bytes,
            bad_records,
            ..
        } => {
            let source = FileSource::<Event>::new(paths, RecordFormat::JsonLines, *split_bytes)
                .map_err(|e| file.invalid("source.paths", e.to_string()))?
                .with_bad_records(bad_records.clone());
            let strategy = if file.event_time.processing_time {
                strategy
            } else {
                strategy.with_timestamps(Event::date_time)
            };
            return Ok(env.source(source, strategy));
        }
        _ => {
            return Err(file.invalid(
                "source.connector",
                format!(
                    "job `nexmark.{query}` reads Nexmark events: expected \"nexmark\", or \"kafka\" or \"file\" with format = \"nexmark\""
                ),
            ))
        }
    };
    Ok(env.source(
        NexmarkSource {
            config: config.clone(),
        },
        strategy,
    ))
}

/// The events of the job file's `nexmark` source, timed as the job file says.
fn events(
    file: &RegisteredJob,
    env: &StreamEnv,
    query: &str,
) -> Result<Stream<Event>, JobFileError> {
    events_with(file, env, query, file.event_time.strategy())
}

/// The bids of the job file's `nexmark` source, with their time as `strategy` says.
fn bids_with(
    file: &RegisteredJob,
    env: &StreamEnv,
    query: &str,
    strategy: WatermarkStrategy<Event>,
) -> Result<Stream<Bid>, JobFileError> {
    Ok(
        events_with(file, env, query, strategy)?.flat_map(|event: Event| match event {
            Event::Bid(bid) => Some(bid),
            _ => None,
        }),
    )
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// Window sizes of the windowed queries, overridable in `[params]`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowParams {
    window_size_ms: Option<i64>,
    window_slide_ms: Option<i64>,
    session_gap_ms: Option<i64>,
}

impl WindowParams {
    fn positive(
        file: &RegisteredJob,
        field: &str,
        value: Option<i64>,
        default: i64,
    ) -> Result<i64, JobFileError> {
        match value.unwrap_or(default) {
            v if v > 0 => Ok(v),
            v => Err(file.invalid(
                &format!("params.{field}"),
                format!("is {v}, expected a positive number of ms"),
            )),
        }
    }
}

/// A count parameter that must be at least one.
fn at_least_one(file: &RegisteredJob, field: &str, value: i64) -> Result<usize, JobFileError> {
    usize::try_from(value)
        .ok()
        .filter(|&v| v >= 1)
        .ok_or_else(|| {
            file.invalid(
                &format!("params.{field}"),
                format!("is {value}, expected at least 1"),
            )
        })
}

/// The persons and auctions of the job file's `nexmark` source.
fn persons_and_auctions(
    file: &RegisteredJob,
    env: &StreamEnv,
    query: &str,
) -> Result<(Stream<Person>, Stream<Auction>), JobFileError> {
    let events = events(file, env, query)?;
    let persons = events.flat_map(|e: Event| {
        if let Event::Person(p) = e {
            Some(p)
        } else {
            None
        }
    });
    let auctions = events.flat_map(|e: Event| {
        if let Event::Auction(a) = e {
            Some(a)
        } else {
            None
        }
    });
    Ok((persons, auctions))
}
