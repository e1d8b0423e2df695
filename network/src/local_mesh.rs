//! Every in-process channel of a job: for each exchange (edge) and each
//! ordered pair of distinct shards, one [`local::channel`](crate::local::channel).
//!
//! Built on the thread that starts the job, before the shards start; each
//! shard takes its [`ShardChannelEnds`] to its own core and connects them
//! there. Invariant: a shard has no channel to itself (its records take the
//! local path, never serialized), so the diagonal of every grid is `None`;
//! so is every entry of a shard that runs in another process.

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
        let all: Vec<u32> = (0..shards).collect();
        Self::create_among(edges, shards, &all, credits)
    }

    /// The channels among the shards `here` (global indices out of
    /// `shards`) of a job whose other shards run elsewhere; one element per
    /// shard of `here`, in its order, with grids over all `shards` (`None`
    /// for a shard that is not here: a link reaches it).
    pub fn create_among(
        edges: u32,
        shards: u32,
        here: &[u32],
        credits: u32,
    ) -> Vec<ShardChannelEnds> {
        let mut ends: Vec<ShardChannelEnds> = here
            .iter()
            .map(|_| ShardChannelEnds {
                senders: none_grid(edges, shards),
                receivers: none_grid(edges, shards),
            })
            .collect();
        for edge in 0..edges as usize {
            for (i, &from) in here.iter().enumerate() {
                for (j, &to) in here.iter().enumerate() {
                    if from == to {
                        continue;
                    }
                    let (tx, rx) = local::channel(credits);
                    ends[i].senders[edge][to as usize] = Some(tx);
                    ends[j].receivers[edge][from as usize] = Some(rx);
                }
            }
        }
        ends
    }
}
