//! Wiring one exchange (one edge of the dataflow) on one shard.
//!
//! Runs on the shard's core while its pipeline is built, before any task
//! starts. An exchange is a gate in front of the downstream chain (its
//! receiving side), an outbox shared by every exchange sender of the edge on
//! this shard, and a sender at the end of the upstream chain. With unaligned
//! checkpoints (or aligned with a timeout) both gate and outbox take part as
//! channel-state participants; on restore, the records each held in flight
//! come back before any new input: the gate's first, then the outbox's.
//! The channels between shards are connected later, by the runtime, from
//! `sluice_network`'s [`LocalMesh`](sluice_network::LocalMesh).

use std::cell::RefCell;
use std::rc::Rc;

use super::{
    output_state_name, write_batch, ChannelCheckpoints, ExchangeGate, ExchangeSender,
    OutputCheckpoints, Partitioner,
};
use sluice_network::RecordBatch;

use crate::checkpoint::{BarrierAlignment, ParticipantKind};
use crate::push::{EdgeId, Push};
use crate::runtime::ShardBuilder;
use crate::{EngineError, ExchangeData};

/// The name of an edge's receiving-side channel state.
pub(crate) fn channel_state_name(edge: EdgeId) -> String {
    format!("channel-{edge}")
}

/// Wires exchange `edge` on this shard in front of `downstream`; returns the
/// sender the upstream chain pushes into.
pub(crate) fn wire_exchange<T: ExchangeData, P: Partitioner<T>>(
    sb: &mut ShardBuilder,
    edge: EdgeId,
    partitioner: P,
    downstream: Box<dyn Push<T>>,
) -> Box<dyn Push<T>> {
    // At most a channel's credits queued from each input.
    let capacity = sb.config.channel_batches as u64 * u64::from(sb.shards);
    let mut gate = ExchangeGate::new(downstream, sb.shard, sb.shards).with_queue_gauge(
        sb.metrics.clone(),
        edge,
        capacity,
    );
    let name = channel_state_name(edge);
    let alignment = sb.config.checkpoint.as_ref().map(|c| c.alignment);
    // Aligned checkpoints hold no records in flight: only the other modes
    // take part with channel state.
    let in_flight = match (&sb.checkpoints, alignment) {
        (Some(checkpoints), Some(alignment)) if alignment != BarrierAlignment::Aligned => {
            Some((checkpoints.clone(), alignment))
        }
        _ => None,
    };
    if let Some((checkpoints, alignment)) = &in_flight {
        gate = gate.with_channel_checkpoints(ChannelCheckpoints {
            participant: checkpoints.participate(ParticipantKind::Channel),
            checkpoints: checkpoints.clone(),
            name: name.clone(),
            alignment: *alignment,
        });
    }
    // Records that were in flight into this gate at the restored (unaligned)
    // checkpoint come before any new input.
    if let Some(records) = sb.restored.take_channel(sb.shard, &name) {
        if let Err(e) = gate.replay(&records) {
            sb.fail(EngineError::Restore(format!(
                "shard {}: {name}: {e}",
                sb.shard
            )));
        }
    }
    let gate = Rc::new(RefCell::new(gate));
    sb.register_gate(edge, gate.clone(), RecordBatch::check_records::<T>);
    let outbox = sb.outbox(edge);
    if let Some((checkpoints, alignment)) = in_flight {
        outbox.set_output_checkpoints(OutputCheckpoints {
            participant: checkpoints.participate(ParticipantKind::Channel),
            checkpoints,
            alignment,
            // SAFETY: the outbox holds only batches of this edge, built by
            // this shard's `BatchBuilder<T>`.
            record: Box::new(|batch, writer| unsafe { write_batch::<T>(batch, writer) }),
        });
    }
    let (mut sender, state) = ExchangeSender::new(
        edge,
        sb.shard,
        sb.shards,
        partitioner,
        gate,
        outbox,
        sb.config.batch_bytes_limit,
        sb.config.flush_timeout,
        sb.metrics.clone(),
        sb.errors(),
    );
    // Records this shard's outbox held at the restored (unaligned) checkpoint
    // are sent again, after the gates' own in-flight records and before any
    // new input.
    let output = output_state_name(edge);
    if let Some(records) = sb.restored.take_channel(sb.shard, &output) {
        if let Err(e) = sender.replay(&records) {
            sb.fail(EngineError::Restore(format!(
                "shard {}: {output}: {e}",
                sb.shard
            )));
        }
    }
    sb.register_flush(state);
    Box::new(sender)
}
