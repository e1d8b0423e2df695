//! The binary's log lines: every `tracing` event of the engine and the
//! cluster, one line each on stderr.
//!
//! Installed once by `main`, on the main thread, before anything logs.
//! `SLUICE_LOG` filters them (`tracing`'s directives, e.g. `debug` or
//! `sluice_engine=debug`); the default shows Sluice's own lines from `info`
//! and other crates' from `warn`. `SLUICE_LOG_FORMAT=json` writes one JSON
//! object per line instead (`timestamp`, `level`, `target`, `fields`, and
//! `spans`: the job and shard the line is about), for log shippers.
//!
//! Lines about a job carry its spans: `job` (its name; in a cluster its id
//! and attempt) around a job's run, and `shard` on each shard's thread,
//! so text lines read `sluice: job{…}:shard{shard=1}: message`. Nothing
//! logged carries a secret: the cluster secret and tokens derived from it
//! are never formatted (tests read the logs for it).

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// What is shown without `SLUICE_LOG`.
const FILTER_DEFAULT: &str = "warn,sluice_engine=info,sluice_state=info,sluice_cluster=info";

/// `sluice: `, the event's spans with their fields, and its fields.
struct SluiceLine;

impl<S, N> FormatEvent<S, N> for SluiceLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "sluice: ")?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}", span.name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(writer, "{{{fields}}}")?;
                    }
                }
                write!(writer, ": ")?;
            }
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `SLUICE_LOG_FORMAT`: `text` (the default) or `json`.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("SLUICE_LOG_FORMAT").as_deref() {
            Err(_) | Ok("") | Ok("text") => Ok(LogFormat::Text),
            Ok("json") => Ok(LogFormat::Json),
            Ok(other) => Err(format!(
                "SLUICE_LOG_FORMAT is `{other}`, expected `text` or `json`"
            )),
        }
    }
}

/// Sends log lines to stderr (see the module docs). An unknown
/// `SLUICE_LOG_FORMAT` is an error (nothing is installed).
pub fn init() -> Result<(), String> {
    let format = LogFormat::from_env()?;
    let filter =
        EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(FILTER_DEFAULT));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    // A second installation (a test that calls this twice) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.event_format(SluiceLine).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
    Ok(())
}
