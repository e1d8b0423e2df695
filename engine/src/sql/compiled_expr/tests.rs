//! Compiled expressions against the tree walk they replace: random
//! well-typed expressions over random rows (NULLs, zeros, extremes, NaN)
//! give the same value or the same error.

use proptest::prelude::*;

use super::*;
use crate::sql::expr::ArithOp;
use crate::sql::functions::Scalar;

/// The row layout the generated expressions read.
const BIGINT: usize = 0;
const INT: usize = 1;
const DOUBLE: usize = 2;
/// DECIMAL(10, 2).
const DECIMAL: usize = 3;
const VARCHAR: usize = 4;
const TIMESTAMP: usize = 5;
const BOOLEAN: usize = 6;

/// The value kinds an expression can have (what the binder's types come
/// down to at evaluation).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Int,
    Double,
    Decimal,
    Str,
    Timestamp,
    Bool,
}

const KINDS: [Kind; 6] = [
    Kind::Int,
    Kind::Double,
    Kind::Decimal,
    Kind::Str,
    Kind::Timestamp,
    Kind::Bool,
];

/// A deterministic stream of choices from a seed (xorshift).
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const OPS: [ArithOp; 5] = [
    ArithOp::Add,
    ArithOp::Sub,
    ArithOp::Mul,
    ArithOp::Div,
    ArithOp::Mod,
];

const COMPARES: [CompareOp; 6] = [
    CompareOp::Eq,
    CompareOp::NotEq,
    CompareOp::Lt,
    CompareOp::LtEq,
    CompareOp::Gt,
    CompareOp::GtEq,
];

fn boxed(e: BoundExpr) -> Box<BoundExpr> {
    Box::new(e)
}

fn literal(kind: Kind, c: &mut Choices) -> Value {
    if c.below(8) == 0 {
        return Value::Null;
    }
    match kind {
        Kind::Int => Value::Int(c.pick(&[0, 1, -1, 2, 7, i64::MAX, i64::MIN, 1_000_000])),
        Kind::Double => Value::Double(c.pick(&[0.0, 1.5, -2.25, f64::NAN, 1e300])),
        Kind::Decimal => Value::Decimal(c.pick(&[0, 908, -12_345, 99_999_999, 1])),
        Kind::Str => Value::Str(c.pick(&["", "a", "Ab", "bid", "12"]).to_owned()),
        Kind::Timestamp => Value::Timestamp(c.pick(&[0, 1_700_000_000_000, -5])),
        Kind::Bool => Value::Bool(c.below(2) == 0),
    }
}

fn column_of(kind: Kind, c: &mut Choices) -> BoundExpr {
    BoundExpr::Column(match kind {
        Kind::Int => c.pick(&[BIGINT, INT]),
        Kind::Double => DOUBLE,
        Kind::Decimal => DECIMAL,
        Kind::Str => VARCHAR,
        Kind::Timestamp => TIMESTAMP,
        Kind::Bool => BOOLEAN,
    })
}

fn sql_type(kind: Kind, c: &mut Choices) -> SqlType {
    match kind {
        Kind::Int => {
            [SqlType::BigInt, SqlType::Int, SqlType::SmallInt][c.below(3) as usize].clone()
        }
        Kind::Double => SqlType::Double,
        Kind::Decimal => SqlType::Decimal {
            precision: c.pick(&[5, 10, 19, 23, 38]),
            scale: c.pick(&[0, 2, 3]),
        },
        Kind::Str => SqlType::Varchar,
        Kind::Timestamp => SqlType::Timestamp { precision: 3 },
        Kind::Bool => SqlType::Boolean,
    }
}

/// `f(s, t)`: the length of `s` plus twice that of `t`; NULL `s` counts 0,
/// NULL `t` is an error.
fn test_udf() -> std::sync::Arc<crate::sql::functions::ScalarUdf> {
    std::sync::Arc::new(crate::sql::functions::ScalarUdf {
        name: "f".into(),
        args: vec![SqlType::Varchar, SqlType::Varchar],
        result: SqlType::BigInt,
        eval: Box::new(|args: &[&Value]| match args {
            [s, Value::Str(t)] => Ok(Value::Int(
                s.as_str().map_or(0, |s| s.len() as i64) + 2 * t.len() as i64,
            )),
            _ => Err(EvalError("f: NULL t".into())),
        }),
    })
}

/// A random expression of `kind`, at most `depth` deep.
fn expr(kind: Kind, depth: u32, c: &mut Choices) -> BoundExpr {
    let leaf = depth == 0 || c.below(3) == 0;
    if leaf {
        return if c.below(3) == 0 {
            BoundExpr::Literal(literal(kind, c))
        } else {
            column_of(kind, c)
        };
    }
    let d = depth - 1;
    // Forms every kind has: CASE and CAST.
    match c.below(6) {
        0 => {
            return BoundExpr::Case {
                whens: (0..1 + c.below(2))
                    .map(|_| (expr(Kind::Bool, d, c), expr(kind, d, c)))
                    .collect(),
                otherwise: boxed(expr(kind, d, c)),
            }
        }
        1 if kind != Kind::Bool => {
            let from_kind = c.pick(&[Kind::Int, Kind::Decimal, Kind::Double, kind]);
            return BoundExpr::Cast {
                expr: boxed(expr(from_kind, d, c)),
                from: sql_type(from_kind, c),
                to: sql_type(kind, c),
            };
        }
        _ => {}
    }
    match kind {
        // A UDF over two strings (columns and constants lent in place,
        // computed ones evaluated first), failing on a NULL second one.
        Kind::Int if c.below(4) == 0 => BoundExpr::Udf {
            function: test_udf(),
            args: vec![expr(Kind::Str, d, c), expr(Kind::Str, d, c)],
        },
        Kind::Int => BoundExpr::Arith {
            op: c.pick(&OPS),
            kind: ArithKind::Int {
                bits: c.pick(&[64, 32, 16]),
            },
            left: boxed(expr(Kind::Int, d, c)),
            right: boxed(expr(Kind::Int, d, c)),
        },
        Kind::Double => BoundExpr::Arith {
            op: c.pick(&OPS),
            kind: ArithKind::Double,
            left: boxed(expr(Kind::Double, d, c)),
            right: boxed(expr(Kind::Double, d, c)),
        },
        Kind::Decimal => BoundExpr::Arith {
            op: c.pick(&OPS),
            kind: ArithKind::Decimal {
                left_scale: c.pick(&[0, 2, 3]),
                right_scale: c.pick(&[0, 2, 3]),
                precision: c.pick(&[10, 23, 38]),
                scale: c.pick(&[0, 2, 3, 6]),
            },
            left: boxed(expr(Kind::Decimal, d, c)),
            right: boxed(expr(Kind::Decimal, d, c)),
        },
        Kind::Timestamp => BoundExpr::Arith {
            op: c.pick(&[ArithOp::Add, ArithOp::Sub]),
            kind: ArithKind::TimestampInterval,
            left: boxed(expr(Kind::Timestamp, d, c)),
            right: boxed(BoundExpr::Literal(Value::Int(c.pick(&[0, 4_000, -1])))),
        },
        Kind::Str => match c.below(3) {
            // Constant separators and indexes (compiled apart), or computed.
            0 => BoundExpr::Call {
                function: Scalar::SplitIndex,
                args: vec![
                    expr(Kind::Str, d, c),
                    match c.below(4) {
                        0 => expr(Kind::Str, d, c),
                        1 => BoundExpr::Literal(Value::Null),
                        _ => BoundExpr::Literal(Value::Str(c.pick(&["a", "", "ab", "é"]).into())),
                    },
                    match c.below(4) {
                        0 => expr(Kind::Int, d, c),
                        1 => BoundExpr::Literal(Value::Null),
                        _ => BoundExpr::Literal(Value::Int(c.pick(&[0, 1, 2, -1]))),
                    },
                ],
            },
            n => BoundExpr::Call {
                function: if n == 1 { Scalar::Upper } else { Scalar::Lower },
                args: vec![expr(Kind::Str, d, c)],
            },
        },
        Kind::Bool => match c.below(6) {
            0 => {
                let operands = c.pick(&KINDS);
                BoundExpr::Compare {
                    op: c.pick(&COMPARES),
                    left: boxed(expr(operands, d, c)),
                    right: boxed(expr(operands, d, c)),
                }
            }
            1 => {
                let terms = (0..2 + c.below(2))
                    .map(|_| expr(Kind::Bool, d, c))
                    .collect();
                if c.below(2) == 0 {
                    BoundExpr::And(terms)
                } else {
                    BoundExpr::Or(terms)
                }
            }
            2 => BoundExpr::Not(boxed(expr(Kind::Bool, d, c))),
            3 => BoundExpr::IsNull {
                expr: boxed(expr(c.pick(&KINDS), d, c)),
                negated: c.below(2) == 0,
            },
            4 => BoundExpr::InList {
                expr: boxed(expr(Kind::Int, d, c)),
                list: vec![Value::Int(0), Value::Int(c.pick(&[1, 2, 7]))],
                negated: c.below(2) == 0,
            },
            // A column against a constant, either way round.
            _ => {
                let operands = c.pick(&[Kind::Int, Kind::Str, Kind::Timestamp, Kind::Double]);
                let (column, constant) = (
                    column_of(operands, c),
                    BoundExpr::Literal(literal(operands, c)),
                );
                let (left, right) = if c.below(2) == 0 {
                    (column, constant)
                } else {
                    (constant, column)
                };
                BoundExpr::Compare {
                    op: c.pick(&COMPARES),
                    left: boxed(left),
                    right: boxed(right),
                }
            }
        },
    }
}

fn row(c: &mut Choices) -> Row {
    let mut column = |kind: Kind| literal(kind, c);
    Row(vec![
        column(Kind::Int),
        match column(Kind::Int) {
            Value::Int(v) => Value::Int(v as i32 as i64),
            v => v,
        },
        column(Kind::Double),
        column(Kind::Decimal),
        column(Kind::Str),
        column(Kind::Timestamp),
        column(Kind::Bool),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_compiled_expression_evaluates_as_the_tree_walk(seed in 1u64.., kind in 0usize..6) {
        let mut c = Choices(seed);
        let expression = expr(KINDS[kind], 4, &mut c);
        let compiled = CompiledExpr::new(&expression);
        let predicate = CompiledPredicate::new(&expression);
        for _ in 0..8 {
            let row = row(&mut c);
            let walked = expression.eval(&row);
            prop_assert_eq!(
                &compiled.eval(&row), &walked, "{:?} over {:?}", expression, row
            );
            if KINDS[kind] == Kind::Bool {
                prop_assert_eq!(
                    predicate.holds(&row), expression.holds(&row), "{:?} over {:?}", expression, row
                );
            }
        }
    }
}

#[test]
fn q1s_price_in_euros_is_an_exact_decimal_or_null_beyond_its_precision() {
    // 0.908 * CAST(price AS DECIMAL(19, 0)) as DECIMAL(23, 3).
    let euros = BoundExpr::Arith {
        op: ArithOp::Mul,
        kind: ArithKind::Decimal {
            left_scale: 3,
            right_scale: 0,
            precision: 23,
            scale: 3,
        },
        left: boxed(BoundExpr::Literal(Value::Decimal(908))),
        right: boxed(BoundExpr::Cast {
            expr: boxed(BoundExpr::Column(0)),
            from: SqlType::BigInt,
            to: SqlType::Decimal {
                precision: 19,
                scale: 0,
            },
        }),
    };
    let compiled = CompiledExpr::new(&euros);
    let price = |p: Value| compiled.eval(&Row(vec![p])).unwrap();
    assert_eq!(price(Value::Int(1_000)), Value::Decimal(908_000));
    assert_eq!(price(Value::Null), Value::Null);
    assert_eq!(
        price(Value::Int(i64::MAX)),
        Value::Decimal(908 * i128::from(i64::MAX))
    );
    assert_eq!(price(Value::Int(-3)), Value::Decimal(-2_724));
}
