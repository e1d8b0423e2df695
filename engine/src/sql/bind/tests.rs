//! Expression evaluation and coercion against a table of cases, with
//! Flink's rules for NULL, overflow and division by zero.

use super::*;
use crate::sql::dialect::FlinkDialect;
use crate::sql::expr::EvalError;
use crate::sql::value::Row;

fn scope() -> Scope {
    let column = |name: &str, ty: SqlType| ScopeColumn {
        qualifier: Some("B".into()),
        name: name.into(),
        ty,
    };
    Scope {
        columns: vec![
            column("price", SqlType::BigInt),
            column("i", SqlType::Int),
            column("d", SqlType::Double),
            column("s", SqlType::Varchar),
            column("ts", SqlType::Timestamp { precision: 3 }),
            column("n", SqlType::BigInt),
            column(
                "dec",
                SqlType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            column("person.id", SqlType::BigInt),
        ],
        udfs: vec![Arc::new(ScalarUdf {
            name: "count_char".into(),
            args: vec![SqlType::Varchar, SqlType::Varchar],
            result: SqlType::BigInt,
            eval: Box::new(|args: &[&Value]| match args {
                [Value::Str(s), Value::Str(c)] => {
                    let c = c.chars().next().unwrap_or('\0');
                    Ok(Value::Int(s.chars().filter(|&x| x == c).count() as i64))
                }
                _ => Ok(Value::Int(0)),
            }),
        })],
        grouping: None,
    }
}

/// price 3, i 1, d 1.5, s "Apple", ts 2015-07-15 12:34:56.789, n NULL,
/// dec 12.34, person.id 1000.
fn row() -> Row {
    Row(vec![
        Value::Int(3),
        Value::Int(1),
        Value::Double(1.5),
        Value::Str("Apple".into()),
        Value::Timestamp(1_436_963_696_789),
        Value::Null,
        Value::Decimal(1234),
        Value::Int(1000),
    ])
}

fn parse(text: &str) -> Expr {
    let dialect = FlinkDialect;
    let mut parser = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(text)
        .unwrap();
    parser.parse_expr().unwrap()
}

fn eval(text: &str) -> (Result<Value, EvalError>, SqlType) {
    let (bound, ty) = bind(&parse(text), &scope()).unwrap_or_else(|e| panic!("{text}: {e}"));
    (bound.eval(&row()), ty)
}

#[test]
fn expressions_evaluate_as_flink_does() {
    let s = |v: &str| Value::Str(v.into());
    let dec = |v: i128| Value::Decimal(v);
    let int = |v: i64| Value::Int(v);
    let cases: Vec<(&str, Value, &str)> = vec![
        // q1's conversion: an exact DECIMAL(23, 3).
        ("0.908 * price", dec(2724), "DECIMAL(23, 3)"),
        ("0.908 * price > 2", Value::Bool(true), "BOOLEAN"),
        ("0.1 + 0.2 = 0.3", Value::Bool(true), "BOOLEAN"),
        ("1.0 / 3", dec(333_333_333_333), "DECIMAL(13, 12)"),
        ("dec * 2", dec(2468), "DECIMAL(20, 2)"),
        ("dec + 1", dec(1334), "DECIMAL(13, 2)"),
        ("CAST(dec AS BIGINT)", int(12), "BIGINT"),
        ("CAST(dec AS DOUBLE)", Value::Double(12.34), "DOUBLE"),
        // Integers: Java's truncating division and wrapping overflow.
        ("7 / 2", int(3), "INT"),
        ("-7 / 2", int(-3), "INT"),
        ("MOD(-7, 2)", int(-1), "INT"),
        ("MOD(price, 2)", int(1), "BIGINT"),
        ("i + 2147483647", int(i64::from(i32::MIN)), "INT"),
        ("price + 9223372036854775807", int(i64::MIN + 2), "BIGINT"),
        ("i + price", int(4), "BIGINT"),
        ("d * price", Value::Double(4.5), "DOUBLE"),
        ("d / 0", Value::Double(f64::INFINITY), "DOUBLE"),
        ("-price", int(-3), "BIGINT"),
        // NULL in, NULL out; three-valued logic.
        ("n + 1", Value::Null, "BIGINT"),
        ("n = 1", Value::Null, "BOOLEAN"),
        ("n IS NULL", Value::Bool(true), "BOOLEAN"),
        ("price IS NOT NULL", Value::Bool(true), "BOOLEAN"),
        ("n = 1 OR TRUE", Value::Bool(true), "BOOLEAN"),
        ("n = 1 AND FALSE", Value::Bool(false), "BOOLEAN"),
        ("n = 1 AND TRUE", Value::Null, "BOOLEAN"),
        ("NOT (n = 1)", Value::Null, "BOOLEAN"),
        ("n IN (1, 2)", Value::Null, "BOOLEAN"),
        ("CASE WHEN n = 1 THEN 'a' ELSE 'b' END", s("b"), "STRING"),
        ("CASE WHEN price = 1 THEN 'a' END", Value::Null, "STRING"),
        // Predicates and CASE.
        ("price BETWEEN 3 AND 5", Value::Bool(true), "BOOLEAN"),
        ("price NOT BETWEEN 4 AND 5", Value::Bool(true), "BOOLEAN"),
        (
            "lower(s) IN ('apple', 'google')",
            Value::Bool(true),
            "BOOLEAN",
        ),
        ("price IN (1, 2)", Value::Bool(false), "BOOLEAN"),
        (
            "CASE WHEN price > 10 THEN 'big' WHEN price > 2 THEN 'mid' ELSE 'small' END",
            s("mid"),
            "STRING",
        ),
        (
            "CASE price WHEN 3 THEN 1 ELSE 2.5 END",
            dec(10),
            "DECIMAL(11, 1)",
        ),
        // Strings.
        ("UPPER(s)", s("APPLE"), "STRING"),
        ("CHAR_LENGTH(s)", int(5), "INT"),
        ("SUBSTRING(s FROM 2 FOR 3)", s("ppl"), "STRING"),
        ("SUBSTRING(s FROM 0 FOR 2)", s("A"), "STRING"),
        ("CONCAT(s, '-', 'x')", s("Apple-x"), "STRING"),
        ("s || price", s("Apple3"), "STRING"),
        (
            "SPLIT_INDEX('https://www.nexmark.com/a/b/item.htm', '/', 3)",
            s("a"),
            "STRING",
        ),
        ("SPLIT_INDEX('https:', '/', 3)", Value::Null, "STRING"),
        ("SPLIT_INDEX('a//b', '/', 1)", s(""), "STRING"),
        ("SPLIT_INDEX('a::b::c', '::', 2)", s("c"), "STRING"),
        ("SPLIT_INDEX('a::b', '::', -1)", Value::Null, "STRING"),
        ("s LIKE 'A%e'", Value::Bool(true), "BOOLEAN"),
        ("s LIKE '_pp%'", Value::Bool(true), "BOOLEAN"),
        ("s LIKE '%p%p%l%'", Value::Bool(true), "BOOLEAN"),
        ("s LIKE 'A%x'", Value::Bool(false), "BOOLEAN"),
        ("s NOT LIKE 'apple'", Value::Bool(true), "BOOLEAN"),
        ("'50%' LIKE '50!%' ESCAPE '!'", Value::Bool(true), "BOOLEAN"),
        (
            "'505' LIKE '50!%' ESCAPE '!'",
            Value::Bool(false),
            "BOOLEAN",
        ),
        ("CAST(NULL AS STRING) LIKE '%'", Value::Null, "BOOLEAN"),
        (
            "REGEXP_EXTRACT('a?x=1&channel_id=42&y=2', '(&|^)channel_id=([^&]*)', 2)",
            s("42"),
            "STRING",
        ),
        (
            "REGEXP_EXTRACT('a?xchannel_id=42', '(&|^)channel_id=([^&]*)', 2)",
            Value::Null,
            "STRING",
        ),
        ("REGEXP_EXTRACT('abc123', '[0-9]+')", s("123"), "STRING"),
        ("REGEXP_EXTRACT('abc', '(b)', 5)", Value::Null, "STRING"),
        ("count_char('abcabc', 'c')", int(2), "BIGINT"),
        // Time.
        ("DATE_FORMAT(ts, 'yyyy-MM-dd')", s("2015-07-15"), "STRING"),
        ("DATE_FORMAT(ts, 'HH:mm')", s("12:34"), "STRING"),
        ("HOUR(ts)", int(12), "BIGINT"),
        (
            "TO_TIMESTAMP_LTZ(1436963696789, 3)",
            Value::Timestamp(1_436_963_696_789),
            "TIMESTAMP_LTZ(3)",
        ),
        (
            "TO_TIMESTAMP_LTZ(price, 0)",
            Value::Timestamp(3_000),
            "TIMESTAMP_LTZ(3)",
        ),
        ("TO_TIMESTAMP_LTZ(n, 3)", Value::Null, "TIMESTAMP_LTZ(3)"),
        (
            "HOUR(TO_TIMESTAMP_LTZ(1436963696789, 3))",
            int(12),
            "BIGINT",
        ),
        ("EXTRACT(MINUTE FROM ts)", int(34), "BIGINT"),
        (
            "ts - INTERVAL '4' SECOND",
            Value::Timestamp(1_436_963_692_789),
            "TIMESTAMP(3)",
        ),
        (
            "ts BETWEEN ts - INTERVAL '10' SECOND AND ts",
            Value::Bool(true),
            "BOOLEAN",
        ),
        ("CAST(ts AS STRING)", s("2015-07-15 12:34:56.789"), "STRING"),
        (
            "CAST('2015-07-15 12:34:56.789' AS TIMESTAMP(3)) = ts",
            Value::Bool(true),
            "BOOLEAN",
        ),
        // Casts and nested fields.
        ("CAST('12' AS INT) + 1", int(13), "INT"),
        ("CAST(price AS DOUBLE) / 2", Value::Double(1.5), "DOUBLE"),
        ("CAST(300 AS TINYINT)", int(44), "TINYINT"),
        ("person.id + 1", int(1001), "BIGINT"),
        ("B.person.id", int(1000), "BIGINT"),
        ("B.price", int(3), "BIGINT"),
    ];
    for (text, want, ty) in cases {
        let (got, got_ty) = eval(text);
        assert_eq!(got, Ok(want), "{text}");
        assert_eq!(got_ty.to_string(), ty, "type of {text}");
    }
}

#[test]
fn runtime_errors_fail_as_flink_fails() {
    for (text, message) in [
        ("price / 0", "division by zero"),
        ("MOD(price, 0)", "MOD by zero"),
        ("dec / 0", "division of a DECIMAL by zero"),
        ("CAST(s AS INT)", "cannot cast 'Apple' to INT"),
        (
            "TO_TIMESTAMP_LTZ(9223372036854775807, 0)",
            "TO_TIMESTAMP_LTZ(9223372036854775807, 0) is beyond the range of TIMESTAMP_LTZ(3)",
        ),
    ] {
        assert_eq!(eval(text).0, Err(EvalError(message.into())), "{text}");
    }
}

#[test]
fn binding_errors_name_the_problem_and_place() {
    for (text, column, message) in [
        (
            "pricee + 1",
            1,
            "unknown column `pricee`; the columns are price, i, d, s",
        ),
        (
            "1 + Price",
            5,
            "unknown column `Price`; did you mean `price`? (names are case-sensitive)",
        ),
        ("s + 1", 1, "operator Add does not apply to STRING and INT"),
        ("price = s", 1, "cannot compare BIGINT with STRING"),
        ("nosuch(1)", 1, "unknown function nosuch"),
        ("UPPER(price)", 7, "expected a STRING, found BIGINT"),
        (
            "COUNT(*)",
            1,
            "aggregate function COUNT is not allowed here",
        ),
        (
            "CASE WHEN price THEN 1 END",
            11,
            "expected a BOOLEAN condition, found BIGINT",
        ),
        ("DATE_FORMAT(ts, 'EEE')", 17, "date pattern letter 'EEE'"),
        ("count_char(s)", 1, "count_char takes 2 arguments, found 1"),
        ("ts + 1", 1, "does not apply to TIMESTAMP(3) and INT"),
        ("INTERVAL '1' YEAR", 10, "unsupported interval unit"),
        ("CAST(ts AS INT)", 6, "cannot cast TIMESTAMP(3) to INT"),
        ("X.price", 1, "unknown column `X.price`"),
        (
            "TO_TIMESTAMP_LTZ(price, 6)",
            25,
            "precision is 0 (epoch seconds) or 3",
        ),
        (
            "TO_TIMESTAMP_LTZ(s, 3)",
            18,
            "expected an integer, found STRING",
        ),
    ] {
        let e = bind(&parse(text), &scope()).unwrap_err();
        assert!(e.message.contains(message), "{text}: {e}");
        assert_eq!(e.position, Position::new(1, column), "{text}: {e}");
    }
}
