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
    /// with the prefix [`TABLE_ARGUMENT`] and the table's (compound) name.
    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let next = parser.peek_tokens_with_location::<2>();
        let is_table = matches!(&next[0].token, Token::Word(w) if w.keyword == Keyword::TABLE)
            && matches!(&next[1].token, Token::Word(_));
        if !is_table {
            return None;
        }
        parser.next_token();
        Some(parser.parse_object_name(false).map(|name| {
            Expr::Prefixed {
                prefix: Ident::new(TABLE_ARGUMENT),
                value: Box::new(Expr::CompoundIdentifier(
                    name.0
                        .into_iter()
                        .filter_map(|part| part.as_ident().cloned())
                        .collect(),
                )),
            }
        }))
    }
}
