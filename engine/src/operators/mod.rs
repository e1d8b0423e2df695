//! The operators of the fused chain. Each lives on one shard's core, receives
//! batches through [`Push`](crate::Push), and owns its successor.

mod fan_out;
mod filter;
mod flat_map;
mod keyed_process;
mod keyed_reduce;
mod map;
mod sink;
mod union;

pub use fan_out::FanOut;
pub use filter::Filter;
pub use flat_map::FlatMap;
pub(crate) use keyed_process::TickFor;
pub use keyed_process::{KeyedProcess, KeyedProcessOperator, ProcessContext, TimeDomain};
pub use keyed_reduce::KeyedReduce;
pub use map::Map;
pub use sink::SinkOperator;
pub use union::{Union, UnionInput};
