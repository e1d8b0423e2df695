//! The scalar functions registered in the `sluice` binary, which a SQL
//! job's `CREATE FUNCTION name AS 'class'` may name (by name, or by the
//! class's simple or full name).

use std::sync::Arc;

use sluice_engine::sql::expr::EvalError;
use sluice_engine::sql::functions::ScalarUdf;
use sluice_engine::sql::{SqlType, Value};

/// Every registered function.
pub fn registered() -> Vec<Arc<ScalarUdf>> {
    vec![Arc::new(count_char())]
}

/// Nexmark's `CountChar` (q14): how often the first character of the
/// second argument occurs in the first; a NULL string has none, as in the
/// reference's Java.
fn count_char() -> ScalarUdf {
    ScalarUdf {
        name: "count_char".into(),
        args: vec![SqlType::Varchar, SqlType::Varchar],
        result: SqlType::BigInt,
        eval: Box::new(|args: &[&Value]| {
            let c = match args[1] {
                Value::Str(c) => c.chars().next().ok_or_else(|| {
                    EvalError("count_char: the character to count is an empty string".into())
                })?,
                _ => {
                    return Err(EvalError(
                        "count_char: the character to count is NULL".into(),
                    ))
                }
            };
            Ok(Value::Int(match args[0] {
                Value::Str(s) => super::nexmark::count_char(s, c) as i64,
                _ => 0,
            }))
        }),
    }
}
