//! The seeded data generator: a deterministic stream of numeric events.
//!
//! Event `i` is a pure function of `(seed, i)`: its key, value and event time
//! come from a SplitMix64 mix of the two. Partition `p` of `P` generates the
//! events `i ≡ p (mod P)`, so shards split the work with no coordination and the
//! union over partitions is the same for any number of shards. Event time
//! advances with the index (`events_per_second` of event time); a fraction of
//! events is delayed by up to `max_delay_ms` (out of order). With `rate`, events
//! are released on a wall-clock schedule.

use std::time::Instant;

use rkyv::{Archive, Deserialize, Serialize};

use super::{Source, SourcePoll, SourceReader};
use crate::{Rec, SourceError};

/// One generated event.
#[derive(
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
)]
pub struct GeneratedEvent {
    pub seq: u64,
    pub key: u64,
    pub value: i64,
    pub ts: i64,
}

/// Configuration of the generator; see the module docs.
#[derive(Debug, Clone)]
pub struct GeneratorSource {
    pub seed: u64,
    /// Events in total; `None`: unbounded.
    pub events: Option<u64>,
    pub keys: u64,
    pub partitions: u32,
    /// Event time of event 0.
    pub start_ts_ms: i64,
    /// Event-time density.
    pub events_per_second: u64,
    /// Percentage (0..=100) of events that are delayed.
    pub delayed_percent: u8,
    pub max_delay_ms: i64,
    /// Wall-clock release rate in events per second over all partitions.
    pub rate: Option<u64>,
}

impl Default for GeneratorSource {
    fn default() -> Self {
        GeneratorSource {
            seed: 0,
            events: Some(1_000_000),
            keys: 1_000,
            partitions: 8,
            start_ts_ms: 1_700_000_000_000,
            events_per_second: 10_000,
            delayed_percent: 10,
            max_delay_ms: 500,
            rate: None,
        }
    }
}

#[inline]
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl GeneratorSource {
    #[inline]
    fn mix(&self, index: u64, stream: u64) -> u64 {
        splitmix64(self.seed ^ splitmix64(index.wrapping_mul(4).wrapping_add(stream)))
    }

    /// Event number `index`: a pure function of the seed and the index.
    #[inline]
    pub fn event(&self, index: u64) -> GeneratedEvent {
        let base =
            self.start_ts_ms + (index as i128 * 1000 / self.events_per_second as i128) as i64;
        let delayed = self.mix(index, 2) % 100 < self.delayed_percent as u64;
        let delay = if delayed && self.max_delay_ms > 0 {
            (self.mix(index, 3) % (self.max_delay_ms as u64 + 1)) as i64
        } else {
            0
        };
        GeneratedEvent {
            seq: index,
            key: self.mix(index, 1) % self.keys,
            value: (self.mix(index, 0) % 1000) as i64,
            ts: base - delay,
        }
    }

    /// Checks the settings; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.keys == 0 {
            return Err("keys is 0, expected at least 1".into());
        }
        if self.partitions == 0 {
            return Err("partitions is 0, expected at least 1".into());
        }
        if self.events_per_second == 0 {
            return Err("events_per_second is 0, expected at least 1".into());
        }
        if self.delayed_percent > 100 {
            return Err(format!(
                "delayed_percent is {}, expected 0..=100",
                self.delayed_percent
            ));
        }
        if self.max_delay_ms < 0 {
            return Err(format!(
                "max_delay_ms is {}, expected at least 0",
                self.max_delay_ms
            ));
        }
        if self.rate == Some(0) {
            return Err("rate is 0, expected at least 1 (or no rate)".into());
        }
        Ok(())
    }
}

struct GeneratorReader {
    source: GeneratorSource,
    partition: u64,
    partitions: u64,
    /// Events this partition has produced.
    produced: u64,
    /// When pacing began, and the events produced by then (a restored
    /// reader paces from its restored position).
    started: Option<(Instant, u64)>,
}

impl SourceReader<GeneratedEvent> for GeneratorReader {
    fn poll(
        &mut self,
        out: &mut Vec<Rec<GeneratedEvent>>,
        max: usize,
    ) -> Result<SourcePoll, SourceError> {
        let mut allowed = max as u64;
        if let Some(rate) = self.source.rate {
            let produced = self.produced;
            let (started, base) = *self
                .started
                .get_or_insert_with(|| (Instant::now(), produced));
            let per_partition = (rate as f64 / self.partitions as f64).max(f64::MIN_POSITIVE);
            let due = (started.elapsed().as_secs_f64() * per_partition) as u64 + 1;
            allowed = allowed.min(due.saturating_sub(self.produced - base));
            if allowed == 0 {
                return Ok(SourcePoll::Pending);
            }
        }
        for _ in 0..allowed {
            let index = self.partition + self.produced * self.partitions;
            if self.source.events.is_some_and(|n| index >= n) {
                return Ok(SourcePoll::End);
            }
            let event = self.source.event(index);
            out.push(Rec {
                ts: event.ts,
                value: event,
            });
            self.produced += 1;
        }
        let next = self.partition + self.produced * self.partitions;
        Ok(if self.source.events.is_some_and(|n| next >= n) {
            SourcePoll::End
        } else {
            SourcePoll::Ready
        })
    }

    fn position(&self) -> u64 {
        self.produced
    }

    fn seek(&mut self, position: u64) -> Result<(), SourceError> {
        self.produced = position;
        Ok(())
    }
}

impl Source<GeneratedEvent> for GeneratorSource {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<GeneratedEvent>>, SourceError> {
        Ok(Box::new(GeneratorReader {
            source: self.clone(),
            partition: partition as u64,
            partitions: self.partitions as u64,
            produced: 0,
            started: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_together_produce_every_event_once() {
        let source = GeneratorSource {
            events: Some(1000),
            partitions: 3,
            ..Default::default()
        };
        let mut all = Vec::new();
        for p in 0..3 {
            let mut reader = source.open(p).unwrap();
            loop {
                let state = reader.poll(&mut all, 64).unwrap();
                if state == SourcePoll::End {
                    break;
                }
            }
        }
        let mut seqs: Vec<u64> = all.iter().map(|r| r.value.seq).collect();
        seqs.sort();
        assert_eq!(seqs, (0..1000).collect::<Vec<_>>());
        assert!(all.iter().all(|r| r.value == source.event(r.value.seq)));
    }

    #[test]
    fn delays_are_bounded_and_deterministic() {
        let source = GeneratorSource {
            seed: 7,
            max_delay_ms: 300,
            delayed_percent: 50,
            ..Default::default()
        };
        let other = source.clone();
        for i in 0..10_000 {
            let e = source.event(i);
            assert_eq!(e, other.event(i));
            let base = source.start_ts_ms + (i as i64 * 1000 / 10_000);
            assert!(e.ts <= base && e.ts >= base - 300);
        }
    }
}
