//! The DataStream API: describing a job.
//!
//! Built on the caller's thread. Every [`Stream`] is a node of the plan holding
//! an *attach* function: given a consumer on some shard, it builds its own
//! operator in front of that consumer and attaches that to its parent. Sinks are
//! the plan's roots. [`StreamEnv::execute`] runs the roots on every shard (see
//! `runtime::ShardBuilder`). User functions are `Fn + Clone + Send + Sync`: each
//! shard gets its own clone.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use sluice_state::{StableKey, StateBackend, StateKey};

use crate::checkpoint::{position_key, AlignedInput, InputAligner, ParticipantKind};
use crate::connectors::{Sink, SinkContext, Source, SourceReader};
use crate::exchange::{
    wire_exchange, BroadcastPartitioner, KeyPartitioner, Partitioner, RoundRobinPartitioner,
};
use crate::metrics::JobMetrics;
use crate::operators::{
    co_process, BatchFold, CoTick, Filter, FirstInput, FlatMap, KeyedAggregate, KeyedCoProcess,
    KeyedHost, KeyedProcess, KeyedProcessOperator, KeyedReduce, Map, SecondInput, SinkOperator,
    TickFor, TryFilterMap, Union, UnionInput,
};
use crate::push::{Discard, Push};
use crate::runtime::{self, reachable_outboxes, JobReport, RootBuilder, ShardBuilder};
use crate::window::{
    AggregateFunction, AggregateLogic, CountTrigger, EventTimeTrigger, FixedSizeWindows,
    GlobalWindows, LocalWindowAggregate, MergeAccumulators, ProcessLogic, PurgingTrigger,
    ReduceLogic, TimeWindow, Trigger, WindowAssigner, WindowLogic, WindowOperator, WindowSpec,
    WindowsEndingAt,
};
use crate::{Data, EngineError, ExchangeData, JobConfig, SourceError, WatermarkStrategy};

type Attach<T> = Arc<dyn Fn(&mut ShardBuilder, Box<dyn Push<T>>) + Send + Sync>;

struct Plan {
    config: JobConfig,
    next_node: u64,
    next_edge: u32,
    roots: Vec<RootBuilder>,
    /// The plan's nodes, and the running job's counters.
    metrics: Arc<JobMetrics>,
}

/// Where a job is described; see the module docs.
#[derive(Clone)]
pub struct StreamEnv {
    plan: Rc<RefCell<Plan>>,
}

/// A stream of records of type `T`.
pub struct Stream<T> {
    env: StreamEnv,
    node: u64,
    attach: Attach<T>,
}

impl<T> Clone for Stream<T> {
    fn clone(&self) -> Self {
        Stream {
            env: self.env.clone(),
            node: self.node,
            attach: self.attach.clone(),
        }
    }
}

/// Names a side output of element type `T`.
pub struct OutputTag<T> {
    pub name: String,
    _type: PhantomData<fn(T)>,
}

impl<T> OutputTag<T> {
    pub fn new(name: &str) -> Self {
        OutputTag {
            name: name.to_owned(),
            _type: PhantomData,
        }
    }
}

impl<T> Clone for OutputTag<T> {
    fn clone(&self) -> Self {
        OutputTag::new(&self.name)
    }
}

/// Opens a source's partitions that one shard reads, at their restored
/// positions: those there are at the start, then (for a growing source)
/// those that appeared since.
struct PartitionOpener<T, S> {
    source: Arc<S>,
    node: u64,
    shard: u32,
    shards: u32,
    restored: crate::checkpoint::SourcePositions,
    /// Partitions `0..opened` were looked at.
    opened: u32,
    _records: PhantomData<fn() -> T>,
}

impl<T: Data, S: Source<T>> PartitionOpener<T, S> {
    #[allow(clippy::type_complexity)]
    fn open_new(&mut self) -> Result<Vec<(String, Box<dyn SourceReader<T>>)>, SourceError> {
        let now = self.source.partitions();
        let mut readers = Vec::new();
        for partition in self.opened..now {
            if self.source.shard_of(partition, self.shards) != self.shard {
                continue;
            }
            let name = self.source.partition_name(partition);
            let key = position_key(self.node, &name);
            let mut reader = self.source.open(partition)?;
            if let Some(&position) = self.restored.get(&key) {
                reader.seek(position)?;
            }
            readers.push((key, reader));
        }
        self.opened = now;
        Ok(readers)
    }
}

impl StreamEnv {
    pub fn new(config: JobConfig) -> Self {
        StreamEnv {
            plan: Rc::new(RefCell::new(Plan {
                config,
                next_node: 0,
                next_edge: 0,
                roots: Vec::new(),
                metrics: Arc::default(),
            })),
        }
    }

    pub fn config(&self) -> JobConfig {
        self.plan.borrow().config.clone()
    }

    /// A new node of the plan, of kind `kind`, reading `inputs`.
    fn add_node(&self, kind: &'static str, inputs: &[u64]) -> u64 {
        let mut plan = self.plan.borrow_mut();
        plan.next_node += 1;
        plan.metrics.add_node(plan.next_node, kind, inputs);
        plan.next_node
    }

    /// The job's metrics: its plan's nodes now, and its shards' counters
    /// once it runs (read them from any thread while it does).
    pub fn metrics(&self) -> Arc<JobMetrics> {
        self.plan.borrow().metrics.clone()
    }

    fn next_edge(&self) -> u32 {
        let mut plan = self.plan.borrow_mut();
        plan.next_edge += 1;
        plan.next_edge - 1
    }

    /// A stream from a partitioned source, with event time as `strategy` says.
    pub fn source<T: Data, S: Source<T>>(
        &self,
        source: S,
        strategy: WatermarkStrategy<T>,
    ) -> Stream<T> {
        let source = Arc::new(source);
        let node = self.add_node("source", &[]);
        let attach: Attach<T> =
            Arc::new(move |sb: &mut ShardBuilder, consumer: Box<dyn Push<T>>| {
                let source = source.clone();
                let strategy = strategy.clone();
                sb.attach_shared(node, consumer, move |sb, chain| {
                    let mut opener = PartitionOpener {
                        source: source.clone(),
                        node,
                        shard: sb.shard,
                        shards: sb.shards,
                        restored: sb.restored.positions.clone(),
                        opened: 0,
                        _records: PhantomData,
                    };
                    let readers = match opener.open_new() {
                        Ok(readers) => readers,
                        Err(e) => return sb.fail(EngineError::Source(e)),
                    };
                    let discovery =
                        source
                            .discovery_interval()
                            .map(|interval| runtime::PartitionDiscovery {
                                interval,
                                discover: Box::new(move || opener.open_new()),
                            });
                    let checkpointing =
                        sb.checkpoints
                            .clone()
                            .map(|checkpoints| runtime::SourceCheckpointing {
                                participant: checkpoints.participate(ParticipantKind::Source),
                                checkpoints,
                            });
                    let (metrics, errors, clock, abort) = (
                        sb.metrics.clone(),
                        sb.errors(),
                        sb.clock.clone(),
                        sb.abort.clone(),
                    );
                    let batch_records = sb.config.source_batch_records;
                    sb.spawn_later(Box::new(move |outboxes| {
                        let outboxes = reachable_outboxes(&*chain, outboxes);
                        Box::pin(runtime::run_source(runtime::SourceTask {
                            readers,
                            discovery,
                            strategy,
                            chain,
                            outboxes,
                            metrics,
                            batch_records,
                            errors,
                            clock,
                            abort,
                            checkpointing,
                        }))
                    }));
                });
            });
        Stream {
            env: self.clone(),
            node,
            attach,
        }
    }

    /// Runs the job to completion: until every source has ended and every
    /// record has reached its sink.
    pub fn execute(self) -> Result<JobReport, EngineError> {
        let plan = self.plan.borrow();
        if plan.roots.is_empty() {
            return Err(EngineError::Config("the job has no sink".into()));
        }
        runtime::execute(
            plan.config.clone(),
            plan.roots.clone(),
            plan.next_edge,
            plan.metrics.clone(),
        )
    }

    /// Runs the shards of the job that `part` places in this process, the
    /// others running in other processes (workers of a cluster), until they
    /// finish or `cancel` stops them. Every process must build the same job.
    pub fn execute_part(
        self,
        part: runtime::JobPart,
        cancel: runtime::JobCancel,
    ) -> Result<JobReport, EngineError> {
        let plan = self.plan.borrow();
        if plan.roots.is_empty() {
            return Err(EngineError::Config("the job has no sink".into()));
        }
        runtime::execute_part(
            plan.config.clone(),
            plan.roots.clone(),
            plan.next_edge,
            plan.metrics.clone(),
            part,
            cancel,
        )
    }
}

impl<T: Data> Stream<T> {
    /// A new node whose operator `make` builds (given the node's id) in front of
    /// the consumer.
    fn derive<U: Data>(
        &self,
        kind: &'static str,
        make: impl Fn(&mut ShardBuilder, u64, Box<dyn Push<U>>) -> Box<dyn Push<T>>
            + Send
            + Sync
            + 'static,
    ) -> Stream<U> {
        let node = self.env.add_node(kind, &[self.node]);
        let parent = self.attach.clone();
        let attach: Attach<U> =
            Arc::new(move |sb: &mut ShardBuilder, consumer: Box<dyn Push<U>>| {
                sb.attach_shared(node, consumer, |sb, fan| {
                    let op = make(sb, node, fan);
                    parent(sb, op);
                });
            });
        Stream {
            env: self.env.clone(),
            node,
            attach,
        }
    }

    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + Clone + Send + Sync + 'static) -> Stream<U> {
        self.derive("map", move |_, _, next| Box::new(Map::new(f.clone(), next)))
    }

    pub fn filter(&self, f: impl Fn(&T) -> bool + Clone + Send + Sync + 'static) -> Stream<T> {
        self.derive("filter", move |_, _, next| {
            Box::new(Filter::new(f.clone(), next))
        })
    }

    pub fn flat_map<U: Data, I: IntoIterator<Item = U> + 'static>(
        &self,
        f: impl Fn(T) -> I + Clone + Send + Sync + 'static,
    ) -> Stream<U> {
        self.derive("flat_map", move |_, _, next| {
            Box::new(FlatMap::new(f.clone(), next))
        })
    }

    /// Merges streams of the same type.
    /// At most one record out per record in; an `Err` fails the job with
    /// its message (see [`TryFilterMap`]).
    pub fn try_filter_map<U: Data>(
        &self,
        f: impl Fn(T) -> Result<Option<U>, String> + Clone + Send + Sync + 'static,
    ) -> Stream<U> {
        self.derive("try_filter_map", move |sb, _, next| {
            Box::new(TryFilterMap::new(
                f.clone(),
                next,
                sb.errors(),
                sb.abort.clone(),
            ))
        })
    }

    pub fn union(&self, others: &[Stream<T>]) -> Stream<T> {
        let mut input_nodes = vec![self.node];
        input_nodes.extend(others.iter().map(|s| s.node));
        let node = self.env.add_node("union", &input_nodes);
        let mut inputs = vec![self.attach.clone()];
        inputs.extend(others.iter().map(|s| s.attach.clone()));
        let attach: Attach<T> =
            Arc::new(move |sb: &mut ShardBuilder, consumer: Box<dyn Push<T>>| {
                sb.attach_shared(node, consumer, |sb, fan| {
                    let union = Union::new(inputs.len(), fan);
                    // Checkpoint barriers are aligned across the inputs.
                    let aligner = (sb.checkpoints.is_some() && inputs.len() > 1)
                        .then(|| InputAligner::new(inputs.len(), None));
                    for (input, attach) in inputs.iter().enumerate() {
                        let consumer: Box<dyn Push<T>> = Box::new(UnionInput {
                            union: union.clone(),
                            input,
                        });
                        let consumer = aligned(&aligner, input, consumer);
                        attach(sb, consumer);
                    }
                });
            });
        Stream {
            env: self.env.clone(),
            node,
            attach,
        }
    }

    /// Writes the stream to `sink`: a root of the plan.
    pub fn sink(&self, sink: impl Sink<T>) {
        let sink = Arc::new(sink);
        // A node of its own in the plan's graph (it counts nothing: a sink
        // writes what it takes in).
        self.env.add_node("sink", &[self.node]);
        let attach = self.attach.clone();
        let root: RootBuilder = Arc::new(move |sb: &mut ShardBuilder| {
            let context = SinkContext {
                shard: sb.shard,
                shards: sb.shards,
                checkpointing: sb.checkpoints.is_some(),
                restored: sb.restored.sink_checkpoint(),
                committers: sb.committers.clone(),
                decides_for_job: sb.decides_for_job,
            };
            match sink.open_in(&context) {
                Ok(writer) => {
                    let checkpoints = sb.checkpoints.clone().map(|checkpoints| {
                        let participant = checkpoints.participate(ParticipantKind::Sink);
                        (checkpoints, participant)
                    });
                    let op = SinkOperator::new(
                        writer,
                        sb.metrics.clone(),
                        sb.errors(),
                        checkpoints,
                        sb.abort.clone(),
                    );
                    attach(sb, Box::new(op));
                }
                Err(e) => sb.fail(EngineError::Sink(e)),
            }
        });
        self.env.plan.borrow_mut().roots.push(root);
    }

    /// The side output `tag` of the operator that produced this stream.
    pub fn side_output<U: Data>(&self, tag: &OutputTag<U>) -> Stream<U> {
        let producer = self.node;
        let node = self.env.add_node("side_output", &[producer]);
        let producer_attach = self.attach.clone();
        let tag = tag.name.clone();
        let attach: Attach<U> =
            Arc::new(move |sb: &mut ShardBuilder, consumer: Box<dyn Push<U>>| {
                // The node's own output (counted) feeds every consumer of
                // the side output on this shard.
                sb.attach_shared(node, consumer, |sb, fan| {
                    if !sb.is_built(producer) {
                        producer_attach(sb, Box::new(Discard));
                    }
                    sb.side_output::<U>(producer, &tag).add(fan);
                });
            });
        Stream {
            env: self.env.clone(),
            node,
            attach,
        }
    }
}

impl<T: ExchangeData> Stream<T> {
    /// An exchange with partitioner `make_partitioner` (built per shard).
    fn exchange<P: Partitioner<T>>(
        &self,
        kind: &'static str,
        make_partitioner: impl Fn(&ShardBuilder) -> P + Send + Sync + 'static,
    ) -> Stream<T> {
        let edge = self.env.next_edge();
        let exchanged = self.derive(kind, move |sb, _, downstream| {
            let partitioner = make_partitioner(sb);
            wire_exchange(sb, edge, partitioner, downstream)
        });
        let plan = self.env.plan.borrow();
        plan.metrics.set_node_edge(exchanged.node, edge);
        drop(plan);
        exchanged
    }

    /// Partitions by key: every record of a key reaches the shard that owns the
    /// key's group.
    pub fn key_by<K, F>(&self, key_of: F) -> KeyedStream<K, T, F>
    where
        K: StableKey + StateKey,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        let selector = key_of.clone();
        let input = self.exchange("key_by", move |sb| {
            KeyPartitioner::new(selector.clone(), sb.key_groups)
        });
        KeyedStream {
            input,
            unpartitioned: self.clone(),
            key_of,
            _key: PhantomData,
        }
    }

    /// Spreads records round-robin over all shards.
    pub fn rebalance(&self) -> Stream<T> {
        self.exchange("rebalance", |sb| {
            RoundRobinPartitioner::new(sb.shard, sb.shards)
        })
    }

    /// Sends every record to every shard.
    pub fn broadcast(&self) -> Stream<T> {
        self.exchange("broadcast", |_| BroadcastPartitioner)
    }
}

/// A stream partitioned by key.
pub struct KeyedStream<K, T, F> {
    input: Stream<T>,
    /// The stream before the key exchange (for work done before it).
    unpartitioned: Stream<T>,
    key_of: F,
    _key: PhantomData<fn() -> K>,
}

impl<K, T, F> KeyedStream<K, T, F>
where
    K: StableKey + StateKey,
    T: ExchangeData,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    /// The partitioned stream itself (for stateless work after the exchange).
    pub fn stream(&self) -> Stream<T> {
        self.input.clone()
    }

    /// Rolling reduce: emits the key's reduced value after every record.
    pub fn reduce(&self, f: impl Fn(&T, &T) -> T + Clone + Send + Sync + 'static) -> Stream<T> {
        let key_of = self.key_of.clone();
        self.input.derive("reduce", move |sb, node, next| {
            sb.state.set_owner(node);
            let table = sb.state.table(&format!("reduce-{node}"));
            let op = Box::new(KeyedReduce::new(
                key_of.clone(),
                f.clone(),
                sb.key_groups,
                table,
                next,
            ));
            sb.snapshot_at_barrier(node, op)
        })
    }

    /// Rolling aggregate: adds each record to its key's accumulator and emits
    /// `(key, current result)`.
    pub fn aggregate<A>(&self, function: A) -> Stream<(K, A::Out)>
    where
        A: AggregateFunction<T>,
        A::Out: Data,
    {
        let key_of = self.key_of.clone();
        self.input.derive("aggregate", move |sb, node, next| {
            sb.state.set_owner(node);
            let table = sb.state.table(&format!("aggregate-{node}"));
            let op = Box::new(KeyedAggregate::new(
                key_of.clone(),
                function.clone(),
                sb.key_groups,
                table,
                next,
            ));
            sb.snapshot_at_barrier(node, op)
        })
    }

    /// Rolling aggregate in two phases (Flink's local-global aggregation):
    /// each shard folds every input batch into one accumulator per key
    /// before the key exchange, and the key's owner merges them. The keys'
    /// results are those of [`aggregate`](Self::aggregate); updates are
    /// emitted per folded batch instead of per record, so a hot key costs
    /// the exchange and the owner one record per batch and shard. Needs an
    /// accumulator that merges (count, sum, min, max, sketches).
    pub fn aggregate_two_phase<A>(&self, function: A) -> Stream<(K, A::Out)>
    where
        A: AggregateFunction<T>,
        A::Out: Data,
        (K, A::Acc): ExchangeData,
    {
        let (key_of, local) = (self.key_of.clone(), function.clone());
        let partials = self
            .unpartitioned
            .derive("local_aggregate", move |_, _, next| {
                Box::new(BatchFold::new(key_of.clone(), local.clone(), next))
            });
        partials
            .key_by(|partial: &(K, A::Acc)| partial.0.clone())
            .aggregate(MergeAccumulators::new(function))
    }

    /// Runs `factory`'s function per key, with keyed state and timers. The
    /// factory runs once per shard and creates the function's state handles.
    pub fn process<O, P>(
        &self,
        factory: impl Fn(&mut StateBackend) -> P + Send + Sync + 'static,
    ) -> Stream<O>
    where
        O: Data,
        P: KeyedProcess<K, T, O>,
    {
        let key_of = self.key_of.clone();
        self.input.derive("process", move |sb, node, next| {
            sb.state.set_owner(node);
            let function = factory(&mut sb.state);
            let side = sb.side_outputs(node);
            let host = KeyedHost::new(
                sb.key_groups,
                sb.clock.clone(),
                side,
                next,
                &mut sb.state,
                node,
            );
            let (op, state) = KeyedProcessOperator::new(key_of.clone(), function, host);
            sb.register_ticker(Rc::new(RefCell::new(TickFor::<T, _, _, _, _>(
                state,
                PhantomData,
            ))));
            sb.snapshot_at_barrier(node, Box::new(op))
        })
    }

    /// Connects this keyed stream with another keyed by the same key type, for a
    /// two-input `process` with shared keyed state.
    pub fn connect<B, FB>(&self, other: &KeyedStream<K, B, FB>) -> ConnectedStreams<K, T, B, F, FB>
    where
        B: ExchangeData,
        FB: Fn(&B) -> K + Clone + Send + Sync + 'static,
    {
        ConnectedStreams {
            first: KeyedStream {
                input: self.input.clone(),
                unpartitioned: self.unpartitioned.clone(),
                key_of: self.key_of.clone(),
                _key: PhantomData,
            },
            second: KeyedStream {
                input: other.input.clone(),
                unpartitioned: other.unpartitioned.clone(),
                key_of: other.key_of.clone(),
                _key: PhantomData,
            },
        }
    }

    /// Windows of this keyed stream.
    pub fn window<A: WindowAssigner>(
        &self,
        assigner: A,
    ) -> WindowedStream<K, T, F, A, A::DefaultTrigger> {
        WindowedStream {
            keyed: KeyedStream {
                input: self.input.clone(),
                unpartitioned: self.unpartitioned.clone(),
                key_of: self.key_of.clone(),
                _key: PhantomData,
            },
            spec: WindowSpec {
                assigner,
                trigger: Default::default(),
                allowed_lateness_ms: 0,
            },
            late: None,
        }
    }

    /// Windows of `count` elements per key (global windows, purging count trigger).
    pub fn count_window(
        &self,
        count: u64,
    ) -> WindowedStream<K, T, F, GlobalWindows, PurgingTrigger<CountTrigger>> {
        self.window(GlobalWindows)
            .trigger(PurgingTrigger(CountTrigger::of(count)))
    }
}

/// Two keyed streams with the same key type, processed together.
pub struct ConnectedStreams<K, A, B, FA, FB> {
    first: KeyedStream<K, A, FA>,
    second: KeyedStream<K, B, FB>,
}

impl<K, A, B, FA, FB> ConnectedStreams<K, A, B, FA, FB>
where
    K: StableKey + StateKey,
    A: ExchangeData,
    B: ExchangeData,
    FA: Fn(&A) -> K + Clone + Send + Sync + 'static,
    FB: Fn(&B) -> K + Clone + Send + Sync + 'static,
{
    /// Runs `factory`'s function over both inputs, per key, with keyed state and
    /// timers shared by the two.
    pub fn process<O, P>(
        &self,
        factory: impl Fn(&mut StateBackend) -> P + Send + Sync + 'static,
    ) -> Stream<O>
    where
        O: Data,
        P: KeyedCoProcess<K, A, B, O>,
    {
        let env = self.first.input.env.clone();
        let node = env.add_node(
            "co_process",
            &[self.first.input.node, self.second.input.node],
        );
        let (first, second) = (
            self.first.input.attach.clone(),
            self.second.input.attach.clone(),
        );
        let (key_of_first, key_of_second) = (self.first.key_of.clone(), self.second.key_of.clone());
        let attach: Attach<O> =
            Arc::new(move |sb: &mut ShardBuilder, consumer: Box<dyn Push<O>>| {
                sb.attach_shared(node, consumer, |sb, fan| {
                    sb.state.set_owner(node);
                    let function = factory(&mut sb.state);
                    let side = sb.side_outputs(node);
                    let host = KeyedHost::new(
                        sb.key_groups,
                        sb.clock.clone(),
                        side,
                        fan,
                        &mut sb.state,
                        node,
                    );
                    let state =
                        co_process(key_of_first.clone(), key_of_second.clone(), function, host);
                    sb.register_ticker(Rc::new(RefCell::new(CoTick::<K, A, B, _, _, _, _>(
                        state.clone(),
                        PhantomData,
                    ))));
                    // Checkpoint barriers are aligned across both inputs; the
                    // shared state is written once both have delivered one.
                    let aligner = sb.checkpoints.clone().map(|checkpoints| {
                        let owns_state = sb.state.registry().borrow().owners().contains(&node);
                        let snapshot = owns_state.then(|| {
                            let participant =
                                checkpoints.participate(ParticipantKind::StateOwner(node));
                            (checkpoints, participant)
                        });
                        InputAligner::new(2, snapshot)
                    });
                    let first_input: Box<dyn Push<A>> =
                        Box::new(FirstInput::<K, B, O, FA, FB, P> {
                            state: state.clone(),
                            _second: PhantomData,
                        });
                    let second_input: Box<dyn Push<B>> =
                        Box::new(SecondInput::<K, A, O, FA, FB, P> {
                            state,
                            _first: PhantomData,
                        });
                    let first_input = aligned(&aligner, 0, first_input);
                    let second_input = aligned(&aligner, 1, second_input);
                    first(sb, first_input);
                    second(sb, second_input);
                });
            });
        Stream { env, node, attach }
    }
}

/// A keyed stream cut into windows.
pub struct WindowedStream<K, T, F, A, Tr> {
    keyed: KeyedStream<K, T, F>,
    spec: WindowSpec<A, Tr>,
    late: Option<String>,
}

impl<K, T, F, A, Tr> WindowedStream<K, T, F, A, Tr>
where
    K: StableKey + StateKey,
    T: ExchangeData,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    A: WindowAssigner,
    Tr: Trigger<T, A::W>,
{
    pub fn trigger<Tr2: Trigger<T, A::W>>(self, trigger: Tr2) -> WindowedStream<K, T, F, A, Tr2> {
        WindowedStream {
            keyed: self.keyed,
            spec: WindowSpec {
                assigner: self.spec.assigner,
                trigger,
                allowed_lateness_ms: self.spec.allowed_lateness_ms,
            },
            late: self.late,
        }
    }

    /// Keeps windows for `ms` after their end; late elements within it update
    /// the result (a late firing).
    pub fn allowed_lateness(mut self, ms: i64) -> Self {
        assert!(ms >= 0, "allowed lateness must not be negative");
        self.spec.allowed_lateness_ms = ms;
        self
    }

    /// Sends elements too late for any window to side output `tag` of the result.
    pub fn side_output_late_data(mut self, tag: &OutputTag<T>) -> Self {
        self.late = Some(tag.name.clone());
        self
    }

    /// The window operator with `logic` (made once per shard) keeping and
    /// emitting each window's contents.
    pub fn apply<L>(self, logic: impl Fn() -> L + Send + Sync + 'static) -> Stream<L::Out>
    where
        L: WindowLogic<K, T, A::W>,
    {
        let Self { keyed, spec, late } = self;
        let key_of = keyed.key_of.clone();
        let input = keyed.input;
        let env = input.env.clone();
        let node = env.add_node("window", &[input.node]);
        let name = format!("window-{node}");
        let parent = input.attach.clone();
        let attach: Attach<L::Out> = Arc::new(
            move |sb: &mut ShardBuilder, consumer: Box<dyn Push<L::Out>>| {
                let (key_of, spec, name, parent) =
                    (key_of.clone(), spec.clone(), name.clone(), parent.clone());
                let late = late.clone();
                let logic = logic();
                sb.attach_shared(node, consumer, move |sb, fan| {
                    let late = late.map(|tag| sb.side_output::<T>(node, &tag));
                    sb.state.set_owner(node);
                    let op = WindowOperator::new(
                        &name,
                        key_of,
                        sb.key_groups,
                        spec,
                        logic,
                        &mut sb.state,
                        fan,
                        late,
                        sb.metrics.clone(),
                    );
                    let op = sb.snapshot_at_barrier(node, Box::new(op));
                    parent(sb, op);
                });
            },
        );
        Stream { env, node, attach }
    }

    /// Incremental aggregation; `finish` makes the output from key, window and result.
    pub fn aggregate<Ag, O>(
        self,
        function: Ag,
        finish: impl Fn(&K, &A::W, Ag::Out) -> O + Clone + Send + Sync + 'static,
    ) -> Stream<O>
    where
        Ag: AggregateFunction<T>,
        O: Data,
    {
        self.apply(move || AggregateLogic {
            function: function.clone(),
            finish: finish.clone(),
        })
    }

    /// Incremental reduction.
    pub fn reduce<O: Data>(
        self,
        reduce: impl Fn(&T, &T) -> T + Clone + Send + Sync + 'static,
        finish: impl Fn(&K, &A::W, &T) -> O + Clone + Send + Sync + 'static,
    ) -> Stream<O> {
        self.apply(move || ReduceLogic {
            reduce: reduce.clone(),
            finish: finish.clone(),
            _element: PhantomData,
        })
    }

    /// A function over all elements of each window.
    pub fn process<O: Data>(
        self,
        function: impl Fn(&K, &A::W, &[T], &mut Vec<O>) + Clone + Send + Sync + 'static,
    ) -> Stream<O> {
        self.apply(move || ProcessLogic {
            function: function.clone(),
            _types: PhantomData,
        })
    }
}

impl<K, T, F, A> WindowedStream<K, T, F, A, EventTimeTrigger>
where
    K: StableKey + StateKey,
    T: ExchangeData,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    A: FixedSizeWindows,
{
    /// Incremental aggregation in two phases (Flink's local-global
    /// aggregation): each shard folds its records into one accumulator per
    /// key and window before the key exchange, holding at most
    /// `max_partials` of them, and the key's owner merges what arrives.
    /// Same results as [`aggregate`](Self::aggregate); a hot key costs the
    /// exchange one record per window and shard instead of all of its own.
    /// Needs an accumulator that merges (count, sum, min, max, sketches).
    /// Late elements cannot go to a side output: they are folded before the
    /// window sees them (they are dropped, or, within the allowed lateness,
    /// fire the window again, as with `aggregate`).
    pub fn aggregate_two_phase<Ag, O>(
        self,
        function: Ag,
        max_partials: usize,
        finish: impl Fn(&K, &TimeWindow, Ag::Out) -> O + Clone + Send + Sync + 'static,
    ) -> Stream<O>
    where
        Ag: AggregateFunction<T>,
        (K, Ag::Acc): ExchangeData,
        O: Data,
    {
        let Self { keyed, spec, late } = self;
        assert!(
            late.is_none(),
            "late elements of a two-phase aggregation cannot go to a side output"
        );
        let size_ms = spec.assigner.size_ms();
        let (key_of, assigner, local) = (keyed.key_of, spec.assigner, function.clone());
        let partials = keyed
            .unpartitioned
            .derive("local_window_aggregate", move |_, _, next| {
                Box::new(LocalWindowAggregate::new(
                    key_of.clone(),
                    assigner.clone(),
                    local.clone(),
                    max_partials,
                    next,
                ))
            });
        partials
            .key_by(|partial: &(K, Ag::Acc)| partial.0.clone())
            .window(WindowsEndingAt { size_ms })
            .allowed_lateness(spec.allowed_lateness_ms)
            .aggregate(MergeAccumulators::new(function), finish)
    }
}

/// Input `index` of a multi-input operator, behind the barrier aligner when
/// the job takes checkpoints.
fn aligned<T: 'static>(
    aligner: &Option<Rc<RefCell<InputAligner>>>,
    index: usize,
    input: Box<dyn Push<T>>,
) -> Box<dyn Push<T>> {
    match aligner {
        Some(aligner) => Box::new(AlignedInput::new(aligner.clone(), index, input)),
        None => input,
    }
}
