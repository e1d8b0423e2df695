//! Benchmarks of Sluice and the peers it is compared with, as library code so
//! that criterion benches and tests share one definition of each workload.
//!
//! - [`window_count`]: a keyed tumbling-window count over numeric Nexmark
//!   bids, in Sluice and (in `peers::timely`, feature `peers`, source in
//!   `bench/peers/timely/`) in timely-dataflow;
//! - [`window_operators`]: each kind of window and window function on one
//!   shard, over the same bids;
//! - [`exchange`]: records between shards through a key exchange.
//!
//! The Nexmark model and generator are a source connector of the engine
//! (`sluice_engine::connectors::nexmark`); the `sluice bench` harness lives
//! in `cluster/src/bench/` (see there why).

pub mod exchange;
#[cfg(feature = "peers")]
pub mod peers;
pub mod window_count;
pub mod window_operators;

/// True when a criterion bench binary runs as a benchmark (`cargo bench`), false
/// in test mode (`cargo test --benches`), where inputs are kept tiny.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}
