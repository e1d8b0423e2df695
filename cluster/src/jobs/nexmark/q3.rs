//! Nexmark q3, local item suggestion: an unbounded stream join of auctions
//! and their sellers.

use serde::Serialize;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::{persons_and_auctions, Ctx};
use crate::job_file::{JobFileError, RegisteredJob};

/// q3's output.
#[derive(Debug, Clone, Serialize)]
pub struct LocalItem {
    pub name: SharedStr,
    pub city: SharedStr,
    pub state: SharedStr,
    pub id: i64,
}

/// Joins auctions to their sellers as both arrive (an unbounded inner join).
struct SellerJoin {
    person: sluice_engine::keyed_state::ValueState<i64, (SharedStr, SharedStr, SharedStr)>,
    waiting: sluice_engine::keyed_state::ListState<i64, i64>,
}

impl
    sluice_engine::operators::KeyedCoProcess<
        i64,
        (i64, i64),
        (i64, SharedStr, SharedStr, SharedStr),
        LocalItem,
    > for SellerJoin
{
    fn process_first(&mut self, (_seller, auction): (i64, i64), ctx: &mut Ctx<'_, LocalItem>) {
        match self.person.value(ctx) {
            Some((name, city, state)) => ctx.collect(LocalItem {
                name,
                city,
                state,
                id: auction,
            }),
            None => {
                self.waiting.add(ctx, auction);
            }
        }
    }
    fn process_second(
        &mut self,
        (_id, name, city, state): (i64, SharedStr, SharedStr, SharedStr),
        ctx: &mut Ctx<'_, LocalItem>,
    ) {
        for auction in self.waiting.take(ctx) {
            ctx.collect(LocalItem {
                name: name.clone(),
                city: city.clone(),
                state: state.clone(),
                id: auction,
            });
        }
        self.person.update(ctx, (name, city, state));
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Q3Params {
    #[serde(default = "ten")]
    category: i64,
    #[serde(default = "western_states")]
    states: Vec<String>,
}

fn ten() -> i64 {
    10
}

fn western_states() -> Vec<String> {
    ["OR", "ID", "CA"].map(String::from).to_vec()
}

/// Local item suggestion: auctions of category 10 (`category`) by sellers in
/// OR, ID or CA (`states`).
pub fn q3(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let Q3Params { category, states } = file.params()?;
    let (persons, auctions) = persons_and_auctions(file, env, "q3")?;
    let sellers = persons
        .filter(move |p: &sluice_engine::connectors::nexmark::Person| {
            states.iter().any(|s| *s == p.state)
        })
        .map(|p: sluice_engine::connectors::nexmark::Person| (p.id, p.name, p.city, p.state))
        .key_by(|p: &(i64, SharedStr, SharedStr, SharedStr)| p.0);
    let items = auctions
        .filter(move |a: &sluice_engine::connectors::nexmark::Auction| a.category == category)
        .map(|a: sluice_engine::connectors::nexmark::Auction| (a.seller, a.id))
        .key_by(|a: &(i64, i64)| a.0)
        .connect(&sellers)
        .process(|state: &mut sluice_state::StateBackend| SellerJoin {
            person: sluice_engine::keyed_state::ValueState::new(state, "q3/person"),
            waiting: sluice_engine::keyed_state::ListState::new(state, "q3/waiting"),
        });
    crate::jobs::attach_sink(file, &items);
    Ok(())
}
