//! The receiving side of an exchange on one shard: the input gate.
//!
//! Lives on its shard's core. It has one input per shard (its own shard's input
//! is the local path). Records from other shards are read in place from their
//! batch and handed to the downstream chain; watermarks are combined over the
//! inputs ([`WatermarkCombiner`]), so the chain sees the minimum over non-idle
//! inputs, never moving back; the chain sees `End` once every input has ended.
//!
//! Checkpoint barriers are aligned: once barrier *n* has come from an input,
//! that input is blocked — a channel input's task stops reading (so its
//! sender feels backpressure), the local input's events are held in order —
//! until barrier *n* has come from every input that has not ended. Then the
//! chain gets barrier *n* once, and the held events follow it. A barrier newer
//! than the one being aligned (the older checkpoint was aborted) abandons the
//! older alignment; an older one is ignored.
//!
//! Unaligned (or aligned past its timeout), the barrier goes on at once and
//! nothing is blocked; the records that still arrive on an input before that
//! input's barrier were in flight at the checkpoint: they are processed as
//! usual and also kept, encoded, as the gate's channel state, which a restore
//! replays before any new input. Savepoints are always aligned.

use std::cell::Cell;
use std::rc::Rc;

use std::time::Instant;

use glommio::sync::Semaphore;
use sluice_network::{
    CheckpointBarrier, ExchangeData, ExchangeMessage, RecordBatch, WatermarkStatus,
};
use sluice_state::{CodecError, EntryWriter, PartReader};

use crate::checkpoint::{BarrierAlignment, ShardCheckpoints, SourcePositions};
use crate::push::{Control, EdgeId, Push};
use crate::watermark::WatermarkCombiner;
use crate::Rec;

/// Type-erased view of a gate for the tasks that receive its channels.
pub(crate) trait GateInput {
    /// Handles one message from shard `source`.
    fn receive(&mut self, source: u32, message: ExchangeMessage);
    /// The input from `source` went away without `End` (its shard failed).
    fn disconnected(&mut self, source: u32);
    fn reachable_edges(&self, out: &mut Vec<EdgeId>);
    /// While the input from `source` is blocked for barrier alignment: what
    /// to wait on before reading it again.
    fn blocked(&self, source: u32) -> Option<Rc<AlignmentWake>>;
    /// An unaligned barrier is waiting for `source`'s: its task should read
    /// ahead up to that barrier (see [`GateInput::stash`]) so the barrier
    /// overtakes the data queued before it.
    fn should_drain(&self, source: u32) -> bool;
    /// Takes note of `message`, read ahead from `source` and processed later:
    /// records become channel state, the barrier counts now. Returns whether
    /// the message must still be processed (a barrier need not).
    fn stash(&mut self, source: u32, message: &ExchangeMessage) -> bool;
}

/// Wakes the channel tasks that wait for an alignment to finish.
pub(crate) struct AlignmentWake {
    waiting: Cell<u64>,
    semaphore: Semaphore,
}

impl AlignmentWake {
    fn new() -> Self {
        AlignmentWake {
            waiting: Cell::new(0),
            semaphore: Semaphore::new(0),
        }
    }

    /// Waits until the next wake-up (callers check again whether they are
    /// still blocked).
    pub async fn wait(&self) {
        self.waiting.set(self.waiting.get() + 1);
        let _ = self.semaphore.acquire(1).await;
    }

    fn wake_all(&self) {
        let waiting = self.waiting.replace(0);
        if waiting > 0 {
            self.semaphore.signal(waiting);
        }
    }
}

/// An event of the local input held during an alignment.
enum Held<T> {
    Records(Vec<Rec<T>>),
    Watermark(i64),
    Status(WatermarkStatus),
    Barrier(CheckpointBarrier),
    End,
}

/// The barrier being aligned and the inputs it has come from.
struct Alignment {
    barrier: CheckpointBarrier,
    arrived: Vec<bool>,
    started: Instant,
    /// The barrier has gone on; records of inputs yet to deliver it are kept.
    unaligned: bool,
    in_flight: EntryWriter,
}

/// The gate's part in unaligned checkpoints.
pub(crate) struct ChannelCheckpoints {
    pub checkpoints: Rc<ShardCheckpoints>,
    pub participant: usize,
    pub name: String,
    pub alignment: BarrierAlignment,
}

pub(crate) struct ExchangeGate<T> {
    combiner: WatermarkCombiner,
    status: WatermarkStatus,
    downstream: Box<dyn Push<T>>,
    decoded: Vec<Rec<T>>,
    ended: bool,
    /// This shard: the input that arrives through `push_local`.
    local: u32,
    inputs_ended: Vec<bool>,
    alignment: Option<Alignment>,
    held: Vec<Held<T>>,
    wake: Rc<AlignmentWake>,
    channel: Option<ChannelCheckpoints>,
}

impl<T: ExchangeData> ExchangeGate<T> {
    pub fn new(downstream: Box<dyn Push<T>>, shard: u32, shards: u32) -> Self {
        ExchangeGate {
            combiner: WatermarkCombiner::new(shards as usize),
            status: WatermarkStatus::Active,
            downstream,
            decoded: Vec::new(),
            ended: false,
            local: shard,
            inputs_ended: vec![false; shards as usize],
            alignment: None,
            held: Vec::new(),
            wake: Rc::new(AlignmentWake::new()),
            channel: None,
        }
    }

    /// Takes part in unaligned checkpoints (see the module docs).
    pub fn with_channel_checkpoints(mut self, channel: ChannelCheckpoints) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Replays restored channel state: records that were in flight into this
    /// gate at the checkpoint. Called before any input arrives.
    pub fn replay(&mut self, records: &[u8]) -> Result<(), String> {
        let mut r = PartReader::new(records);
        let mut batch = Vec::new();
        let context = |e: CodecError| format!("channel state: {e}");
        for _ in 0..r.count().map_err(context)? {
            let ts: i64 = r.part().map_err(context)?;
            let value: T = r.part().map_err(context)?;
            batch.push(Rec { ts, value });
        }
        r.finish().map_err(context)?;
        self.downstream.push(&mut batch);
        Ok(())
    }

    #[inline]
    fn is_blocked(&self, source: u32) -> bool {
        self.alignment
            .as_ref()
            .is_some_and(|a| !a.unaligned && a.arrived[source as usize])
    }

    /// Whether records from `source` are in flight for an unaligned barrier.
    #[inline]
    fn is_recording(&self, source: u32) -> bool {
        self.alignment
            .as_ref()
            .is_some_and(|a| a.unaligned && !a.arrived[source as usize])
    }

    fn record_in_flight(&mut self, source: u32, records: &[Rec<T>]) {
        if !self.is_recording(source) {
            return;
        }
        let alignment = self.alignment.as_mut().expect("recording");
        for record in records {
            let written = alignment
                .in_flight
                .entry(&[&|w| w.part(&record.ts), &|w| w.part(&record.value)]);
            if let Err(e) = written {
                // The checkpoint cannot hold this record: it is declined.
                if let Some(channel) = &self.channel {
                    channel.checkpoints.decline(
                        alignment.barrier.id,
                        &format!(
                            "{}: a record in flight could not be encoded: {e}",
                            channel.name
                        ),
                    );
                }
                return;
            }
        }
    }

    /// Switches to unaligned when the policy says so.
    fn check_policy(&mut self) {
        let Some(channel) = &self.channel else { return };
        let Some(alignment) = &self.alignment else {
            return;
        };
        if alignment.unaligned || channel.checkpoints.is_savepoint(alignment.barrier.id) {
            return;
        }
        let go = match channel.alignment {
            BarrierAlignment::Aligned => false,
            BarrierAlignment::Unaligned => true,
            BarrierAlignment::AlignedWithTimeout(timeout) => alignment.started.elapsed() >= timeout,
        };
        if go {
            let alignment = self.alignment.as_mut().expect("checked");
            alignment.unaligned = true;
            let barrier = alignment.barrier;
            self.downstream.control(Control::Barrier(barrier));
            self.release();
        }
    }

    /// True (and `event` kept) if the local input is blocked.
    fn hold_local(&mut self, source: u32, event: impl FnOnce() -> Held<T>) -> bool {
        if source == self.local && self.is_blocked(source) {
            self.held.push(event());
            true
        } else {
            false
        }
    }

    pub fn push_local(&mut self, batch: &mut Vec<Rec<T>>) {
        if self.alignment.is_some() {
            self.check_policy();
            if self.is_blocked(self.local) {
                self.held.push(Held::Records(std::mem::take(batch)));
                return;
            }
            self.record_in_flight(self.local, batch);
        }
        self.downstream.push(batch);
    }

    /// Barrier `barrier` came from input `source`; see the module docs.
    pub fn barrier(&mut self, source: u32, barrier: CheckpointBarrier) {
        if self.hold_local(source, || Held::Barrier(barrier)) {
            return;
        }
        match &self.alignment {
            Some(a) if a.barrier.id > barrier.id => return,
            Some(a) if a.barrier.id < barrier.id => {
                self.alignment = None;
                self.release();
            }
            _ => {}
        }
        let inputs = self.inputs_ended.len();
        let alignment = self.alignment.get_or_insert_with(|| Alignment {
            barrier,
            arrived: vec![false; inputs],
            started: Instant::now(),
            unaligned: false,
            in_flight: EntryWriter::new(),
        });
        alignment.arrived[source as usize] = true;
        self.check_policy();
        self.complete_alignment();
    }

    /// Passes the barrier on once every open input has delivered it.
    fn complete_alignment(&mut self) {
        let Some(alignment) = &self.alignment else {
            return;
        };
        let aligned = (alignment.arrived.iter().zip(&self.inputs_ended)).all(|(a, e)| *a || *e);
        if aligned {
            let Alignment {
                barrier,
                unaligned,
                in_flight,
                ..
            } = self.alignment.take().expect("checked");
            if !unaligned {
                self.downstream.control(Control::Barrier(barrier));
            }
            if let Some(channel) = &self.channel {
                let records = if in_flight.is_empty() {
                    Vec::new()
                } else {
                    in_flight.finish()
                };
                channel.checkpoints.channel_state(
                    channel.participant,
                    barrier.id,
                    channel.name.clone(),
                    records,
                );
            }
            self.release();
        }
    }

    /// Replays the local input's held events (until one blocks it again) and
    /// wakes the blocked channel tasks.
    fn release(&mut self) {
        let mut held = std::mem::take(&mut self.held).into_iter();
        while !self.is_blocked(self.local) {
            let Some(event) = held.next() else { break };
            let local = self.local;
            match event {
                Held::Records(mut batch) => self.downstream.push(&mut batch),
                Held::Watermark(wm) => self.watermark(local, wm),
                Held::Status(status) => self.status(local, status),
                Held::Barrier(barrier) => self.barrier(local, barrier),
                Held::End => self.end(local),
            }
        }
        let mut rest: Vec<Held<T>> = held.collect();
        rest.append(&mut self.held);
        self.held = rest;
        self.wake.wake_all();
    }

    fn receive_batch(&mut self, source: u32, batch: RecordBatch) {
        if self.alignment.is_some() {
            self.check_policy();
        }
        debug_assert_eq!(batch.check_invariants(), Ok(()));
        if !batch.is_empty() {
            let timestamps = batch.timestamps();
            self.decoded.reserve(batch.len());
            for (i, &ts) in timestamps.iter().enumerate() {
                // SAFETY: this batch came through an in-process channel from
                // another shard of this job, which built it with a
                // `BatchBuilder<T>` for this very edge (edges are typed), so the
                // bytes are trusted and aligned. Batches from other machines will
                // arrive through the network layer and use `read_checked`.
                let value = unsafe { batch.read_trusted::<T>(i) };
                self.decoded.push(Rec { ts, value });
            }
            if self.alignment.is_some() {
                let decoded = std::mem::take(&mut self.decoded);
                self.record_in_flight(source, &decoded);
                self.decoded = decoded;
            }
            self.downstream.push(&mut self.decoded);
        }
        if let Some(wm) = batch.watermark {
            self.watermark(source, wm);
        }
    }

    pub fn watermark(&mut self, source: u32, wm: i64) {
        if self.hold_local(source, || Held::Watermark(wm)) {
            return;
        }
        if let Some(combined) = self.combiner.update(source as usize, wm) {
            self.downstream.control(Control::Watermark(combined));
        }
        self.refresh_status();
    }

    pub fn status(&mut self, source: u32, status: WatermarkStatus) {
        if self.hold_local(source, || Held::Status(status)) {
            return;
        }
        let advanced = self
            .combiner
            .set_idle(source as usize, status == WatermarkStatus::Idle);
        if let Some(combined) = advanced {
            self.downstream.control(Control::Watermark(combined));
        }
        self.refresh_status();
    }

    fn refresh_status(&mut self) {
        let status = self.combiner.status();
        if status != self.status {
            self.status = status;
            self.downstream.control(Control::Status(status));
        }
    }

    pub fn end(&mut self, source: u32) {
        if self.hold_local(source, || Held::End) {
            return;
        }
        self.inputs_ended[source as usize] = true;
        if let Some(combined) = self.combiner.end(source as usize) {
            self.downstream.control(Control::Watermark(combined));
        }
        self.complete_alignment();
        if self.combiner.all_ended() && !self.ended {
            self.ended = true;
            self.downstream.control(Control::End);
            if let Some(channel) = &self.channel {
                channel
                    .checkpoints
                    .ended(channel.participant, SourcePositions::new());
            }
        } else {
            self.refresh_status();
        }
    }

    pub fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.downstream.reachable_edges(out);
    }
}

impl<T: ExchangeData> GateInput for ExchangeGate<T> {
    fn receive(&mut self, source: u32, message: ExchangeMessage) {
        match message {
            ExchangeMessage::Batch(batch) => self.receive_batch(source, batch),
            ExchangeMessage::Status(status) => self.status(source, status),
            ExchangeMessage::Barrier(barrier) => self.barrier(source, barrier),
            ExchangeMessage::End => self.end(source),
        }
    }

    fn disconnected(&mut self, source: u32) {
        self.end(source);
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        ExchangeGate::reachable_edges(self, out)
    }

    fn blocked(&self, source: u32) -> Option<Rc<AlignmentWake>> {
        self.is_blocked(source).then(|| self.wake.clone())
    }

    fn should_drain(&self, source: u32) -> bool {
        source != self.local && self.is_recording(source) && !self.inputs_ended[source as usize]
    }

    fn stash(&mut self, source: u32, message: &ExchangeMessage) -> bool {
        match message {
            ExchangeMessage::Batch(batch) => {
                if self.is_recording(source) && !batch.is_empty() {
                    let records: Vec<Rec<T>> = (batch.timestamps().iter().enumerate())
                        .map(|(i, &ts)| Rec {
                            ts,
                            // SAFETY: as in `receive_batch`: a batch of this
                            // edge from a shard of this job.
                            value: unsafe { batch.read_trusted::<T>(i) },
                        })
                        .collect();
                    self.record_in_flight(source, &records);
                }
                true
            }
            ExchangeMessage::Barrier(barrier) => {
                self.barrier(source, *barrier);
                false
            }
            ExchangeMessage::End => {
                // Nothing more comes from this input: its part is complete.
                if let Some(alignment) = self.alignment.as_mut() {
                    alignment.arrived[source as usize] = true;
                }
                self.complete_alignment();
                true
            }
            ExchangeMessage::Status(_) => true,
        }
    }
}

#[cfg(test)]
mod alignment_tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use proptest::prelude::*;
    use sluice_network::BatchBuilder;

    use super::*;

    /// What the chain after the gate saw.
    #[derive(Debug, Clone, PartialEq)]
    enum Seen {
        Record(u64),
        Barrier(u64),
    }

    struct Recorder(Rc<RefCell<Vec<Seen>>>);

    impl Push<u64> for Recorder {
        fn push(&mut self, batch: &mut Vec<Rec<u64>>) {
            let mut seen = self.0.borrow_mut();
            seen.extend(batch.drain(..).map(|r| Seen::Record(r.value)));
        }
        fn control(&mut self, event: Control) {
            if let Control::Barrier(b) = event {
                self.0.borrow_mut().push(Seen::Barrier(b.id));
            }
        }
        fn reachable_edges(&self, _out: &mut Vec<EdgeId>) {}
    }

    #[derive(Debug, Clone, Copy)]
    enum Event {
        Record(u64),
        Barrier(u64),
        End,
    }

    fn barrier(id: u64) -> CheckpointBarrier {
        CheckpointBarrier {
            id,
            timestamp_ms: 0,
        }
    }

    /// Delivers `event` from input `source` as its task or the local chain would.
    fn deliver(gate: &mut ExchangeGate<u64>, source: u32, event: Event) {
        let local = source == gate.local;
        match (event, local) {
            (Event::Record(v), true) => gate.push_local(&mut vec![Rec::new(0, v)]),
            (Event::Record(v), false) => {
                let mut builder = BatchBuilder::<u64>::new(1 << 16);
                builder.push(0, &v).unwrap();
                gate.receive(source, ExchangeMessage::Batch(builder.take()));
            }
            (Event::Barrier(id), true) => gate.barrier(source, barrier(id)),
            (Event::Barrier(id), false) => {
                gate.receive(source, ExchangeMessage::Barrier(barrier(id)))
            }
            (Event::End, true) => gate.end(source),
            (Event::End, false) => gate.receive(source, ExchangeMessage::End),
        }
    }

    /// Per input: records, with barriers 1..=checkpoints between them, then
    /// (maybe) End. Record values encode (input, index) so order can be checked.
    fn inputs(shards: u32, checkpoints: u64) -> impl Strategy<Value = Vec<Vec<Event>>> {
        let input = |i: u32| {
            (
                proptest::collection::vec(0usize..4, checkpoints as usize + 1),
                any::<bool>(),
            )
                .prop_map(move |(runs, end)| {
                    let mut events = Vec::new();
                    let mut n = 0u64;
                    for (segment, run) in runs.iter().enumerate() {
                        if segment > 0 {
                            events.push(Event::Barrier(segment as u64));
                        }
                        for _ in 0..*run {
                            events.push(Event::Record(i as u64 * 1_000 + n));
                            n += 1;
                        }
                    }
                    if end {
                        events.push(Event::End);
                    }
                    events
                })
        };
        (0..shards).map(input).collect::<Vec<_>>()
    }

    proptest! {
        // Whatever the interleaving: every record arrives once and in its
        // input's order; each barrier is passed on once, in order; and the
        // records of every input that came before barrier n are ahead of it
        // downstream, the ones after it behind it.
        #[test]
        fn aligned_barriers_cut_every_input_at_the_same_point(
            (events, order) in (1u32..4, 1u64..3).prop_flat_map(|(shards, checkpoints)| {
                (inputs(shards, checkpoints), proptest::collection::vec(any::<u32>(), 200))
            }),
        ) {
            let shards = events.len() as u32;
            let seen = Rc::new(RefCell::new(Vec::new()));
            let mut gate = ExchangeGate::new(Box::new(Recorder(seen.clone())), 0, shards);
            let mut next = vec![0usize; shards as usize];
            let mut picks = order.into_iter().cycle();
            // Deliver until no input can: remote inputs wait while blocked.
            for _ in 0..10_000 {
                let ready: Vec<u32> = (0..shards)
                    .filter(|&s| next[s as usize] < events[s as usize].len())
                    .filter(|&s| s == 0 || gate.blocked(s).is_none())
                    .collect();
                let Some(pick) = picks.next() else { break };
                if ready.is_empty() {
                    break;
                }
                let source = ready[pick as usize % ready.len()];
                let event = events[source as usize][next[source as usize]];
                next[source as usize] += 1;
                deliver(&mut gate, source, event);
            }
            // Every input delivered everything: nobody stays blocked forever.
            for s in 0..shards {
                prop_assert_eq!(next[s as usize], events[s as usize].len(), "input {} stuck", s);
            }
            let seen = seen.borrow();
            let position = |wanted: &Seen| seen.iter().position(|s| s == wanted);
            let mut last_barrier = 0;
            for s in seen.iter() {
                if let Seen::Barrier(id) = s {
                    prop_assert!(*id > last_barrier, "barriers out of order: {:?}", seen);
                    last_barrier = *id;
                }
            }
            for (input, events) in events.iter().enumerate() {
                let mut segment = 0u64;
                let mut previous = None;
                for event in events {
                    match event {
                        Event::Barrier(id) => segment = *id,
                        Event::End => {}
                        Event::Record(v) => {
                            let at = position(&Seen::Record(*v));
                            prop_assert!(at.is_some(), "record {} of input {} lost", v, input);
                            prop_assert!(at > previous, "input {} reordered", input);
                            previous = at;
                            if let Some(b) = position(&Seen::Barrier(segment)).filter(|_| segment > 0) {
                                prop_assert!(at > Some(b), "record {} overtook barrier {}", v, segment);
                            }
                            if let Some(b) = position(&Seen::Barrier(segment + 1)) {
                                prop_assert!(at < Some(b), "record {} fell behind barrier {}", v, segment + 1);
                            }
                        }
                    }
                }
            }
            let records = seen.iter().filter(|s| matches!(s, Seen::Record(_))).count();
            let sent = events.iter().flatten().filter(|e| matches!(e, Event::Record(_))).count();
            prop_assert_eq!(records, sent);
        }
    }

    #[test]
    fn a_newer_barrier_abandons_the_older_alignment() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut gate = ExchangeGate::new(Box::new(Recorder(seen.clone())), 0, 2);
        deliver(&mut gate, 1, Event::Barrier(1));
        assert!(gate.blocked(1).is_some());
        // Checkpoint 1 was aborted: the local input brings barrier 2.
        deliver(&mut gate, 0, Event::Barrier(2));
        assert!(
            gate.blocked(1).is_none(),
            "input 1 released from the old alignment"
        );
        deliver(&mut gate, 1, Event::Record(7));
        deliver(&mut gate, 1, Event::Barrier(2));
        assert_eq!(*seen.borrow(), vec![Seen::Record(7), Seen::Barrier(2)]);
    }
}
