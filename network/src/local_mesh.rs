//! Every in-process channel of a job: for each exchange (edge) and each
//! ordered pair of distinct shards, one [`local::channel`](crate::local::channel).
//!
//! Built on the thread that starts the job, before the shards start; each
//! shard takes its [`ShardChannelEnds`] to its own core and connects them
//! there. Invariant: a shard has no channel to itself (its records take the
//! local path, never serialized), so the diagonal of every grid is `None`.

use crate::local::{self, LocalReceiverEnd, LocalSenderEnd};

/// One shard's ends of every channel, indexed `[edge][peer]`.
pub struct ShardChannelEnds {
    /// To each destination (`None` for this shard itself).
    pub senders: Vec<Vec<Option<LocalSenderEnd>>>,
    /// From each source (`None` for this shard itself).
    pub receivers: Vec<Vec<Option<LocalReceiverEnd>>>,
}

/// The channels of a job among the shards of one process.
pub struct LocalMesh;

fn none_grid<T>(edges: u32, shards: u32) -> Vec<Vec<Option<T>>> {
    (0..edges)
        .map(|_| (0..shards).map(|_| None).collect())
        .collect()
}

impl LocalMesh {
    /// The channels of `edges` exchanges among `shards` shards, each with
    /// `credits` batches of credit; one element per shard.
    pub fn create(edges: u32, shards: u32, credits: u32) -> Vec<ShardChannelEnds> {
        let mut ends: Vec<ShardChannelEnds> = (0..shards)
            .map(|_| ShardChannelEnds {
                senders: none_grid(edges, shards),
                receivers: none_grid(edges, shards),
            })
            .collect();
        for edge in 0..edges as usize {
            for from in 0..shards as usize {
                for to in 0..shards as usize {
                    if from == to {
                        continue;
                    }
                    let (tx, rx) = local::channel(credits);
                    ends[from].senders[edge][to] = Some(tx);
                    ends[to].receivers[edge][from] = Some(rx);
                }
            }
        }
        ends
    }
}
