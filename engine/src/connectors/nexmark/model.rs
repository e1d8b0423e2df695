//! The Nexmark records, with the reference field names. Times are milliseconds
//! since the Unix epoch. Their strings are [`SharedStr`]s: the generator builds
//! an event without allocating (short strings inline, URLs and padding shared).

use rkyv::{Archive, Deserialize, Serialize};

use crate::SharedStr;

#[derive(
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
)]
pub struct Person {
    pub id: i64,
    pub name: SharedStr,
    #[serde(rename = "emailAddress")]
    pub email_address: SharedStr,
    #[serde(rename = "creditCard")]
    pub credit_card: SharedStr,
    pub city: SharedStr,
    pub state: SharedStr,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub extra: SharedStr,
}

#[derive(
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
)]
pub struct Auction {
    pub id: i64,
    #[serde(rename = "itemName")]
    pub item_name: SharedStr,
    pub description: SharedStr,
    #[serde(rename = "initialBid")]
    pub initial_bid: i64,
    pub reserve: i64,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub expires: i64,
    pub seller: i64,
    pub category: i64,
    pub extra: SharedStr,
}

#[derive(
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
)]
pub struct Bid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: SharedStr,
    pub url: SharedStr,
    #[serde(rename = "dateTime")]
    pub date_time: i64,
    pub extra: SharedStr,
}

/// One Nexmark event. As JSON, its kind is in `"type"`; it is read back by
/// `event_json.rs` in one pass (serde's derived reader buffers the object).
#[derive(Archive, Serialize, Deserialize, serde::Serialize, Debug, Clone, PartialEq, Eq, Hash)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    Person(Person),
    Auction(Auction),
    Bid(Bid),
}

impl Event {
    /// The event's time (its `dateTime`).
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }
}

/// A bid's numeric fields only (no channel, URL or extra): the input of the
/// keyed window count every peer runs.
#[derive(
    Archive,
    Serialize,
    Deserialize,
    serde::Serialize,
    serde::Deserialize,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
)]
pub struct NumericBid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub date_time: i64,
}
