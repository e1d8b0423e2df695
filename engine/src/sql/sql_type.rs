//! Flink SQL's data types as Sluice knows them, and their parsing from a
//! column definition's tokens.
//!
//! `STRING`, `VARCHAR(n)` and `CHAR(n)` are one type here (Sluice does not
//! pad or truncate strings); `INTEGER` is `INT`; `TIMESTAMP` without a
//! precision is `TIMESTAMP(6)` as in Flink, though values are kept in
//! milliseconds.

use std::fmt;

use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::error::{Position, SqlError};

/// A column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Varchar,
    Date,
    Time,
    Timestamp {
        precision: u8,
    },
    TimestampLtz {
        precision: u8,
    },
    Row(Vec<RowField>),
    /// The type of a bare `NULL` literal: it takes the type it meets.
    Null,
    /// A day-time interval (`INTERVAL '10' SECOND`), in milliseconds; only
    /// expressions have it, never a column.
    Interval,
}

/// A named field of a `ROW` type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowField {
    pub name: String,
    pub ty: SqlType,
}

impl SqlType {
    /// True for the exact and approximate numeric types.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            SqlType::TinyInt
                | SqlType::SmallInt
                | SqlType::Int
                | SqlType::BigInt
                | SqlType::Float
                | SqlType::Double
                | SqlType::Decimal { .. }
        )
    }

    /// True for the integer types.
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt
        )
    }

    /// An exact numeric type as a DECIMAL (integers as DECIMAL(3|5|10|19, 0)).
    pub fn as_decimal(&self) -> Option<(u8, u8)> {
        match self {
            SqlType::TinyInt => Some((3, 0)),
            SqlType::SmallInt => Some((5, 0)),
            SqlType::Int => Some((10, 0)),
            SqlType::BigInt => Some((19, 0)),
            SqlType::Decimal { precision, scale } => Some((*precision, *scale)),
            _ => None,
        }
    }

    /// True for `TIMESTAMP(p)` and `TIMESTAMP_LTZ(p)`.
    pub fn is_timestamp(&self) -> bool {
        matches!(
            self,
            SqlType::Timestamp { .. } | SqlType::TimestampLtz { .. }
        )
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => write!(f, "BOOLEAN"),
            SqlType::TinyInt => write!(f, "TINYINT"),
            SqlType::SmallInt => write!(f, "SMALLINT"),
            SqlType::Int => write!(f, "INT"),
            SqlType::BigInt => write!(f, "BIGINT"),
            SqlType::Float => write!(f, "FLOAT"),
            SqlType::Double => write!(f, "DOUBLE"),
            SqlType::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            SqlType::Varchar => write!(f, "STRING"),
            SqlType::Date => write!(f, "DATE"),
            SqlType::Time => write!(f, "TIME"),
            SqlType::Timestamp { precision } => write!(f, "TIMESTAMP({precision})"),
            SqlType::TimestampLtz { precision } => write!(f, "TIMESTAMP_LTZ({precision})"),
            SqlType::Null => write!(f, "NULL"),
            SqlType::Interval => write!(f, "INTERVAL DAY TO SECOND(3)"),
            SqlType::Row(fields) => {
                write!(f, "ROW<")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "`{}` {}", field.name, field.ty)?;
                }
                write!(f, ">")
            }
        }
    }
}

/// Parses a type at the parser's position.
pub fn parse_type(parser: &mut Parser) -> Result<SqlType, SqlError> {
    let token = parser.next_token();
    let at = Position::of_token(&token);
    let Token::Word(word) = &token.token else {
        return Err(SqlError::new(at, format!("expected a type, found {token}")));
    };
    let name = word.value.to_ascii_uppercase();
    let ty = match name.as_str() {
        "BOOLEAN" | "BOOL" => SqlType::Boolean,
        "TINYINT" => SqlType::TinyInt,
        "SMALLINT" => SqlType::SmallInt,
        "INT" | "INTEGER" => SqlType::Int,
        "BIGINT" => SqlType::BigInt,
        "FLOAT" | "REAL" => SqlType::Float,
        "DOUBLE" => {
            // DOUBLE PRECISION
            if matches!(&parser.peek_token().token, Token::Word(w) if w.value.eq_ignore_ascii_case("PRECISION"))
            {
                parser.next_token();
            }
            SqlType::Double
        }
        "DECIMAL" | "DEC" | "NUMERIC" => {
            let (precision, scale) = match optional_numbers(parser, at)?.as_slice() {
                [] => (10, 0),
                [p] => (*p, 0),
                [p, s] => (*p, *s),
                _ => return Err(SqlError::new(at, "DECIMAL takes a precision and a scale")),
            };
            if !(1..=38).contains(&precision) || scale > precision {
                return Err(SqlError::new(
                    at,
                    format!("DECIMAL({precision}, {scale}): the precision must be 1 to 38 and the scale at most the precision"),
                ));
            }
            SqlType::Decimal {
                precision: precision as u8,
                scale: scale as u8,
            }
        }
        "STRING" | "VARCHAR" | "CHAR" | "CHARACTER" => {
            if optional_numbers(parser, at)?.len() > 1 {
                return Err(SqlError::new(at, format!("{name} takes one length")));
            }
            SqlType::Varchar
        }
        "DATE" => SqlType::Date,
        "TIME" => {
            optional_numbers(parser, at)?;
            SqlType::Time
        }
        "TIMESTAMP" | "TIMESTAMP_LTZ" => {
            let precision = match optional_numbers(parser, at)?.as_slice() {
                [] => 6,
                [p] if *p <= 9 => *p as u8,
                _ => {
                    return Err(SqlError::new(
                        at,
                        format!("{name} takes a precision of 0 to 9"),
                    ))
                }
            };
            let local_zone = name == "TIMESTAMP_LTZ" || with_local_time_zone(parser)?;
            if local_zone {
                SqlType::TimestampLtz { precision }
            } else {
                SqlType::Timestamp { precision }
            }
        }
        "ROW" => SqlType::Row(parse_row_fields(parser, at)?),
        _ => {
            return Err(SqlError::new(
                at,
                format!("unsupported type {}", word.value),
            ))
        }
    };
    Ok(ty)
}

/// `(n)` or `(n, m)` after a type name, if present.
fn optional_numbers(parser: &mut Parser, at: Position) -> Result<Vec<u32>, SqlError> {
    if !parser.consume_token(&Token::LParen) {
        return Ok(Vec::new());
    }
    let mut numbers = Vec::new();
    loop {
        let token = parser.next_token();
        match &token.token {
            Token::Number(n, _) => numbers.push(n.parse::<u32>().map_err(|_| {
                SqlError::new(
                    Position::of_token(&token),
                    format!("{n} is not a type length"),
                )
            })?),
            _ => {
                return Err(SqlError::new(
                    Position::of_token(&token),
                    format!("expected a number in the type's parentheses, found {token}"),
                ))
            }
        }
        let token = parser.next_token();
        match token.token {
            Token::Comma => continue,
            Token::RParen => return Ok(numbers),
            _ => {
                return Err(SqlError::new(
                    if token.span.start.line == 0 {
                        at
                    } else {
                        Position::of_token(&token)
                    },
                    format!("expected `,` or `)` in the type, found {token}"),
                ))
            }
        }
    }
}

/// `WITH LOCAL TIME ZONE` after `TIMESTAMP(p)`.
fn with_local_time_zone(parser: &mut Parser) -> Result<bool, SqlError> {
    let [with, local] = parser.peek_tokens_with_location::<2>();
    let is =
        |t: &Token, word: &str| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case(word));
    if !(is(&with.token, "WITH") && is(&local.token, "LOCAL")) {
        return Ok(false);
    }
    for word in ["WITH", "LOCAL", "TIME", "ZONE"] {
        let token = parser.next_token();
        if !is(&token.token, word) {
            return Err(SqlError::new(
                Position::of_token(&token),
                format!("expected WITH LOCAL TIME ZONE, found {token}"),
            ));
        }
    }
    Ok(true)
}

/// `<name type, …>` or `(name type, …)` after `ROW`.
fn parse_row_fields(parser: &mut Parser, at: Position) -> Result<Vec<RowField>, SqlError> {
    let close = match parser.next_token().token {
        Token::Lt => Token::Gt,
        Token::LParen => Token::RParen,
        _ => return Err(SqlError::new(at, "expected ROW<name type, …>")),
    };
    let mut fields: Vec<RowField> = Vec::new();
    loop {
        let token = parser.next_token();
        let position = Position::of_token(&token);
        let Token::Word(word) = &token.token else {
            return Err(SqlError::new(
                position,
                format!("expected a field name, found {token}"),
            ));
        };
        let name = word.value.clone();
        if fields.iter().any(|f| f.name == name) {
            return Err(SqlError::new(
                position,
                format!("field `{name}` appears twice in the ROW"),
            ));
        }
        let ty = parse_type(parser)?;
        fields.push(RowField { name, ty });
        let token = parser.next_token();
        if token.token == Token::Comma {
            continue;
        }
        if token.token == close {
            return Ok(fields);
        }
        return Err(SqlError::new(
            Position::of_token(&token),
            format!("expected `,` or `{close}` in the ROW type, found {token}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::dialect::FlinkDialect;

    fn parse(text: &str) -> Result<SqlType, SqlError> {
        let dialect = FlinkDialect;
        let mut parser = Parser::new(&dialect).try_with_sql(text).unwrap();
        parse_type(&mut parser)
    }

    #[test]
    fn flink_types_parse_and_print() {
        for (text, printed) in [
            ("BIGINT", "BIGINT"),
            ("int", "INT"),
            ("INTEGER", "INT"),
            ("VARCHAR", "STRING"),
            ("VARCHAR(10)", "STRING"),
            ("DECIMAL(23, 3)", "DECIMAL(23, 3)"),
            ("DECIMAL", "DECIMAL(10, 0)"),
            ("TIMESTAMP(3)", "TIMESTAMP(3)"),
            ("TIMESTAMP", "TIMESTAMP(6)"),
            ("TIMESTAMP(3) WITH LOCAL TIME ZONE", "TIMESTAMP_LTZ(3)"),
            ("TIMESTAMP_LTZ(3)", "TIMESTAMP_LTZ(3)"),
            ("DOUBLE PRECISION", "DOUBLE"),
            (
                "ROW<id BIGINT, name VARCHAR>",
                "ROW<`id` BIGINT, `name` STRING>",
            ),
        ] {
            assert_eq!(parse(text).unwrap().to_string(), printed, "{text}");
        }
    }

    #[test]
    fn bad_types_are_named_at_their_position() {
        let e = parse("BIGNUM").unwrap_err();
        assert_eq!(
            (e.position, e.message.as_str()),
            (Position::new(1, 1), "unsupported type BIGNUM")
        );
        let e = parse("DECIMAL(40, 2)").unwrap_err();
        assert!(e.message.contains("precision must be 1 to 38"), "{e}");
        let e = parse("ROW<a INT, a BIGINT>").unwrap_err();
        assert_eq!(e.position, Position::new(1, 12));
        assert!(e.message.contains("appears twice"), "{e}");
    }
}
