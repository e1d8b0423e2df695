//! An [`Event`] read from JSON in one pass: the object's fields into one
//! flat record (every kind's fields, each optional), then the event its
//! `"type"` names. serde's derived reader of an internally tagged enum
//! first buffers the whole object (every key and string allocated) to find
//! the tag; this one reads each string straight into its [`SharedStr`]
//! (inline, no allocation, up to 22 bytes). Fields of other kinds and
//! unknown fields are ignored, as the derived reader ignores them; a
//! missing field is named. Pure functions, on whatever core parses.

use serde::de::Error;
use serde::{Deserialize, Deserializer};

use super::{Auction, Bid, Event, Person};
use crate::SharedStr;

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Person,
    Auction,
    Bid,
}

/// The union of the three kinds' fields, by their JSON names.
#[derive(Deserialize)]
struct FlatEvent {
    #[serde(rename = "type")]
    kind: Kind,
    id: Option<i64>,
    name: Option<SharedStr>,
    #[serde(rename = "emailAddress")]
    email_address: Option<SharedStr>,
    #[serde(rename = "creditCard")]
    credit_card: Option<SharedStr>,
    city: Option<SharedStr>,
    state: Option<SharedStr>,
    #[serde(rename = "itemName")]
    item_name: Option<SharedStr>,
    description: Option<SharedStr>,
    #[serde(rename = "initialBid")]
    initial_bid: Option<i64>,
    reserve: Option<i64>,
    expires: Option<i64>,
    seller: Option<i64>,
    category: Option<i64>,
    auction: Option<i64>,
    bidder: Option<i64>,
    price: Option<i64>,
    channel: Option<SharedStr>,
    url: Option<SharedStr>,
    #[serde(rename = "dateTime")]
    date_time: Option<i64>,
    extra: Option<SharedStr>,
}

/// `value`, or the error that `field` is missing.
fn required<T, E: Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(field))
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let e = FlatEvent::deserialize(deserializer)?;
        Ok(match e.kind {
            Kind::Person => Event::Person(Person {
                id: required(e.id, "id")?,
                name: required(e.name, "name")?,
                email_address: required(e.email_address, "emailAddress")?,
                credit_card: required(e.credit_card, "creditCard")?,
                city: required(e.city, "city")?,
                state: required(e.state, "state")?,
                date_time: required(e.date_time, "dateTime")?,
                extra: required(e.extra, "extra")?,
            }),
            Kind::Auction => Event::Auction(Auction {
                id: required(e.id, "id")?,
                item_name: required(e.item_name, "itemName")?,
                description: required(e.description, "description")?,
                initial_bid: required(e.initial_bid, "initialBid")?,
                reserve: required(e.reserve, "reserve")?,
                date_time: required(e.date_time, "dateTime")?,
                expires: required(e.expires, "expires")?,
                seller: required(e.seller, "seller")?,
                category: required(e.category, "category")?,
                extra: required(e.extra, "extra")?,
            }),
            Kind::Bid => Event::Bid(Bid {
                auction: required(e.auction, "auction")?,
                bidder: required(e.bidder, "bidder")?,
                price: required(e.price, "price")?,
                channel: required(e.channel, "channel")?,
                url: required(e.url, "url")?,
                date_time: required(e.date_time, "dateTime")?,
                extra: required(e.extra, "extra")?,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::nexmark::{NexmarkConfig, NexmarkGenerator};

    #[test]
    fn every_generated_event_reads_back_as_itself() {
        let mut generator = NexmarkGenerator::new(NexmarkConfig {
            seed: 11,
            ..Default::default()
        });
        for n in 0..20_000 {
            let event = generator.event(n);
            let json = serde_json::to_string(&event).unwrap();
            let read: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(read, event, "{json}");
        }
    }

    #[test]
    fn fields_in_any_order_and_of_other_kinds_are_read() {
        let json = r#"{"extra":"x","dateTime":5,"id":9,"url":"u","type":"bid","auction":1,
            "bidder":2,"price":3,"channel":"c"}"#;
        let read: Event = serde_json::from_str(json).unwrap();
        assert_eq!(
            read,
            Event::Bid(Bid {
                auction: 1,
                bidder: 2,
                price: 3,
                channel: "c".into(),
                url: "u".into(),
                date_time: 5,
                extra: "x".into(),
            })
        );
    }

    #[test]
    fn a_missing_field_or_an_unknown_type_is_named() {
        let missing = serde_json::from_str::<Event>(r#"{"type":"person","id":1,"name":"n"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("missing field `emailAddress`"),
            "{missing}"
        );
        let kind = serde_json::from_str::<Event>(r#"{"type":"sale","id":1}"#)
            .unwrap_err()
            .to_string();
        assert!(kind.contains("unknown variant `sale`"), "{kind}");
        let wrong = serde_json::from_str::<Event>(r#"{"type":"bid","auction":"many"}"#)
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("invalid type"), "{wrong}");
    }
}
