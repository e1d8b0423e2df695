use std::sync::Arc;

use proptest::prelude::*;

use super::LookupIndex;
use crate::sql::value::{Row, Value};

/// A small value: NULL sometimes, so NULL keys are exercised.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        6 => (0i64..4).prop_map(Value::Int),
    ]
}

fn row(width: usize) -> impl Strategy<Value = Row> {
    proptest::collection::vec(value(), width).prop_map(Row)
}

/// The join as SQL defines it: every pair whose keys are equal and not NULL,
/// in input order, then table order.
fn nested_loops(
    inputs: &[Row],
    table: &[Row],
    left_keys: &[usize],
    right_keys: &[usize],
    needed: &[bool],
) -> Vec<Row> {
    let mut out = Vec::new();
    for left in inputs {
        for right in table {
            let equal = left_keys.iter().zip(right_keys).all(|(&l, &r)| {
                !left.0[l].is_null() && !right.0[r].is_null() && left.0[l] == right.0[r]
            });
            if equal {
                let mut values = left.0[..2].to_vec();
                values.extend((right.0.iter().zip(needed)).map(|(v, &n)| {
                    if n {
                        v.clone()
                    } else {
                        Value::Null
                    }
                }));
                out.push(Row(values));
            }
        }
    }
    out
}

proptest! {
    /// Inputs of two columns plus a computed key column; a table of three
    /// columns keyed by one or two of them, with duplicates and NULLs.
    #[test]
    fn the_index_joins_like_nested_loops(
        inputs in proptest::collection::vec(row(3), 0..30),
        table in proptest::collection::vec(row(3), 0..30),
        two_keys in any::<bool>(),
        needed in proptest::collection::vec(any::<bool>(), 3),
    ) {
        let (left_keys, right_keys): (Vec<usize>, Vec<usize>) = if two_keys {
            (vec![2, 0], vec![1, 2])
        } else {
            (vec![2], vec![0])
        };
        let mut needed = needed;
        right_keys.iter().for_each(|&k| needed[k] = true);
        let index = Arc::new(LookupIndex::new(&table, &right_keys, &needed));
        let got: Vec<Row> = inputs
            .iter()
            .flat_map(|row| index.lookup(row.clone(), 2, &left_keys))
            .collect();
        let want = nested_loops(&inputs, &table, &left_keys, &right_keys, &needed);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn a_row_without_a_match_is_dropped_and_one_with_two_gives_two() {
    let table = vec![
        Row(vec![Value::Int(1), Value::Str("a".into())]),
        Row(vec![Value::Int(2), Value::Str("b".into())]),
        Row(vec![Value::Int(1), Value::Str("c".into())]),
    ];
    let index = Arc::new(LookupIndex::new(&table, &[0], &[true, true]));
    let joined: Vec<Row> = index
        .lookup(Row(vec![Value::Int(7), Value::Int(1)]), 1, &[1])
        .collect();
    assert_eq!(
        joined,
        vec![
            Row(vec![Value::Int(7), Value::Int(1), Value::Str("a".into())]),
            Row(vec![Value::Int(7), Value::Int(1), Value::Str("c".into())]),
        ]
    );
    assert_eq!(
        index
            .lookup(Row(vec![Value::Int(7), Value::Int(3)]), 1, &[1])
            .count(),
        0
    );
}
