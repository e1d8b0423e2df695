//! The physical plan of a SQL query: the operators a logical [`Plan`]
//! becomes, and their wiring onto the DataStream API.
//!
//! Lowering fuses every run of `WHERE` and `SELECT` into one [`Calc`]
//! (a projection over a projection is inlined when no non-trivial
//! expression would be computed twice), and pruning then marks the source
//! columns something reads, so a source fills only those (the rest stay
//! NULL, which costs nothing) and unread computed outputs are not computed.
//! Planning runs once, on the thread that builds the job; the built
//! operators run on every shard.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use std::sync::Arc;

use sluice_state::StateBackend;

use super::aggregate::AggregateCall;
use super::calc::Calc;
use super::expr::BoundExpr;
use super::group_aggregate::GroupAggregate;
use super::interval_join::{interval_join, TimeCondition};
use super::join::regular_join;
use super::lookup_join::LookupIndex;
use super::plan::{join_head, Plan, PlanNode, UpstreamKey};
use super::rank::{RankOrder, Ties, TopN};
use super::scan::row_positions;
use super::value::{Row, Value};
use super::window_aggregate::{assign_windows, window_aggregate, SqlWindow};
use crate::Stream;

/// An operator of the physical plan.
#[derive(Debug, Clone)]
pub enum Physical {
    /// A table's rows. Until [`Physical::narrow`], every column of the
    /// table (those not `needed` NULL); after it, the `layout` columns only.
    Source {
        table: String,
        columns: Vec<String>,
        needed: Vec<bool>,
        /// The table columns the rows hold (see [`super::scan::source_layout`]).
        layout: Option<Vec<usize>>,
    },
    /// Filters and a projection, fused (stateless; one pass per row).
    Calc {
        input: Box<Physical>,
        calc: Calc,
        /// The SQL each fused step came from, in order, for EXPLAIN.
        steps: Vec<String>,
    },
    /// `UNION ALL` (inputs already coerced to the same types).
    Union { inputs: Vec<Physical> },
    /// Unbounded `GROUP BY`: a key_by exchange on the first `keys` columns,
    /// then [`GroupAggregate`] with its accumulators in keyed state.
    GroupAggregate {
        input: Box<Physical>,
        keys: usize,
        calls: Arc<[AggregateCall]>,
        /// The keys and calls as written, for EXPLAIN.
        texts: Vec<String>,
        /// Over an updating input: where the rows carry its key.
        upstream_key: Option<UpstreamKey>,
    },
    /// Windowed `GROUP BY`: a key_by exchange on the first `keys` columns,
    /// then the window operator (see [`super::window_aggregate`]).
    WindowAggregate {
        input: Box<Physical>,
        keys: usize,
        calls: Arc<[AggregateCall]>,
        window: SqlWindow,
        /// The keys and calls as written, for EXPLAIN.
        texts: Vec<String>,
        /// Windows of the processing time: the tables below are read in
        /// processing time (see [`Physical::tables_by_time`]).
        processing_time: bool,
    },
    /// An inner join on equal keys: a key_by exchange of each input on its
    /// key columns, then [`super::join::RegularJoin`] with both inputs'
    /// rows in keyed state.
    Join {
        left: Box<Physical>,
        right: Box<Physical>,
        left_keys: Arc<[usize]>,
        right_keys: Arc<[usize]>,
        /// The key equalities as written, for EXPLAIN.
        texts: Vec<String>,
        /// Each side's key columns by name, for EXPLAIN.
        key_names: [Vec<String>; 2],
        /// An interval join's time bounds (none: a regular join).
        interval: Option<TimeCondition>,
    },
    /// A window table function's windows assigned to each row of `input`
    /// (a window join's input): stateless, one row per window.
    WindowAssign {
        input: Box<Physical>,
        window: SqlWindow,
        /// The column holding the time the windows are of.
        time_column: usize,
    },
    /// A lookup join: each input row joined with the rows of the bounded
    /// table `table` (see [`super::lookup_join`]); stateless, in the
    /// input's chain.
    LookupJoin {
        input: Box<Physical>,
        /// The input's columns that are output; the rest are computed keys.
        left_width: usize,
        table: String,
        left_keys: Arc<[usize]>,
        right_keys: Arc<[usize]>,
        /// Which of the table's columns are read (the others stay NULL).
        right_needed: Vec<bool>,
        /// The key equalities as written, for EXPLAIN.
        texts: Vec<String>,
    },
    /// Top-N or deduplication: a key_by exchange on the partition columns,
    /// then [`TopN`] with each partition's best rows in keyed state.
    Rank {
        input: Box<Physical>,
        partition: Arc<[usize]>,
        order: RankOrder,
        limit: usize,
        /// The partition columns and the ORDER BY as written, for EXPLAIN.
        partition_texts: Vec<String>,
        order_text: String,
    },
}

/// What a job's operators read: a stream per table read as a source, and
/// the rows of each lookup table (every column of the table).
#[derive(Default)]
pub struct JobTables {
    pub streams: HashMap<String, Stream<Row>>,
    pub lookups: HashMap<String, Arc<[Row]>>,
}

/// Lowers `plan`, fusing stateless steps; then prunes it for a consumer
/// that reads every output column.
pub fn lower(plan: &Plan) -> Physical {
    let mut physical = lower_node(plan);
    let width = physical.width();
    physical.prune(&vec![true; width]);
    physical
}

fn lower_node(plan: &Plan) -> Physical {
    match &plan.node {
        PlanNode::Scan { table } => Physical::Source {
            table: table.clone(),
            columns: plan.schema.iter().map(|c| c.name.clone()).collect(),
            needed: vec![false; plan.schema.len()],
            layout: None,
        },
        PlanNode::Filter {
            input,
            predicate,
            text,
        } => {
            let mut below = lower_node(input);
            let mut predicate = [predicate.clone()];
            if let Physical::Calc { calc, steps, .. } = &mut below {
                if inline_into(&mut predicate, calc.projection.as_deref()) {
                    let [predicate] = predicate;
                    calc.filters.push(predicate);
                    steps.push(format!("WHERE {text}"));
                    return below;
                }
            }
            let [predicate] = predicate;
            Physical::Calc {
                input: Box::new(below),
                calc: Calc {
                    filters: vec![predicate],
                    projection: None,
                },
                steps: vec![format!("WHERE {text}")],
            }
        }
        PlanNode::Project {
            input,
            exprs,
            texts,
        } => {
            let mut below = lower_node(input);
            let step = format!("SELECT {}", texts.join(", "));
            let mut exprs = exprs.clone();
            if let Physical::Calc { calc, steps, .. } = &mut below {
                if inline_into(&mut exprs, calc.projection.as_deref()) {
                    calc.projection = Some(exprs);
                    steps.push(step);
                    return below;
                }
            }
            Physical::Calc {
                input: Box::new(below),
                calc: Calc {
                    filters: Vec::new(),
                    projection: Some(exprs),
                },
                steps: vec![step],
            }
        }
        PlanNode::Union { inputs } => Physical::Union {
            inputs: inputs.iter().map(lower_node).collect(),
        },
        PlanNode::Aggregate {
            input,
            keys,
            calls,
            texts,
            upstream_key,
        } => Physical::GroupAggregate {
            input: Box::new(lower_node(input)),
            keys: *keys,
            calls: calls.clone().into(),
            texts: texts.clone(),
            upstream_key: upstream_key.clone(),
        },
        PlanNode::WindowAggregate {
            input,
            keys,
            calls,
            window,
            texts,
            processing_time,
        } => Physical::WindowAggregate {
            input: Box::new(lower_node(input)),
            keys: *keys,
            calls: calls.clone().into(),
            window: *window,
            texts: texts.clone(),
            processing_time: *processing_time,
        },
        PlanNode::Join {
            left,
            right,
            left_keys,
            right_keys,
            texts,
            key_names,
            interval,
        } => Physical::Join {
            left: Box::new(lower_node(left)),
            right: Box::new(lower_node(right)),
            left_keys: left_keys.clone().into(),
            right_keys: right_keys.clone().into(),
            texts: texts.clone(),
            key_names: key_names.clone(),
            interval: interval.clone(),
        },
        PlanNode::LookupJoin {
            input,
            left_width,
            table,
            left_keys,
            right_keys,
            texts,
        } => Physical::LookupJoin {
            input: Box::new(lower_node(input)),
            left_width: *left_width,
            table: table.clone(),
            left_keys: left_keys.clone().into(),
            right_keys: right_keys.clone().into(),
            right_needed: vec![false; plan.schema.len() - left_width],
            texts: texts.clone(),
        },
        PlanNode::Rank {
            input,
            partition,
            order,
            limit,
            partition_texts,
            order_text,
            ..
        } => {
            // Flink's deduplication keeping the last row orders by the
            // event-time attribute, descending.
            let keeps_last = input
                .rowtime
                .is_some_and(|t| order.as_slice() == [(t, true)]);
            Physical::Rank {
                input: Box::new(lower_node(input)),
                partition: partition.clone().into(),
                order: RankOrder {
                    keys: order.clone().into(),
                    ties: if keeps_last {
                        Ties::GreaterFirst
                    } else {
                        Ties::EarlierFirst {
                            rowtime: input.rowtime,
                        }
                    },
                },
                limit: limit.expect("planning refuses a rank without a limit"),
                partition_texts: partition_texts.clone(),
                order_text: order_text.clone(),
            }
        }
        // Planning leaves a table function only below a window join.
        PlanNode::WindowTvf {
            input,
            window,
            time_column,
            ..
        } => Physical::WindowAssign {
            input: Box::new(lower_node(input)),
            window: *window,
            time_column: *time_column,
        },
    }
}

/// Rewrites `outer` (expressions over the output of `inner`) to read
/// `inner`'s input instead, unless that would compute a non-trivial inner
/// expression more than once; returns whether it did.
fn inline_into(outer: &mut [BoundExpr], inner: Option<&[BoundExpr]>) -> bool {
    let Some(inner) = inner else {
        return true;
    };
    let mut reads = vec![0usize; inner.len()];
    for expr in outer.iter() {
        expr.visit_columns(&mut |i| reads[i] += 1);
    }
    let trivial = |e: &BoundExpr| matches!(e, BoundExpr::Column(_) | BoundExpr::Literal(_));
    if reads
        .iter()
        .zip(inner)
        .any(|(&n, expr)| n > 1 && !trivial(expr))
    {
        return false;
    }
    for expr in outer.iter_mut() {
        expr.rewrite_columns(&mut |i| inner[i].clone());
    }
    true
}

impl Physical {
    /// How many columns the operator's rows have.
    pub fn width(&self) -> usize {
        match self {
            Physical::Source {
                layout: Some(layout),
                ..
            } => layout.len(),
            Physical::Source { columns, .. } => columns.len(),
            Physical::Calc { input, calc, .. } => match &calc.projection {
                Some(exprs) => exprs.len(),
                None => input.width(),
            },
            Physical::Union { inputs } => inputs[0].width(),
            Physical::GroupAggregate { keys, calls, .. } => keys + calls.len(),
            Physical::WindowAggregate { keys, calls, .. } => keys + 3 + calls.len(),
            Physical::Join { left, right, .. } => left.width() + right.width(),
            Physical::Rank { input, .. } => input.width() + 1,
            Physical::WindowAssign { input, .. } => input.width() + 3,
            Physical::LookupJoin {
                left_width,
                right_needed,
                ..
            } => left_width + right_needed.len(),
        }
    }

    /// Marks what the consumer reads (`needed[i]`: output column `i`):
    /// sources fill only what is read, projections compute only that.
    pub fn prune(&mut self, needed: &[bool]) {
        match self {
            Physical::Source {
                needed: source_needs,
                ..
            } => {
                for (mine, theirs) in source_needs.iter_mut().zip(needed) {
                    *mine |= *theirs;
                }
            }
            Physical::Calc { input, calc, .. } => {
                let mut reads = vec![false; input.width()];
                for filter in &calc.filters {
                    filter.visit_columns(&mut |i| reads[i] = true);
                }
                match &mut calc.projection {
                    Some(exprs) => {
                        for (expr, read) in exprs.iter_mut().zip(needed) {
                            if *read {
                                expr.visit_columns(&mut |i| reads[i] = true);
                            } else {
                                *expr = BoundExpr::Literal(Value::Null);
                            }
                        }
                    }
                    None => {
                        for (mine, theirs) in reads.iter_mut().zip(needed) {
                            *mine |= *theirs;
                        }
                    }
                }
                input.prune(&reads);
            }
            Physical::Union { inputs } => {
                for input in inputs {
                    input.prune(needed);
                }
            }
            // Every key and call is computed: the aggregation reads all it is given.
            Physical::GroupAggregate { input, .. } | Physical::WindowAggregate { input, .. } => {
                let width = input.width();
                input.prune(&vec![true; width]);
            }
            Physical::Join {
                left,
                right,
                left_keys,
                right_keys,
                interval,
                ..
            } => {
                let (left_needs, right_needs) = needed.split_at(left.width());
                let mut left_needs = left_needs.to_vec();
                let mut right_needs = right_needs.to_vec();
                left_keys.iter().for_each(|&k| left_needs[k] = true);
                right_keys.iter().for_each(|&k| right_needs[k] = true);
                if let Some(time) = interval {
                    left_needs[time.bounds.left_time] = true;
                    right_needs[time.bounds.right_time] = true;
                }
                left.prune(&left_needs);
                right.prune(&right_needs);
            }
            Physical::LookupJoin {
                input,
                left_width,
                left_keys,
                right_needed,
                ..
            } => {
                let (left_needs, right_needs) = needed.split_at(*left_width);
                let mut reads = vec![false; input.width()];
                reads[..*left_width].copy_from_slice(left_needs);
                left_keys.iter().for_each(|&k| reads[k] = true);
                for (mine, theirs) in right_needed.iter_mut().zip(right_needs) {
                    *mine |= *theirs;
                }
                input.prune(&reads);
            }
            Physical::Rank {
                input,
                partition,
                order,
                ..
            } => {
                let mut reads = needed[..input.width()].to_vec();
                partition.iter().for_each(|&c| reads[c] = true);
                order.keys.iter().for_each(|&(c, _)| reads[c] = true);
                if let Ties::EarlierFirst { rowtime: Some(t) } = order.ties {
                    reads[t] = true;
                }
                input.prune(&reads);
            }
            Physical::WindowAssign {
                input, time_column, ..
            } => {
                let mut reads = needed[..input.width()].to_vec();
                reads[*time_column] = true;
                input.prune(&reads);
            }
        }
    }

    /// Makes every read of a table take its rows in the table's source
    /// layout (`layouts`, per table: the columns its rows hold), renumbering
    /// the columns the operator above reads. A source read by something
    /// other than a [`Calc`] gets one that puts the table's width back.
    /// Runs once, after [`Physical::prune`] for every INSERT of the job.
    pub fn narrow(&mut self, layouts: &HashMap<String, Vec<usize>>) {
        match self {
            Physical::Source { .. } => {
                let source = std::mem::replace(self, Physical::Union { inputs: Vec::new() });
                *self = widened(source, layouts);
            }
            Physical::Calc { input, calc, .. } => {
                let Physical::Source {
                    table,
                    columns,
                    layout,
                    ..
                } = input.as_mut()
                else {
                    return input.narrow(layouts);
                };
                let kept = &layouts[table.as_str()];
                let at_in_row = row_positions(kept, columns.len());
                let mut renumber = |i: usize| {
                    BoundExpr::Column(at_in_row[i].expect("the layout keeps what is read"))
                };
                for filter in &mut calc.filters {
                    filter.rewrite_columns(&mut renumber);
                }
                match &mut calc.projection {
                    Some(exprs) => exprs
                        .iter_mut()
                        .for_each(|e| e.rewrite_columns(&mut renumber)),
                    None => calc.projection = Some(widening(&at_in_row)),
                }
                *layout = Some(kept.clone());
            }
            Physical::Union { inputs } => inputs.iter_mut().for_each(|i| i.narrow(layouts)),
            Physical::GroupAggregate { input, .. }
            | Physical::WindowAggregate { input, .. }
            | Physical::LookupJoin { input, .. }
            | Physical::WindowAssign { input, .. }
            | Physical::Rank { input, .. } => input.narrow(layouts),
            Physical::Join { left, right, .. } => {
                left.narrow(layouts);
                right.narrow(layouts);
            }
        }
    }

    /// Adds, per table read, the columns read (merged over every read).
    pub fn tables_read(&self, out: &mut HashMap<String, Vec<bool>>) {
        match self {
            Physical::Source { table, needed, .. } => {
                let merged = out
                    .entry(table.clone())
                    .or_insert_with(|| vec![false; needed.len()]);
                for (mine, theirs) in merged.iter_mut().zip(needed) {
                    *mine |= *theirs;
                }
            }
            Physical::Calc { input, .. }
            | Physical::GroupAggregate { input, .. }
            | Physical::WindowAggregate { input, .. }
            | Physical::LookupJoin { input, .. }
            | Physical::WindowAssign { input, .. }
            | Physical::Rank { input, .. } => input.tables_read(out),
            Physical::Union { inputs } => inputs.iter().for_each(|i| i.tables_read(out)),
            Physical::Join { left, right, .. } => {
                left.tables_read(out);
                right.tables_read(out);
            }
        }
    }

    /// Adds the tables looked up (by a lookup join) to `out`.
    pub fn tables_looked_up(&self, out: &mut HashSet<String>) {
        if let Physical::LookupJoin { table, .. } = self {
            out.insert(table.clone());
        }
        for input in self.inputs() {
            input.tables_looked_up(out);
        }
    }

    /// Adds the tables read below a window aggregation to `processing`
    /// (its windows are of processing time) or `event` (of event time).
    pub fn tables_by_time(&self, processing: &mut HashSet<String>, event: &mut HashSet<String>) {
        if let Physical::WindowAggregate {
            input,
            processing_time,
            ..
        } = self
        {
            let mut read = HashMap::new();
            input.tables_read(&mut read);
            let out = if *processing_time {
                &mut *processing
            } else {
                &mut *event
            };
            out.extend(read.into_keys());
        }
        for input in self.inputs() {
            input.tables_by_time(processing, event);
        }
    }

    /// The operators this one reads.
    fn inputs(&self) -> Vec<&Physical> {
        match self {
            Physical::Source { .. } => Vec::new(),
            Physical::Calc { input, .. }
            | Physical::GroupAggregate { input, .. }
            | Physical::WindowAggregate { input, .. }
            | Physical::LookupJoin { input, .. }
            | Physical::WindowAssign { input, .. }
            | Physical::Rank { input, .. } => vec![input],
            Physical::Union { inputs } => inputs.iter().collect(),
            Physical::Join { left, right, .. } => vec![left, right],
        }
    }

    /// Wires the operators onto the streams of the tables (`tables`: one
    /// stream per table read, shared by every read of it, and the rows of
    /// each lookup table). A stateful operator
    /// equal to one already in `built` (the same operator over the same
    /// input, as q5 aggregates the same windows twice) is not built again:
    /// its stream is shared, as Flink reuses a common sub-plan. `built`
    /// spans every INSERT of the job.
    pub fn build(
        &self,
        tables: &JobTables,
        built: &mut HashMap<String, Stream<Row>>,
    ) -> Stream<Row> {
        if !self.is_stateful() {
            return self.build_here(tables, built);
        }
        // The debug form is the whole subtree: operators, expressions and
        // the columns each source fills.
        let shape = format!("{self:?}");
        if let Some(stream) = built.get(&shape) {
            return stream.clone();
        }
        let stream = self.build_here(tables, built);
        built.insert(shape, stream.clone());
        stream
    }

    fn build_here(
        &self,
        tables: &JobTables,
        built: &mut HashMap<String, Stream<Row>>,
    ) -> Stream<Row> {
        match self {
            Physical::Source { table, .. } => tables.streams[table].clone(),
            Physical::Calc { input, calc, .. } => {
                let compiled = calc.compile(input.width());
                input
                    .build(tables, built)
                    .try_filter_map(move |row| compiled.apply(row).map_err(|e| e.0))
            }
            Physical::Union { inputs } => {
                let streams: Vec<Stream<Row>> =
                    inputs.iter().map(|i| i.build(tables, built)).collect();
                streams[0].union(&streams[1..])
            }
            Physical::GroupAggregate {
                input,
                keys,
                calls,
                upstream_key,
                ..
            } => {
                let keys = *keys;
                let calls = calls.clone();
                let upstream_key: Option<Arc<[usize]>> =
                    upstream_key.as_ref().map(|k| k.columns.clone().into());
                input
                    .build(tables, built)
                    .key_by(move |row: &Row| Row(row.0[..keys].to_vec()))
                    .process(move |state: &mut StateBackend| {
                        GroupAggregate::new(keys, calls.clone(), upstream_key.clone(), state)
                    })
            }
            Physical::WindowAggregate {
                input,
                keys,
                calls,
                window,
                ..
            } => window_aggregate(&input.build(tables, built), *keys, calls.clone(), *window),
            Physical::Join {
                left,
                right,
                left_keys,
                right_keys,
                interval,
                ..
            } => {
                let (left, right) = (left.build(tables, built), right.build(tables, built));
                match interval {
                    None => regular_join(&left, &right, left_keys.clone(), right_keys.clone()),
                    Some(time) => interval_join(
                        &left,
                        &right,
                        left_keys.clone(),
                        right_keys.clone(),
                        time.bounds,
                    ),
                }
            }
            Physical::LookupJoin {
                input,
                left_width,
                table,
                left_keys,
                right_keys,
                right_needed,
                ..
            } => {
                let index = Arc::new(LookupIndex::new(
                    &tables.lookups[table],
                    right_keys,
                    right_needed,
                ));
                let (left_width, left_keys) = (*left_width, left_keys.clone());
                input
                    .build(tables, built)
                    .flat_map(move |row: Row| index.lookup(row, left_width, &left_keys))
            }
            Physical::Rank {
                input,
                partition,
                order,
                limit,
                ..
            } => {
                let partition = partition.clone();
                let (order, limit) = (order.clone(), *limit);
                input
                    .build(tables, built)
                    .key_by(move |row: &Row| row.select(&partition))
                    .process(move |state: &mut StateBackend| TopN::new(order.clone(), limit, state))
            }
            Physical::WindowAssign {
                input,
                window,
                time_column,
            } => assign_windows(&input.build(tables, built), *window, *time_column),
        }
    }

    /// The operators as an indented tree, one per line. A stateful
    /// operator already in `shown` (built once and shared, see
    /// [`Physical::build`]) is named, not expanded again.
    pub fn explain_into(&self, out: &mut String, depth: usize, shown: &mut HashSet<String>) {
        let pad = "  ".repeat(depth);
        if self.is_stateful() && !shown.insert(format!("{self:?}")) {
            let first = self.explain_head();
            let _ = writeln!(out, "{pad}Reused: the same {first} as above (built once)");
            return;
        }
        match self {
            Physical::Source {
                table,
                columns,
                needed,
                layout,
            } => {
                let read: Vec<&str> = match layout {
                    Some(kept) => kept.iter().map(|&i| columns[i].as_str()).collect(),
                    None => (columns.iter().zip(needed))
                        .filter(|(_, n)| **n)
                        .map(|(c, _)| c.as_str())
                        .collect(),
                };
                let _ = writeln!(out, "{pad}Source {table} reads [{}]", read.join(", "));
            }
            Physical::Calc { input, steps, .. } => {
                let _ = writeln!(
                    out,
                    "{pad}Calc (stateless, fused into the chain): {}",
                    steps.join("; ")
                );
                input.explain_into(out, depth + 1, shown);
            }
            Physical::Union { inputs } => {
                let _ = writeln!(out, "{pad}UnionAll (stateless)");
                for input in inputs {
                    input.explain_into(out, depth + 1, shown);
                }
            }
            Physical::GroupAggregate {
                input,
                keys,
                calls,
                texts,
                upstream_key,
            } => {
                let replacing = upstream_key.as_ref().map_or(String::new(), |k| {
                    format!(
                        ", the last row of each upstream [{}] to take back when it is replaced",
                        k.names.join(", ")
                    )
                });
                let head = format!(
                    "GroupAggregate [{}] (keyed state: accumulators per group{}{replacing}; emits upserts)",
                    texts[*keys..].join(", "),
                    distinct_note(calls)
                );
                explain_keyed(out, depth, &head, &texts[..*keys], input, shown);
            }
            Physical::WindowAggregate {
                input,
                keys,
                calls,
                window,
                texts,
                processing_time,
            } => {
                let panes = match window {
                    SqlWindow::Hop { .. } | SqlWindow::Cumulate { .. } => "pane",
                    SqlWindow::Session { .. } => "session",
                    _ => "window",
                };
                let time = if *processing_time {
                    " of processing time"
                } else {
                    ""
                };
                let head = format!(
                    "WindowAggregate {window}{time} [{}] (keyed state: accumulators per group and {panes}{}; emits each window's rows when the watermark passes its end)",
                    texts[*keys..].join(", "),
                    distinct_note(calls)
                );
                explain_keyed(out, depth, &head, &texts[..*keys], input, shown);
            }
            Physical::Join {
                left,
                right,
                texts,
                key_names,
                interval,
                ..
            } => {
                let state = match interval {
                    None => "keyed state: every row of both inputs, per key; emits each match once",
                    Some(time) if time.window => "keyed state: each window's rows of both inputs, per key, dropped when the watermark passes the window's end; emits each match once",
                    Some(_) => "keyed state: each input's rows per key by time, dropped when the watermark passes the last time a row of the other input can match; emits each match once",
                };
                let _ = writeln!(
                    out,
                    "{pad}{} ({state})",
                    join_head(texts, interval.as_ref())
                );
                for (input, keys) in [left, right].into_iter().zip(key_names) {
                    let _ = writeln!(out, "{pad}  Exchange key_by [{}]", keys.join(", "));
                    input.explain_into(out, depth + 2, shown);
                }
            }
            Physical::LookupJoin {
                input,
                table,
                texts,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "{pad}LookupJoin {table} on [{}] (stateless: the table read whole when the job starts, indexed by its key; no exchange)",
                    texts.join(", ")
                );
                input.explain_into(out, depth + 1, shown);
            }
            Physical::Rank {
                input,
                partition_texts,
                ..
            } => {
                let head = format!(
                    "{} (keyed state: the top rows per partition; emits upserts)",
                    self.explain_head()
                );
                explain_keyed(out, depth, &head, partition_texts, input, shown);
            }
            Physical::WindowAssign { input, window, .. } => {
                let _ = writeln!(
                    out,
                    "{pad}WindowAssign {window} (stateless, in the chain: each row once per window, with window_start, window_end, window_time)"
                );
                input.explain_into(out, depth + 1, shown);
            }
        }
    }
}

impl Physical {
    /// Whether the operator keeps keyed state (and is keyed by an exchange).
    fn is_stateful(&self) -> bool {
        matches!(
            self,
            Physical::GroupAggregate { .. }
                | Physical::WindowAggregate { .. }
                | Physical::Join { .. }
                | Physical::Rank { .. }
        )
    }

    /// A stateful operator's name and what it computes, on one line.
    fn explain_head(&self) -> String {
        match self {
            Physical::GroupAggregate { keys, texts, .. } => format!(
                "GroupAggregate by [{}] [{}]",
                texts[..*keys].join(", "),
                texts[*keys..].join(", ")
            ),
            Physical::WindowAggregate {
                keys,
                window,
                texts,
                ..
            } => format!(
                "WindowAggregate {window} by [{}] [{}]",
                texts[..*keys].join(", "),
                texts[*keys..].join(", ")
            ),
            Physical::Join {
                texts, interval, ..
            } => join_head(texts, interval.as_ref()),
            Physical::Rank {
                partition_texts,
                order_text,
                limit,
                ..
            } => format!(
                "Rank ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {order_text}) <= {limit}",
                partition_texts.join(", ")
            ),
            _ => "operator".to_owned(),
        }
    }
}

/// What a keyed aggregation keeps besides accumulators.
fn distinct_note(calls: &[AggregateCall]) -> &'static str {
    if calls.iter().any(|c| c.distinct) {
        " and the DISTINCT values seen"
    } else {
        ""
    }
}

/// A keyed operator's line `head`, its exchange on `keys`, then its input.
fn explain_keyed(
    out: &mut String,
    depth: usize,
    head: &str,
    keys: &[String],
    input: &Physical,
    shown: &mut HashSet<String>,
) {
    let pad = "  ".repeat(depth);
    let _ = writeln!(out, "{pad}{head}");
    let _ = writeln!(out, "{pad}  Exchange key_by [{}]", keys.join(", "));
    input.explain_into(out, depth + 2, shown);
}

/// `source` narrowed, under a Calc that puts the table's width back.
fn widened(source: Physical, layouts: &HashMap<String, Vec<usize>>) -> Physical {
    let Physical::Source {
        table,
        columns,
        needed,
        ..
    } = source
    else {
        unreachable!("only sources are widened")
    };
    let kept = layouts[table.as_str()].clone();
    let at_in_row = row_positions(&kept, columns.len());
    Physical::Calc {
        calc: Calc {
            filters: Vec::new(),
            projection: Some(widening(&at_in_row)),
        },
        steps: vec![format!("the columns of {table}")],
        input: Box::new(Physical::Source {
            table,
            columns,
            needed,
            layout: Some(kept),
        }),
    }
}

/// A projection from a narrowed row back to the table's columns (`at_in_row`
/// per table column); columns not kept are NULL, as nothing reads them.
fn widening(at_in_row: &[Option<usize>]) -> Vec<BoundExpr> {
    at_in_row
        .iter()
        .map(|at| match at {
            Some(i) => BoundExpr::Column(*i),
            None => BoundExpr::Literal(Value::Null),
        })
        .collect()
}

#[cfg(test)]
mod tests;
