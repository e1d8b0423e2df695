//! Common subexpressions of a [`Calc`](super::calc::Calc), computed once per
//! row instead of once per occurrence (q21's `lower(channel)` is written
//! five times, its `REGEXP_EXTRACT` twice; q14's `0.908 * price` three
//! times).
//!
//! A calc runs in stages: its filters in order, then its projection. A
//! shared expression is computed at the first stage that evaluates it
//! whatever the row holds (an *unconditional* occurrence: not behind a
//! CASE branch, an AND/OR operand after the first, or a function argument
//! after the first, all of which may be skipped); its value is appended to
//! the row, and every occurrence from that stage on reads the appended
//! column. Occurrences in earlier stages stay as written. So a row computes
//! nothing the unshared calc would not have computed, and an error (a
//! division by zero) happens exactly where it would have. Planning only;
//! runs once per calc where the job is built.

use std::collections::BTreeMap;

use super::expr::BoundExpr;

/// The values a calc appends to its rows before each stage: `stages[k]`
/// before filter `k`, `stages[filters]` before the projection. Appended in
/// order, the `j`-th appended value is row column `width + j`.
pub type SharedStages = Vec<Vec<BoundExpr>>;

/// Rewrites `filters` and `projection` (over rows of `width` columns) to
/// read each shared subexpression from the column it is appended at, and
/// returns what to append before each stage.
pub fn share_subexpressions(
    filters: &mut [BoundExpr],
    projection: Option<&mut [BoundExpr]>,
    width: usize,
) -> SharedStages {
    let projection_stage = filters.len();
    let mut roots: Vec<(usize, &mut BoundExpr)> = filters.iter_mut().enumerate().collect();
    if let Some(projection) = projection {
        roots.extend(projection.iter_mut().map(|e| (projection_stage, e)));
    }
    // (stage, expression), in the order chosen; slot `j` is read as
    // column `width + j` until the final renumbering.
    let mut chosen: Vec<(usize, BoundExpr)> = Vec::new();
    // Each choice removes at least one node from the roots: bounded.
    loop {
        let mut occurrences: BTreeMap<String, Occurrences> = BTreeMap::new();
        for (stage, root) in roots.iter() {
            collect(root, *stage, true, &mut occurrences);
        }
        let best = occurrences
            .into_iter()
            .filter_map(|(key, o)| {
                let stage = o.first_unconditional?;
                let later = o.stages.iter().filter(|&&s| s >= stage).count();
                (later >= 2).then_some((o.size, stage, key, o.expr))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.2.cmp(&a.2)));
        let Some((_, stage, key, expr)) = best else {
            break;
        };
        let column = BoundExpr::Column(width + chosen.len());
        for (root_stage, root) in roots.iter_mut() {
            if *root_stage >= stage {
                replace(root, &key, &column);
            }
        }
        chosen.push((stage, expr));
    }
    // Appended stage by stage: renumber the slots in that order. (A slot's
    // expression reads only slots chosen before it, at its stage or earlier.)
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by_key(|&j| (chosen[j].0, j));
    let mut column_of_slot = vec![0; chosen.len()];
    for (position, &j) in order.iter().enumerate() {
        column_of_slot[j] = width + position;
    }
    let mut renumber = |i: usize| {
        BoundExpr::Column(if i >= width {
            column_of_slot[i - width]
        } else {
            i
        })
    };
    for (_, root) in roots.iter_mut() {
        root.rewrite_columns(&mut renumber);
    }
    let mut stages: SharedStages = vec![Vec::new(); projection_stage + 1];
    for j in order {
        let (stage, mut expr) = chosen[j].clone();
        expr.rewrite_columns(&mut renumber);
        stages[stage].push(expr);
    }
    stages
}

/// Where one expression occurs.
struct Occurrences {
    expr: BoundExpr,
    /// Nodes in the expression (larger ones are shared first).
    size: usize,
    /// The stage of every occurrence.
    stages: Vec<usize>,
    /// The first stage with an unconditional occurrence.
    first_unconditional: Option<usize>,
}

/// Records every subexpression of `expr` worth sharing (one that reads a
/// column and is more than a column); returns the size of `expr`.
fn collect(
    expr: &BoundExpr,
    stage: usize,
    unconditional: bool,
    out: &mut BTreeMap<String, Occurrences>,
) -> usize {
    let mut size = 1;
    let mut reads_column = matches!(expr, BoundExpr::Column(_));
    // Every node evaluates its first operand whenever it is evaluated; the
    // others it may skip (short circuits, CASE branches, NULL arguments).
    let mut copy = expr.clone();
    for (i, child) in copy.children_mut().into_iter().enumerate() {
        size += collect(child, stage, unconditional && i == 0, out);
        child.visit_columns(&mut |_| reads_column = true);
    }
    if size > 1 && reads_column {
        let entry = out.entry(key_of(expr)).or_insert_with(|| Occurrences {
            expr: expr.clone(),
            size,
            stages: Vec::new(),
            first_unconditional: None,
        });
        entry.stages.push(stage);
        if unconditional {
            let first = entry.first_unconditional.get_or_insert(stage);
            *first = (*first).min(stage);
        }
    }
    size
}

/// Replaces every occurrence of the expression `key` names in `expr` with `column`.
fn replace(expr: &mut BoundExpr, key: &str, column: &BoundExpr) {
    if !matches!(expr, BoundExpr::Column(_) | BoundExpr::Literal(_)) && key_of(expr) == key {
        *expr = column.clone();
        return;
    }
    for child in expr.children_mut() {
        replace(child, key, column);
    }
}

/// Equal for structurally equal expressions: the full debug form names
/// every operator, function (with its compiled pattern's text), column and
/// literal.
fn key_of(expr: &BoundExpr) -> String {
    format!("{expr:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::expr::{ArithKind, ArithOp, CompareOp};
    use crate::sql::value::Value;

    fn col(i: usize) -> BoundExpr {
        BoundExpr::Column(i)
    }

    fn lit(v: i64) -> BoundExpr {
        BoundExpr::Literal(Value::Int(v))
    }

    fn div(l: BoundExpr, r: BoundExpr) -> BoundExpr {
        BoundExpr::Arith {
            op: ArithOp::Div,
            kind: ArithKind::Int { bits: 64 },
            left: Box::new(l),
            right: Box::new(r),
        }
    }

    fn gt(l: BoundExpr, r: BoundExpr) -> BoundExpr {
        BoundExpr::Compare {
            op: CompareOp::Gt,
            left: Box::new(l),
            right: Box::new(r),
        }
    }

    #[test]
    fn an_expression_is_shared_from_its_first_unconditional_stage() {
        // WHERE b > 0 AND a / b > 1 … SELECT a / b, a / b + 1: the division
        // is behind the AND in the filter, so the filter keeps its own and
        // the projection computes it once.
        let a_div_b = div(col(0), col(1));
        let mut filters = vec![BoundExpr::And(vec![
            gt(col(1), lit(0)),
            gt(a_div_b.clone(), lit(1)),
        ])];
        let mut projection = vec![
            a_div_b.clone(),
            BoundExpr::Arith {
                op: ArithOp::Add,
                kind: ArithKind::Int { bits: 64 },
                left: Box::new(a_div_b.clone()),
                right: Box::new(lit(1)),
            },
        ];
        let before = format!("{filters:?}");
        let stages = share_subexpressions(&mut filters, Some(&mut projection), 2);
        assert_eq!(format!("{filters:?}"), before);
        assert_eq!(stages.len(), 2);
        assert!(stages[0].is_empty());
        assert_eq!(key_of(&stages[1][0]), key_of(&a_div_b));
        assert_eq!(key_of(&projection[0]), key_of(&col(2)));
        assert!(key_of(&projection[1]).contains("Column(2)"));
    }

    #[test]
    fn a_filter_shares_with_later_filters_and_the_projection() {
        let a_div_b = div(col(0), col(1));
        let mut filters = vec![gt(a_div_b.clone(), lit(1)), gt(a_div_b.clone(), lit(5))];
        let mut projection = vec![a_div_b.clone(), col(0)];
        let stages = share_subexpressions(&mut filters, Some(&mut projection), 2);
        assert_eq!(stages[0].len(), 1);
        assert!(stages[1].is_empty() && stages[2].is_empty());
        assert_eq!(key_of(&filters[1]), key_of(&gt(col(2), lit(5))));
        assert_eq!(key_of(&projection[0]), key_of(&col(2)));
    }

    #[test]
    fn nothing_once_or_only_conditional_is_shared() {
        let a_div_b = div(col(0), col(1));
        let case = BoundExpr::Case {
            whens: vec![(gt(col(1), lit(0)), a_div_b.clone())],
            otherwise: Box::new(a_div_b.clone()),
        };
        let mut projection = vec![case, div(col(1), col(0))];
        let before = format!("{projection:?}");
        let stages = share_subexpressions(&mut [], Some(&mut projection), 2);
        assert_eq!(format!("{projection:?}"), before);
        assert!(stages.iter().all(Vec::is_empty));
    }
}
