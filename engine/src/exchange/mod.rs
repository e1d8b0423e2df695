//! Moving records between shards.
//!
//! An exchange is one edge of the dataflow (after `key_by`, `rebalance` or
//! `broadcast`). On each shard it has a sending side ([`ExchangeSender`], the end
//! of the upstream chain) and a receiving side ([`ExchangeGate`], the start of the
//! downstream chain). A record that stays on its shard goes straight into the
//! local gate, never serialized; a record for another shard is serialized once
//! into that destination's [`BatchBuilder`](sluice_network::BatchBuilder), and the
//! full batch waits in the edge's [`EdgeOutbox`] until its destination grants a
//! credit and the channel takes it (the channel, its credits and their grants
//! are `sluice_network`'s: [`ChannelSender`](sluice_network::ChannelSender) and
//! its kin). Tasks that push into a chain
//! wait for the outboxes it reaches to drain: that is the backpressure that
//! slows sources down to the pace of the slowest consumer. The receiving shard
//! reads its channels eagerly into the gate and grants a credit back once a
//! batch has been processed, so barriers are seen at once while what waits
//! stays bounded.

mod channel_state;
mod gate;
mod outbox;
mod partitioner;
mod sender;
mod wiring;

pub(crate) use channel_state::write_batch;
pub(crate) use gate::{ChannelCheckpoints, ExchangeGate, GateInput, GateStep};
pub(crate) use outbox::{output_state_name, EdgeOutbox, OutputCheckpoints, OUTPUT_STATE_PREFIX};
pub use partitioner::{
    BroadcastPartitioner, KeyPartitioner, Partitioner, RoundRobinPartitioner, Route,
};
pub(crate) use sender::{ExchangeSender, Flush};
pub(crate) use wiring::wire_exchange;
