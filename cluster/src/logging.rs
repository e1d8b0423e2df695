//! The binary's log lines: every `tracing` event of the engine and the
//! cluster, one line each on stderr as `sluice: <message>`.
//!
//! Installed once by `main`, on the main thread, before anything logs.
//! `SLUICE_LOG` filters them (`tracing`'s directives, e.g. `debug` or
//! `sluice_engine=debug`); the default shows Sluice's own lines from `info`
//! and other crates' from `warn`.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// What is shown without `SLUICE_LOG`.
const FILTER_DEFAULT: &str = "warn,sluice_engine=info,sluice_state=info,sluice_cluster=info";

/// `sluice: ` and the event's fields.
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
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sends log lines to stderr (see the module docs).
pub fn init() {
    let filter =
        EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(FILTER_DEFAULT));
    // A second installation (a test that calls this twice) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .event_format(SluiceLine)
        .try_init();
}
