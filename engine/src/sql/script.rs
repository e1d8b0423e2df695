//! A SQL script — the `sql` of a job file — split into its statements.
//!
//! Statements: `CREATE TABLE` (physical and computed columns, `WATERMARK
//! FOR`, `PRIMARY KEY … NOT ENFORCED`, `PARTITIONED BY`, `WITH (…)`),
//! `CREATE [TEMPORARY] VIEW name AS query`, `CREATE [TEMPORARY [SYSTEM]]
//! FUNCTION name AS 'class'`, `INSERT INTO name [(columns)] query`, a bare
//! query, and `EXPLAIN` before any of the last two. `CREATE TABLE` is parsed
//! here from the tokens (sqlparser's generic table definition has no
//! watermarks); queries and expressions are sqlparser's AST, read with
//! [`super::dialect::FlinkDialect`]. Every statement and table element keeps
//! its position for later errors.

use sqlparser::ast::{Expr, Query};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::dialect::FlinkDialect;
use super::error::{Position, SqlError};
use super::sql_type::{parse_type, SqlType};

/// One statement of a script, where it starts.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub position: Position,
    pub node: T,
}

/// A statement.
#[derive(Debug, Clone)]
pub enum Statement {
    CreateTable(Box<TableDefinition>),
    CreateView {
        name: String,
        query: Box<Query>,
    },
    CreateFunction {
        name: String,
        class: String,
    },
    Insert {
        table: String,
        columns: Vec<String>,
        query: Box<Query>,
    },
    Query(Box<Query>),
    Explain(Box<Located<Statement>>),
}

/// `CREATE TABLE name (…) [PARTITIONED BY (…)] WITH (…)`.
#[derive(Debug, Clone)]
pub struct TableDefinition {
    pub name: String,
    pub columns: Vec<Located<ColumnDefinition>>,
    pub watermark: Option<Located<Watermark>>,
    pub primary_key: Vec<String>,
    pub partitioned_by: Vec<String>,
    pub options: Vec<Located<(String, String)>>,
}

/// A column: stored (`name TYPE`) or computed (`name AS expr`).
#[derive(Debug, Clone)]
pub struct ColumnDefinition {
    pub name: String,
    pub kind: ColumnKind,
}

#[derive(Debug, Clone)]
pub enum ColumnKind {
    Physical(SqlType),
    Computed(Box<Expr>),
}

/// `WATERMARK FOR column AS expr`.
#[derive(Debug, Clone)]
pub struct Watermark {
    pub column: String,
    pub expr: Expr,
}

/// Parses a whole script.
pub fn parse_script(sql: &str) -> Result<Vec<Located<Statement>>, SqlError> {
    parse_statements(sql).map_err(|mut e| {
        // The end of the script has no token of its own: place errors there.
        if e.message.ends_with("found: EOF") || e.message.ends_with("found EOF") {
            e.position = end_of(sql);
        } else if let Some(found) = found_token_before(sql, &e) {
            e.position = found;
        }
        e
    })
}

/// Where the token an error says it found (`… found: FROM`) is, when
/// sqlparser placed the error after it (it sometimes reports the position
/// of the token it peeked next): the last such token at or before the
/// reported position.
fn found_token_before(sql: &str, error: &SqlError) -> Option<Position> {
    let found = error.message.rsplit_once("found: ")?.1.trim();
    let tokens = sqlparser::tokenizer::Tokenizer::new(&FlinkDialect, sql)
        .tokenize_with_location()
        .ok()?;
    let at_reported = tokens
        .iter()
        .find(|t| Position::of_token(t) == error.position)?;
    if at_reported.token.to_string() == found {
        return None;
    }
    tokens
        .iter()
        .filter(|t| Position::of_token(t) < error.position)
        .rfind(|t| t.token.to_string() == found)
        .map(Position::of_token)
}

/// The position just after the script's last character.
fn end_of(sql: &str) -> Position {
    let line = sql.split('\n').count() as u64;
    let last = sql.rsplit('\n').next().unwrap_or("");
    Position::new(line, last.chars().count() as u64 + 1)
}

fn parse_statements(sql: &str) -> Result<Vec<Located<Statement>>, SqlError> {
    let dialect = FlinkDialect;
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| SqlError::from_parser(e, Position::new(1, 1)))?;
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            return Ok(statements);
        }
        statements.push(parse_statement(&mut parser)?);
        let token = parser.next_token();
        match token.token {
            Token::SemiColon | Token::EOF => {}
            _ => {
                return Err(SqlError::new(
                    Position::of_token(&token),
                    format!("expected `;` after the statement, found {token}"),
                ))
            }
        }
    }
}

fn parse_statement(parser: &mut Parser) -> Result<Located<Statement>, SqlError> {
    let first = parser.peek_token();
    let position = Position::of_token(&first);
    let parse_err = |e| SqlError::from_parser(e, position);
    let node = if parser.parse_keyword(Keyword::EXPLAIN) {
        let inner = parse_statement(parser)?;
        match inner.node {
            Statement::Insert { .. } | Statement::Query(_) => {}
            _ => {
                return Err(SqlError::new(
                    inner.position,
                    "EXPLAIN takes an INSERT INTO or a query",
                ))
            }
        }
        Statement::Explain(Box::new(inner))
    } else if parser.parse_keyword(Keyword::CREATE) {
        let temporary = parser.parse_keyword(Keyword::TEMPORARY);
        let system = temporary && parser.parse_keyword(Keyword::SYSTEM);
        if parser.parse_keyword(Keyword::TABLE) && !temporary {
            Statement::CreateTable(Box::new(parse_table(parser)?))
        } else if parser.parse_keyword(Keyword::VIEW) && !system {
            let name = parse_name(parser)?;
            parser.expect_keyword(Keyword::AS).map_err(parse_err)?;
            Statement::CreateView {
                name,
                query: parser.parse_query().map_err(parse_err)?,
            }
        } else if parser.parse_keyword(Keyword::FUNCTION) {
            let name = parse_name(parser)?;
            parser.expect_keyword(Keyword::AS).map_err(parse_err)?;
            let class = parser.parse_literal_string().map_err(parse_err)?;
            if parser.parse_keyword(Keyword::LANGUAGE) {
                parse_name(parser)?;
            }
            Statement::CreateFunction { name, class }
        } else {
            let found = parser.peek_token();
            return Err(SqlError::new(
                Position::of_token(&found),
                format!("unsupported statement: expected CREATE TABLE, CREATE VIEW or CREATE FUNCTION, found CREATE {}{found}",
                    if temporary { "TEMPORARY " } else { "" }),
            ));
        }
    } else if parser.parse_keyword(Keyword::INSERT) {
        parser.expect_keyword(Keyword::INTO).map_err(parse_err)?;
        let table = parse_name(parser)?;
        let mut columns = Vec::new();
        if parser.peek_token().token == Token::LParen
            && !matches!(parser.peek_tokens::<2>()[1], Token::Word(ref w) if w.keyword == Keyword::SELECT || w.keyword == Keyword::WITH)
        {
            columns = parse_name_list(parser)?;
        }
        Statement::Insert {
            table,
            columns,
            query: parser.parse_query().map_err(parse_err)?,
        }
    } else if matches!(&first.token, Token::Word(w) if w.keyword == Keyword::SELECT || w.keyword == Keyword::WITH)
        || first.token == Token::LParen
    {
        Statement::Query(parser.parse_query().map_err(parse_err)?)
    } else {
        return Err(SqlError::new(
            position,
            format!("unsupported statement: expected CREATE TABLE, CREATE VIEW, CREATE FUNCTION, INSERT INTO, SELECT or EXPLAIN, found {first}"),
        ));
    };
    Ok(Located { position, node })
}

/// A (possibly qualified) name; qualified names keep their last part, as
/// Sluice has one catalog and one database.
fn parse_name(parser: &mut Parser) -> Result<String, SqlError> {
    let token = parser.peek_token();
    let name = parser
        .parse_object_name(false)
        .map_err(|e| SqlError::from_parser(e, Position::of_token(&token)))?;
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.clone())
        .ok_or_else(|| SqlError::new(Position::of_token(&token), "expected a name"))
}

/// `(name, …)`: the names in parentheses.
fn parse_name_list(parser: &mut Parser) -> Result<Vec<String>, SqlError> {
    let open = parser.peek_token();
    parser
        .expect_token(&Token::LParen)
        .map_err(|e| SqlError::from_parser(e, Position::of_token(&open)))?;
    let mut names = Vec::new();
    loop {
        names.push(parse_name(parser)?);
        if !list_continues(parser, "the list of names")? {
            return Ok(names);
        }
    }
}

/// After an element of a parenthesized list: true at `,`, false at `)`.
fn list_continues(parser: &mut Parser, what: &str) -> Result<bool, SqlError> {
    let token = parser.next_token();
    match token.token {
        Token::Comma => Ok(true),
        Token::RParen => Ok(false),
        _ => Err(SqlError::new(
            Position::of_token(&token),
            format!("expected `,` or `)` in {what}, found {token}"),
        )),
    }
}

fn word_is(token: &TokenWithSpan, word: &str) -> bool {
    matches!(&token.token, Token::Word(w) if w.value.eq_ignore_ascii_case(word) && w.quote_style.is_none())
}

fn parse_table(parser: &mut Parser) -> Result<TableDefinition, SqlError> {
    let mut table = TableDefinition {
        name: parse_name(parser)?,
        columns: Vec::new(),
        watermark: None,
        primary_key: Vec::new(),
        partitioned_by: Vec::new(),
        options: Vec::new(),
    };
    let open = parser.next_token();
    if open.token != Token::LParen {
        return Err(SqlError::new(
            Position::of_token(&open),
            format!(
                "expected `(` and the columns of table `{}`, found {open}",
                table.name
            ),
        ));
    }
    loop {
        let token = parser.peek_token();
        let position = Position::of_token(&token);
        let err = |e| SqlError::from_parser(e, position);
        if word_is(&token, "WATERMARK") {
            parser.next_token();
            if !parser.parse_keyword(Keyword::FOR) {
                return Err(SqlError::new(
                    position,
                    "expected WATERMARK FOR column AS expression",
                ));
            }
            let column = parse_name(parser)?;
            parser.expect_keyword(Keyword::AS).map_err(err)?;
            let expr = parser.parse_expr().map_err(err)?;
            if table.watermark.is_some() {
                return Err(SqlError::new(position, "a table has at most one WATERMARK"));
            }
            table.watermark = Some(Located {
                position,
                node: Watermark { column, expr },
            });
        } else if parser.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
            table.primary_key = parse_name_list(parser)?;
            if !parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]) {
                return Err(SqlError::new(
                    position,
                    "a PRIMARY KEY must be declared NOT ENFORCED (Flink does not check it)",
                ));
            }
        } else {
            let name = parse_name(parser)?;
            if table.columns.iter().any(|c| c.node.name == name) {
                return Err(SqlError::new(
                    position,
                    format!("column `{name}` appears twice in table `{}`", table.name),
                ));
            }
            let kind = if parser.parse_keyword(Keyword::AS) {
                ColumnKind::Computed(Box::new(parser.parse_expr().map_err(err)?))
            } else {
                let kind = ColumnKind::Physical(parse_type(parser)?);
                // NOT NULL and COMMENT '…' are accepted and not enforced.
                let _not_null = parser.parse_keywords(&[Keyword::NOT, Keyword::NULL]);
                if parser.parse_keyword(Keyword::COMMENT) {
                    parser.parse_literal_string().map_err(err)?;
                }
                kind
            };
            table.columns.push(Located {
                position,
                node: ColumnDefinition { name, kind },
            });
        }
        if !list_continues(parser, &format!("table `{}`", table.name))? {
            break;
        }
    }
    if parser.parse_keyword(Keyword::PARTITIONED) {
        let token = parser.peek_token();
        parser
            .expect_keyword(Keyword::BY)
            .map_err(|e| SqlError::from_parser(e, Position::of_token(&token)))?;
        table.partitioned_by = parse_name_list(parser)?;
    }
    let with = parser.peek_token();
    if !parser.parse_keyword(Keyword::WITH) {
        return Err(SqlError::new(
            Position::of_token(&with),
            format!(
                "expected WITH ('connector' = …) after the columns of table `{}`, found {with}",
                table.name
            ),
        ));
    }
    parser
        .expect_token(&Token::LParen)
        .map_err(|e| SqlError::from_parser(e, Position::of_token(&with)))?;
    loop {
        let key = parser.next_token();
        let position = Position::of_token(&key);
        let Token::SingleQuotedString(name) = key.token.clone() else {
            return Err(SqlError::new(
                position,
                format!("expected an option name in quotes ('connector' = '…'), found {key}"),
            ));
        };
        parser
            .expect_token(&Token::Eq)
            .map_err(|e| SqlError::from_parser(e, position))?;
        let value = parser.next_token();
        let Token::SingleQuotedString(value) = value.token.clone() else {
            return Err(SqlError::new(
                Position::of_token(&value),
                format!("the value of option '{name}' must be a quoted string, found {value}"),
            ));
        };
        if table.options.iter().any(|o| o.node.0 == name) {
            return Err(SqlError::new(
                position,
                format!("option '{name}' is set twice"),
            ));
        }
        table.options.push(Located {
            position,
            node: (name, value),
        });
        if !list_continues(parser, "the WITH options")? {
            break;
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests;
