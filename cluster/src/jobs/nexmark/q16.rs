//! Nexmark q16, channel statistics report: q15's statistics per channel and
//! day, with the latest minute of the day seen. An upsert stream keyed by
//! (channel, day).

use serde::ser::{Serialize, SerializeStruct, Serializer};
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::keyed_state::ValueState;
use sluice_engine::operators::ProcessContext;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::bids;
use super::calendar::{day_number, format_day, format_minute, minute_of_day};
use super::price_ranks::{PriceRankCounts, PriceRankState, PriceRanks};
use crate::job_file::{JobFileError, RegisteredJob};

/// q16's output: a channel's statistics of a day so far.
#[derive(Debug, Clone)]
pub struct ChannelStatistics {
    pub channel: SharedStr,
    pub day: String,
    pub minute: String,
    pub counts: PriceRankCounts,
}

impl Serialize for ChannelStatistics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s =
            serializer.serialize_struct("ChannelStatistics", 3 + PriceRankCounts::FIELDS)?;
        s.serialize_field("channel", &self.channel)?;
        s.serialize_field("day", &self.day)?;
        s.serialize_field("minute", &self.minute)?;
        self.counts.serialize_fields(&mut s)?;
        s.end()
    }
}

type ChannelDay = (SharedStr, i64);

/// (bidder, auction, price, dateTime) of a bid.
type BidFacts = (i64, i64, i64, i64);

struct ChannelReport {
    state: PriceRankState<ChannelDay>,
    latest_minute: ValueState<ChannelDay, u32>,
}

impl sluice_engine::operators::KeyedProcess<ChannelDay, (ChannelDay, BidFacts), ChannelStatistics>
    for ChannelReport
{
    fn process_element(
        &mut self,
        (_, (bidder, auction, price, date_time)): (ChannelDay, BidFacts),
        ctx: &mut ProcessContext<'_, ChannelDay, ChannelStatistics>,
    ) {
        let counts = self.state.add(ctx, bidder, auction, price);
        let minute = self.latest_minute.modify(ctx, |latest| {
            *latest = (*latest).max(minute_of_day(date_time));
            *latest
        });
        let (channel, day) = ctx.key().clone();
        ctx.collect(ChannelStatistics {
            channel,
            day: format_day(day),
            minute: format_minute(minute),
            counts,
        });
    }
}

/// `SELECT channel, DATE_FORMAT(dateTime, 'yyyy-MM-dd') AS day,
/// max(DATE_FORMAT(dateTime, 'HH:mm')) AS minute, <q15's counts> FROM bid
/// GROUP BY channel, day`
pub fn q16(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    let ranks = PriceRanks::from_params(file)?;
    let rows = bids(file, env, "q16")?
        .map(|b: Bid| {
            (
                (b.channel, day_number(b.date_time)),
                (b.bidder, b.auction, b.price, b.date_time),
            )
        })
        .key_by(|r: &(ChannelDay, BidFacts)| r.0.clone())
        .process(
            move |state: &mut sluice_state::StateBackend| ChannelReport {
                state: PriceRankState::new(state, "q16", ranks),
                latest_minute: ValueState::new(state, "q16/latest_minute"),
            },
        );
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}
