//! The shard-to-shard channels of a job: for every exchange and every ordered
//! pair of distinct shards, a bounded single-producer single-consumer data
//! channel and, the other way, a small channel on which the receiver grants
//! credits back (see `exchange::credits`). A data channel holds the credits'
//! worth of batches plus room for control messages.

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use sluice_network::ExchangeMessage;

use crate::exchange::CONTROL_ROOM;

/// One shard's ends of every channel, indexed `[edge][peer]` (`None` on the
/// diagonal: a shard does not send to itself through a channel).
pub struct ShardEndpoints {
    /// Data to each destination.
    pub senders: Vec<Vec<Option<SharedSender<ExchangeMessage>>>>,
    /// Credits granted back by each destination.
    pub grants_in: Vec<Vec<Option<SharedReceiver<u32>>>>,
    /// Data from each source.
    pub receivers: Vec<Vec<Option<SharedReceiver<ExchangeMessage>>>>,
    /// Credits granted back to each source.
    pub grants_out: Vec<Vec<Option<SharedSender<u32>>>>,
}

fn none_grid<T>(edges: u32, n: usize) -> Vec<Vec<Option<T>>> {
    (0..edges).map(|_| (0..n).map(|_| None).collect()).collect()
}

/// Creates the channels of `edges` exchanges among `shards` shards, each
/// with `credits` batches of credit.
pub fn create(edges: u32, shards: u32, credits: usize) -> Vec<ShardEndpoints> {
    let n = shards as usize;
    let mut endpoints: Vec<ShardEndpoints> = (0..n)
        .map(|_| ShardEndpoints {
            senders: none_grid(edges, n),
            grants_in: none_grid(edges, n),
            receivers: none_grid(edges, n),
            grants_out: none_grid(edges, n),
        })
        .collect();
    for edge in 0..edges as usize {
        for from in 0..n {
            for to in 0..n {
                if from == to {
                    continue;
                }
                let (tx, rx) = shared_channel::new_bounded(credits + CONTROL_ROOM);
                endpoints[from].senders[edge][to] = Some(tx);
                endpoints[to].receivers[edge][from] = Some(rx);
                let (grant_tx, grant_rx) = shared_channel::new_bounded(credits.max(1));
                endpoints[to].grants_out[edge][from] = Some(grant_tx);
                endpoints[from].grants_in[edge][to] = Some(grant_rx);
            }
        }
    }
    endpoints
}
