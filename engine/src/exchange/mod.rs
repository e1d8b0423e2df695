//! Moving records between shards.
//!
//! An exchange is one edge of the dataflow (after `key_by`, `rebalance` or
//! `broadcast`). On each shard it has a sending side ([`ExchangeSender`], the end
//! of the upstream chain) and a receiving side ([`ExchangeGate`], the start of the
//! downstream chain). A record that stays on its shard goes straight into the
//! local gate, never serialized; a record for another shard is serialized once
//! into that destination's [`BatchBuilder`](sluice_network::BatchBuilder), and the
//! full batch waits in the edge's [`EdgeOutbox`] until the bounded channel takes
//! it. Tasks that push into a chain wait for the outboxes it reaches to drain:
//! that is the backpressure that slows sources down to the pace of the slowest
//! consumer.

mod gate;
mod outbox;
mod partitioner;
mod sender;

pub(crate) use gate::{ChannelCheckpoints, ExchangeGate, GateInput};
pub(crate) use outbox::EdgeOutbox;
pub use partitioner::{
    BroadcastPartitioner, KeyPartitioner, Partitioner, RoundRobinPartitioner, Route,
};
pub(crate) use sender::{ExchangeSender, Flush};
