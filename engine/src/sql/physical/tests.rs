//! Fusion, inlining and pruning against the logical plan evaluated step by
//! step: random queries (nested subqueries, filters, projections, UNION ALL)
//! over random rows (NULLs included) give the same rows both ways.

use proptest::prelude::*;

use super::*;
use crate::sql::catalog::Catalog;
use crate::sql::plan::plan_query;
use crate::sql::script::{parse_script, Statement};

const TABLE: &str = "CREATE TABLE t (a BIGINT, b INT, s VARCHAR, d DOUBLE, c AS a + b) \
                     WITH ('connector' = 'generator')";

/// A stored row of the table: `a, b, s, d`.
type Stored = (Option<i64>, Option<i32>, Option<String>, Option<f64>);

/// The table's rows, computed column included: what a scan yields.
fn scan_rows(stored: &[Stored]) -> Vec<Row> {
    stored
        .iter()
        .map(|(a, b, s, d)| {
            let a = a.map_or(Value::Null, Value::Int);
            let b = b.map_or(Value::Null, |b| Value::Int(i64::from(b)));
            let c = match (&a, &b) {
                (Value::Int(a), Value::Int(b)) => Value::Int(a.wrapping_add(*b)),
                _ => Value::Null,
            };
            let s = s.clone().map_or(Value::Null, Value::Str);
            let d = d.map_or(Value::Null, Value::Double);
            Row(vec![a, b, s, d, c])
        })
        .collect()
}

/// The logical plan, one operator at a time (the model).
fn eval_logical(plan: &Plan, rows: &[Row]) -> Vec<Row> {
    match &plan.node {
        PlanNode::Scan { .. } => rows.to_vec(),
        PlanNode::Filter {
            input, predicate, ..
        } => eval_logical(input, rows)
            .into_iter()
            .filter(|r| predicate.holds(r).unwrap())
            .collect(),
        PlanNode::Project { input, exprs, .. } => eval_logical(input, rows)
            .iter()
            .map(|r| Row(exprs.iter().map(|e| e.eval(r).unwrap()).collect()))
            .collect(),
        PlanNode::Union { inputs } => inputs.iter().flat_map(|i| eval_logical(i, rows)).collect(),
    }
}

/// The physical plan as the job runs it: sources fill only the columns
/// pruning kept, calcs run compiled.
fn eval_physical(plan: &Physical, rows: &[Row]) -> Vec<Row> {
    match plan {
        Physical::Source { needed, .. } => rows
            .iter()
            .map(|r| {
                Row(r
                    .0
                    .iter()
                    .zip(needed)
                    .map(|(v, n)| if *n { v.clone() } else { Value::Null })
                    .collect())
            })
            .collect(),
        Physical::Calc { input, calc, .. } => {
            let compiled = calc.compile();
            eval_physical(input, rows)
                .into_iter()
                .filter_map(|r| compiled.apply(r).unwrap())
                .collect()
        }
        Physical::Union { inputs } => inputs.iter().flat_map(|i| eval_physical(i, rows)).collect(),
    }
}

const A: [&str; 5] = [
    "a",
    "a + 1",
    "a * 2 - b",
    "CASE WHEN a > 0 THEN a ELSE -a END",
    "a - b",
];
const B: [&str; 3] = ["b", "b + 1", "MOD(b, 7)"];
const S: [&str; 4] = ["s", "UPPER(s)", "CONCAT(s, 'x')", "SUBSTRING(s, 2)"];
const D: [&str; 3] = ["d", "d / 2", "d + a"];
const WHERE: [&str; 9] = [
    "a > {k}",
    "b < {k}",
    "s IS NOT NULL",
    "CHAR_LENGTH(s) > 2",
    "d >= {k}",
    "a + b > {k}",
    "NOT (a = {k})",
    "b IN (1, 2, 3, {k})",
    "a > {k} OR s = 'ab'",
];

/// One level of a query: a projection keeping the columns `a, b, s, d`
/// (each from a template) over `inner`, with a filter.
fn level(inner: &str, choice: &[usize; 5], k: i64, alias: usize) -> String {
    let predicate = WHERE[choice[4] % WHERE.len()].replace("{k}", &k.to_string());
    format!(
        "(SELECT {} AS a, {} AS b, {} AS s, {} AS d FROM {inner} WHERE {predicate}) AS q{alias}",
        A[choice[0] % A.len()],
        B[choice[1] % B.len()],
        S[choice[2] % S.len()],
        D[choice[3] % D.len()],
    )
}

/// A query of `levels` nested levels with a final projection of `outputs`.
fn query(levels: &[([usize; 5], i64)], outputs: &[usize]) -> String {
    let mut inner = "t".to_owned();
    for (i, (choice, k)) in levels.iter().enumerate() {
        inner = level(&inner, choice, *k, i);
    }
    let all: Vec<&str> = A.iter().chain(&B).chain(&S).chain(&D).copied().collect();
    let columns: Vec<String> = outputs
        .iter()
        .enumerate()
        .map(|(i, o)| format!("{} AS o{i}", all[o % all.len()]))
        .collect();
    format!("SELECT {} FROM {inner}", columns.join(", "))
}

fn stored_row() -> impl Strategy<Value = Stored> {
    (
        proptest::option::of(-5i64..5),
        proptest::option::of(-5i32..5),
        proptest::option::of("[a-c]{0,4}"),
        proptest::option::of(-4.0f64..4.0),
    )
}

fn level_choice() -> impl Strategy<Value = ([usize; 5], i64)> {
    (proptest::array::uniform5(0usize..20), -3i64..3)
}

proptest! {
    #[test]
    fn fused_and_pruned_plans_give_the_rows_of_the_logical_plan(
        rows in proptest::collection::vec(stored_row(), 0..30),
        first in proptest::collection::vec(level_choice(), 0..4),
        first_outputs in proptest::collection::vec(0usize..15, 1..6),
        second in proptest::option::of(proptest::collection::vec(level_choice(), 0..3)),
    ) {
        let mut text = query(&first, &first_outputs);
        if let Some(second) = &second {
            text = format!("{text} UNION ALL {}", query(second, &first_outputs));
        }
        let mut catalog = Catalog::default();
        for statement in parse_script(TABLE).unwrap() {
            catalog.apply(&statement, &[]).unwrap();
        }
        let statements = parse_script(&text).unwrap();
        let Statement::Query(parsed) = &statements[0].node else {
            panic!("not a query: {text}");
        };
        let plan = plan_query(parsed, &catalog).unwrap();
        let rows = scan_rows(&rows);
        let mut want = eval_logical(&plan, &rows);
        let mut got = eval_physical(&lower(&plan), &rows);
        want.sort();
        got.sort();
        prop_assert_eq!(got, want, "{}", text);
    }
}

#[test]
fn a_chain_of_views_fuses_into_one_calc_reading_only_what_it_needs() {
    let mut catalog = Catalog::default();
    for statement in parse_script(TABLE).unwrap() {
        catalog.apply(&statement, &[]).unwrap();
    }
    let statements =
        parse_script("SELECT a FROM (SELECT a, s FROM t WHERE b > 0) AS v WHERE s = 'x'").unwrap();
    let Statement::Query(parsed) = &statements[0].node else {
        panic!("not a query");
    };
    let physical = lower(&plan_query(parsed, &catalog).unwrap());
    let mut text = String::new();
    physical.explain_into(&mut text, 0);
    assert_eq!(
        text,
        "Calc (stateless, fused into the chain): WHERE b > 0; SELECT a, s; WHERE s = 'x'; SELECT a\n  \
         Source t reads [a, b, s]\n"
    );
}
