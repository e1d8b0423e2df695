//! Binding: sqlparser's scalar expressions checked against the columns in
//! scope and turned into [`BoundExpr`]s with their types.
//!
//! Names are case-sensitive, as in Flink; a name that differs only in case
//! is suggested. A nested field of a `ROW` column (`person.id`) is a column
//! of its own in the scope, named with its path, so rows never carry nested
//! values. Numeric operands are coerced as Flink coerces them: integers
//! widen, an approximate operand makes both DOUBLE, exact ones meet as a
//! DECIMAL of Flink's precision and scale (`0.908 * price` is DECIMAL(23, 3)).

pub mod grouping;

use std::rc::Rc;
use std::sync::Arc;

use sqlparser::ast::{
    BinaryOperator, DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Spanned,
    UnaryOperator, Value as Literal,
};

use self::grouping::Grouping;
use super::error::{Position, SqlError};
use super::expr::{cast, ArithKind, ArithOp, BoundExpr, CompareOp};
use super::functions::{compile_date_pattern, compile_like, Pattern, Scalar, ScalarUdf, TimeField};
use super::sql_type::SqlType;
use super::value::Value;

/// A column visible to an expression.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeColumn {
    /// The table or alias it can be qualified with.
    pub qualifier: Option<String>,
    /// Its name (a nested field's is its path: `person.id`).
    pub name: String,
    pub ty: SqlType,
}

/// The columns an expression may use, in row order, and the functions it may call.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub columns: Vec<ScopeColumn>,
    pub udfs: Vec<Arc<ScalarUdf>>,
    /// Set in a grouped query's select list and `HAVING`: `columns` are
    /// then the keys and aggregate calls (see [`grouping`]).
    pub grouping: Option<Rc<Grouping>>,
}

fn at(expr: &Expr) -> Position {
    Position::of_span(expr.span())
}

impl Scope {
    /// The index of `qualifier.name` (or of `name` alone).
    pub fn resolve(
        &self,
        qualifier: Option<&str>,
        name: &str,
        position: Position,
    ) -> Result<usize, SqlError> {
        let matches: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.name == name && (qualifier.is_none() || c.qualifier.as_deref() == qualifier)
            })
            .map(|(i, _)| i)
            .collect();
        let shown = match qualifier {
            Some(q) => format!("{q}.{name}"),
            None => name.to_owned(),
        };
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => {
                let near = self
                    .columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(name));
                let hint = match near {
                    Some(c) => format!("; did you mean `{}`? (names are case-sensitive)", c.name),
                    None => {
                        let names: Vec<&str> =
                            self.columns.iter().map(|c| c.name.as_str()).collect();
                        format!("; the columns are {}", names.join(", "))
                    }
                };
                Err(SqlError::new(
                    position,
                    format!("unknown column `{shown}`{hint}"),
                ))
            }
            _ => Err(SqlError::new(
                position,
                format!("column `{shown}` is ambiguous: qualify it with its table"),
            )),
        }
    }
}

/// Binds `expr` in `scope`: the bound expression and its type.
pub fn bind(expr: &Expr, scope: &Scope) -> Result<(BoundExpr, SqlType), SqlError> {
    if let Some(grouping) = &scope.grouping {
        if let Some(bound) = grouping.bind_grouped(expr)? {
            return Ok(bound);
        }
    }
    bind_parts(expr, scope)
}

/// Binds `expr` itself, its parts through [`bind`].
fn bind_parts(expr: &Expr, scope: &Scope) -> Result<(BoundExpr, SqlType), SqlError> {
    match expr {
        Expr::Identifier(ident) => {
            let i = scope.resolve(None, &ident.value, at(expr))?;
            Ok((BoundExpr::Column(i), scope.columns[i].ty.clone()))
        }
        Expr::CompoundIdentifier(parts) => {
            let names: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
            // `t.col` and `t.row.field` when `t` qualifies some column and
            // the whole path is not itself a column; else a nested
            // `row.field` without a table.
            let joined = names.join(".");
            let qualified = names.len() >= 2
                && scope
                    .columns
                    .iter()
                    .any(|c| c.qualifier.as_deref() == Some(names[0]))
                && !scope.columns.iter().any(|c| c.name == joined);
            let i = if qualified {
                scope.resolve(Some(names[0]), &names[1..].join("."), at(expr))?
            } else {
                scope.resolve(None, &joined, at(expr))?
            };
            Ok((BoundExpr::Column(i), scope.columns[i].ty.clone()))
        }
        Expr::Value(v) => literal(&v.value, at(expr)),
        Expr::Nested(e) => bind(e, scope),
        Expr::Interval(interval) => {
            let value = match interval.value.as_ref() {
                Expr::Value(v) => match &v.value {
                    Literal::SingleQuotedString(s) | Literal::Number(s, _) => s.trim().to_owned(),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            let unit_ms = match &interval.leading_field {
                Some(DateTimeField::Millisecond | DateTimeField::Milliseconds) => 1,
                Some(DateTimeField::Second | DateTimeField::Seconds) => 1000,
                Some(DateTimeField::Minute | DateTimeField::Minutes) => 60_000,
                Some(DateTimeField::Hour | DateTimeField::Hours) => 3_600_000,
                Some(DateTimeField::Day | DateTimeField::Days) => 86_400_000,
                other => {
                    return Err(SqlError::new(
                        at(expr),
                        format!("unsupported interval unit {other:?}: use MILLISECOND, SECOND, MINUTE, HOUR or DAY"),
                    ))
                }
            };
            let amount: i64 = value.parse().map_err(|_| {
                SqlError::new(
                    at(expr),
                    format!("interval '{value}' is not a whole number"),
                )
            })?;
            Ok((
                BoundExpr::Literal(Value::Int(amount * unit_ms)),
                SqlType::Interval,
            ))
        }
        Expr::UnaryOp { op, expr: inner } => {
            let (bound, ty) = bind(inner, scope)?;
            match op {
                UnaryOperator::Not => {
                    expect_boolean(&ty, inner)?;
                    Ok((BoundExpr::Not(Box::new(bound)), SqlType::Boolean))
                }
                UnaryOperator::Minus if ty.is_numeric() || ty == SqlType::Interval => {
                    let zero = match &ty {
                        SqlType::Double | SqlType::Float => Value::Double(0.0),
                        SqlType::Decimal { .. } => Value::Decimal(0),
                        _ => Value::Int(0),
                    };
                    arithmetic(
                        ArithOp::Sub,
                        (BoundExpr::Literal(zero), ty.clone()),
                        (bound, ty),
                        expr,
                    )
                }
                UnaryOperator::Plus if ty.is_numeric() => Ok((bound, ty)),
                _ => Err(SqlError::new(
                    at(expr),
                    format!("operator {op} does not apply to {ty}"),
                )),
            }
        }
        Expr::BinaryOp { left, op, right } => {
            let l = bind(left, scope)?;
            let r = bind(right, scope)?;
            let arith = |o| arithmetic(o, l.clone(), r.clone(), expr);
            match op {
                BinaryOperator::Plus => arith(ArithOp::Add),
                BinaryOperator::Minus => arith(ArithOp::Sub),
                BinaryOperator::Multiply => arith(ArithOp::Mul),
                BinaryOperator::Divide => arith(ArithOp::Div),
                BinaryOperator::Modulo => arith(ArithOp::Mod),
                BinaryOperator::Eq => comparison(CompareOp::Eq, l, r, expr),
                BinaryOperator::NotEq => comparison(CompareOp::NotEq, l, r, expr),
                BinaryOperator::Lt => comparison(CompareOp::Lt, l, r, expr),
                BinaryOperator::LtEq => comparison(CompareOp::LtEq, l, r, expr),
                BinaryOperator::Gt => comparison(CompareOp::Gt, l, r, expr),
                BinaryOperator::GtEq => comparison(CompareOp::GtEq, l, r, expr),
                BinaryOperator::And | BinaryOperator::Or => {
                    expect_boolean(&l.1, left)?;
                    expect_boolean(&r.1, right)?;
                    let terms = vec![l.0, r.0];
                    Ok((
                        if *op == BinaryOperator::And {
                            BoundExpr::And(terms)
                        } else {
                            BoundExpr::Or(terms)
                        },
                        SqlType::Boolean,
                    ))
                }
                BinaryOperator::StringConcat => {
                    let args = vec![to_string_arg(l, left)?, to_string_arg(r, right)?];
                    Ok((
                        BoundExpr::Call {
                            function: Scalar::Concat,
                            args,
                        },
                        SqlType::Varchar,
                    ))
                }
                _ => Err(SqlError::new(
                    at(expr),
                    format!("unsupported operator {op}"),
                )),
            }
        }
        Expr::IsNull(e) | Expr::IsNotNull(e) => {
            let (bound, _) = bind(e, scope)?;
            Ok((
                BoundExpr::IsNull {
                    expr: Box::new(bound),
                    negated: matches!(expr, Expr::IsNotNull(_)),
                },
                SqlType::Boolean,
            ))
        }
        Expr::Between {
            expr: e,
            negated,
            low,
            high,
        } => {
            let value = bind(e, scope)?;
            let low = comparison(CompareOp::GtEq, value.clone(), bind(low, scope)?, expr)?.0;
            let high = comparison(CompareOp::LtEq, value, bind(high, scope)?, expr)?.0;
            let both = BoundExpr::And(vec![low, high]);
            Ok((
                if *negated {
                    BoundExpr::Not(Box::new(both))
                } else {
                    both
                },
                SqlType::Boolean,
            ))
        }
        Expr::Like {
            negated,
            any: false,
            expr: e,
            pattern,
            escape_char,
        } => {
            let value = expect_string(bind(e, scope)?, e)?;
            let text = match bind(pattern, scope)? {
                (BoundExpr::Literal(Value::Str(p)), _) => p,
                _ => {
                    return Err(SqlError::new(
                        at(pattern),
                        "LIKE's pattern must be a string literal",
                    ))
                }
            };
            let escape = match escape_char.as_deref().map(|e| {
                let mut chars = e.chars();
                (chars.next(), chars.next())
            }) {
                None => None,
                Some((Some(c), None)) => Some(c),
                Some(_) => {
                    return Err(SqlError::new(
                        at(pattern),
                        "LIKE's ESCAPE must be one character",
                    ))
                }
            };
            let tokens = compile_like(&text, escape).map_err(|m| SqlError::new(at(pattern), m))?;
            let like = BoundExpr::Call {
                function: Scalar::Like(tokens.into()),
                args: vec![value],
            };
            Ok((
                if *negated {
                    BoundExpr::Not(Box::new(like))
                } else {
                    like
                },
                SqlType::Boolean,
            ))
        }
        Expr::InList {
            expr: e,
            list,
            negated,
        } => {
            let (bound, ty) = bind(e, scope)?;
            let mut constants = Vec::new();
            let mut others = Vec::new();
            for item in list {
                let (b, t) = bind(item, scope)?;
                let common = common_type(&ty, &t).ok_or_else(|| {
                    SqlError::new(
                        at(item),
                        format!("IN list value of type {t} does not compare with {ty}"),
                    )
                })?;
                match (&b, common == ty) {
                    (BoundExpr::Literal(v), true) if !v.is_null() => constants.push(
                        cast(v.clone(), &t, &ty).map_err(|err| SqlError::new(at(item), err.0))?,
                    ),
                    _ => others.push(
                        comparison(CompareOp::Eq, (bound.clone(), ty.clone()), (b, t), item)?.0,
                    ),
                }
            }
            let mut terms = others;
            if !constants.is_empty() {
                terms.insert(
                    0,
                    BoundExpr::InList {
                        expr: Box::new(bound),
                        list: constants,
                        negated: false,
                    },
                );
            }
            let any = if terms.len() == 1 {
                terms.pop().expect("one term")
            } else {
                BoundExpr::Or(terms)
            };
            Ok((
                if *negated {
                    BoundExpr::Not(Box::new(any))
                } else {
                    any
                },
                SqlType::Boolean,
            ))
        }
        Expr::Case {
            operand,
            conditions,
            else_result,
        } => {
            let operand = operand.as_ref().map(|o| bind(o, scope)).transpose()?;
            let mut whens = Vec::new();
            let mut results = Vec::new();
            for when in conditions {
                let condition = match &operand {
                    Some(o) => {
                        comparison(
                            CompareOp::Eq,
                            o.clone(),
                            bind(&when.condition, scope)?,
                            &when.condition,
                        )?
                        .0
                    }
                    None => {
                        let (c, t) = bind(&when.condition, scope)?;
                        expect_boolean(&t, &when.condition)?;
                        c
                    }
                };
                whens.push(condition);
                results.push((bind(&when.result, scope)?, &when.result));
            }
            let otherwise = match else_result {
                Some(e) => (bind(e, scope)?, e.as_ref()),
                None => ((BoundExpr::Literal(Value::Null), SqlType::Null), expr),
            };
            let mut ty = SqlType::Null;
            for ((_, t), e) in results.iter().chain(std::iter::once(&otherwise)) {
                ty = common_type(&ty, t).ok_or_else(|| {
                    SqlError::new(
                        at(e),
                        format!("CASE results of types {ty} and {t} have no common type"),
                    )
                })?;
            }
            let mut arms = Vec::new();
            for (condition, ((result, t), _)) in whens.into_iter().zip(results) {
                arms.push((condition, coerce(result, &t, &ty)));
            }
            let ((other, t), _) = otherwise;
            Ok((
                BoundExpr::Case {
                    whens: arms,
                    otherwise: Box::new(coerce(other, &t, &ty)),
                },
                ty,
            ))
        }
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } => {
            let (bound, from) = bind(inner, scope)?;
            let to = parse_data_type(&data_type.to_string(), at(expr))?;
            let castable = from == to
                || from == SqlType::Null
                || (from.is_numeric() && to.is_numeric())
                || to == SqlType::Varchar
                || (from == SqlType::Varchar
                    && (to.is_numeric() || to.is_timestamp() || to == SqlType::Boolean))
                || (from.is_timestamp() && to.is_timestamp());
            if !castable {
                return Err(SqlError::new(
                    at(expr),
                    format!("cannot cast {from} to {to}"),
                ));
            }
            Ok((coerce(bound, &from, &to), to))
        }
        Expr::Substring {
            expr: inner,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![expect_string(bind(inner, scope)?, inner)?];
            let from = substring_from
                .as_ref()
                .ok_or_else(|| SqlError::new(at(expr), "SUBSTRING needs a start position"))?;
            args.push(expect_integer(bind(from, scope)?, from)?);
            if let Some(length) = substring_for {
                args.push(expect_integer(bind(length, scope)?, length)?);
            }
            Ok((
                BoundExpr::Call {
                    function: Scalar::Substring,
                    args,
                },
                SqlType::Varchar,
            ))
        }
        Expr::Extract {
            field, expr: inner, ..
        } => {
            let field = time_field(field).ok_or_else(|| {
                SqlError::new(at(expr), format!("EXTRACT of {field} is not supported"))
            })?;
            let arg = expect_timestamp(bind(inner, scope)?, inner)?;
            Ok((
                BoundExpr::Call {
                    function: Scalar::Extract(field),
                    args: vec![arg],
                },
                SqlType::BigInt,
            ))
        }
        Expr::Function(function) => bind_function(function, expr, scope),
        other => Err(SqlError::new(
            at(expr),
            format!("unsupported expression: {other}"),
        )),
    }
}

/// A SQL type written in an expression (`CAST(x AS DECIMAL(10, 2))`).
fn parse_data_type(text: &str, position: Position) -> Result<SqlType, SqlError> {
    let dialect = super::dialect::FlinkDialect;
    let mut parser = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| SqlError::from_parser(e, position))?;
    super::sql_type::parse_type(&mut parser).map_err(|e| SqlError::new(position, e.message))
}

fn time_field(field: &DateTimeField) -> Option<TimeField> {
    Some(match field {
        DateTimeField::Year => TimeField::Year,
        DateTimeField::Month => TimeField::Month,
        DateTimeField::Day => TimeField::Day,
        DateTimeField::Hour => TimeField::Hour,
        DateTimeField::Minute => TimeField::Minute,
        DateTimeField::Second => TimeField::Second,
        _ => return None,
    })
}

/// The names of aggregate functions, which only GROUP BY queries may call.
pub const AGGREGATES: &[&str] = &["COUNT", "SUM", "MIN", "MAX", "AVG"];

fn bind_function(
    function: &sqlparser::ast::Function,
    expr: &Expr,
    scope: &Scope,
) -> Result<(BoundExpr, SqlType), SqlError> {
    let name = function.name.to_string();
    let upper = name.to_ascii_uppercase();
    if function.over.is_some() {
        let message = if AGGREGATES.contains(&upper.as_str()) {
            format!("{name}(…) OVER (an OVER aggregation) is not supported yet; ROW_NUMBER() OVER is, in a Top-N or deduplication query")
        } else {
            format!("{name}(…) OVER is only supported as ROW_NUMBER() OVER in a Top-N or deduplication query")
        };
        return Err(SqlError::new(at(expr), message));
    }
    if AGGREGATES.contains(&upper.as_str()) {
        return Err(SqlError::new(
            at(expr),
            format!("aggregate function {name} is not allowed here"),
        ));
    }
    let args: Vec<&Expr> = match &function.args {
        FunctionArguments::None => Vec::new(),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
                _ => Err(SqlError::new(
                    at(expr),
                    format!("{name}: only plain arguments are supported"),
                )),
            })
            .collect::<Result<_, _>>()?,
        FunctionArguments::Subquery(_) => {
            return Err(SqlError::new(
                at(expr),
                format!("{name}: a subquery argument is not supported"),
            ))
        }
    };
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(SqlError::new(
                at(expr),
                format!(
                    "{name} takes {n} argument{}, found {}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                ),
            ))
        }
    };
    let call = |function: Scalar, args: Vec<BoundExpr>, ty: SqlType| {
        Ok((BoundExpr::Call { function, args }, ty))
    };
    match upper.as_str() {
        "MOD" => {
            arity(2)?;
            let l = bind(args[0], scope)?;
            let r = bind(args[1], scope)?;
            if !(l.1.as_decimal().is_some() && r.1.as_decimal().is_some()) {
                return Err(SqlError::new(
                    at(expr),
                    format!("MOD takes exact numbers, found {} and {}", l.1, r.1),
                ));
            }
            arithmetic(ArithOp::Mod, l, r, expr)
        }
        "PROCTIME" => {
            arity(0)?;
            call(
                Scalar::Proctime,
                Vec::new(),
                SqlType::TimestampLtz { precision: 3 },
            )
        }
        "TO_TIMESTAMP_LTZ" => {
            arity(2)?;
            let epoch = expect_integer(bind(args[0], scope)?, args[0])?;
            let unit_ms = match bind(args[1], scope)? {
                (BoundExpr::Literal(Value::Int(0)), _) => 1_000,
                (BoundExpr::Literal(Value::Int(3)), _) => 1,
                _ => return Err(SqlError::new(
                    at(args[1]),
                    "TO_TIMESTAMP_LTZ's precision is 0 (epoch seconds) or 3 (epoch milliseconds)",
                )),
            };
            call(
                Scalar::ToTimestampLtz(unit_ms),
                vec![epoch],
                SqlType::TimestampLtz { precision: 3 },
            )
        }
        "UPPER" | "LOWER" | "CHAR_LENGTH" | "CHARACTER_LENGTH" => {
            arity(1)?;
            let arg = expect_string(bind(args[0], scope)?, args[0])?;
            match upper.as_str() {
                "UPPER" => call(Scalar::Upper, vec![arg], SqlType::Varchar),
                "LOWER" => call(Scalar::Lower, vec![arg], SqlType::Varchar),
                _ => call(Scalar::CharLength, vec![arg], SqlType::Int),
            }
        }
        "CONCAT" => {
            let args = args
                .iter()
                .map(|a| to_string_arg(bind(a, scope)?, a))
                .collect::<Result<_, _>>()?;
            call(Scalar::Concat, args, SqlType::Varchar)
        }
        "SPLIT_INDEX" => {
            arity(3)?;
            let s = expect_string(bind(args[0], scope)?, args[0])?;
            let sep = expect_string(bind(args[1], scope)?, args[1])?;
            let index = expect_integer(bind(args[2], scope)?, args[2])?;
            call(Scalar::SplitIndex, vec![s, sep, index], SqlType::Varchar)
        }
        "DATE_FORMAT" => {
            arity(2)?;
            let ts = expect_timestamp(bind(args[0], scope)?, args[0])?;
            let pattern = match bind(args[1], scope)? {
                (BoundExpr::Literal(Value::Str(p)), _) => p,
                _ => {
                    return Err(SqlError::new(
                        at(args[1]),
                        "DATE_FORMAT's pattern must be a string literal",
                    ))
                }
            };
            let parts =
                compile_date_pattern(&pattern).map_err(|m| SqlError::new(at(args[1]), m))?;
            call(Scalar::DateFormat(parts.into()), vec![ts], SqlType::Varchar)
        }
        "HOUR" | "MINUTE" | "SECOND" | "YEAR" | "MONTH" | "DAYOFMONTH" => {
            arity(1)?;
            let ts = expect_timestamp(bind(args[0], scope)?, args[0])?;
            let field = match upper.as_str() {
                "HOUR" => TimeField::Hour,
                "MINUTE" => TimeField::Minute,
                "SECOND" => TimeField::Second,
                "YEAR" => TimeField::Year,
                "MONTH" => TimeField::Month,
                _ => TimeField::Day,
            };
            call(Scalar::Extract(field), vec![ts], SqlType::BigInt)
        }
        "REGEXP_EXTRACT" => {
            if !(2..=3).contains(&args.len()) {
                return Err(SqlError::new(
                    at(expr),
                    format!("{name} takes 2 or 3 arguments, found {}", args.len()),
                ));
            }
            let s = expect_string(bind(args[0], scope)?, args[0])?;
            let regex = match bind(args[1], scope)? {
                (BoundExpr::Literal(Value::Str(p)), _) => p,
                _ => {
                    return Err(SqlError::new(
                        at(args[1]),
                        "REGEXP_EXTRACT's regular expression must be a string literal",
                    ))
                }
            };
            let regex = regex::Regex::new(&regex).map_err(|e| {
                SqlError::new(
                    at(args[1]),
                    format!("REGEXP_EXTRACT: bad regular expression: {e}"),
                )
            })?;
            // Flink's default group is 0, the whole match.
            let group = match args.get(2) {
                None => 0,
                Some(arg) => match bind(arg, scope)? {
                    (BoundExpr::Literal(Value::Int(g)), _) if g >= 0 => g as usize,
                    _ => {
                        return Err(SqlError::new(
                            at(arg),
                            "REGEXP_EXTRACT's group must be a non-negative integer literal",
                        ))
                    }
                },
            };
            call(
                Scalar::RegexpExtract(Pattern(Arc::new(regex)), group),
                vec![s],
                SqlType::Varchar,
            )
        }
        "ABS" => {
            arity(1)?;
            let (arg, ty) = bind(args[0], scope)?;
            if !ty.is_numeric() {
                return Err(SqlError::new(
                    at(args[0]),
                    format!("ABS takes a number, found {ty}"),
                ));
            }
            call(Scalar::Abs, vec![arg], ty)
        }
        _ => {
            let Some(udf) = scope
                .udfs
                .iter()
                .find(|u| u.name.eq_ignore_ascii_case(&name))
            else {
                return Err(SqlError::new(at(expr), format!("unknown function {name}")));
            };
            arity(udf.args.len())?;
            let mut bound = Vec::new();
            for (arg, want) in args.iter().zip(&udf.args) {
                let (b, t) = bind(arg, scope)?;
                if common_type(&t, want).as_ref() != Some(want) {
                    return Err(SqlError::new(
                        at(arg),
                        format!("{name} takes {want} here, found {t}"),
                    ));
                }
                bound.push(coerce(b, &t, want));
            }
            Ok((
                BoundExpr::Udf {
                    function: udf.clone(),
                    args: bound,
                },
                udf.result.clone(),
            ))
        }
    }
}

fn literal(v: &Literal, position: Position) -> Result<(BoundExpr, SqlType), SqlError> {
    let (value, ty) = match v {
        Literal::Number(text, _) => number(text)
            .ok_or_else(|| SqlError::new(position, format!("number {text} is out of range")))?,
        Literal::SingleQuotedString(s) => (Value::Str(s.clone()), SqlType::Varchar),
        Literal::Boolean(b) => (Value::Bool(*b), SqlType::Boolean),
        Literal::Null => (Value::Null, SqlType::Null),
        other => {
            return Err(SqlError::new(
                position,
                format!("unsupported literal {other}"),
            ))
        }
    };
    Ok((BoundExpr::Literal(value), ty))
}

/// A numeric literal: INT, BIGINT, DECIMAL(p, s) for a point, DOUBLE with an exponent.
fn number(text: &str) -> Option<(Value, SqlType)> {
    if text.contains(['e', 'E']) {
        return Some((Value::Double(text.parse().ok()?), SqlType::Double));
    }
    match text.split_once('.') {
        None => {
            let v: i128 = text.parse().ok()?;
            if let Ok(v) = i32::try_from(v) {
                Some((Value::Int(i64::from(v)), SqlType::Int))
            } else if let Ok(v) = i64::try_from(v) {
                Some((Value::Int(v), SqlType::BigInt))
            } else {
                let precision = text.trim_start_matches('-').len() as u8;
                (precision <= 38).then_some((
                    Value::Decimal(v),
                    SqlType::Decimal {
                        precision,
                        scale: 0,
                    },
                ))
            }
        }
        Some((whole, fraction)) => {
            let digits = format!("{whole}{fraction}");
            let unscaled: i128 = digits.parse().ok()?;
            let scale = fraction.len() as u8;
            // As Calcite counts: `0.908` is DECIMAL(4, 3), one digit before the point.
            let whole_digits = whole
                .trim_start_matches('-')
                .trim_start_matches('0')
                .len()
                .max(1);
            let precision = (whole_digits + fraction.len()) as u8;
            (precision <= 38).then_some((
                Value::Decimal(unscaled),
                SqlType::Decimal { precision, scale },
            ))
        }
    }
}

/// Flink's precision and scale fitted to 38 digits, keeping at least 6
/// fraction digits when it must cut.
fn adjust(precision: u32, scale: u32) -> (u8, u8) {
    if precision <= 38 {
        return (precision as u8, scale as u8);
    }
    let integral = precision - scale;
    let scale = (38u32.saturating_sub(integral)).max(scale.min(6));
    (38, scale as u8)
}

/// The type two operands meet in (for comparison, CASE, IN, UNION).
pub fn common_type(a: &SqlType, b: &SqlType) -> Option<SqlType> {
    use SqlType as T;
    if a == b {
        return Some(a.clone());
    }
    match (a, b) {
        (T::Null, t) | (t, T::Null) => Some(t.clone()),
        (T::Double | T::Float, t) | (t, T::Double | T::Float) if t.is_numeric() => Some(T::Double),
        (x, y) if x.is_integer() && y.is_integer() => {
            let rank = |t: &T| {
                [T::TinyInt, T::SmallInt, T::Int, T::BigInt]
                    .iter()
                    .position(|r| r == t)
            };
            Some(if rank(x) > rank(y) {
                x.clone()
            } else {
                y.clone()
            })
        }
        (x, y) if x.as_decimal().is_some() && y.as_decimal().is_some() => {
            let ((p1, s1), (p2, s2)) = (x.as_decimal()?, y.as_decimal()?);
            let scale = u32::from(s1.max(s2));
            let integral = u32::from((p1 - s1).max(p2 - s2));
            let (precision, scale) = adjust(integral + scale, scale);
            Some(T::Decimal { precision, scale })
        }
        (T::Timestamp { precision: p }, T::Timestamp { precision: q }) => Some(T::Timestamp {
            precision: *p.max(q),
        }),
        (T::TimestampLtz { precision: p }, T::TimestampLtz { precision: q }) => {
            Some(T::TimestampLtz {
                precision: *p.max(q),
            })
        }
        _ => None,
    }
}

/// `expr` of type `from` as type `to` (a cast node, or a literal folded).
fn coerce(expr: BoundExpr, from: &SqlType, to: &SqlType) -> BoundExpr {
    if from == to {
        return expr;
    }
    match expr {
        BoundExpr::Literal(v) => match cast(v.clone(), from, to) {
            Ok(folded) => BoundExpr::Literal(folded),
            Err(_) => BoundExpr::Cast {
                expr: Box::new(BoundExpr::Literal(v)),
                from: from.clone(),
                to: to.clone(),
            },
        },
        expr => BoundExpr::Cast {
            expr: Box::new(expr),
            from: from.clone(),
            to: to.clone(),
        },
    }
}

fn comparison(
    op: CompareOp,
    (l, lt): (BoundExpr, SqlType),
    (r, rt): (BoundExpr, SqlType),
    expr: &Expr,
) -> Result<(BoundExpr, SqlType), SqlError> {
    let comparable = (lt.is_numeric() && rt.is_numeric())
        || lt == rt
        || lt == SqlType::Null
        || rt == SqlType::Null
        || (lt.is_timestamp() && rt.is_timestamp());
    let common = common_type(&lt, &rt)
        .filter(|_| comparable)
        .ok_or_else(|| SqlError::new(at(expr), format!("cannot compare {lt} with {rt}")))?;
    Ok((
        BoundExpr::Compare {
            op,
            left: Box::new(coerce(l, &lt, &common)),
            right: Box::new(coerce(r, &rt, &common)),
        },
        SqlType::Boolean,
    ))
}

fn arithmetic(
    op: ArithOp,
    (l, lt): (BoundExpr, SqlType),
    (r, rt): (BoundExpr, SqlType),
    expr: &Expr,
) -> Result<(BoundExpr, SqlType), SqlError> {
    use SqlType as T;
    let node = |kind, left, right| BoundExpr::Arith {
        op,
        kind,
        left: Box::new(left),
        right: Box::new(right),
    };
    // Timestamps move by intervals.
    match (&lt, &rt, op) {
        (t, T::Interval, ArithOp::Add | ArithOp::Sub) | (T::Interval, t, ArithOp::Add)
            if t.is_timestamp() =>
        {
            return Ok((node(ArithKind::TimestampInterval, l, r), t.clone()));
        }
        (T::Interval, T::Interval, ArithOp::Add | ArithOp::Sub) => {
            return Ok((node(ArithKind::Int { bits: 64 }, l, r), T::Interval));
        }
        _ => {}
    }
    if !(lt.is_numeric() || lt == T::Null) || !(rt.is_numeric() || rt == T::Null) {
        return Err(SqlError::new(
            at(expr),
            format!("operator {op:?} does not apply to {lt} and {rt}"),
        ));
    }
    let common = common_type(&lt, &rt).unwrap_or(T::BigInt);
    if common.is_integer() {
        let bits = match common {
            T::TinyInt => 8,
            T::SmallInt => 16,
            T::Int => 32,
            _ => 64,
        };
        return Ok((
            node(
                ArithKind::Int { bits },
                coerce(l, &lt, &common),
                coerce(r, &rt, &common),
            ),
            common,
        ));
    }
    if common == T::Double {
        return Ok((
            node(
                ArithKind::Double,
                coerce(l, &lt, &T::Double),
                coerce(r, &rt, &T::Double),
            ),
            T::Double,
        ));
    }
    // Exact operands meet as decimals, each keeping its own scale.
    let as_decimal = |t: &T| t.as_decimal().unwrap_or((19, 0));
    let ((p1, s1), (p2, s2)) = (as_decimal(&lt), as_decimal(&rt));
    let to_decimal = |e, t: &T, (p, s)| {
        coerce(
            e,
            t,
            &T::Decimal {
                precision: p,
                scale: s,
            },
        )
    };
    let (p1, s1, p2, s2) = (u32::from(p1), u32::from(s1), u32::from(p2), u32::from(s2));
    let (precision, scale) = match op {
        ArithOp::Add | ArithOp::Sub => {
            let scale = s1.max(s2);
            adjust((p1 - s1).max(p2 - s2) + scale + 1, scale)
        }
        ArithOp::Mul => adjust(p1 + p2, s1 + s2),
        ArithOp::Div => {
            let scale = 6u32.max(s1 + p2 + 1);
            adjust(p1 - s1 + s2 + scale, scale)
        }
        ArithOp::Mod => {
            let scale = s1.max(s2);
            adjust((p1 - s1).min(p2 - s2) + scale, scale)
        }
    };
    let left = to_decimal(l, &lt, (p1 as u8, s1 as u8));
    let right = to_decimal(r, &rt, (p2 as u8, s2 as u8));
    let kind = ArithKind::Decimal {
        left_scale: s1 as u8,
        right_scale: s2 as u8,
        precision,
        scale,
    };
    Ok((node(kind, left, right), T::Decimal { precision, scale }))
}

fn expect_boolean(ty: &SqlType, expr: &Expr) -> Result<(), SqlError> {
    match ty {
        SqlType::Boolean | SqlType::Null => Ok(()),
        _ => Err(SqlError::new(
            at(expr),
            format!("expected a BOOLEAN condition, found {ty}"),
        )),
    }
}

fn expect_string((e, t): (BoundExpr, SqlType), expr: &Expr) -> Result<BoundExpr, SqlError> {
    match t {
        SqlType::Varchar | SqlType::Null => Ok(e),
        _ => Err(SqlError::new(
            at(expr),
            format!("expected a STRING, found {t}"),
        )),
    }
}

fn to_string_arg((e, t): (BoundExpr, SqlType), expr: &Expr) -> Result<BoundExpr, SqlError> {
    match t {
        SqlType::Varchar | SqlType::Null => Ok(e),
        SqlType::Row(_) | SqlType::Interval => Err(SqlError::new(
            at(expr),
            format!("expected a STRING, found {t}"),
        )),
        t => Ok(coerce(e, &t, &SqlType::Varchar)),
    }
}

fn expect_integer((e, t): (BoundExpr, SqlType), expr: &Expr) -> Result<BoundExpr, SqlError> {
    if t.is_integer() || t == SqlType::Null {
        Ok(e)
    } else {
        Err(SqlError::new(
            at(expr),
            format!("expected an integer, found {t}"),
        ))
    }
}

fn expect_timestamp((e, t): (BoundExpr, SqlType), expr: &Expr) -> Result<BoundExpr, SqlError> {
    if t.is_timestamp() || t == SqlType::Null {
        Ok(e)
    } else {
        Err(SqlError::new(
            at(expr),
            format!("expected a TIMESTAMP, found {t}"),
        ))
    }
}

#[cfg(test)]
mod tests;
