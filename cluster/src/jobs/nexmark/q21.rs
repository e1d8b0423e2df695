//! Nexmark q21, add channel id: bids of the four known channels or with a
//! `channel_id` query parameter in their URL, with that id.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::{bids, NoParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// q21's output.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelBid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: SharedStr,
    pub channel_id: String,
}

/// `REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)`: the value of the
/// first `channel_id=` that starts the URL or follows a `&`, up to the next
/// `&`.
pub fn channel_id_parameter(url: &str) -> Option<&str> {
    const NAME: &str = "channel_id=";
    let mut from = 0;
    while let Some(found) = url[from..].find(NAME) {
        let at = from + found;
        if at == 0 || url.as_bytes()[at - 1] == b'&' {
            let value = &url[at + NAME.len()..];
            return Some(value.split('&').next().unwrap_or(value));
        }
        from = at + 1;
    }
    None
}

/// The id of a known channel, compared as `lower(channel)`.
fn known_channel_id(channel: &str) -> Option<&'static str> {
    [
        ("apple", "0"),
        ("google", "1"),
        ("facebook", "2"),
        ("baidu", "3"),
    ]
    .into_iter()
    .find(|(name, _)| channel.eq_ignore_ascii_case(name))
    .map(|(_, id)| id)
}

/// `SELECT auction, bidder, price, channel, CASE WHEN lower(channel) = 'apple'
/// THEN '0' … ELSE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) END AS
/// channel_id FROM bid WHERE REGEXP_EXTRACT(…) IS NOT NULL OR lower(channel) IN
/// ('apple', 'google', 'facebook', 'baidu')`
pub fn q21(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let rows = bids(file, env, "q21")?.flat_map(|b: Bid| {
        let channel_id = known_channel_id(&b.channel)
            .or_else(|| channel_id_parameter(&b.url))?
            .to_owned();
        Some(ChannelBid {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            channel: b.channel,
            channel_id,
        })
    });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parameter_must_start_the_url_or_follow_an_ampersand() {
        assert_eq!(channel_id_parameter("channel_id=7"), Some("7"));
        assert_eq!(channel_id_parameter("a?q=1&channel_id=42&x=1"), Some("42"));
        assert_eq!(
            channel_id_parameter("a?my_channel_id=1&channel_id=2"),
            Some("2")
        );
        assert_eq!(channel_id_parameter("a?my_channel_id=1"), None);
        assert_eq!(channel_id_parameter("a?q=1&channel_id="), Some(""));
        assert_eq!(channel_id_parameter("https://x/y"), None);
    }

    #[test]
    fn known_channels_ignore_case() {
        assert_eq!(known_channel_id("Apple"), Some("0"));
        assert_eq!(known_channel_id("BAIDU"), Some("3"));
        assert_eq!(known_channel_id("channel-3"), None);
    }
}
