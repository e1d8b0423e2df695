//! An error in a SQL script, at the line and column it was found.
//!
//! Every stage of the SQL front end (parsing, binding, planning) reports
//! through [`SqlError`], so a user sees `line 3, column 12: unknown column
//! `pricee` in table `bid``, whatever stage found it.

use std::fmt;

/// A position in a SQL script: line and column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    pub fn new(line: u64, column: u64) -> Self {
        Position { line, column }
    }

    /// Where a parser token starts.
    pub fn of_token(token: &sqlparser::tokenizer::TokenWithSpan) -> Self {
        Position::new(token.span.start.line, token.span.start.column)
    }

    /// Where an AST node starts (unknown positions are line 0).
    pub fn of_span(span: sqlparser::tokenizer::Span) -> Self {
        Position::new(span.start.line, span.start.column)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// `text` in backticks, as messages quote SQL, unless it already is
/// (a quoted identifier as written: `` `value` ``).
pub fn quoted(text: impl fmt::Display) -> String {
    let text = text.to_string();
    if text.len() >= 2 && text.starts_with('`') && text.ends_with('`') {
        text
    } else {
        format!("`{text}`")
    }
}

/// What is wrong with a SQL script, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub position: Position,
    pub message: String,
}

impl SqlError {
    pub fn new(position: Position, message: impl Into<String>) -> Self {
        SqlError {
            position,
            message: message.into(),
        }
    }

    /// sqlparser's error, its ` at Line: l, Column: c` suffix turned into a
    /// position (errors without one, such as the recursion limit, are placed
    /// at `fallback`).
    pub fn from_parser(error: sqlparser::parser::ParserError, fallback: Position) -> Self {
        use sqlparser::parser::ParserError;
        let text = match error {
            ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
            ParserError::RecursionLimitExceeded => {
                return SqlError::new(fallback, "the statement nests too deeply")
            }
        };
        match split_location(&text) {
            Some((message, position)) => SqlError::new(position, message),
            None => SqlError::new(fallback, text),
        }
    }
}

/// `"<message> at Line: 3, Column: 7"` → the message and its position.
fn split_location(text: &str) -> Option<(String, Position)> {
    let at = text.rfind(" at Line: ")?;
    let (message, location) = text.split_at(at);
    let location = location.strip_prefix(" at Line: ")?;
    let (line, column) = location.split_once(", Column: ")?;
    let position = Position::new(line.trim().parse().ok()?, column.trim().parse().ok()?);
    Some((message.to_owned(), position))
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.position, self.message)
        }
    }
}

impl std::error::Error for SqlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_locations_become_positions() {
        let e = sqlparser::parser::ParserError::ParserError(
            "Expected: an expression, found: FROM at Line: 3, Column: 12".into(),
        );
        let e = SqlError::from_parser(e, Position::new(1, 1));
        assert_eq!(e.position, Position::new(3, 12));
        assert_eq!(
            e.to_string(),
            "line 3, column 12: Expected: an expression, found: FROM"
        );
        let e = sqlparser::parser::ParserError::RecursionLimitExceeded;
        assert_eq!(
            SqlError::from_parser(e, Position::new(2, 5)).position,
            Position::new(2, 5)
        );
    }
}
