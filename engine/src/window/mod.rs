//! Windows: assigners, triggers, window functions and the window operator.
//!
//! Semantics follow Flink's: an element goes to the windows its timestamp
//! assigns; a trigger decides when a window fires (emits) and purges; event-time
//! windows are cleaned up once the watermark passes `max_timestamp +
//! allowed_lateness`; an element whose every window is already cleaned up is
//! late — dropped or sent to the late side output. Results carry the window's
//! `max_timestamp` as event time.

mod assigner;
mod function;
mod local_aggregate;
mod operator;
mod trigger;

pub use assigner::{
    CumulatingWindows, GlobalWindow, GlobalWindows, SessionWindows, SlidingWindows, TimeWindow,
    TumblingWindows, Window, WindowAssigner, WindowsEndingAt,
};
pub use function::{
    AggregateFunction, AggregateLogic, Count, MergeAccumulators, ProcessLogic, ReduceLogic,
    WindowLogic,
};
pub use local_aggregate::{FixedSizeWindows, LocalWindowAggregate};
pub use operator::{WindowOperator, WindowSpec};
pub use trigger::{
    CountTrigger, EventTimeTrigger, NeverTrigger, PurgingTrigger, Trigger, TriggerContext,
    TriggerResult,
};

#[cfg(test)]
mod tests;
