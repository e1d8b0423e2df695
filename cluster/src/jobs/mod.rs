//! The jobs registered in the `sluice` binary, by name.
//!
//! A job reads its `[params]`, builds its pipeline from the job file's source
//! and sink, and leaves execution to the caller. Adding a job: one file here
//! and one line in [`REGISTRY`].

pub mod nexmark;
pub(crate) mod sql;
pub(crate) mod udfs;
mod windowed_aggregation;
mod wordcount;

use serde::Serialize;
use sluice_engine::connectors::{
    BlackholeSink, ExactlyOnceFileSink, FileSink, StdoutSink, ThrottledBlackholeSink,
};
use sluice_engine::{Data, Stream, StreamEnv};

use crate::job_file::{JobFileError, KafkaSourceSpec, RegisteredJob, SinkSpec};
use crate::kafka::KafkaSource;

/// Builds a job's pipeline on `env` from its validated job file.
pub type BuildJob = fn(&RegisteredJob, &StreamEnv) -> Result<(), JobFileError>;

/// Registered jobs: name, description, builder.
pub const REGISTRY: &[(&str, &str, BuildJob)] = &[
    (
        "wordcount",
        "counts words in text files; one (word, count) per word at the end",
        wordcount::build,
    ),
    (
        "windowed_aggregation",
        "count and sum of values per key in event-time windows (tumbling, sliding or session)",
        windowed_aggregation::build,
    ),
    (
        "nexmark.q0",
        "Nexmark q0: every bid, passed through",
        nexmark::q0,
    ),
    (
        "nexmark.q1",
        "Nexmark q1: bids with prices converted to euros",
        nexmark::q1,
    ),
    (
        "nexmark.q2",
        "Nexmark q2: bids of auctions whose id is a multiple of 123 (`modulus`)",
        nexmark::q2,
    ),
    (
        "nexmark.q3",
        "Nexmark q3: local item suggestion, category-10 auctions of sellers in OR, ID, CA",
        nexmark::q3,
    ),
    (
        "nexmark.q4",
        "Nexmark q4: average closing price per category, updated as auctions close",
        nexmark::q4,
    ),
    (
        "nexmark.q5",
        "Nexmark q5: hot items, the auctions with the most bids per sliding window",
        nexmark::q5,
    ),
    (
        "nexmark.q6",
        "Nexmark q6: average selling price by seller over their last 10 closed auctions",
        nexmark::q6,
    ),
    (
        "nexmark.q7",
        "Nexmark q7: highest bid, the bids with the highest price of their tumbling window",
        nexmark::q7,
    ),
    (
        "nexmark.q8",
        "Nexmark q8: new users who opened auctions in the window they joined",
        nexmark::q8,
    ),
    (
        "nexmark.q9",
        "Nexmark q9: winning bids, every auction with its highest bid",
        nexmark::q9,
    ),
    (
        "nexmark.q10",
        "Nexmark q10: every bid logged to files partitioned by day and minute",
        nexmark::q10,
    ),
    (
        "nexmark.q11",
        "Nexmark q11: user sessions, bids per bidder per session window",
        nexmark::q11,
    ),
    (
        "nexmark.q12",
        "Nexmark q12: bids per bidder in processing-time tumbling windows",
        nexmark::q12,
    ),
    (
        "nexmark.q13",
        "Nexmark q13: bids joined with a side table from a CSV file (`side_input`)",
        nexmark::q13,
    ),
    (
        "nexmark.q14",
        "Nexmark q14: bids between 1M and 50M euros, with time of day and count_char",
        nexmark::q14,
    ),
    (
        "nexmark.q15",
        "Nexmark q15: bids, bidders and auctions per day and price rank (upserts)",
        nexmark::q15,
    ),
    (
        "nexmark.q16",
        "Nexmark q16: q15's statistics per channel and day (upserts)",
        nexmark::q16,
    ),
    (
        "nexmark.q17",
        "Nexmark q17: bid counts and price statistics per auction and day (upserts)",
        nexmark::q17,
    ),
    (
        "nexmark.q18",
        "Nexmark q18: each bidder's last bid on each auction (upserts)",
        nexmark::q18,
    ),
    (
        "nexmark.q19",
        "Nexmark q19: the ten highest bids of each auction, ranked (upserts)",
        nexmark::q19,
    ),
    (
        "nexmark.q20",
        "Nexmark q20: bids joined with their auction, for auctions of category 10",
        nexmark::q20,
    ),
    (
        "nexmark.q21",
        "Nexmark q21: bids of known channels or with a channel_id, with that id",
        nexmark::q21,
    ),
    (
        "nexmark.q22",
        "Nexmark q22: bids with the first three directories of their URL",
        nexmark::q22,
    ),
];

/// Looks a job up by name.
pub fn find(name: &str) -> Option<BuildJob> {
    REGISTRY
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, build)| *build)
}

/// A stream from the job file's Kafka source: its records parsed as `T`,
/// their event time the Kafka record's timestamp (`timestamps = "record"`)
/// or `field` (else processing time, as the job file says).
pub(crate) fn kafka_records<T: Data + serde::de::DeserializeOwned>(
    file: &RegisteredJob,
    env: &StreamEnv,
    spec: &KafkaSourceSpec,
    field: Option<fn(&T) -> i64>,
) -> Result<Stream<T>, JobFileError> {
    let source = KafkaSource::<T>::new(spec.config.clone())
        .map_err(|e| file.invalid("source", e.to_string()))?;
    let strategy = file.event_time.strategy();
    let strategy = match field {
        Some(field) if !spec.record_timestamps && !file.event_time.processing_time => {
            strategy.with_timestamps(field)
        }
        _ => strategy,
    };
    Ok(env.source(source, strategy))
}

/// Attaches the job file's sink to `stream`.
pub(crate) fn attach_sink<T: Data + Send + Serialize>(file: &RegisteredJob, stream: &Stream<T>) {
    attach_sink_spec(file.sink, file.config.checkpoint.is_some(), stream);
}

/// Attaches the sink `spec` says to `stream`, exactly-once where the sink
/// can be and the job takes checkpoints (`checkpointing`).
pub(crate) fn attach_sink_spec<T: Data + Send + Serialize>(
    spec: &SinkSpec,
    checkpointing: bool,
    stream: &Stream<T>,
) {
    match spec {
        SinkSpec::Stdout { format } => stream.sink(StdoutSink { format: *format }),
        // With checkpoints, files are exactly-once: parts become visible when
        // the checkpoint covering them completes.
        SinkSpec::File { directory, format } if checkpointing => stream.sink(ExactlyOnceFileSink {
            directory: directory.clone(),
            format: *format,
        }),
        SinkSpec::File { directory, format } => stream.sink(FileSink {
            directory: directory.clone(),
            format: *format,
        }),
        SinkSpec::Blackhole {
            records_per_second: None,
        } => stream.sink(BlackholeSink),
        SinkSpec::Blackhole {
            records_per_second: Some(records_per_second),
        } => stream.sink(ThrottledBlackholeSink {
            records_per_second: *records_per_second,
        }),
        SinkSpec::Latency(sink) => stream.sink(sink.clone()),
        SinkSpec::Kafka(sink) => stream.sink(sink.as_ref().clone()),
    }
}
