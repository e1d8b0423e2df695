//! The operators of the fused chain. Each lives on one shard's core, receives
//! batches through [`Push`](crate::Push), and owns its successor.

mod batch_fold;
mod co_process;
mod fan_out;
mod filter;
mod flat_map;
mod keyed_aggregate;
mod keyed_process;
mod keyed_reduce;
mod map;
mod process_context;
mod side_output;
mod sink;
mod try_filter_map;
mod union;

pub use batch_fold::BatchFold;
pub(crate) use co_process::{co_process, CoTick};
pub use co_process::{FirstInput, KeyedCoProcess, SecondInput};
pub use fan_out::FanOut;
pub use filter::Filter;
pub use flat_map::FlatMap;
pub use keyed_aggregate::KeyedAggregate;
pub(crate) use keyed_process::TickFor;
pub use keyed_process::{KeyedProcess, KeyedProcessOperator};
pub use keyed_reduce::KeyedReduce;
pub use map::Map;
pub(crate) use process_context::KeyedHost;
pub use process_context::{ProcessContext, TimeDomain};
pub use side_output::SideOutputs;
pub use sink::SinkOperator;
pub use try_filter_map::TryFilterMap;
pub use union::{Union, UnionInput};

/// How many results an operator that fires many timers at once (a window's
/// end) gathers before it hands them on.
pub(crate) const EMIT_BATCH_RECORDS: usize = 1024;
