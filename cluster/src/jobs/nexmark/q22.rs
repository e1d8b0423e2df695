//! Nexmark q22, get URL directories: each bid with the first three directory
//! names of its URL.

use serde::Serialize;
use sluice_engine::connectors::nexmark::Bid;
use sluice_engine::SharedStr;
use sluice_engine::StreamEnv;

use super::{bids, NoParams};
use crate::job_file::{JobFileError, RegisteredJob};

/// q22's output; a directory past the URL's last `/` is null.
#[derive(Debug, Clone, Serialize)]
pub struct BidDirectories {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: SharedStr,
    pub dir1: Option<String>,
    pub dir2: Option<String>,
    pub dir3: Option<String>,
}

/// `SPLIT_INDEX(url, '/', 3..=5)`: fields 3, 4 and 5 (from 0) of the URL split
/// at every `/`, empty fields included.
pub fn directories(url: &str) -> [Option<String>; 3] {
    let mut fields = url.split('/').skip(3).map(str::to_owned);
    [fields.next(), fields.next(), fields.next()]
}

/// `SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) AS dir1,
/// SPLIT_INDEX(url, '/', 4) AS dir2, SPLIT_INDEX(url, '/', 5) AS dir3 FROM bid`
pub fn q22(file: &RegisteredJob, env: &StreamEnv) -> Result<(), JobFileError> {
    file.params::<NoParams>()?;
    let rows = bids(file, env, "q22")?.map(|b: Bid| {
        let [dir1, dir2, dir3] = directories(&b.url);
        BidDirectories {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            channel: b.channel,
            dir1,
            dir2,
            dir3,
        }
    });
    crate::jobs::attach_sink(file, &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_count_from_zero_and_keep_empty_ones() {
        let dirs = directories("https://www.nexmark.com/a/b/item.htm?query=1");
        assert_eq!(
            dirs,
            [
                Some("a".to_owned()),
                Some("b".to_owned()),
                Some("item.htm?query=1".to_owned())
            ]
        );
        assert_eq!(directories("x//y/"), [Some(String::new()), None, None]);
        assert_eq!(directories("no-slashes"), [None, None, None]);
    }
}
