//! Binding over a `GROUP BY`: the select list and `HAVING` of a grouped
//! query see the group's keys and aggregate calls, not the input's columns.
//!
//! A [`Grouping`] in the [`Scope`] makes [`bind`] look at every expression
//! before binding it: an aggregate call (`COUNT(DISTINCT bidder) FILTER
//! (WHERE price < 10000)`) has its argument and filter bound against the
//! input and becomes a column after the keys; an expression equal to a
//! `GROUP BY` expression (bound the same) becomes that key's column; a bare
//! input column that is neither is refused, as Flink refuses it. Everything
//! else binds as usual, its parts looked at in turn.

use std::cell::RefCell;

use sqlparser::ast::{
    DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Spanned,
};

use super::{bind, expect_boolean, Scope};
use crate::sql::aggregate::AggregateKind;
use crate::sql::error::{Position, SqlError};
use crate::sql::expr::BoundExpr;
use crate::sql::sql_type::SqlType;

/// An aggregate call found in a grouped query, bound against its input.
#[derive(Debug, Clone)]
pub struct FoundAggregate {
    pub kind: AggregateKind,
    pub distinct: bool,
    /// The argument and its type; `None` for `COUNT(*)`.
    pub arg: Option<(BoundExpr, SqlType)>,
    pub filter: Option<BoundExpr>,
    pub result_type: SqlType,
    /// The call as written, for names and EXPLAIN.
    pub text: String,
    /// The argument and the filter as written, for EXPLAIN.
    pub arg_text: Option<String>,
    pub filter_text: Option<String>,
}

impl FoundAggregate {
    /// Calls that compute the same thing are one.
    fn same_as(&self, other: &FoundAggregate) -> bool {
        self.kind == other.kind
            && self.distinct == other.distinct
            && format!("{:?}{:?}", self.arg, self.filter)
                == format!("{:?}{:?}", other.arg, other.filter)
    }
}

/// A group window of `GROUP BY` (`TUMBLE(ts, INTERVAL …)`, `HOP(…)`,
/// `SESSION(…)`): its auxiliary functions (`TUMBLE_START(ts, INTERVAL …)`,
/// `_END`, `_ROWTIME`, with the same arguments) are key columns.
#[derive(Debug, Clone)]
pub struct GroupWindow {
    /// `TUMBLE`, `HOP` or `SESSION`.
    pub function: String,
    /// The arguments as written, which an auxiliary function must repeat.
    pub arguments: String,
    /// The key column of the window's start; its end and time follow.
    pub start_key: usize,
}

/// The arguments of a function call as written, for comparing calls.
pub fn arguments_text(function: &sqlparser::ast::Function) -> String {
    match &function.args {
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// What a grouped query's expressions see.
#[derive(Debug)]
pub struct Grouping {
    /// The rows before grouping.
    pub input: Scope,
    /// The `GROUP BY` expressions, bound against `input`, with their types.
    pub keys: Vec<(BoundExpr, SqlType)>,
    /// The aggregate calls found so far; call `j` is column `keys.len() + j`.
    pub calls: RefCell<Vec<FoundAggregate>>,
    /// Detecting only (a query without `GROUP BY`): bare columns bind as
    /// usual, and the query is an aggregation if some call was found.
    pub detecting: bool,
    pub group_window: Option<GroupWindow>,
}

impl Grouping {
    /// `expr` bound as a key or an aggregate call, or `None` when it is
    /// neither (bind it as usual; its parts come back here).
    pub(super) fn bind_grouped(
        &self,
        expr: &Expr,
    ) -> Result<Option<(BoundExpr, SqlType)>, SqlError> {
        if let Expr::Function(function) = expr {
            let upper = function.name.to_string().to_ascii_uppercase();
            if let (Some(kind), None) = (AggregateKind::named(&upper), &function.over) {
                return self.bind_call(kind, function, expr).map(Some);
            }
            if let Some(found) = self.bind_window_function(&upper, function, expr)? {
                return Ok(Some(found));
            }
        }
        let is_column = matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        match bind(expr, &self.input) {
            Ok((bound, _)) => {
                let text = format!("{bound:?}");
                if let Some(k) = self.keys.iter().position(|(b, _)| format!("{b:?}") == text) {
                    return Ok(Some((BoundExpr::Column(k), self.keys[k].1.clone())));
                }
                if is_column && !self.detecting {
                    let name = match expr {
                        Expr::Identifier(ident) => ident.value.clone(),
                        Expr::CompoundIdentifier(parts) => parts
                            .iter()
                            .map(|p| p.value.as_str())
                            .collect::<Vec<_>>()
                            .join("."),
                        _ => expr.to_string(),
                    };
                    return Err(SqlError::new(
                        Position::of_span(expr.span()),
                        format!("expression `{name}` is not being grouped: add it to GROUP BY or use it inside an aggregate function"),
                    ));
                }
                Ok(None)
            }
            Err(e) if is_column => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// `TUMBLE_START(ts, INTERVAL '10' SECOND)` and the like: the group
    /// window's start, end or time, if the call repeats its arguments.
    fn bind_window_function(
        &self,
        upper: &str,
        function: &sqlparser::ast::Function,
        expr: &Expr,
    ) -> Result<Option<(BoundExpr, SqlType)>, SqlError> {
        let Some((window, property)) = upper.rsplit_once('_') else {
            return Ok(None);
        };
        let offset = match property {
            "START" => 0,
            "END" => 1,
            "ROWTIME" => 2,
            _ => return Ok(None),
        };
        if !matches!(window, "TUMBLE" | "HOP" | "SESSION") {
            return Ok(None);
        }
        let arguments = arguments_text(function);
        match &self.group_window {
            Some(group) if group.function == window && group.arguments == arguments => Ok(Some((
                BoundExpr::Column(group.start_key + offset),
                SqlType::Timestamp { precision: 3 },
            ))),
            _ => Err(SqlError::new(
                Position::of_span(expr.span()),
                format!("{upper}({arguments}) needs GROUP BY {window}({arguments}), with the same arguments"),
            )),
        }
    }

    fn bind_call(
        &self,
        kind: AggregateKind,
        function: &sqlparser::ast::Function,
        expr: &Expr,
    ) -> Result<(BoundExpr, SqlType), SqlError> {
        let position = Position::of_span(expr.span());
        let name = kind.sql_name();
        let (distinct, args) = match &function.args {
            FunctionArguments::List(list) => (
                list.duplicate_treatment == Some(DuplicateTreatment::Distinct),
                list.args.as_slice(),
            ),
            _ => (false, &[][..]),
        };
        let arg = match args {
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if kind == AggregateKind::Count => {
                if distinct {
                    return Err(SqlError::new(
                        position,
                        "COUNT(DISTINCT *) is not SQL: name the column to count distinct values of",
                    ));
                }
                None
            }
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] => Some(bind(arg, &self.input)?),
            _ => {
                return Err(SqlError::new(
                    position,
                    format!(
                        "{name} takes one argument{}",
                        if kind == AggregateKind::Count {
                            " or *"
                        } else {
                            ""
                        }
                    ),
                ))
            }
        };
        let result_type = kind
            .result_type(arg.as_ref().map(|(_, ty)| ty))
            .map_err(|message| SqlError::new(position, message))?;
        let filter = match &function.filter {
            Some(condition) => {
                let (bound, ty) = bind(condition, &self.input)?;
                expect_boolean(&ty, condition)?;
                Some(bound)
            }
            None => None,
        };
        let found = FoundAggregate {
            kind,
            distinct,
            arg,
            filter,
            result_type: result_type.clone(),
            text: expr.to_string(),
            arg_text: match args {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] => Some(arg.to_string()),
                _ => None,
            },
            filter_text: function.filter.as_ref().map(|f| f.to_string()),
        };
        let mut calls = self.calls.borrow_mut();
        let j = match calls.iter().position(|c| c.same_as(&found)) {
            Some(j) => j,
            None => {
                calls.push(found);
                calls.len() - 1
            }
        };
        Ok((BoundExpr::Column(self.keys.len() + j), result_type))
    }
}
