//! Fusion, inlining and pruning against the logical plan evaluated step by
//! step: random queries (nested subqueries, filters, projections, UNION ALL)
//! over random rows (NULLs included) give the same rows both ways, the
//! physical plan reading narrowed rows made by the table's [`RowMaker`].

use proptest::prelude::*;

use super::*;
use crate::sql::catalog::Catalog;
use crate::sql::expr::EvalError;
use crate::sql::plan::plan_query;
use crate::sql::scan::{source_layout, ConnectorColumn, RowMaker};
use crate::sql::script::{parse_script, Statement};
use crate::sql::sql_type::SqlType;

/// The computed column comes between stored ones: its expression indexes
/// the stored columns, not the table's.
const TABLE: &str = "CREATE TABLE t (a BIGINT, c AS a + b, b INT, s VARCHAR, d DOUBLE) \
                     WITH ('connector' = 'generator')";

/// The stored columns, as a connector declares them.
const STORED: [ConnectorColumn; 4] = [
    ("a", SqlType::BigInt),
    ("b", SqlType::Int),
    ("s", SqlType::Varchar),
    ("d", SqlType::Double),
];

/// A stored row of the table: `a, b, s, d`.
type Stored = (Option<i64>, Option<i32>, Option<String>, Option<f64>);

fn stored_values((a, b, s, d): &Stored) -> [Value; 4] {
    [
        a.map_or(Value::Null, Value::Int),
        b.map_or(Value::Null, |b| Value::Int(i64::from(b))),
        s.clone().map_or(Value::Null, Value::Str),
        d.map_or(Value::Null, Value::Double),
    ]
}

/// The table's rows, computed column included: what the logical scan yields.
fn scan_rows(stored: &[Stored]) -> Vec<Row> {
    stored
        .iter()
        .map(|row| {
            let [a, b, s, d] = stored_values(row);
            let c = match (&a, &b) {
                (Value::Int(a), Value::Int(b)) => Value::Int(a.wrapping_add(*b)),
                _ => Value::Null,
            };
            Row(vec![a, c, b, s, d])
        })
        .collect()
}

type Rows = Result<Vec<Row>, EvalError>;

/// The logical plan, one operator at a time (the model); an expression's
/// error fails the whole evaluation, as it fails the job.
fn eval_logical(plan: &Plan, rows: &[Row]) -> Rows {
    match &plan.node {
        PlanNode::Scan { .. } => Ok(rows.to_vec()),
        PlanNode::Filter {
            input, predicate, ..
        } => {
            let mut kept = Vec::new();
            for row in eval_logical(input, rows)? {
                if predicate.holds(&row)? {
                    kept.push(row);
                }
            }
            Ok(kept)
        }
        PlanNode::Project { input, exprs, .. } => eval_logical(input, rows)?
            .iter()
            .map(|r| {
                exprs
                    .iter()
                    .map(|e| e.eval(r))
                    .collect::<Result<_, _>>()
                    .map(Row)
            })
            .collect(),
        PlanNode::Union { inputs } => union(inputs.iter().map(|i| eval_logical(i, rows))),
        PlanNode::Aggregate { .. }
        | PlanNode::WindowTvf { .. }
        | PlanNode::WindowAggregate { .. }
        | PlanNode::Join { .. }
        | PlanNode::LookupJoin { .. }
        | PlanNode::Rank { .. } => unreachable!("the templates neither aggregate, join nor rank"),
    }
}

fn union(inputs: impl Iterator<Item = Rows>) -> Rows {
    let mut all = Vec::new();
    for rows in inputs {
        all.extend(rows?);
    }
    Ok(all)
}

/// The physical plan as the job runs it: the source's rows made by
/// `maker` (the narrowed layout), calcs run compiled.
fn eval_physical(plan: &Physical, stored: &[Stored], maker: &RowMaker) -> Rows {
    match plan {
        Physical::Source { .. } => stored
            .iter()
            .map(|row| {
                let values = stored_values(row);
                maker.make(|c| values[c].clone())
            })
            .collect(),
        Physical::Calc { input, calc, .. } => {
            let compiled = calc.compile(input.width());
            let mut out = Vec::new();
            for row in eval_physical(input, stored, maker)? {
                out.extend(compiled.apply(row)?);
            }
            Ok(out)
        }
        Physical::Union { inputs } => union(inputs.iter().map(|i| eval_physical(i, stored, maker))),
        Physical::GroupAggregate { .. }
        | Physical::WindowAggregate { .. }
        | Physical::Join { .. }
        | Physical::LookupJoin { .. }
        | Physical::WindowAssign { .. }
        | Physical::Rank { .. } => {
            unreachable!("the templates neither aggregate, join nor rank")
        }
    }
}

const A: [&str; 7] = [
    "a",
    "c",
    "a + 1",
    "a * 2 - b",
    "CASE WHEN a > 0 THEN a ELSE -a END",
    "a - b",
    "CASE WHEN b <> 0 THEN a / b ELSE a END",
];
const B: [&str; 3] = ["b", "b + 1", "MOD(b, 7)"];
const S: [&str; 4] = ["s", "UPPER(s)", "CONCAT(s, 'x')", "SUBSTRING(s, 2)"];
const D: [&str; 3] = ["d", "d / 2", "d + a"];
const C: [&str; 3] = ["c", "a + b", "c - a"];
const WHERE: [&str; 11] = [
    "b = 0 OR a / b > {k}",
    "c < {k}",
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

/// One level of a query: a projection keeping the columns `a, b, s, d, c`
/// (each from a template) over `inner`, with a filter.
fn level(inner: &str, choice: &[usize; 6], k: i64, alias: usize) -> String {
    let predicate = WHERE[choice[4] % WHERE.len()].replace("{k}", &k.to_string());
    format!(
        "(SELECT {} AS a, {} AS b, {} AS s, {} AS d, {} AS c FROM {inner} WHERE {predicate}) \
         AS q{alias}",
        A[choice[0] % A.len()],
        B[choice[1] % B.len()],
        S[choice[2] % S.len()],
        D[choice[3] % D.len()],
        C[choice[5] % C.len()],
    )
}

/// A query of `levels` nested levels with a final projection of `outputs`.
fn query(levels: &[([usize; 6], i64)], outputs: &[usize]) -> String {
    let mut inner = "t".to_owned();
    for (i, (choice, k)) in levels.iter().enumerate() {
        inner = level(&inner, choice, *k, i);
    }
    let all: Vec<&str> = A
        .iter()
        .chain(&B)
        .chain(&S)
        .chain(&D)
        .chain(&C)
        .copied()
        .collect();
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

fn level_choice() -> impl Strategy<Value = ([usize; 6], i64)> {
    (proptest::array::uniform6(0usize..20), -3i64..3)
}

proptest! {
    #[test]
    fn fused_and_pruned_plans_give_the_rows_of_the_logical_plan(
        rows in proptest::collection::vec(stored_row(), 0..30),
        first in proptest::collection::vec(level_choice(), 0..4),
        first_outputs in proptest::collection::vec(0usize..20, 1..6),
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
        let want = eval_logical(&plan, &scan_rows(&rows));
        let mut physical = lower(&plan);
        let mut read = HashMap::new();
        physical.tables_read(&mut read);
        let table = catalog.table("t").unwrap();
        let layout = source_layout(table, &read["t"]);
        physical.narrow(&HashMap::from([("t".to_owned(), layout.clone())]));
        let maker = RowMaker::new(table, "test", &STORED, &layout).unwrap();
        let got = eval_physical(&physical, &rows, &maker);
        let sorted = |rows: Rows| rows.map(|mut r| { r.sort(); r });
        prop_assert_eq!(sorted(got), sorted(want), "{}", text);
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
    physical.explain_into(&mut text, 0, &mut Default::default());
    assert_eq!(
        text,
        "Calc (stateless, fused into the chain): WHERE b > 0; SELECT a, s; WHERE s = 'x'; SELECT a\n  \
         Source t reads [a, b, s]\n"
    );
}
