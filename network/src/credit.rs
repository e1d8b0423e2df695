//! Credit-based flow control of one channel, as pure state: no channel, no
//! clock, no executor.
//!
//! A channel's receiver grants its sender `limit` credits up front; the sender
//! spends one per data batch ([`SendCredits::try_take`]) and the receiver
//! gives it back once the batch has been *processed*, not merely read
//! ([`CreditsOwed::processed`]). Control messages (watermark status,
//! barriers, end) need no credit. So whatever a receiver has read but not
//! processed is bounded by the credits, and a slow consumer slows its
//! producers. Grants go back in groups (a quarter of the limit, or whatever
//! is owed when the receiver runs out of work), so that a grant costs no
//! cross-core wake-up per batch.
//!
//! Invariants, asserted: `available <= limit` on the sending side and
//! `owed <= limit` on the receiving side, so batches sent − credits granted
//! back never exceeds the limit. A grant from an untrusted peer (a remote
//! link) is checked with [`SendCredits::checked_grant`] instead: breaking the
//! invariant there is the peer's fault, not a bug.

/// A peer granted more credit than it was ever given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a grant of {granted} credits with {available} of {limit} available exceeds the limit")]
pub struct ExcessGrant {
    pub granted: u32,
    pub available: u32,
    pub limit: u32,
}

/// The sending side's credits for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendCredits {
    available: u32,
    limit: u32,
}

impl SendCredits {
    /// All `limit` credits available (the receiver's initial grant).
    pub fn new(limit: u32) -> Self {
        assert!(limit > 0, "a channel needs at least one credit");
        SendCredits {
            available: limit,
            limit,
        }
    }

    #[inline]
    pub fn available(&self) -> u32 {
        self.available
    }

    #[inline]
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// `initial` credits available, and grants may raise them up to `limit`
    /// (a remote channel: its exclusive credits, and the peer's floating
    /// pool on top).
    pub fn with_limit(initial: u32, limit: u32) -> Self {
        assert!(
            initial > 0 && initial <= limit,
            "a channel needs at least one credit, and at most its limit"
        );
        SendCredits {
            available: initial,
            limit,
        }
    }

    /// Takes a credit for a batch, if one is available.
    #[inline]
    pub fn try_take(&mut self) -> bool {
        if self.available == 0 {
            return false;
        }
        self.available -= 1;
        true
    }

    /// Returns a credit taken for a batch that the channel did not take.
    #[inline]
    pub fn give_back(&mut self) {
        self.grant(1);
    }

    /// Credits granted back by a trusted receiver (this process).
    #[inline]
    pub fn grant(&mut self, granted: u32) {
        if let Err(e) = self.checked_grant(granted) {
            panic!("bug: {e}");
        }
    }

    /// Credits granted back by an untrusted receiver: a grant past the limit
    /// is refused and changes nothing.
    pub fn checked_grant(&mut self, granted: u32) -> Result<(), ExcessGrant> {
        let excess = ExcessGrant {
            granted,
            available: self.available,
            limit: self.limit,
        };
        match self.available.checked_add(granted) {
            Some(available) if available <= self.limit => {
                self.available = available;
                Ok(())
            }
            _ => Err(excess),
        }
    }
}

/// The receiving side's credits owed back to one channel's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditsOwed {
    owed: u32,
    /// A grant goes back once this many are owed.
    group: u32,
    limit: u32,
}

impl CreditsOwed {
    /// For a channel of `limit` credits.
    pub fn new(limit: u32) -> Self {
        assert!(limit > 0, "a channel needs at least one credit");
        CreditsOwed {
            owed: 0,
            group: (limit / 4).max(1),
            limit,
        }
    }

    #[inline]
    pub fn owed(&self) -> u32 {
        self.owed
    }

    /// A batch of this channel was processed. Returns the grant to send now,
    /// if a group's worth is owed.
    #[inline]
    pub fn processed(&mut self) -> Option<u32> {
        self.owed += 1;
        assert!(
            self.owed <= self.limit,
            "bug: {} batches processed with {} credits outstanding",
            self.owed,
            self.limit
        );
        if self.owed >= self.group {
            self.take()
        } else {
            None
        }
    }

    /// Everything owed, to grant back now (before the receiver waits for
    /// input), if anything is.
    #[inline]
    pub fn take(&mut self) -> Option<u32> {
        match std::mem::take(&mut self.owed) {
            0 => None,
            owed => Some(owed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What one step of a simulated channel does.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// The sender tries to send a batch.
        Send,
        /// The sender took a credit but the channel refused the batch.
        Refused,
        /// The receiver processes a batch it has read, if any.
        Process,
        /// The receiver grants back what it owes (it ran out of work).
        Flush,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            prop_oneof![
                Just(Step::Send),
                Just(Step::Refused),
                Just(Step::Process),
                Just(Step::Flush)
            ],
            0..400,
        )
    }

    proptest! {
        /// Against a model that counts batches in flight: the sender never has
        /// more batches out than the limit, never stalls while the receiver
        /// owes nothing and nothing is in flight, and grants add up.
        #[test]
        fn batches_in_flight_never_exceed_the_limit(limit in 1u32..40, steps in steps()) {
            let mut send = SendCredits::new(limit);
            let mut owed = CreditsOwed::new(limit);
            let mut unprocessed = 0u32;
            let mut sent = 0u64;
            let mut granted = 0u64;
            for step in steps {
                match step {
                    Step::Send => {
                        if send.try_take() {
                            sent += 1;
                            unprocessed += 1;
                        } else {
                            prop_assert_eq!(send.available(), 0);
                        }
                    }
                    Step::Refused => {
                        if send.try_take() {
                            send.give_back();
                        }
                    }
                    Step::Process => {
                        if unprocessed > 0 {
                            unprocessed -= 1;
                            if let Some(n) = owed.processed() {
                                granted += u64::from(n);
                                send.grant(n);
                            }
                        }
                    }
                    Step::Flush => {
                        if let Some(n) = owed.take() {
                            granted += u64::from(n);
                            send.grant(n);
                        }
                    }
                }
                prop_assert!(send.available() <= limit);
                prop_assert!(sent - granted <= u64::from(limit));
                prop_assert_eq!(
                    u64::from(send.available()),
                    u64::from(limit) - (sent - granted)
                );
                prop_assert_eq!(
                    u64::from(unprocessed) + u64::from(owed.owed()),
                    sent - granted
                );
            }
        }
    }

    #[test]
    fn a_grant_past_the_limit_from_a_peer_is_refused_and_changes_nothing() {
        let mut send = SendCredits::new(4);
        assert!(send.try_take());
        assert_eq!(
            send.checked_grant(2),
            Err(ExcessGrant {
                granted: 2,
                available: 3,
                limit: 4
            })
        );
        assert_eq!(send.available(), 3);
        assert_eq!(
            send.checked_grant(u32::MAX).map_err(|e| e.granted),
            Err(u32::MAX)
        );
        assert_eq!(send.checked_grant(1), Ok(()));
        assert_eq!(send.available(), 4);
    }

    #[test]
    #[should_panic(expected = "bug: a grant of 1 credits")]
    fn a_local_grant_past_the_limit_is_a_bug() {
        SendCredits::new(2).grant(1);
    }

    #[test]
    fn grants_go_back_a_quarter_of_the_limit_at_a_time() {
        let mut owed = CreditsOwed::new(16);
        assert_eq!(owed.processed(), None);
        assert_eq!(owed.processed(), None);
        assert_eq!(owed.processed(), None);
        assert_eq!(owed.processed(), Some(4));
        assert_eq!(owed.processed(), None);
        assert_eq!(owed.take(), Some(1));
        assert_eq!(owed.take(), None);
        let mut one = CreditsOwed::new(1);
        assert_eq!(one.processed(), Some(1));
    }
}
