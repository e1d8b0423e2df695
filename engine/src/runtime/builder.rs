//! Building one shard's instance of the pipeline.
//!
//! Runs on the shard's own core, before any task starts. The plan is a list of
//! roots (one per sink); each root attaches its sink to the stream it consumes,
//! and every stream attaches its operator to its parent, down to the sources —
//! so chains are built from the sink backwards and each operator owns its
//! successor. A stream consumed twice is built once and fans out ([`FanOut`]).
//! Exchanges register their outboxes and gates here; sources and channel
//! receivers become tasks that start after the channels are connected.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use sluice_state::{KeyGroups, StateBackend};

use super::execute::ShardContext;
use crate::checkpoint::{
    Committers, ParticipantKind, Restored, ShardCheckpoints, SnapshotAtBarrier,
};
use crate::exchange::{EdgeOutbox, Flush, GateInput};
use crate::metrics::ShardMetrics;
use crate::operators::{FanOut, SideOutputs};
use crate::push::{EdgeId, Push};
use crate::runtime::AbortSignal;
use crate::time::{Clock, SystemClock};
use crate::{Data, EngineError, JobConfig};

/// A task of a shard, ready to be spawned on its executor.
pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = ()>>>;
/// Builds one root (sink) of the plan on a shard.
pub(crate) type RootBuilder = Arc<dyn Fn(&mut ShardBuilder) + Send + Sync>;
/// The outboxes of a shard, by edge.
pub(crate) type Outboxes = HashMap<EdgeId, Rc<EdgeOutbox>>;
/// A task whose construction waits until every outbox exists.
pub(crate) type DeferredTask = Box<dyn FnOnce(&Outboxes) -> TaskFuture>;

/// Something that acts on processing time; the shard's ticker calls it.
pub(crate) trait Tick {
    /// Fires whatever is due at the current processing time.
    fn tick(&mut self);
    fn is_ended(&self) -> bool;
}

/// Everything one shard needs while its pipeline is being built.
pub struct ShardBuilder {
    pub shard: u32,
    pub shards: u32,
    pub key_groups: KeyGroups,
    pub config: Arc<JobConfig>,
    pub metrics: Arc<ShardMetrics>,
    pub(crate) errors: Arc<Mutex<Vec<EngineError>>>,
    pub state: StateBackend,
    pub clock: Rc<dyn Clock>,
    fanouts: HashMap<u64, Box<dyn Any>>,
    side_outputs: HashMap<u64, SideOutputs>,
    pub(crate) outboxes: Outboxes,
    pub(crate) gates: HashMap<EdgeId, Rc<RefCell<dyn GateInput>>>,
    /// Per edge, how a batch from another process is checked to hold the
    /// edge's record type before its gate reads it in place.
    pub(crate) validators: HashMap<EdgeId, sluice_network::link::BatchValidator>,
    pub(crate) flushables: Vec<Rc<RefCell<dyn Flush>>>,
    pub(crate) tasks: Vec<DeferredTask>,
    pub(crate) tickers: Vec<Rc<RefCell<dyn Tick>>>,
    pub(crate) failed: bool,
    pub(crate) abort: AbortSignal,
    /// This shard's part of checkpoints, when the job takes them.
    pub(crate) checkpoints: Option<Rc<ShardCheckpoints>>,
    pub(crate) restored: Arc<Restored>,
    pub(crate) committers: Committers,
    /// Shard 0 runs in this process (see [`SinkContext`](crate::connectors::SinkContext)).
    pub(crate) decides_for_job: bool,
}

impl ShardBuilder {
    pub(crate) fn new(
        shard: u32,
        config: Arc<JobConfig>,
        metrics: Arc<ShardMetrics>,
        errors: Arc<Mutex<Vec<EngineError>>>,
        abort: AbortSignal,
        context: ShardContext,
    ) -> Self {
        let key_groups = KeyGroups::new(config.max_parallelism, config.shards);
        let mut state = StateBackend::new(
            config.state_backend,
            key_groups.range_of(shard),
            context.restored.take_state(shard),
        );
        state.set_local_directory(context.local_directory, shard);
        let resumed_from = context.restored.checkpoint.map_or(0, |(id, _)| id);
        let checkpoints = context.checkpointing.map(|checkpointing| {
            state.track_changes(checkpointing.full_every.is_some());
            Rc::new(
                ShardCheckpoints::new(shard, state.registry(), checkpointing, resumed_from)
                    .with_metrics(metrics.clone()),
            )
        });
        ShardBuilder {
            shard,
            shards: config.shards,
            key_groups,
            state,
            config,
            metrics,
            errors,
            clock: Rc::new(SystemClock),
            fanouts: HashMap::new(),
            side_outputs: HashMap::new(),
            outboxes: HashMap::new(),
            gates: HashMap::new(),
            validators: HashMap::new(),
            flushables: Vec::new(),
            tasks: Vec::new(),
            tickers: Vec::new(),
            failed: false,
            abort,
            checkpoints,
            restored: context.restored,
            committers: context.committers,
            decides_for_job: context.decides_for_job,
        }
    }

    /// Puts the link that snapshots node `node`'s state at barriers in front of
    /// `operator` (when the job checkpoints and the node owns state).
    pub(crate) fn snapshot_at_barrier<T: 'static>(
        &mut self,
        node: u64,
        operator: Box<dyn Push<T>>,
    ) -> Box<dyn Push<T>> {
        let owns_state = self.state.registry().borrow().owners().contains(&node);
        match &self.checkpoints {
            Some(checkpoints) if owns_state => {
                let participant = checkpoints.participate(ParticipantKind::StateOwner(node));
                Box::new(SnapshotAtBarrier::new(
                    checkpoints.clone(),
                    participant,
                    operator,
                ))
            }
            _ => operator,
        }
    }

    /// Records an error found while building; the shard will not run.
    pub fn fail(&mut self, error: EngineError) {
        self.failed = true;
        self.errors.lock().expect("errors lock").push(error);
    }

    pub(crate) fn errors(&self) -> Arc<Mutex<Vec<EngineError>>> {
        self.errors.clone()
    }

    /// Attaches `consumer` to the output of plan node `node`, building the node
    /// (with `build`) only the first time.
    pub(crate) fn attach_shared<T: Data>(
        &mut self,
        node: u64,
        consumer: Box<dyn Push<T>>,
        build: impl FnOnce(&mut Self, Box<dyn Push<T>>),
    ) {
        if let Some(existing) = self.fanouts.get(&node) {
            let fan = existing
                .downcast_ref::<FanOut<T>>()
                .expect("bug: node output type changed");
            fan.add(consumer);
            return;
        }
        let fan = FanOut::counting(self.metrics.clone(), node);
        fan.add(consumer);
        self.fanouts.insert(node, Box::new(fan.clone()));
        build(self, Box::new(fan));
    }

    /// True once node `node` has been built on this shard.
    pub(crate) fn is_built(&self, node: u64) -> bool {
        self.fanouts.contains_key(&node)
    }

    /// The side outputs of node `node`: created empty on first use, so the
    /// producing operator and the consumers can be built in either order.
    pub(crate) fn side_outputs(&mut self, node: u64) -> SideOutputs {
        self.side_outputs.entry(node).or_default().clone()
    }

    /// The side output `tag` of node `node`.
    pub(crate) fn side_output<T: Data>(&mut self, node: u64, tag: &str) -> FanOut<T> {
        self.side_outputs(node).fan_out(tag)
    }

    pub(crate) fn outbox(&mut self, edge: EdgeId) -> Rc<EdgeOutbox> {
        let (shard, shards, abort) = (self.shard, self.shards, self.abort.clone());
        let metrics = self.metrics.clone();
        self.outboxes
            .entry(edge)
            .or_insert_with(|| Rc::new(EdgeOutbox::new(edge, shard, shards, abort, metrics)))
            .clone()
    }

    /// Registers the gate of `edge` on this shard, and how a batch from a
    /// remote shard is validated for it.
    pub(crate) fn register_gate(
        &mut self,
        edge: EdgeId,
        gate: Rc<RefCell<dyn GateInput>>,
        validator: sluice_network::link::BatchValidator,
    ) {
        self.validators.insert(edge, validator);
        let previous = self.gates.insert(edge, gate);
        assert!(
            previous.is_none(),
            "bug: edge {edge} built twice on one shard"
        );
    }

    pub(crate) fn register_flush(&mut self, flush: Rc<RefCell<dyn Flush>>) {
        self.flushables.push(flush);
    }

    pub(crate) fn register_ticker(&mut self, ticker: Rc<RefCell<dyn Tick>>) {
        self.tickers.push(ticker);
    }

    pub(crate) fn spawn_later(&mut self, task: DeferredTask) {
        self.tasks.push(task);
    }
}

/// The outboxes a chain can reach, for backpressure waits.
pub(crate) fn reachable_outboxes<T>(
    chain: &dyn Push<T>,
    outboxes: &Outboxes,
) -> Vec<Rc<EdgeOutbox>> {
    let mut edges = Vec::new();
    chain.reachable_edges(&mut edges);
    edges.sort_unstable();
    edges.dedup();
    edges
        .iter()
        .filter_map(|e| outboxes.get(e).cloned())
        .collect()
}
