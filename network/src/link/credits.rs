//! The receiving side's credits of one link: a few exclusive credits per
//! channel, and a floating pool shared by the link's channels that goes to
//! the channels whose senders announce a backlog, as in Flink's credit-based
//! flow control. Pure state — no socket, no clock, no executor — owned by the
//! link on its shard's core.
//!
//! Every channel keeps its exclusive credits for good, so a channel whose
//! batches are not processed (its input blocked for alignment, a slow
//! operator) never takes credit from another: every other channel still
//! sends against its own. A sender refused for want of credit announces its
//! backlog (batches waiting); while a channel's announced backlog exceeds
//! what it may still send, the pool grants it floating credits, a chunk at a
//! time. Once its sender announces that nothing waits, the floating credits
//! the channel holds go back to the pool as its batches are processed (a
//! credit the sender holds unused stays with the channel until it is used:
//! a grant cannot be taken back). Credits of processed batches go back to
//! the sender in groups (a quarter of what the channel holds) or all at once
//! when the receiver runs out of work ([`IncomingCredits::flush`]).
//!
//! Invariants (checked by [`IncomingCredits::check_invariants`] in the
//! tests): per channel, `allowed + unprocessed + owed == exclusive +
//! floating_held` — what the peer may still send, what came and is not
//! processed, and what is processed and not yet granted back are together
//! exactly the credits the channel holds; per link, `free + Σ floating_held
//! == floating`. So at most `Σ exclusive + floating` batches of a link are
//! ever in flight or unprocessed on the receiving side, and a batch that
//! comes without credit is the peer's fault ([`NoCredit`]).

/// Credits to send back to the peer for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub channel: u32,
    pub credits: u32,
}

/// A batch came on a channel that had no credit left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a batch on channel {channel} without credit")]
pub struct NoCredit {
    pub channel: u32,
}

#[derive(Debug, Clone)]
struct ChannelCredits {
    exclusive: u32,
    /// Floating credits this channel holds (granted, in flight, unprocessed
    /// or owed).
    floating_held: u32,
    /// Batches the peer may still send.
    allowed: u32,
    /// Batches that came and are not processed yet.
    unprocessed: u32,
    /// Batches processed whose credit has not gone back yet.
    owed: u32,
    /// What the sender last announced waits for credit.
    backlog: u32,
    /// The sender has ended the channel: its credit is no longer needed.
    ended: bool,
}

impl ChannelCredits {
    fn held(&self) -> u32 {
        self.exclusive + self.floating_held
    }

    /// Credit goes back once this many batches are owed.
    fn group(&self) -> u32 {
        (self.held() / 4).max(1)
    }

    fn wants_floating(&self) -> bool {
        !self.ended && self.backlog > self.allowed
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct IncomingCredits {
    channels: Vec<ChannelCredits>,
    /// Floating credits in the pool.
    free: u32,
    /// The pool's size.
    floating: u32,
    /// Floating credits granted to a backlogged channel at a time.
    chunk: u32,
    /// Where the next hand-out of floating credits starts (round robin).
    cursor: usize,
}

impl IncomingCredits {
    /// Channel `i` has `exclusive[i]` credits (its sender starts with them
    /// all); the pool has `floating`.
    pub fn new(exclusive: impl IntoIterator<Item = u32>, floating: u32) -> Self {
        let channels = exclusive
            .into_iter()
            .map(|exclusive| {
                assert!(exclusive > 0, "a channel needs at least one credit");
                ChannelCredits {
                    exclusive,
                    floating_held: 0,
                    allowed: exclusive,
                    unprocessed: 0,
                    owed: 0,
                    backlog: 0,
                    ended: false,
                }
            })
            .collect();
        IncomingCredits {
            channels,
            free: floating,
            floating,
            chunk: (floating / 4).max(1),
            cursor: 0,
        }
    }

    /// Floating credits in the pool now.
    pub fn floating_free(&self) -> u32 {
        self.free
    }

    /// Batches the peer may still send on `channel`.
    pub fn allowed(&self, channel: usize) -> u32 {
        self.channels[channel].allowed
    }

    /// Floating credits `channel` holds.
    pub fn floating_held(&self, channel: usize) -> u32 {
        self.channels[channel].floating_held
    }

    /// A batch came on `channel` (which must exist).
    pub fn batch_arrived(&mut self, channel: usize) -> Result<(), NoCredit> {
        let c = &mut self.channels[channel];
        if c.allowed == 0 {
            return Err(NoCredit {
                channel: channel as u32,
            });
        }
        c.allowed -= 1;
        c.unprocessed += 1;
        Ok(())
    }

    /// The sender of `channel` announced `batches` waiting for credit.
    pub fn backlog(&mut self, channel: usize, batches: u32, grants: &mut Vec<Grant>) {
        let c = &mut self.channels[channel];
        if c.ended {
            return;
        }
        c.backlog = batches;
        self.hand_out(grants);
    }

    /// The sender ended `channel`: it wants no more credit, and the floating
    /// credits it holds go back to the pool as its batches are processed.
    pub fn ended(&mut self, channel: usize, grants: &mut Vec<Grant>) {
        let c = &mut self.channels[channel];
        c.ended = true;
        c.backlog = 0;
        // What it may still send, it will not: floating credit among that
        // returns now.
        let unused = c.allowed.min(c.floating_held);
        c.allowed -= unused;
        c.floating_held -= unused;
        self.free += unused;
        if unused > 0 {
            self.hand_out(grants);
        }
    }

    /// A batch of `channel` was processed; its credit goes back in a group.
    pub fn processed(&mut self, channel: usize, grants: &mut Vec<Grant>) {
        let c = &mut self.channels[channel];
        assert!(
            c.unprocessed > 0,
            "bug: channel {channel} processed a batch it never received"
        );
        c.unprocessed -= 1;
        c.owed += 1;
        if c.owed >= c.group() {
            self.give_back(channel, grants);
        }
    }

    /// Everything owed on `channel` goes back now (the receiver waits for
    /// input).
    pub fn flush(&mut self, channel: usize, grants: &mut Vec<Grant>) {
        if self.channels[channel].owed > 0 {
            self.give_back(channel, grants);
        }
    }

    fn give_back(&mut self, channel: usize, grants: &mut Vec<Grant>) {
        let c = &mut self.channels[channel];
        let mut credits = std::mem::take(&mut c.owed);
        let mut returned = 0;
        if c.ended || c.backlog == 0 {
            returned = credits.min(c.floating_held);
            c.floating_held -= returned;
            credits -= returned;
        }
        c.allowed += credits;
        // An ended channel's sender needs no credit: it is kept, not sent.
        if credits > 0 && !c.ended {
            grants.push(Grant {
                channel: channel as u32,
                credits,
            });
        }
        if returned > 0 {
            self.free += returned;
            self.hand_out(grants);
        }
    }

    /// Grants pool credits, a chunk at a time round robin, to the channels
    /// whose backlog exceeds what they may send, while the pool has any.
    fn hand_out(&mut self, grants: &mut Vec<Grant>) {
        let n = self.channels.len();
        let mut idle_in_a_row = 0;
        while self.free > 0 && idle_in_a_row < n {
            let channel = self.cursor;
            self.cursor = (self.cursor + 1) % n;
            let c = &mut self.channels[channel];
            if !c.wants_floating() {
                idle_in_a_row += 1;
                continue;
            }
            idle_in_a_row = 0;
            let credits = self.chunk.min(self.free);
            self.free -= credits;
            c.floating_held += credits;
            c.allowed += credits;
            grants.push(Grant {
                channel: channel as u32,
                credits,
            });
        }
    }

    /// Checks the invariants of the module docs.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut held = 0;
        for (i, c) in self.channels.iter().enumerate() {
            if c.allowed + c.unprocessed + c.owed != c.held() {
                return Err(format!("channel {i}: {c:?} does not add up"));
            }
            held += c.floating_held;
        }
        if self.free + held != self.floating {
            return Err(format!(
                "the pool has {} free and {held} held of {}",
                self.free, self.floating
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlogged_channel_gets_floating_credit_and_returns_it_when_drained() {
        let mut credits = IncomingCredits::new([2, 2], 8);
        let mut grants = Vec::new();
        credits.batch_arrived(0).unwrap();
        credits.batch_arrived(0).unwrap();
        assert_eq!(credits.batch_arrived(0), Err(NoCredit { channel: 0 }));
        credits.backlog(0, 5, &mut grants);
        assert_eq!(
            grants,
            vec![
                Grant {
                    channel: 0,
                    credits: 2
                },
                Grant {
                    channel: 0,
                    credits: 2
                },
                Grant {
                    channel: 0,
                    credits: 2
                }
            ]
        );
        assert_eq!(credits.allowed(0), 6);
        assert_eq!(credits.floating_free(), 2);
        // The other channel still has its own.
        assert_eq!(credits.allowed(1), 2);
        grants.clear();
        credits.backlog(0, 0, &mut grants);
        for _ in 0..6 {
            credits.batch_arrived(0).unwrap();
        }
        for _ in 0..8 {
            credits.processed(0, &mut grants);
        }
        credits.flush(0, &mut grants);
        credits.check_invariants().unwrap();
        assert_eq!(credits.floating_free(), 8);
        assert_eq!(credits.floating_held(0), 0);
        assert_eq!(credits.allowed(0), 2);
    }

    #[test]
    fn an_ended_channel_returns_its_unused_floating_credit() {
        let mut credits = IncomingCredits::new([1, 1], 4);
        let mut grants = Vec::new();
        credits.batch_arrived(0).unwrap();
        credits.backlog(0, 3, &mut grants);
        credits.backlog(1, 5, &mut grants);
        assert_eq!(credits.floating_free(), 0);
        credits.check_invariants().unwrap();
        grants.clear();
        credits.ended(0, &mut grants);
        credits.processed(0, &mut grants);
        credits.flush(0, &mut grants);
        credits.check_invariants().unwrap();
        // Channel 1 still wants more and gets what channel 0 gave back.
        assert!(grants.iter().all(|g| g.channel == 1), "{grants:?}");
        assert_eq!(grants.iter().map(|g| g.credits).sum::<u32>(), 3);
        assert_eq!(credits.floating_free(), 0);
        assert_eq!(credits.floating_held(1), 4);
    }
}
