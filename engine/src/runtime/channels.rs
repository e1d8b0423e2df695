//! The shard-to-shard channels of a job: for every exchange, one bounded
//! single-producer single-consumer channel per ordered pair of distinct shards.

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use sluice_network::ExchangeMessage;

/// One shard's ends of every channel: `senders[edge][destination]` and
/// `receivers[edge][source]` (`None` on the diagonal: a shard does not send to
/// itself through a channel).
pub struct ShardEndpoints {
    pub senders: Vec<Vec<Option<SharedSender<ExchangeMessage>>>>,
    pub receivers: Vec<Vec<Option<SharedReceiver<ExchangeMessage>>>>,
}

/// Creates the channels of `edges` exchanges among `shards` shards.
pub fn create(edges: u32, shards: u32, capacity: usize) -> Vec<ShardEndpoints> {
    let n = shards as usize;
    let mut endpoints: Vec<ShardEndpoints> = (0..n)
        .map(|_| ShardEndpoints {
            senders: (0..edges).map(|_| (0..n).map(|_| None).collect()).collect(),
            receivers: (0..edges).map(|_| (0..n).map(|_| None).collect()).collect(),
        })
        .collect();
    for edge in 0..edges as usize {
        for from in 0..n {
            for to in 0..n {
                if from == to {
                    continue;
                }
                let (tx, rx) = shared_channel::new_bounded(capacity);
                endpoints[from].senders[edge][to] = Some(tx);
                endpoints[to].receivers[edge][from] = Some(rx);
            }
        }
    }
    endpoints
}
