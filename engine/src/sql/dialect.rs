//! Flink SQL's dialect, as sqlparser's [`Dialect`] hooks.
//!
//! Beyond sqlparser's generic SQL it takes what Flink's queries write:
//! backquoted identifiers (`` `dateTime` ``), `TABLE t` as an argument of a
//! window table-valued function (`TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts),
//! INTERVAL '10' SECOND))`), `COUNT(*) FILTER (WHERE …)`, and `FOR SYSTEM_TIME
//! AS OF` on a joined table. `CREATE TABLE` with computed columns and
//! `WATERMARK FOR` is parsed by [`super::script`] from the tokens, not here.

use sqlparser::ast::{Expr, Ident};
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

/// The prefix of the expression that stands for a `TABLE t` argument.
pub const TABLE_ARGUMENT: &str = "TABLE";

/// The prefix of the expression that stands for a `TABLE t PARTITION BY k`
/// or `TABLE t PARTITION BY (k, …)` argument: a tuple of the table's name,
/// then the partition columns.
pub const PARTITIONED_TABLE_ARGUMENT: &str = "TABLE PARTITION BY";

/// Flink SQL as Sluice reads it.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlinkDialect;

impl Dialect for FlinkDialect {
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`'
    }

    fn identifier_quote_style(&self, _identifier: &str) -> Option<char> {
        Some('`')
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_' || ch == '$'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '$'
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_timestamp_versioning(&self) -> bool {
        true
    }

    fn supports_string_literal_backslash_escape(&self) -> bool {
        false
    }

    /// `TABLE name` inside a function's arguments: a `Prefixed` expression
    /// with the prefix [`TABLE_ARGUMENT`] and the table's (compound) name;
    /// with `PARTITION BY` columns after it, [`PARTITIONED_TABLE_ARGUMENT`].
    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let next = parser.peek_tokens_with_location::<2>();
        let is_table = matches!(&next[0].token, Token::Word(w) if w.keyword == Keyword::TABLE)
            && matches!(&next[1].token, Token::Word(_));
        if !is_table {
            return None;
        }
        parser.next_token();
        Some(parse_table_argument(parser))
    }
}

/// The rest of a `TABLE name [PARTITION BY k | PARTITION BY (k, …)]`
/// argument, after `TABLE`.
fn parse_table_argument(parser: &mut Parser) -> Result<Expr, ParserError> {
    let name = parser.parse_object_name(false)?;
    let table = Expr::CompoundIdentifier(
        name.0
            .into_iter()
            .filter_map(|part| part.as_ident().cloned())
            .collect(),
    );
    if !parser.parse_keywords(&[Keyword::PARTITION, Keyword::BY]) {
        return Ok(Expr::Prefixed {
            prefix: Ident::new(TABLE_ARGUMENT),
            value: Box::new(table),
        });
    }
    let columns = if parser.consume_token(&Token::LParen) {
        let columns = parser.parse_comma_separated(|p| p.parse_identifier())?;
        parser.expect_token(&Token::RParen)?;
        columns
    } else {
        vec![parser.parse_identifier()?]
    };
    let mut parts = vec![table];
    parts.extend(columns.into_iter().map(Expr::Identifier));
    Ok(Expr::Prefixed {
        prefix: Ident::new(PARTITIONED_TABLE_ARGUMENT),
        value: Box::new(Expr::Tuple(parts)),
    })
}
