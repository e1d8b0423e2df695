//! Flink's built-in scalar functions that Sluice has, and user-defined
//! scalar functions registered from Rust.
//!
//! Time functions read a TIMESTAMP as UTC wall-clock time (Flink's TIMESTAMP
//! has no zone; Sluice's epoch milliseconds are its UTC reading).

use std::sync::Arc;

use super::expr::{BoundExpr, EvalError, EvalResult};
use super::sql_type::SqlType;
use super::value::{decimal_text, Row, Value};

/// A built-in scalar function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Upper,
    Lower,
    CharLength,
    /// `CONCAT(a, b, …)`: NULL if any argument is.
    Concat,
    /// `SUBSTRING(s FROM start [FOR length])`, 1-based.
    Substring,
    /// `SPLIT_INDEX(s, separator, index)`: the index-th (from 0) field.
    SplitIndex,
    /// `DATE_FORMAT(timestamp, 'yyyy-MM-dd HH:mm')` (Java's pattern letters).
    DateFormat(Arc<[DatePart]>),
    /// `HOUR(ts)`, `EXTRACT(HOUR FROM ts)` and their kin.
    Extract(TimeField),
    Abs,
    /// `s LIKE pattern` with a constant pattern (`%`, `_`, an escape).
    Like(Arc<[LikeToken]>),
    /// `REGEXP_EXTRACT(s, regex, group)` with a constant regex: the group of
    /// the first match; NULL without a match or with no such group.
    RegexpExtract(Pattern, usize),
    /// `PROCTIME()`: the wall-clock time the row is processed at, a
    /// TIMESTAMP_LTZ(3) (Flink's processing-time attribute).
    Proctime,
    /// `TO_TIMESTAMP_LTZ(n, 0 | 3)`: epoch seconds (0) or milliseconds (3)
    /// as a TIMESTAMP_LTZ(3); the milliseconds per unit of `n`. NULL gives
    /// NULL; a time beyond BIGINT milliseconds fails the row.
    ToTimestampLtz(i64),
}

/// A piece of a LIKE pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LikeToken {
    Char(char),
    /// `_`: any one character.
    One,
    /// `%`: any run of characters.
    Any,
}

/// A compiled regular expression (compared by its text).
#[derive(Debug, Clone)]
pub struct Pattern(pub Arc<regex::Regex>);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

/// A field of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

/// A piece of a `DATE_FORMAT` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatePart {
    Text(String),
    /// A field zero-padded to `width` digits (`yyyy`, `MM`, `dd`, `HH`, `mm`, `ss`).
    Field(TimeField, usize),
    /// Milliseconds, `SSS`.
    Millis,
}

/// A scalar function written in Rust: its name, argument and result types,
/// and the function (NULL arguments are passed through as `Value::Null`).
pub struct ScalarUdf {
    pub name: String,
    pub args: Vec<SqlType>,
    pub result: SqlType,
    #[allow(clippy::type_complexity)]
    /// The function of the arguments' values, lent from the row (a string
    /// argument is not copied to call it).
    pub eval: Box<dyn Fn(&[&Value]) -> EvalResult + Send + Sync>,
}

impl std::fmt::Debug for ScalarUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({:?}) -> {}", self.name, self.args, self.result)
    }
}

impl Scalar {
    /// Calls the function on the arguments' values for `row`.
    pub fn call(&self, args: &[BoundExpr], row: &Row) -> EvalResult {
        let arg = |i: usize| args[i].eval(row);
        match self {
            Scalar::Upper | Scalar::Lower | Scalar::CharLength => {
                args[0].with_value(row, |v| match v {
                    Value::Str(s) => match self {
                        Scalar::Upper => Value::Str(s.to_uppercase()),
                        Scalar::Lower => Value::Str(s.to_lowercase()),
                        _ => Value::Int(s.chars().count() as i64),
                    },
                    _ => Value::Null,
                })
            }
            Scalar::Concat => {
                let mut out = String::new();
                for a in args {
                    match a.eval(row)? {
                        Value::Str(s) => out.push_str(&s),
                        _ => return Ok(Value::Null),
                    }
                }
                Ok(Value::Str(out))
            }
            Scalar::Substring => {
                let Value::Str(s) = arg(0)? else {
                    return Ok(Value::Null);
                };
                let Value::Int(start) = arg(1)? else {
                    return Ok(Value::Null);
                };
                let length = match args.get(2) {
                    Some(a) => match a.eval(row)? {
                        Value::Int(l) if l < 0 => {
                            return Err(EvalError(format!("SUBSTRING length {l} is negative")))
                        }
                        Value::Int(l) => Some(l),
                        _ => return Ok(Value::Null),
                    },
                    None => None,
                };
                // SQL positions: from 1; a start below 1 eats into the length.
                let first = start.max(1);
                let end = length.map(|l| start.saturating_add(l));
                let chars = s
                    .chars()
                    .skip((first - 1) as usize)
                    .take(end.map_or(usize::MAX, |e| (e - first).max(0) as usize));
                Ok(Value::Str(chars.collect()))
            }
            Scalar::SplitIndex => {
                args[0].with_value(row, |s| {
                    args[1].with_value(row, |sep| {
                        let (Value::Str(s), Value::Str(sep), Value::Int(index)) = (s, sep, arg(2)?)
                        else {
                            return Ok(Value::Null);
                        };
                        Ok(split_index(s, sep, index)
                            .map_or(Value::Null, |f| Value::Str(f.to_owned())))
                    })?
                })?
            }
            Scalar::DateFormat(parts) => {
                let Value::Timestamp(ms) = arg(0)? else {
                    return Ok(Value::Null);
                };
                Ok(Value::Str(format_date(ms, parts)))
            }
            Scalar::Extract(field) => {
                let Value::Timestamp(ms) = arg(0)? else {
                    return Ok(Value::Null);
                };
                Ok(Value::Int(time_field(ms, *field)))
            }
            Scalar::Like(tokens) => args[0].with_value(row, |v| match v {
                Value::Str(s) => Value::Bool(like_matches(s, tokens)),
                _ => Value::Null,
            }),
            Scalar::RegexpExtract(Pattern(regex), group) => args[0].with_value(row, |v| {
                let Value::Str(s) = v else {
                    return Value::Null;
                };
                regex
                    .captures(s)
                    .and_then(|c| c.get(*group))
                    .map_or(Value::Null, |m| Value::Str(m.as_str().to_owned()))
            }),
            Scalar::Proctime => Ok(Value::Timestamp(wall_clock_ms())),
            Scalar::ToTimestampLtz(unit_ms) => match arg(0)? {
                Value::Int(n) => n
                    .checked_mul(*unit_ms)
                    .map(Value::Timestamp)
                    .ok_or_else(|| {
                        EvalError(format!(
                            "TO_TIMESTAMP_LTZ({n}, 0) is beyond the range of TIMESTAMP_LTZ(3)"
                        ))
                    }),
                _ => Ok(Value::Null),
            },
            Scalar::Abs => Ok(match arg(0)? {
                Value::Int(v) => Value::Int(v.wrapping_abs()),
                Value::Double(v) => Value::Double(v.abs()),
                Value::Decimal(v) => Value::Decimal(v.abs()),
                _ => Value::Null,
            }),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A LIKE pattern's tokens; `escape` makes the next character literal.
pub fn compile_like(pattern: &str, escape: Option<char>) -> Result<Vec<LikeToken>, String> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            c if Some(c) == escape => match chars.next() {
                Some(next) => LikeToken::Char(next),
                None => {
                    return Err(format!(
                        "LIKE pattern '{pattern}' ends with its escape character"
                    ))
                }
            },
            '%' => LikeToken::Any,
            '_' => LikeToken::One,
            c => LikeToken::Char(c),
        });
    }
    Ok(tokens)
}

/// Whether `s` matches the LIKE pattern `tokens` (the whole of `s`).
pub fn like_matches(s: &str, tokens: &[LikeToken]) -> bool {
    let text: Vec<char> = s.chars().collect();
    // Greedy matching with one backtrack point: the last `%` seen.
    let (mut t, mut p) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(LikeToken::Any) => {
                resume = Some((p, t));
                p += 1;
            }
            Some(LikeToken::One) => {
                t += 1;
                p += 1;
            }
            Some(LikeToken::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match resume {
                // Let the last `%` take one more character.
                Some((star, from)) => {
                    p = star + 1;
                    t = from + 1;
                    resume = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|token| *token == LikeToken::Any)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One field of the UTC reading of epoch milliseconds.
pub fn time_field(ms: i64, field: TimeField) -> i64 {
    let day_ms = ms.rem_euclid(86_400_000);
    match field {
        TimeField::Year | TimeField::Month | TimeField::Day => {
            let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
            match field {
                TimeField::Year => y,
                TimeField::Month => m,
                _ => d,
            }
        }
        TimeField::Hour => day_ms / 3_600_000,
        TimeField::Minute => day_ms / 60_000 % 60,
        TimeField::Second => day_ms / 1000 % 60,
    }
}

/// Compiles a Java date pattern (`yyyy-MM-dd HH:mm:ss.SSS`, text in single
/// quotes); letters Sluice does not format are an error naming them.
pub fn compile_date_pattern(pattern: &str) -> Result<Vec<DatePart>, String> {
    let mut parts = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut text = String::new();
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        if c == '\'' {
            let close = chars[i + 1..].iter().position(|&x| x == '\'');
            let Some(close) = close else {
                return Err(format!("unclosed quote in date pattern '{pattern}'"));
            };
            text.extend(&chars[i + 1..i + 1 + close]);
            i += close + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            text.push(c);
            i += 1;
            continue;
        }
        if !text.is_empty() {
            parts.push(DatePart::Text(std::mem::take(&mut text)));
        }
        parts.push(match c {
            'y' => DatePart::Field(TimeField::Year, run),
            'M' => DatePart::Field(TimeField::Month, run),
            'd' => DatePart::Field(TimeField::Day, run),
            'H' => DatePart::Field(TimeField::Hour, run),
            'm' => DatePart::Field(TimeField::Minute, run),
            's' => DatePart::Field(TimeField::Second, run),
            'S' if run == 3 => DatePart::Millis,
            _ => {
                return Err(format!(
                    "date pattern letter '{}' in '{pattern}' is not supported (yyyy, MM, dd, HH, mm, ss, SSS are)",
                    chars[i..i + run].iter().collect::<String>()
                ))
            }
        });
        i += run;
    }
    if !text.is_empty() {
        parts.push(DatePart::Text(text));
    }
    Ok(parts)
}

/// Formats epoch milliseconds with a compiled pattern.
pub fn format_date(ms: i64, parts: &[DatePart]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(24);
    for part in parts {
        match part {
            DatePart::Text(t) => out.push_str(t),
            DatePart::Field(field, width) => {
                let _ = write!(out, "{:0width$}", time_field(ms, *field), width = *width);
            }
            DatePart::Millis => {
                let _ = write!(out, "{:03}", ms.rem_euclid(1000));
            }
        }
    }
    out
}

/// `yyyy-MM-dd HH:mm:ss[.SSS]` → epoch milliseconds (UTC reading).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let (date, time) = text.split_once([' ', 'T']).unwrap_or((text, "00:00:00"));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
    let millis: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, da) * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + millis)
}

/// A value as text, as `CAST(v AS STRING)` writes it.
pub fn to_text(v: &Value, ty: &SqlType) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Decimal(d) => decimal_text(*d, ty.as_decimal().map_or(0, |(_, s)| s)),
        Value::Str(s) => s.clone(),
        Value::Timestamp(ms) => {
            let parts = [
                DatePart::Field(TimeField::Year, 4),
                DatePart::Text("-".into()),
                DatePart::Field(TimeField::Month, 2),
                DatePart::Text("-".into()),
                DatePart::Field(TimeField::Day, 2),
                DatePart::Text(" ".into()),
                DatePart::Field(TimeField::Hour, 2),
                DatePart::Text(":".into()),
                DatePart::Field(TimeField::Minute, 2),
                DatePart::Text(":".into()),
                DatePart::Field(TimeField::Second, 2),
                DatePart::Text(".".into()),
                DatePart::Millis,
            ];
            format_date(*ms, &parts)
        }
    }
}

/// `SPLIT_INDEX(s, sep, index)` on non-NULL arguments: field `index` of
/// `s` split at `sep`; `None` (NULL) for a negative index, an empty
/// separator or too few fields.
pub(crate) fn split_index<'s>(s: &'s str, sep: &str, index: i64) -> Option<&'s str> {
    if index < 0 || sep.is_empty() {
        return None;
    }
    split_nth(s, sep, index as usize)
}

/// Field `index` of `s` split at every `sep` (empty fields kept, as
/// Flink's `splitPreserveAllTokens`). A one-byte (ASCII) separator is
/// searched with memchr, not as a substring.
fn split_nth<'s>(s: &'s str, sep: &str, index: usize) -> Option<&'s str> {
    let &[byte] = sep.as_bytes() else {
        return s.split(sep).nth(index);
    };
    let mut fields = memchr::memchr_iter(byte, s.as_bytes());
    // An ASCII byte only ever occurs as that character: every cut is on a
    // character boundary.
    let start = match index {
        0 => 0,
        _ => fields.nth(index - 1)? + 1,
    };
    let end = fields.next().unwrap_or(s.len());
    Some(&s[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_and_formats() {
        for days in [-800_000, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // 2015-07-15 12:34:56.789 UTC
        let ms = 1_436_963_696_789;
        let parts = compile_date_pattern("yyyy-MM-dd HH:mm:ss.SSS").unwrap();
        assert_eq!(format_date(ms, &parts), "2015-07-15 12:34:56.789");
        let parts = compile_date_pattern("'day' dd, HH:mm").unwrap();
        assert_eq!(format_date(ms, &parts), "day 15, 12:34");
        assert_eq!(parse_timestamp("2015-07-15 12:34:56.789"), Some(ms));
        assert_eq!(time_field(ms, TimeField::Hour), 12);
        assert!(compile_date_pattern("EEE").unwrap_err().contains("'EEE'"));
    }

    proptest::proptest! {
        #[test]
        fn split_nth_is_the_nth_field_of_split(
            s in "[a/é:]{0,12}",
            sep in proptest::sample::select(vec!["/", ":", "é", "::", "/a"]),
            index in 0usize..6,
        ) {
            proptest::prop_assert_eq!(split_nth(&s, sep, index), s.split(sep).nth(index));
        }
    }
}
