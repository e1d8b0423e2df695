//! The keyed tumbling-window count over numeric Nexmark bids in
//! timely-dataflow: the in-process Rust ceiling for this workload. Compiled
//! into `sluice-bench` with the `peers` feature (see `bench/src/peers/mod.rs`).
//!
//! Each worker generates its partition of the same bids as Sluice's source
//! (event `i` on worker `i % workers`), with the window start as the timely
//! timestamp; bids are exchanged by auction to a counting operator that emits
//! a window's counts once the frontier has passed it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Input, Operator, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use crate::window_count::{generator_config, WINDOW_MS};
use sluice_engine::connectors::nexmark::{NexmarkGenerator, NumericBid};

/// Runs the count on `workers` threads; returns the number of (key, window) results.
pub fn window_count(workers: usize, events_total: u64) -> u64 {
    let results = Arc::new(AtomicU64::new(0));
    let total = results.clone();
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index() as u64;
        let peers = worker.peers() as u64;
        let generator = NexmarkGenerator::new(generator_config(events_total, peers as u32));
        let mut input: InputHandle<i64, CapacityContainerBuilder<Vec<NumericBid>>> =
            InputHandle::new();
        let probe = ProbeHandle::new();
        let results = results.clone();
        worker.dataflow::<i64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .unary_frontier(
                    Exchange::new(|b: &NumericBid| b.auction as u64),
                    "WindowCount",
                    |_capability, _info| {
                        let mut windows: HashMap<
                            i64,
                            (
                                timely::dataflow::operators::Capability<i64>,
                                HashMap<i64, u64>,
                            ),
                        > = HashMap::new();
                        move |(input, frontier), output| {
                            input.for_each_stamp(|capability, data| {
                                let Some(&start) = capability.least() else {
                                    return;
                                };
                                let entry = windows.entry(start).or_insert_with(|| {
                                    (
                                        capability
                                            .retain_least(output.output_index())
                                            .expect("totally ordered"),
                                        HashMap::new(),
                                    )
                                });
                                for batch in data {
                                    for event in batch.drain(..) {
                                        *entry.1.entry(event.auction).or_insert(0) += 1;
                                    }
                                }
                            });
                            let closed: Vec<i64> = windows
                                .keys()
                                .copied()
                                .filter(|start| !frontier.less_equal(start))
                                .collect();
                            for start in closed {
                                let (capability, counts) = windows.remove(&start).expect("listed");
                                let mut session = output.session(&capability);
                                results.fetch_add(counts.len() as u64, Ordering::Relaxed);
                                for (key, count) in counts {
                                    session.give((key, start, count));
                                }
                            }
                        }
                    },
                )
                .container::<Vec<(i64, i64, u64)>>()
                .probe_with(&probe);
        });
        let mut i = index;
        let mut sent = 0u64;
        while i < events_total {
            let Some(bid) = generator.numeric_bid(i) else {
                i += peers;
                continue;
            };
            let start = bid.date_time - bid.date_time.rem_euclid(WINDOW_MS);
            if start > *input.time() {
                input.advance_to(start);
            }
            input.send(bid);
            sent += 1;
            i += peers;
            if sent.is_multiple_of(1024) {
                worker.step();
                // Keep at most two windows open, as a watermark would.
                while probe.less_than(&(start - WINDOW_MS)) {
                    worker.step();
                }
            }
        }
        input.close();
        while worker.step() {}
    })
    .expect("timely runs");
    total.load(Ordering::Relaxed)
}
