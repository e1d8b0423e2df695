//! The random numbers of one event: a SplitMix64 stream seeded from the job's
//! seed and the event number, so an event never depends on any other.

/// A deterministic random stream for one event.
pub struct EventRng {
    state: u64,
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl EventRng {
    pub fn new(seed: u64, event_number: u64) -> Self {
        EventRng {
            state: mix(seed ^ mix(event_number.wrapping_add(0x9e37_79b9_7f4a_7c15))),
        }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in `0..bound` (multiply-shift; `bound` > 0).
    #[inline]
    pub fn next_int(&mut self, bound: u32) -> u32 {
        debug_assert!(bound > 0);
        (((self.next_u64() >> 32) * bound as u64) >> 32) as u32
    }

    /// Uniform in `0..bound` (`bound` > 0).
    #[inline]
    pub fn next_long(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn next_double(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_draws_stay_in_bounds_and_cover_them() {
        let mut rng = EventRng::new(1, 2);
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            seen[rng.next_int(7) as usize] += 1;
            assert!(rng.next_long(1_000_000_007) < 1_000_000_007);
            let d = rng.next_double();
            assert!((0.0..1.0).contains(&d));
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn same_seed_and_event_same_stream() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = EventRng::new(9, 42);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = EventRng::new(9, 42);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..5)
            .map({
                let mut r = EventRng::new(9, 43);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
