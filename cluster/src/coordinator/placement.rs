//! Where a job's shards run: a pure function of the job's shard count and
//! the free shards of the live workers.
//!
//! Shards are spread evenly (each next shard to the worker with the fewest
//! of the job so far, then the most free shards left, then the first by
//! name), then numbered contiguously
//! worker by worker, so that a worker's shards own neighbouring key-group
//! ranges (the same mapping as in one process: `KeyGroups` over the job's
//! shard count). Source partitions follow the shard indices exactly as in
//! one process.

use crate::control::ShardPlacement;

/// A live worker's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeShards {
    pub worker: String,
    pub data_address: String,
    pub free: u32,
}

/// How many shards a job gets: what it asks for, or every free shard
/// (capped by its maximum parallelism); `None` while too few are free.
pub fn shards_for(
    requested: Option<u32>,
    max_parallelism: u32,
    offers: &[FreeShards],
) -> Option<u32> {
    let free: u32 = offers.iter().map(|o| o.free).sum();
    let wanted = requested.unwrap_or(free.min(max_parallelism));
    (wanted > 0 && wanted <= free).then_some(wanted)
}

/// Places `shards` shards on `offers` (sorted by worker name), or `None` if
/// they do not have that many free.
pub fn place(shards: u32, offers: &[FreeShards]) -> Option<Vec<ShardPlacement>> {
    if offers.iter().map(|o| o.free).sum::<u32>() < shards {
        return None;
    }
    let mut taken = vec![0u32; offers.len()];
    for _ in 0..shards {
        let (best, _) = offers
            .iter()
            .enumerate()
            .filter(|(i, o)| taken[*i] < o.free)
            .max_by_key(|(i, o)| {
                (
                    std::cmp::Reverse(taken[*i]),
                    o.free - taken[*i],
                    std::cmp::Reverse(*i),
                )
            })?;
        taken[best] += 1;
    }
    let mut placement = Vec::with_capacity(shards as usize);
    for (offer, &count) in offers.iter().zip(&taken) {
        for _ in 0..count {
            placement.push(ShardPlacement {
                shard: placement.len() as u32,
                worker: offer.worker.clone(),
                data_address: offer.data_address.clone(),
            });
        }
    }
    Some(placement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offers(free: &[u32]) -> Vec<FreeShards> {
        free.iter()
            .enumerate()
            .map(|(i, &free)| FreeShards {
                worker: format!("w{i}"),
                data_address: format!("127.0.0.1:{}", 9000 + i),
                free,
            })
            .collect()
    }

    fn workers_of(placement: &[ShardPlacement]) -> Vec<&str> {
        placement.iter().map(|p| p.worker.as_str()).collect()
    }

    #[test]
    fn even_and_contiguous() {
        let p = place(4, &offers(&[2, 2])).unwrap();
        assert_eq!(workers_of(&p), ["w0", "w0", "w1", "w1"]);
        let p = place(3, &offers(&[1, 1, 1])).unwrap();
        assert_eq!(workers_of(&p), ["w0", "w1", "w2"]);
        let p = place(3, &offers(&[4, 1])).unwrap();
        assert_eq!(workers_of(&p), ["w0", "w0", "w1"]);
        let p = place(3, &offers(&[1, 4, 4])).unwrap();
        assert_eq!(workers_of(&p), ["w0", "w1", "w2"]);
        assert!(place(5, &offers(&[2, 2])).is_none());
    }

    #[test]
    fn the_shard_count_waits_for_what_is_asked() {
        assert_eq!(shards_for(Some(6), 128, &offers(&[2, 2])), None);
        assert_eq!(shards_for(Some(3), 128, &offers(&[2, 2])), Some(3));
        assert_eq!(shards_for(None, 128, &offers(&[2, 2])), Some(4));
        assert_eq!(shards_for(None, 3, &offers(&[2, 2])), Some(3));
        assert_eq!(shards_for(None, 128, &offers(&[])), None);
    }

    proptest! {
        #[test]
        fn every_shard_once_within_every_offer(free in prop::collection::vec(0u32..5, 0..6), shards in 0u32..20) {
            let offers = offers(&free);
            match place(shards, &offers) {
                None => prop_assert!(free.iter().sum::<u32>() < shards),
                Some(p) => {
                    prop_assert_eq!(p.len() as u32, shards);
                    for (i, placed) in p.iter().enumerate() {
                        prop_assert_eq!(placed.shard, i as u32);
                    }
                    for offer in &offers {
                        let count = p.iter().filter(|s| s.worker == offer.worker).count() as u32;
                        prop_assert!(count <= offer.free);
                    }
                    // Contiguous: a worker's shards are neighbours.
                    let mut seen = Vec::new();
                    for placed in &p {
                        if seen.last() != Some(&placed.worker) {
                            prop_assert!(!seen.contains(&placed.worker));
                            seen.push(placed.worker.clone());
                        }
                    }
                    // Even: counts differ by at most one where room allowed.
                    let counts: Vec<u32> = offers.iter().map(|o| p.iter().filter(|s| s.worker == o.worker).count() as u32).collect();
                    for (a, oa) in counts.iter().zip(&offers) {
                        for (b, _) in counts.iter().zip(&offers) {
                            prop_assert!(*a + 1 >= *b || *a == oa.free);
                        }
                    }
                }
            }
        }
    }
}
