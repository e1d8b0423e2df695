//! Nexmark q8, monitor new users: a window join of persons and the auctions
//! they opened in the window they joined in.
//!
//! Flink's q8 groups both sides by window before joining them —
//! `GROUP BY P.id, P.name, TUMBLE(P.dateTime, …)` joined on id, start and
//! end to `GROUP BY A.seller, TUMBLE(A.dateTime, …)` — so it yields one row
//! per person and window in which they also opened an auction, however many
//! auctions they opened there (set semantics on the auction side).

use serde::Serialize;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::{persons_and_auctions, Ctx, WindowParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// q8's output, under the names of the reference's sink table
/// `nexmark_q8 (id, name, stime)`.
#[derive(Debug, Clone, Serialize)]
pub struct NewSeller {
    pub id: i64,
    pub name: SharedStr,
    #[serde(rename = "stime")]
    pub starttime: i64,
}

/// Per person and tumbling window: the person's name (if they joined in it)
/// and the auctions they opened in it.
struct WindowJoin {
    size: i64,
    joined: sluice_engine::keyed_state::MapState<i64, i64, SharedStr>,
    auctions: sluice_engine::keyed_state::MapState<i64, i64, u64>,
}

impl WindowJoin {
    fn window_start(&self, ts: i64) -> i64 {
        ts - ts.rem_euclid(self.size)
    }
}

impl sluice_engine::operators::KeyedCoProcess<i64, (i64, SharedStr), (i64, i64), NewSeller>
    for WindowJoin
{
    fn process_first(&mut self, (_id, name): (i64, SharedStr), ctx: &mut Ctx<'_, NewSeller>) {
        let start = self.window_start(ctx.timestamp());
        self.joined.put(ctx, start, name);
        ctx.register_event_timer(start + self.size - 1);
    }
    fn process_second(&mut self, (_seller, _auction): (i64, i64), ctx: &mut Ctx<'_, NewSeller>) {
        let start = self.window_start(ctx.timestamp());
        let n = self.auctions.get(ctx, &start).unwrap_or(0);
        self.auctions.put(ctx, start, n + 1);
        ctx.register_event_timer(start + self.size - 1);
    }
    fn on_timer(
        &mut self,
        time: i64,
        _domain: sluice_engine::operators::TimeDomain,
        ctx: &mut Ctx<'_, NewSeller>,
    ) {
        let start = time + 1 - self.size;
        let name = self.joined.remove(ctx, &start);
        let count = self.auctions.remove(ctx, &start).unwrap_or(0);
        if let Some(name) = name.filter(|_| count > 0) {
            ctx.collect(NewSeller {
                id: *ctx.key(),
                name,
                starttime: start,
            });
        }
    }
}

/// Monitor new users: persons who opened auctions in the same tumbling window
/// (10 s) in which they joined; one row per such person and window.
pub fn q8(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let p: WindowParams = file.params()?;
    let size = WindowParams::positive(file, "window_size_ms", p.window_size_ms, 10_000)?;
    let (persons, auctions) = persons_and_auctions(file, env, "q8")?;
    let people = persons
        .map(|p: sluice_engine::connectors::nexmark::Person| (p.id, p.name))
        .key_by(|p: &(i64, SharedStr)| p.0);
    let sellers = auctions
        .map(|a: sluice_engine::connectors::nexmark::Auction| (a.seller, a.id))
        .key_by(|a: &(i64, i64)| a.0);
    let rows = people
        .connect(&sellers)
        .process(move |state: &mut sluice_state::StateBackend| WindowJoin {
            size,
            joined: sluice_engine::keyed_state::MapState::new(state, "q8/joined"),
            auctions: sluice_engine::keyed_state::MapState::new(state, "q8/auctions"),
        });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}
