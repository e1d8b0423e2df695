//! UTC calendar fields of event times (ms since the Unix epoch), as Flink SQL's
//! `DATE_FORMAT(ts, 'yyyy-MM-dd')`, `DATE_FORMAT(ts, 'HH:mm')` and `HOUR(ts)`
//! give them for a `TIMESTAMP(3)` in a UTC session.
//!
//! Days are computed with the proleptic Gregorian calendar from day numbers;
//! the tests check every day from 1900 to 2100 against counting days month by
//! month.

const MS_PER_DAY: i64 = 86_400_000;

/// The days since 1970-01-01 of the instant `ms`.
pub fn day_number(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// Minutes since midnight of the instant `ms` (0..1440).
pub fn minute_of_day(ms: i64) -> u32 {
    (ms.rem_euclid(MS_PER_DAY) / 60_000) as u32
}

/// The hour of the instant `ms` (0..24).
pub fn hour(ms: i64) -> u32 {
    minute_of_day(ms) / 60
}

/// (year, month 1..=12, day 1..=31) of a day number.
pub fn civil_date(day_number: i64) -> (i64, u32, u32) {
    // Shift to a calendar whose years start on 1 March, so the leap day is the
    // last day of a year; then 400-year eras repeat exactly.
    let shifted = day_number + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `yyyy-MM-dd` of a day number.
pub fn format_day(day_number: i64) -> String {
    let (y, m, d) = civil_date(day_number);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:mm` of a minute of the day.
pub fn format_minute(minute_of_day: u32) -> String {
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_day(day_number(0)), "1970-01-01");
        assert_eq!(format_day(day_number(-1)), "1969-12-31");
        // 1_700_000_000 s is 2023-11-14T22:13:20Z.
        let t = 1_700_000_000_000;
        assert_eq!(format_day(day_number(t)), "2023-11-14");
        assert_eq!(format_minute(minute_of_day(t)), "22:13");
        assert_eq!(hour(t), 22);
        assert_eq!(format_day(day_number(951_782_400_000)), "2000-02-29");
        assert_eq!(format_minute(minute_of_day(-60_000)), "23:59");
    }

    #[test]
    fn every_day_from_1900_to_2100_follows_the_month_lengths() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut day = -25_567; // 1900-01-01
        for year in 1900..2100 {
            for month in 1..=12u32 {
                let length = match month {
                    2 if leap(year) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                for d in 1..=length {
                    assert_eq!(civil_date(day), (year, month, d), "day {day}");
                    day += 1;
                }
            }
        }
    }
}
