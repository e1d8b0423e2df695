//! The receiving side of an exchange on one shard: the input gate.
//!
//! Lives on its shard's core. It has one input per shard (its own shard's input
//! is the local path). Each channel input has a queue: its task reads the
//! channel eagerly into it ([`GateInput::arrive`]) and another processes it
//! a message at a time ([`GateInput::process_next`]); a batch's credit goes
//! back to its sender once processed, so a queue holds at most the channel's
//! credits in batches. Records from other shards are read in place from their
//! batch and handed to the downstream chain; watermarks are combined over the
//! inputs ([`WatermarkCombiner`]), so the chain sees the minimum over non-idle
//! inputs, never moving back; the chain sees `End` once every input has ended.
//!
//! Aligned barriers are processed in order: once barrier *n* has come from an
//! input, that input is blocked — its queue is not processed (so its sender
//! runs out of credit), the local input's events are held in order — until
//! barrier *n* has come from every input that has not ended. Then the chain
//! gets barrier *n* once, and the held events follow. A barrier newer than the
//! one being aligned (the older checkpoint was aborted) abandons the older
//! alignment; an older one is ignored. Which inputs are blocked, recording
//! or done is the [`BarrierAligner`]'s to say; the gate holds the queues, the
//! local input's held events and the records in flight, and does what the
//! aligner's actions say.
//!
//! Unaligned (or aligned past its timeout), a barrier counts the moment it
//! arrives, ahead of whatever is queued before it: the first one goes down the
//! chain at once (the operators snapshot) and nothing is blocked. Every record
//! that comes before an input's barrier but had not been processed by then —
//! queued at that moment, or arriving before that input's barrier — is kept,
//! encoded, as the gate's channel state `channel-<edge>` (and processed as
//! usual); a restore replays it before any new input. Savepoints are always
//! aligned. Invariant: for checkpoint *n*, the records processed before the
//! chain saw barrier *n* and the channel state are, together, exactly the
//! records that came before barrier *n* on every input.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use std::time::Instant;

use sluice_network::{CheckpointBarrier, ExchangeMessage, RecordBatch, Wake, WatermarkStatus};
use sluice_state::{CodecError, EntryWriter};

use super::channel_state::{read_records, write_batch, write_records};
use crate::checkpoint::{
    AlignerAction, AlignerEvent, BarrierAligner, BarrierAlignment, ShardCheckpoints,
    SourcePositions,
};
use crate::metrics::ShardMetrics;
use crate::push::{Control, EdgeId, Push};
use crate::watermark::WatermarkCombiner;
use crate::{ExchangeData, Rec};

/// What processing an input's next message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateStep {
    /// A batch (its credit can go back).
    Batch,
    /// A control message.
    Control,
    /// The input's end: nothing more comes from it.
    Ended,
    /// Nothing to do: the queue is empty or the input is blocked.
    Idle,
}

/// Type-erased view of a gate for the tasks that read and process its channels.
pub(crate) trait GateInput {
    /// A message read from the channel of shard `source`; `None`: the
    /// channel broke without `End` (its shard failed, its link closed) or
    /// the job aborts — the input is dead, not ended.
    fn arrive(&mut self, source: u32, message: Option<ExchangeMessage>);
    /// Processes the next message queued from `source`, unless the input is
    /// blocked for alignment or has nothing queued.
    fn process_next(&mut self, source: u32) -> GateStep;
    /// Signalled whenever something arrives or an alignment ends.
    fn wake(&self) -> Rc<Wake>;
    /// When the alignment in progress turns unaligned (aligned with a
    /// timeout), if it may.
    fn policy_deadline(&self) -> Option<Instant>;
    /// Turns the alignment unaligned if its timeout has passed.
    fn check_policy(&mut self);
    fn reachable_edges(&self, out: &mut Vec<EdgeId>);
}

/// An event of the local input held during an alignment.
enum Held<T> {
    Records(Vec<Rec<T>>),
    Watermark(i64),
    Status(WatermarkStatus),
    Barrier(CheckpointBarrier),
    End,
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
    /// Messages read from each channel and not yet processed.
    queues: Vec<VecDeque<ExchangeMessage>>,
    /// By input: its channel broke (see [`GateInput::arrive`]).
    broken: Vec<bool>,
    /// Which inputs delivered the barrier being aligned, and what to do next.
    aligner: BarrierAligner,
    /// Unaligned: the records in flight for the alignment in progress.
    in_flight: EntryWriter,
    held: Vec<Held<T>>,
    wake: Rc<Wake>,
    channel: Option<ChannelCheckpoints>,
    /// Where the queues' length is shown: this exchange's figures.
    queue_gauge: Option<(Arc<ShardMetrics>, EdgeId)>,
    /// When the alignment in progress began (its first barrier came).
    alignment_started: Option<Instant>,
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
            queues: (0..shards).map(|_| VecDeque::new()).collect(),
            broken: vec![false; shards as usize],
            aligner: BarrierAligner::new(shards as usize, BarrierAlignment::Aligned),
            in_flight: EntryWriter::new(),
            held: Vec::new(),
            wake: Rc::new(Wake::new()),
            channel: None,
            queue_gauge: None,
            alignment_started: None,
        }
    }

    /// Shows its queues' length in `metrics` as edge `edge`'s input queue,
    /// of `capacity` batches.
    pub fn with_queue_gauge(
        mut self,
        metrics: Arc<ShardMetrics>,
        edge: EdgeId,
        capacity: u64,
    ) -> Self {
        if let Some(figures) = metrics.edge(edge) {
            figures.input_capacity.set(capacity);
            self.queue_gauge = Some((metrics, edge));
        }
        self
    }

    /// Shows how long the barrier that just went on waited for the others
    /// (0 when it did not wait).
    fn publish_alignment(&mut self) {
        let waited = self
            .alignment_started
            .take()
            .map_or(0, |s| s.elapsed().as_micros());
        if let Some((metrics, edge)) = &self.queue_gauge {
            if let Some(figures) = metrics.edge(*edge) {
                figures.last_alignment_us.set(waited as u64);
            }
        }
    }

    fn publish_queued(&self) {
        if let Some((metrics, edge)) = &self.queue_gauge {
            if let Some(figures) = metrics.edge(*edge) {
                let queued: usize = self.queues.iter().map(VecDeque::len).sum();
                figures.input_queued.set(queued as u64);
            }
        }
    }

    /// Takes part in unaligned checkpoints (see the module docs).
    pub fn with_channel_checkpoints(mut self, channel: ChannelCheckpoints) -> Self {
        self.aligner = BarrierAligner::new(self.queues.len(), channel.alignment);
        self.channel = Some(channel);
        self
    }

    /// Replays restored channel state: records that were in flight into this
    /// gate at the checkpoint. Called before any input arrives.
    pub fn replay(&mut self, records: &[u8]) -> Result<(), String> {
        let mut batch = read_records::<T>(records)?;
        self.downstream.push(&mut batch);
        Ok(())
    }

    #[inline]
    fn is_blocked(&self, source: u32) -> bool {
        self.aligner.is_blocked(source as usize)
    }

    /// Whether records from `source` are in flight for an unaligned barrier.
    #[inline]
    fn is_recording(&self, source: u32) -> bool {
        self.aligner.is_recording(source as usize)
    }

    fn is_savepoint(&self, barrier: &CheckpointBarrier) -> bool {
        self.channel
            .as_ref()
            .is_some_and(|c| c.checkpoints.is_savepoint(barrier.id))
    }

    /// The checkpoint cannot hold a record: it is declined.
    fn decline(&self, e: CodecError) {
        if let (Some(channel), Some(barrier)) = (&self.channel, self.aligner.current()) {
            channel.checkpoints.decline(
                barrier.id,
                &format!(
                    "{}: a record in flight could not be encoded: {e}",
                    channel.name
                ),
            );
        }
    }

    fn record_records(&mut self, source: u32, records: &[Rec<T>]) {
        if !self.is_recording(source) {
            return;
        }
        if let Err(e) = write_records(records, &mut self.in_flight) {
            self.decline(e);
        }
    }

    fn record_batch(&mut self, source: u32, batch: &RecordBatch) {
        if !self.is_recording(source) || batch.is_empty() {
            return;
        }
        // SAFETY: this batch came through an in-process channel from another
        // shard of this job, which built it with a `BatchBuilder<T>` for this
        // very edge (edges are typed).
        if let Err(e) = unsafe { write_batch::<T>(batch, &mut self.in_flight) } {
            self.decline(e);
        }
    }

    /// Everything queued from `source` ahead of its barrier of the alignment
    /// is in flight: kept as channel state. True if that barrier (it leaves
    /// the queue: it counts now) or the input's end was among it.
    fn record_queued(&mut self, source: u32) -> bool {
        let id = self.aligner.current().expect("aligning").id;
        let queue = std::mem::take(&mut self.queues[source as usize]);
        let mut kept = VecDeque::with_capacity(queue.len());
        let mut reached = false;
        let mut counted = false;
        for message in queue {
            if !reached {
                match &message {
                    ExchangeMessage::Batch(batch) => self.record_batch(source, batch),
                    ExchangeMessage::Barrier(b) if b.id == id => {
                        reached = true;
                        counted = true;
                        continue;
                    }
                    // A newer barrier: this input skipped ours.
                    ExchangeMessage::Barrier(b) if b.id > id => reached = true,
                    ExchangeMessage::End => {
                        reached = true;
                        counted = true;
                    }
                    _ => {}
                }
            }
            kept.push_back(message);
        }
        self.queues[source as usize] = kept;
        counted
    }

    /// Does what the aligner said.
    fn perform(&mut self, action: AlignerAction) {
        match action {
            AlignerAction::None => {}
            AlignerAction::Abandoned(_) => {
                self.alignment_started = None;
                self.in_flight = EntryWriter::new();
                self.release();
            }
            AlignerAction::Overtake {
                barrier,
                in_flight_from,
            } => {
                self.downstream.control(Control::Barrier(barrier));
                self.publish_alignment();
                let reached: Vec<usize> = in_flight_from
                    .into_iter()
                    .filter(|&source| self.record_queued(source as u32))
                    .collect();
                let next = self
                    .aligner
                    .step(AlignerEvent::Overtaken { reached: &reached });
                self.perform(next);
                self.release();
            }
            AlignerAction::Complete { barrier, unaligned } => {
                if !unaligned {
                    self.downstream.control(Control::Barrier(barrier));
                    self.publish_alignment();
                }
                let in_flight = std::mem::replace(&mut self.in_flight, EntryWriter::new());
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
    }

    /// Turns the alignment unaligned if its timeout has passed.
    fn check_deadline(&mut self) {
        if let Some(deadline) = self.aligner.deadline() {
            let now = Instant::now();
            if now >= deadline {
                let action = self.aligner.step(AlignerEvent::Tick { now });
                self.perform(action);
            }
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
        if self.aligner.is_aligning() {
            self.check_deadline();
            if self.is_blocked(self.local) {
                self.held.push(Held::Records(std::mem::take(batch)));
                return;
            }
            self.record_records(self.local, batch);
        }
        self.downstream.push(batch);
    }

    /// Barrier `barrier` from input `source`: processed in order, or counted
    /// on arrival when it overtakes (see the module docs).
    pub fn barrier(&mut self, source: u32, barrier: CheckpointBarrier) {
        if self.hold_local(source, || Held::Barrier(barrier)) {
            return;
        }
        let savepoint = self.is_savepoint(&barrier);
        loop {
            let was_aligning = self.aligner.is_aligning();
            let now = Instant::now();
            let action = self.aligner.step(AlignerEvent::Barrier {
                input: source as usize,
                barrier,
                savepoint,
                now,
            });
            if !was_aligning && self.aligner.is_aligning() {
                self.alignment_started = Some(now);
            }
            let abandoned = matches!(action, AlignerAction::Abandoned(_));
            self.perform(action);
            if !abandoned {
                return;
            }
            // What the older alignment held went on; now the barrier counts.
        }
    }

    /// Replays the local input's held events (until one blocks it again) and
    /// wakes the tasks of blocked inputs.
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

    fn process_batch(&mut self, source: u32, batch: RecordBatch) {
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
        let action = self.aligner.step(AlignerEvent::End {
            input: source as usize,
        });
        if let Some(combined) = self.combiner.end(source as usize) {
            self.downstream.control(Control::Watermark(combined));
        }
        self.perform(action);
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
    fn arrive(&mut self, source: u32, message: Option<ExchangeMessage>) {
        let Some(message) = message else {
            // The channel broke without its `End` (its shard failed, its
            // link closed, the job aborts): the job is failing. That is not
            // an end: nothing more is processed from this input and it never
            // counts as ended, so neither the watermark nor an alignment
            // moves past what never came, and no checkpoint completes here.
            self.broken[source as usize] = true;
            self.queues[source as usize].clear();
            self.wake.wake_all();
            return;
        };
        match message {
            ExchangeMessage::Barrier(barrier)
                if self
                    .aligner
                    .counts_on_arrival(&barrier, self.is_savepoint(&barrier)) =>
            {
                self.barrier(source, barrier)
            }
            message => {
                match &message {
                    ExchangeMessage::Batch(batch) => self.record_batch(source, batch),
                    ExchangeMessage::End => {
                        // While recording, nothing more comes from this
                        // input: its part is complete.
                        let action = self.aligner.step(AlignerEvent::EndArrived {
                            input: source as usize,
                        });
                        self.perform(action);
                    }
                    _ => {}
                }
                self.queues[source as usize].push_back(message);
            }
        }
        self.publish_queued();
        self.wake.wake_all();
    }

    fn process_next(&mut self, source: u32) -> GateStep {
        if self.broken[source as usize] {
            return GateStep::Ended;
        }
        if self.aligner.is_aligning() {
            self.check_deadline();
        }
        if self.is_blocked(source) {
            return GateStep::Idle;
        }
        let Some(message) = self.queues[source as usize].pop_front() else {
            return GateStep::Idle;
        };
        self.publish_queued();
        match message {
            ExchangeMessage::Batch(batch) => {
                self.process_batch(source, batch);
                GateStep::Batch
            }
            ExchangeMessage::Status(status) => {
                self.status(source, status);
                GateStep::Control
            }
            ExchangeMessage::Barrier(barrier) => {
                self.barrier(source, barrier);
                GateStep::Control
            }
            ExchangeMessage::End => {
                self.end(source);
                GateStep::Ended
            }
        }
    }

    fn wake(&self) -> Rc<Wake> {
        self.wake.clone()
    }

    fn policy_deadline(&self) -> Option<Instant> {
        self.aligner.deadline()
    }

    fn check_policy(&mut self) {
        self.check_deadline();
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        ExchangeGate::reachable_edges(self, out)
    }
}

#[cfg(test)]
mod alignment_tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::mpsc::Receiver;
    use std::time::Duration;

    use proptest::prelude::*;
    use sluice_network::BatchBuilder;
    use sluice_state::{KeyGroups, RestoreSet, StateBackend, StateBackendKind};

    use super::*;
    use crate::checkpoint::{CheckpointSignals, ParticipantKind, ShardCheckpointing, ShardReport};

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

    fn message(event: Event) -> ExchangeMessage {
        match event {
            Event::Record(v) => {
                let mut builder = BatchBuilder::<u64>::new(1 << 16);
                builder.push(0, &v).unwrap();
                ExchangeMessage::Batch(builder.take())
            }
            Event::Barrier(id) => ExchangeMessage::Barrier(barrier(id)),
            Event::End => ExchangeMessage::End,
        }
    }

    /// A gate on shard 0 of `shards`; with `alignment`, it takes part in
    /// checkpoints through a real `ShardCheckpoints` whose reports (the
    /// channel state of each checkpoint) come out of the receiver.
    struct Harness {
        gate: ExchangeGate<u64>,
        seen: Rc<RefCell<Vec<Seen>>>,
        reports: Option<Receiver<ShardReport>>,
    }

    fn harness(shards: u32, alignment: Option<BarrierAlignment>) -> Harness {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut gate = ExchangeGate::new(Box::new(Recorder(seen.clone())), 0, shards);
        let mut reports_out = None;
        if let Some(alignment) = alignment {
            let (reports, reports_in) = std::sync::mpsc::channel();
            let groups = KeyGroups::new(128, 1).range_of(0);
            let state = StateBackend::new(StateBackendKind::Memory, groups, RestoreSet::default());
            let checkpoints = Rc::new(ShardCheckpoints::new(
                0,
                state.registry(),
                ShardCheckpointing {
                    reports,
                    signals: CheckpointSignals::default(),
                    full_every: None,
                },
                0,
            ));
            gate = gate.with_channel_checkpoints(ChannelCheckpoints {
                participant: checkpoints.participate(ParticipantKind::Channel),
                checkpoints,
                name: "channel-0".into(),
                alignment,
            });
            reports_out = Some(reports_in);
        }
        Harness {
            gate,
            seen,
            reports: reports_out,
        }
    }

    impl Harness {
        /// Delivers the local input's `event` (it goes straight in).
        fn local(&mut self, event: Event) {
            match event {
                Event::Record(v) => self.gate.push_local(&mut vec![Rec::new(0, v)]),
                Event::Barrier(id) => self.gate.barrier(0, barrier(id)),
                Event::End => self.gate.end(0),
            }
        }

        /// Runs `events` (per input; input 0 is local) in the order `picks`
        /// chooses among arriving and processing, then drains everything.
        /// Returns how many events of each input were delivered.
        fn run(&mut self, events: &[Vec<Event>], picks: &[u32]) -> Vec<usize> {
            let shards = events.len() as u32;
            let mut next = vec![0usize; shards as usize];
            for pick in picks {
                let source = pick % shards;
                let arrive = (pick / shards).is_multiple_of(2);
                let s = source as usize;
                if source == 0 || arrive {
                    if let Some(&event) = events[s].get(next[s]) {
                        next[s] += 1;
                        match source {
                            0 => self.local(event),
                            _ => self.gate.arrive(source, Some(message(event))),
                        }
                    }
                } else {
                    self.gate.process_next(source);
                }
            }
            // Everything left arrives and is processed, as the tasks would.
            for _ in 0..10_000 {
                let mut progressed = false;
                for source in 0..shards {
                    let s = source as usize;
                    if let Some(&event) = events[s].get(next[s]) {
                        next[s] += 1;
                        progressed = true;
                        match source {
                            0 => self.local(event),
                            _ => self.gate.arrive(source, Some(message(event))),
                        }
                    }
                    if source != 0 {
                        while self.gate.process_next(source) != GateStep::Idle {
                            progressed = true;
                        }
                    }
                }
                if !progressed {
                    break;
                }
            }
            next
        }

        /// Each completed checkpoint's channel state, decoded.
        fn channel_states(&self) -> BTreeMap<u64, Vec<u64>> {
            let mut states = BTreeMap::new();
            for report in self.reports.as_ref().expect("checkpointing").try_iter() {
                if let ShardReport::Snapshot {
                    checkpoint,
                    channels,
                    ..
                } = report
                {
                    let records = match channels.get("channel-0") {
                        Some(bytes) => read_records::<u64>(bytes).unwrap(),
                        None => Vec::new(),
                    };
                    states.insert(checkpoint, records.iter().map(|r| r.value).collect());
                }
            }
            states
        }
    }

    use std::collections::BTreeMap;

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

    /// The records of `events` before barrier `id`.
    fn before_barrier(events: &[Event], id: u64) -> Vec<u64> {
        let mut records = Vec::new();
        for event in events {
            match event {
                Event::Barrier(b) if *b == id => break,
                Event::Record(v) => records.push(*v),
                _ => {}
            }
        }
        records
    }

    fn alignment_modes() -> impl Strategy<Value = BarrierAlignment> {
        prop_oneof![
            Just(BarrierAlignment::Aligned),
            Just(BarrierAlignment::Unaligned),
            // Times out at once: turns unaligned on the next look.
            Just(BarrierAlignment::AlignedWithTimeout(Duration::ZERO)),
        ]
    }

    proptest! {
        // Whatever the interleaving: every record arrives once and in its
        // input's order; each barrier is passed on once, in order; and the
        // records of every input that came before barrier n are ahead of it
        // downstream, the ones after it behind it.
        #[test]
        fn aligned_barriers_cut_every_input_at_the_same_point(
            (events, picks) in (1u32..4, 1u64..3).prop_flat_map(|(shards, checkpoints)| {
                (inputs(shards, checkpoints), proptest::collection::vec(any::<u32>(), 200))
            }),
        ) {
            let mut h = harness(events.len() as u32, None);
            let delivered = h.run(&events, &picks);
            // Every input delivered everything: nobody stays blocked forever.
            for (s, input) in events.iter().enumerate() {
                prop_assert_eq!(delivered[s], input.len(), "input {} stuck", s);
            }
            let seen = h.seen.borrow();
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

        // The checkpoint invariant, in every mode and interleaving: for each
        // checkpoint n and input, the records processed before the chain saw
        // barrier n are a prefix of that input's records before barrier n,
        // and the channel state of n holds exactly the rest, in order. Also
        // every record is processed once, in its input's order.
        #[test]
        fn processed_before_the_barrier_and_channel_state_are_exactly_what_came_before_it(
            (events, picks, alignment) in (1u32..4, 1u64..4).prop_flat_map(|(shards, checkpoints)| {
                (
                    inputs(shards, checkpoints),
                    proptest::collection::vec(any::<u32>(), 300),
                    alignment_modes(),
                )
            }),
        ) {
            let mut h = harness(events.len() as u32, Some(alignment));
            let delivered = h.run(&events, &picks);
            for (s, input) in events.iter().enumerate() {
                prop_assert_eq!(delivered[s], input.len(), "input {} stuck", s);
            }
            let seen = h.seen.borrow().clone();
            let processed: Vec<u64> = seen
                .iter()
                .filter_map(|s| match s { Seen::Record(v) => Some(*v), _ => None })
                .collect();
            let mut all: Vec<u64> = events.iter().flatten()
                .filter_map(|e| match e { Event::Record(v) => Some(*v), _ => None })
                .collect();
            let mut sorted = processed.clone();
            sorted.sort_unstable();
            all.sort_unstable();
            prop_assert_eq!(&sorted, &all, "records lost or processed twice");
            let states = h.channel_states();
            let checkpoints = events.iter().flatten()
                .filter_map(|e| match e { Event::Barrier(id) => Some(*id), _ => None })
                .max().unwrap_or(0);
            // A newer barrier abandons an older alignment (in a job, only
            // once the older checkpoint was aborted), so only the newest
            // checkpoint must complete.
            prop_assert!(
                checkpoints == 0 || states.contains_key(&checkpoints),
                "checkpoint {} has no channel state report: {:?} seen {:?}", checkpoints, states, seen
            );
            for (&id, state) in &states {
                let at = seen.iter().position(|s| *s == Seen::Barrier(id));
                prop_assert!(at.is_some(), "barrier {} never passed: {:?}", id, seen);
                if alignment == BarrierAlignment::Aligned {
                    prop_assert!(state.is_empty(), "aligned checkpoint {} kept records {:?}", id, state);
                }
                for (input, events) in events.iter().enumerate() {
                    let from_input = |v: &&u64| **v / 1_000 == input as u64;
                    let expected = before_barrier(events, id);
                    let processed: Vec<u64> = seen[..at.unwrap()].iter()
                        .filter_map(|s| match s { Seen::Record(v) => Some(*v), _ => None })
                        .filter(|v| v / 1_000 == input as u64)
                        .collect();
                    let kept: Vec<u64> = state.iter().filter(from_input).copied().collect();
                    let together: Vec<u64> = processed.iter().chain(&kept).copied().collect();
                    prop_assert_eq!(
                        &together, &expected,
                        "checkpoint {} input {}: processed {:?} + kept {:?}", id, input, processed, kept
                    );
                }
            }
        }
    }

    /// The gate shows its queue and how long an aligned barrier waited for
    /// the other inputs' barrier.
    #[test]
    fn queue_and_alignment_are_shown_in_the_edge_figures() {
        let metrics = Arc::new(ShardMetrics::for_plan(0, 1));
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut gate = ExchangeGate::new(Box::new(Recorder(seen.clone())), 0, 2).with_queue_gauge(
            metrics.clone(),
            0,
            8,
        );
        let figures = metrics.edge(0).expect("edge 0");
        assert_eq!(figures.input_capacity.get(), 8);
        gate.arrive(1, Some(message(Event::Record(1))));
        gate.arrive(1, Some(message(Event::Record(2))));
        assert_eq!(figures.input_queued.get(), 2);
        assert_eq!(gate.process_next(1), GateStep::Batch);
        assert_eq!(figures.input_queued.get(), 1);
        assert_eq!(gate.process_next(1), GateStep::Batch);
        gate.barrier(0, barrier(1));
        std::thread::sleep(std::time::Duration::from_millis(20));
        gate.barrier(1, barrier(1));
        assert_eq!(seen.borrow().last(), Some(&Seen::Barrier(1)));
        let waited = figures.last_alignment_us.get();
        assert!((20_000..5_000_000).contains(&waited), "{waited} µs");
    }

    /// A channel that breaks (its link closed, its shard failed) is not an
    /// end: a barrier of the other inputs is never completed by it, so no
    /// checkpoint covers what its sender had not sent.
    #[test]
    fn a_broken_input_is_not_an_end() {
        let mut h = harness(2, None);
        h.gate.arrive(1, Some(message(Event::Record(7))));
        h.gate.arrive(1, None);
        assert_eq!(h.gate.process_next(1), GateStep::Ended);
        h.local(Event::Barrier(1));
        assert_eq!(
            *h.seen.borrow(),
            Vec::<Seen>::new(),
            "nothing of the broken input is processed and barrier 1 is not aligned"
        );
        assert!(!h.gate.ended, "the chain never sees an end");
    }

    #[test]
    fn a_newer_barrier_abandons_the_older_alignment() {
        let mut h = harness(2, None);
        h.gate.arrive(1, Some(message(Event::Barrier(1))));
        h.gate.process_next(1);
        assert!(h.gate.is_blocked(1));
        // Checkpoint 1 was aborted: the local input brings barrier 2.
        h.local(Event::Barrier(2));
        assert!(
            !h.gate.is_blocked(1),
            "input 1 released from the old alignment"
        );
        h.gate.arrive(1, Some(message(Event::Record(7))));
        h.gate.arrive(1, Some(message(Event::Barrier(2))));
        while h.gate.process_next(1) != GateStep::Idle {}
        assert_eq!(*h.seen.borrow(), vec![Seen::Record(7), Seen::Barrier(2)]);
    }

    #[test]
    fn an_unaligned_barrier_overtakes_what_is_queued_and_keeps_it() {
        let mut h = harness(2, Some(BarrierAlignment::Unaligned));
        for v in [1, 2, 3] {
            h.gate.arrive(1, Some(message(Event::Record(v))));
        }
        h.gate.process_next(1);
        h.gate.arrive(1, Some(message(Event::Barrier(1))));
        // Barrier 1 went down the chain on arrival, ahead of records 2 and 3.
        assert_eq!(*h.seen.borrow(), vec![Seen::Record(1), Seen::Barrier(1)]);
        h.local(Event::Barrier(1));
        assert_eq!(h.channel_states().get(&1), Some(&vec![2, 3]));
        while h.gate.process_next(1) != GateStep::Idle {}
        assert_eq!(
            *h.seen.borrow(),
            vec![
                Seen::Record(1),
                Seen::Barrier(1),
                Seen::Record(2),
                Seen::Record(3)
            ]
        );
    }
}
