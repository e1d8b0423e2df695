//! Which windows an element belongs to.

use std::fmt::Debug;

use rkyv::{Archive, Deserialize, Serialize};
use sluice_state::StateKey;

use super::{EventTimeTrigger, NeverTrigger};

/// A window: a namespace for keyed state with a last timestamp.
pub trait Window: StateKey + Copy + Debug + Send + Sync {
    /// The largest timestamp that still belongs to the window.
    fn max_timestamp(&self) -> i64;
}

/// The half-open interval `[start, end)` of event time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Archive, Serialize, Deserialize,
)]
pub struct TimeWindow {
    pub start: i64,
    pub end: i64,
}

impl TimeWindow {
    pub fn new(start: i64, end: i64) -> Self {
        debug_assert!(start < end);
        TimeWindow { start, end }
    }
    /// Whether two windows overlap or touch (such session windows merge).
    pub fn intersects(&self, other: &TimeWindow) -> bool {
        self.start <= other.end && self.end >= other.start
    }
    /// The smallest window covering both.
    pub fn cover(&self, other: &TimeWindow) -> TimeWindow {
        TimeWindow {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl Window for TimeWindow {
    #[inline]
    fn max_timestamp(&self) -> i64 {
        self.end - 1
    }
}

/// The one window of all time (for count windows and custom triggers).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Archive, Serialize, Deserialize,
)]
pub struct GlobalWindow;

impl Window for GlobalWindow {
    fn max_timestamp(&self) -> i64 {
        i64::MAX
    }
}

/// Assigns windows to elements by timestamp.
pub trait WindowAssigner: Clone + Send + Sync + 'static {
    type W: Window;
    type DefaultTrigger: Default;
    /// Appends the windows of an element with timestamp `timestamp` to `out`.
    /// `&mut self`: an assigner may remember its last answer (each operator
    /// owns its own assigner).
    fn assign(&mut self, timestamp: i64, out: &mut Vec<Self::W>);
    /// Session windows merge; others do not.
    fn is_merging(&self) -> bool {
        false
    }
    /// For overlapping windows that can share state: the pane (a slice of
    /// event time that lies wholly inside every window it touches) of an
    /// element with timestamp `timestamp`. `None`: windows keep their own state.
    fn pane_of(&self, timestamp: i64) -> Option<Self::W> {
        let _ = timestamp;
        None
    }
    /// The panes that make up `window` (when [`Self::pane_of`] gives panes).
    fn panes_of_window(&self, window: &Self::W, out: &mut Vec<Self::W>) {
        let _ = (window, out);
    }
    /// For merging assigners: merges the windows of `windows` that intersect.
    fn merge(&self, a: &Self::W, b: &Self::W) -> Option<Self::W> {
        let _ = (a, b);
        None
    }
}

fn window_start(timestamp: i64, offset: i64, slide: i64) -> i64 {
    timestamp - (timestamp - offset).rem_euclid(slide)
}

/// Fixed-size, non-overlapping windows.
#[derive(Debug, Clone, Copy)]
pub struct TumblingWindows {
    pub size_ms: i64,
    pub offset_ms: i64,
    /// The last window assigned: most elements fall into the same window as the
    /// one before, which then costs a comparison instead of a division.
    last: TimeWindow,
}

impl TumblingWindows {
    pub fn of(size_ms: i64) -> Self {
        assert!(size_ms > 0, "window size must be positive");
        TumblingWindows {
            size_ms,
            offset_ms: 0,
            last: TimeWindow { start: 0, end: 0 },
        }
    }
    pub fn with_offset(mut self, offset_ms: i64) -> Self {
        self.offset_ms = offset_ms.rem_euclid(self.size_ms);
        self
    }
}

impl WindowAssigner for TumblingWindows {
    type W = TimeWindow;
    type DefaultTrigger = EventTimeTrigger;
    #[inline]
    fn assign(&mut self, timestamp: i64, out: &mut Vec<TimeWindow>) {
        if timestamp < self.last.start || timestamp >= self.last.end {
            let start = window_start(timestamp, self.offset_ms, self.size_ms);
            self.last = TimeWindow::new(start, start + self.size_ms);
        }
        out.push(self.last);
    }
}

/// Fixed-size windows every `slide_ms`; an element is in `size/slide` of them.
#[derive(Debug, Clone, Copy)]
pub struct SlidingWindows {
    pub size_ms: i64,
    pub slide_ms: i64,
    pub offset_ms: i64,
}

impl SlidingWindows {
    pub fn of(size_ms: i64, slide_ms: i64) -> Self {
        assert!(
            size_ms > 0 && slide_ms > 0,
            "window size and slide must be positive"
        );
        SlidingWindows {
            size_ms,
            slide_ms,
            offset_ms: 0,
        }
    }
}

impl SlidingWindows {
    /// Windows share panes of the slide's length when they are whole multiples
    /// of it (each window is `size / slide` panes; each pane lies in as many
    /// windows).
    fn slices(&self) -> bool {
        self.size_ms > self.slide_ms && self.size_ms % self.slide_ms == 0
    }
}

impl WindowAssigner for SlidingWindows {
    type W = TimeWindow;
    type DefaultTrigger = EventTimeTrigger;
    fn assign(&mut self, timestamp: i64, out: &mut Vec<TimeWindow>) {
        let mut start = window_start(timestamp, self.offset_ms, self.slide_ms);
        while start > timestamp - self.size_ms {
            out.push(TimeWindow::new(start, start + self.size_ms));
            start -= self.slide_ms;
        }
    }
    fn pane_of(&self, timestamp: i64) -> Option<TimeWindow> {
        self.slices().then(|| {
            let start = window_start(timestamp, self.offset_ms, self.slide_ms);
            TimeWindow::new(start, start + self.slide_ms)
        })
    }
    fn panes_of_window(&self, window: &TimeWindow, out: &mut Vec<TimeWindow>) {
        panes_of_length(window, self.slide_ms, out);
    }
}

/// The `length`-long panes that tile `window`, in order.
fn panes_of_length(window: &TimeWindow, length: i64, out: &mut Vec<TimeWindow>) {
    let mut start = window.start;
    while start < window.end {
        out.push(TimeWindow::new(start, start + length));
        start += length;
    }
}

/// Windows that grow by `step_ms` from a fixed start until they are
/// `size_ms` long, then start again (Flink SQL's `CUMULATE`): an element is
/// in every window of its cycle that ends after it. Kept as step-long panes.
#[derive(Debug, Clone, Copy)]
pub struct CumulatingWindows {
    pub step_ms: i64,
    pub size_ms: i64,
    pub offset_ms: i64,
}

impl CumulatingWindows {
    /// `size_ms` must be a whole multiple of `step_ms`.
    pub fn of(step_ms: i64, size_ms: i64) -> Self {
        assert!(
            step_ms > 0 && size_ms >= step_ms && size_ms % step_ms == 0,
            "a cumulating window's size must be a whole multiple of its step"
        );
        CumulatingWindows {
            step_ms,
            size_ms,
            offset_ms: 0,
        }
    }
    pub fn with_offset(mut self, offset_ms: i64) -> Self {
        self.offset_ms = offset_ms.rem_euclid(self.size_ms);
        self
    }
}

impl WindowAssigner for CumulatingWindows {
    type W = TimeWindow;
    type DefaultTrigger = EventTimeTrigger;
    fn assign(&mut self, timestamp: i64, out: &mut Vec<TimeWindow>) {
        let start = window_start(timestamp, self.offset_ms, self.size_ms);
        let mut end = window_start(timestamp, self.offset_ms, self.step_ms) + self.step_ms;
        while end <= start + self.size_ms {
            out.push(TimeWindow::new(start, end));
            end += self.step_ms;
        }
    }
    fn pane_of(&self, timestamp: i64) -> Option<TimeWindow> {
        let start = window_start(timestamp, self.offset_ms, self.step_ms);
        Some(TimeWindow::new(start, start + self.step_ms))
    }
    fn panes_of_window(&self, window: &TimeWindow, out: &mut Vec<TimeWindow>) {
        panes_of_length(window, self.step_ms, out);
    }
}

/// The one window of `size_ms` that ends just after each element: for
/// elements that are already one window's result, with the window's last
/// millisecond as their timestamp (a windowed aggregation of a windowed
/// aggregation's output, which keeps its windows).
#[derive(Debug, Clone, Copy)]
pub struct WindowsEndingAt {
    pub size_ms: i64,
}

impl WindowAssigner for WindowsEndingAt {
    type W = TimeWindow;
    type DefaultTrigger = EventTimeTrigger;
    fn assign(&mut self, timestamp: i64, out: &mut Vec<TimeWindow>) {
        let end = timestamp.saturating_add(1);
        out.push(TimeWindow::new(end - self.size_ms, end));
    }
}

/// Windows of activity separated by gaps of at least `gap_ms`.
#[derive(Debug, Clone, Copy)]
pub struct SessionWindows {
    pub gap_ms: i64,
}

impl SessionWindows {
    pub fn with_gap(gap_ms: i64) -> Self {
        assert!(gap_ms > 0, "session gap must be positive");
        SessionWindows { gap_ms }
    }
}

impl WindowAssigner for SessionWindows {
    type W = TimeWindow;
    type DefaultTrigger = EventTimeTrigger;
    fn assign(&mut self, timestamp: i64, out: &mut Vec<TimeWindow>) {
        out.push(TimeWindow::new(timestamp, timestamp + self.gap_ms));
    }
    fn is_merging(&self) -> bool {
        true
    }
    fn merge(&self, a: &TimeWindow, b: &TimeWindow) -> Option<TimeWindow> {
        a.intersects(b).then(|| a.cover(b))
    }
}

/// Every element in the one [`GlobalWindow`]; fires only by a custom trigger.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalWindows;

impl WindowAssigner for GlobalWindows {
    type W = GlobalWindow;
    type DefaultTrigger = NeverTrigger;
    fn assign(&mut self, _timestamp: i64, out: &mut Vec<GlobalWindow>) {
        out.push(GlobalWindow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_handles_negative_timestamps_and_offsets() {
        let mut out = Vec::new();
        TumblingWindows::of(10).assign(-1, &mut out);
        TumblingWindows::of(10).assign(0, &mut out);
        TumblingWindows::of(10).with_offset(3).assign(2, &mut out);
        assert_eq!(
            out,
            vec![
                TimeWindow::new(-10, 0),
                TimeWindow::new(0, 10),
                TimeWindow::new(-7, 3)
            ]
        );
    }

    #[test]
    fn cumulating_assigns_the_windows_of_its_cycle_that_end_after_the_element() {
        let mut out = Vec::new();
        let mut windows = CumulatingWindows::of(2, 6);
        windows.assign(7, &mut out);
        assert_eq!(
            out,
            vec![
                TimeWindow::new(6, 8),
                TimeWindow::new(6, 10),
                TimeWindow::new(6, 12)
            ]
        );
        out.clear();
        windows.assign(11, &mut out);
        assert_eq!(out, vec![TimeWindow::new(6, 12)]);
        out.clear();
        windows.assign(-1, &mut out);
        assert_eq!(out, vec![TimeWindow::new(-6, 0)]);
        assert_eq!(windows.pane_of(7), Some(TimeWindow::new(6, 8)));
        out.clear();
        windows.panes_of_window(&TimeWindow::new(6, 10), &mut out);
        assert_eq!(out, vec![TimeWindow::new(6, 8), TimeWindow::new(8, 10)]);
    }

    #[test]
    fn sliding_assigns_size_over_slide_windows() {
        let mut out = Vec::new();
        SlidingWindows::of(10, 5).assign(12, &mut out);
        assert_eq!(out, vec![TimeWindow::new(10, 20), TimeWindow::new(5, 15)]);
        out.clear();
        SlidingWindows::of(10, 3).assign(0, &mut out);
        assert_eq!(
            out,
            vec![
                TimeWindow::new(0, 10),
                TimeWindow::new(-3, 7),
                TimeWindow::new(-6, 4),
                TimeWindow::new(-9, 1)
            ]
        );
    }
}
