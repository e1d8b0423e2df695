use super::*;
use crate::sql::interval_join::TimeBounds;
use crate::sql::script::{parse_script, Statement};

const NEXMARK: &str = "
CREATE TABLE datagen (
    event_type INT,
    bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
            `dateTime` TIMESTAMP(3), extra VARCHAR>,
    `dateTime` AS bid.`dateTime`,
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'nexmark');
CREATE VIEW bid AS
SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, `dateTime`, bid.extra
FROM datagen WHERE event_type = 2;
";

fn plan(query: &str) -> Result<Plan, SqlError> {
    let mut catalog = Catalog::default();
    for statement in parse_script(NEXMARK).unwrap() {
        catalog.apply(&statement, &[]).unwrap();
    }
    let statements = parse_script(query)?;
    let Statement::Query(query) = &statements[0].node else {
        panic!("not a query");
    };
    plan_query(query, &catalog)
}

#[test]
fn views_inline_and_event_time_follows_the_column() {
    let p = plan(
        "SELECT auction, 0.908 * price AS price, `dateTime` FROM bid WHERE MOD(auction, 123) = 0",
    )
    .unwrap();
    let names: Vec<String> = p
        .schema
        .iter()
        .map(|c| format!("{} {}", c.name, c.ty))
        .collect();
    assert_eq!(
        names,
        [
            "auction BIGINT",
            "price DECIMAL(23, 3)",
            "dateTime TIMESTAMP(3)"
        ]
    );
    assert_eq!(p.rowtime, Some(2));
    let explain = p.explain();
    assert_eq!(
        explain
            .lines()
            .map(|l| l.split(" [").next().unwrap())
            .collect::<Vec<_>>(),
        [
            "Project",
            "  Filter MOD(auction, 123) = 0",
            "    Project",
            "      Filter event_type = 2",
            "        Scan datagen",
        ],
        "{explain}"
    );
    assert!(
        explain.contains("dateTime TIMESTAMP(3) *ROWTIME*"),
        "{explain}"
    );
    // A computed time is no longer the event time.
    let p = plan("SELECT `dateTime` + INTERVAL '1' SECOND AS t FROM bid").unwrap();
    assert_eq!(p.rowtime, None);
    let p = plan("SELECT * FROM bid B").unwrap();
    assert_eq!(p.schema.len(), 7);
    assert_eq!(p.schema[0].qualifier.as_deref(), Some("B"));
    let p = plan("SELECT B.* FROM bid B UNION ALL SELECT * FROM bid").unwrap();
    assert_eq!(p.schema.len(), 7);
    assert_eq!(p.rowtime, Some(5));
}

#[test]
fn unplannable_queries_are_refused_by_name() {
    for (query, message) in [
        (
            "SELECT x FROM nope",
            "unknown table `nope`; the script creates datagen, bid",
        ),
        (
            "SELECT auction FROM bid WHERE price",
            "WHERE needs a BOOLEAN condition, found BIGINT",
        ),
        (
            "SELECT auction FROM bid ORDER BY price",
            "ORDER BY outside ROW_NUMBER()",
        ),
        (
            "SELECT auction FROM bid, bid",
            "a join without an equality between a column of each side (a cross join)",
        ),
        (
            "SELECT auction FROM bid UNION SELECT auction FROM bid",
            "UNION",
        ),
        (
            "SELECT auction FROM bid UNION ALL SELECT auction, price FROM bid",
            "UNION ALL of 1 and 2 columns",
        ),
        (
            "SELECT auction FROM bid UNION ALL SELECT channel FROM bid",
            "no common type",
        ),
        ("SELECT C.* FROM bid B", "unknown table `C` in `C.*`"),
        ("SELECT pricee FROM bid", "unknown column `pricee`"),
    ] {
        let e = plan(query).unwrap_err();
        assert!(e.message.contains(message), "{query}: {e}");
        assert!(e.position.line >= 1, "{query}: {e}");
    }
}

#[test]
fn malformed_window_queries_are_refused_by_name() {
    let tvf = |function: &str, rest: &str| {
        format!("SELECT auction, window_start, window_end, COUNT(*) FROM TABLE({function}) {rest}")
    };
    let grouped = "GROUP BY auction, window_start, window_end";
    for (query, message) in [
        (
            "SELECT auction, window_start FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))".to_owned(),
            "a window table function outside a window aggregation",
        ),
        (
            tvf("TUMBLE(TABLE bid, DESCRIPTOR(price), INTERVAL '10' SECOND)", grouped),
            "DESCRIPTOR(price) must name a time attribute of `bid`: its event time (the column of its WATERMARK) or its processing time (a column defined as PROCTIME())",
        ),
        (
            tvf("HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '3' SECOND, INTERVAL '10' SECOND)", grouped),
            "HOP needs a size that is a whole multiple of the slide, got size 10000 ms and slide 3000 ms",
        ),
        (
            tvf("CUMULATE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '3' SECOND, INTERVAL '10' SECOND)", grouped),
            "CUMULATE needs a size that is a whole multiple of the step",
        ),
        (
            tvf("SESSION(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '3' SECOND)", grouped),
            "a SESSION window aggregation whose GROUP BY columns (besides window_start and window_end) are not the table function's PARTITION BY columns",
        ),
        (
            tvf("SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(`dateTime`), INTERVAL '3' SECOND)", grouped),
            "are not the table function's PARTITION BY columns",
        ),
        (
            tvf("TUMBLE(TABLE bid PARTITION BY auction, DESCRIPTOR(`dateTime`), INTERVAL '3' SECOND)", grouped),
            "PARTITION BY in TUMBLE (only SESSION takes it) is not supported yet",
        ),
        (
            tvf("SESSION(TABLE bid PARTITION BY (auction, nobody), DESCRIPTOR(`dateTime`), INTERVAL '3' SECOND)", grouped),
            "nobody",
        ),
        (
            tvf("SESSION(TABLE bid PARTITION BY auction, DESCRIPTOR(`dateTime`), INTERVAL '3' SECOND, INTERVAL '1' SECOND)", grouped),
            "SESSION takes TABLE t, DESCRIPTOR(time column), the gap",
        ),
        (
            tvf("TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '0' SECOND)", grouped),
            "must be positive",
        ),
        (
            tvf("TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), price)", grouped),
            "`price` is not a constant interval",
        ),
        (
            tvf("TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND)", "GROUP BY auction, window_start"),
            "must group by both window_start and window_end",
        ),
        (
            tvf("SPLIT(TABLE bid)", grouped),
            "unknown table function `SPLIT`",
        ),
        (
            tvf("TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND)", &format!("WHERE window_start < `dateTime` {grouped}")),
            "a condition on window_start, window_end or window_time before the window aggregation",
        ),
        (
            "SELECT TUMBLE_START(`dateTime`, INTERVAL '10' SECOND) FROM bid GROUP BY auction".to_owned(),
            "needs GROUP BY TUMBLE",
        ),
        (
            "SELECT TUMBLE_END(`dateTime`, INTERVAL '5' SECOND) FROM bid GROUP BY TUMBLE(`dateTime`, INTERVAL '10' SECOND)".to_owned(),
            "with the same arguments",
        ),
        (
            "SELECT COUNT(*) FROM bid GROUP BY TUMBLE(price, INTERVAL '10' SECOND)".to_owned(),
            "TUMBLE's first argument `price` must be the event-time attribute",
        ),
        (
            "SELECT COUNT(*) FROM bid GROUP BY TUMBLE(`dateTime`, INTERVAL '1' SECOND), HOP(`dateTime`, INTERVAL '1' SECOND, INTERVAL '2' SECOND)".to_owned(),
            "a GROUP BY has one group window",
        ),
    ] {
        let e = plan(&query).unwrap_err();
        assert!(e.message.contains(message), "{query}: {e}");
        assert!(e.position.line >= 1, "{query}: {e}");
    }
}

#[test]
fn window_aggregation_keeps_the_window_columns_and_event_time() {
    let plan = plan(
        "SELECT auction, window_start, window_end, window_time, COUNT(*) AS n, MAX(price) AS top \
         FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
         GROUP BY auction, window_start, window_end, window_time",
    )
    .unwrap();
    let names: Vec<&str> = plan.schema.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "auction",
            "window_start",
            "window_end",
            "window_time",
            "n",
            "top"
        ]
    );
    assert_eq!(plan.rowtime, Some(3), "{}", plan.explain());
    assert!(!plan.is_updating());
    let explain = plan.explain();
    assert!(
        explain.contains("HOP(slide 2000 ms, size 10000 ms)"),
        "{explain}"
    );
}

#[test]
fn malformed_joins_are_refused_by_name() {
    for (query, message) in [
        (
            "SELECT a.price FROM bid a LEFT JOIN bid b ON a.auction = b.auction",
            "LEFT JOIN (an outer join) is not supported yet",
        ),
        (
            "SELECT a.price FROM bid a FULL OUTER JOIN bid b ON a.auction = b.auction",
            "FULL JOIN (an outer join)",
        ),
        (
            "SELECT a.price FROM bid a JOIN bid b USING (auction)",
            "JOIN … USING",
        ),
        (
            "SELECT a.price FROM bid a, bid b WHERE a.price > b.price",
            "a join without an equality between a column of each side",
        ),
        (
            "SELECT a.price FROM bid a JOIN bid b ON a.auction + 1 = b.auction",
            "a join without an equality between a column of each side",
        ),
        (
            "SELECT a.price FROM bid a JOIN bid b ON a.auction",
            "ON needs a BOOLEAN condition, found BIGINT",
        ),
        (
            "SELECT a.price FROM bid a JOIN bid b ON a.auction = b.bidder WHERE b.price",
            "WHERE needs a BOOLEAN condition, found BIGINT",
        ),
        (
            "SELECT a.price FROM bid a JOIN bid b ON a.auction = c.auction",
            "unknown column `c.auction`",
        ),
        (
            "SELECT price FROM bid a JOIN bid b ON a.auction = b.auction",
            "ambiguous",
        ),
        (
            "SELECT a.n FROM (SELECT auction, COUNT(*) AS n FROM bid GROUP BY auction) a JOIN bid b ON a.auction = b.auction",
            "a join of the result of an unbounded GROUP BY (an updating table)",
        ),
    ] {
        let e = plan(query).unwrap_err();
        assert!(e.message.contains(message), "{query}: {e}");
        assert!(e.position.line >= 1, "{query}: {e}");
    }
}

#[test]
fn a_join_pushes_one_sided_conditions_below_it_and_keys_on_the_equalities() {
    let plan = plan(
        "SELECT a.auction, b.price FROM bid a, bid b \
         WHERE a.auction = b.auction AND a.price > 10 AND b.bidder = a.bidder AND a.price < b.price",
    )
    .unwrap();
    assert_eq!(plan.rowtime, None, "a regular join keeps no event time");
    let explain = plan.explain();
    let lines: Vec<&str> = explain.lines().map(str::trim).collect();
    assert!(lines[0].starts_with("Project"), "{explain}");
    assert_eq!(lines[1], "Filter a.price < b.price", "{explain}");
    assert!(
        lines[2].starts_with("Join inner on [a.auction = b.auction, b.bidder = a.bidder]"),
        "{explain}"
    );
    assert_eq!(lines[3], "Filter a.price > 10", "{explain}");
}

#[test]
fn bounds_between_the_two_event_times_make_an_interval_join() {
    let interval = |query: &str| -> Option<TimeBounds> {
        let plan = plan(query).unwrap();
        let mut nodes = vec![&plan];
        while let Some(node) = nodes.pop() {
            if let PlanNode::Join { interval, .. } = &node.node {
                return interval.as_ref().map(|t| t.bounds);
            }
            nodes.extend(node.inputs());
        }
        panic!("no join in {query}");
    };
    let from = "SELECT a.price, b.price FROM bid a JOIN bid b ON a.auction = b.auction AND";
    // `dateTime` is the view's column 5: a.dateTime - b.dateTime in [lower, upper].
    let bounds = |lower, upper| {
        Some(TimeBounds {
            left_time: 5,
            right_time: 5,
            lower,
            upper,
        })
    };
    for (condition, want) in [
        (
            "a.`dateTime` BETWEEN b.`dateTime` - INTERVAL '1' MINUTE AND b.`dateTime` + INTERVAL '2' SECOND",
            bounds(-60_000, 2_000),
        ),
        (
            "b.`dateTime` > a.`dateTime` - INTERVAL '10' SECOND AND b.`dateTime` <= a.`dateTime`",
            bounds(0, 9_999),
        ),
        (
            "a.`dateTime` >= b.`dateTime` AND a.`dateTime` < b.`dateTime` + INTERVAL '1' SECOND AND a.price > b.price",
            bounds(0, 999),
        ),
        // One bound, or bounds on other columns: a regular join.
        ("a.`dateTime` >= b.`dateTime`", None),
        ("a.`dateTime` = b.`dateTime`", None),
        ("a.price BETWEEN b.price - 1 AND b.price + 1", None),
    ] {
        assert_eq!(interval(&format!("{from} {condition}")), want, "{condition}");
    }
    // Two window aggregations joined on their windows: a window join, timed
    // by both window ends (each side's column 2 here).
    let windowed = |key: &str| {
        format!(
            "(SELECT {key}, window_start AS s, window_end AS e FROM TABLE(TUMBLE(TABLE bid, \
             DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND)) GROUP BY {key}, window_start, window_end)"
        )
    };
    let window_join = |on: &str| {
        format!(
            "SELECT a.auction, b.e FROM {} a JOIN {} b ON a.auction = b.bidder {on}",
            windowed("auction"),
            windowed("bidder")
        )
    };
    assert_eq!(
        interval(&window_join("AND a.s = b.s AND b.e = a.e")),
        bounds(0, 0).map(|b| TimeBounds {
            left_time: 2,
            right_time: 2,
            ..b
        })
    );
    assert_eq!(
        interval(&window_join("AND a.e = b.e")),
        None,
        "one window bound only"
    );
    // Two window table functions (no aggregation) joined on their windows:
    // a window join over each row's windows (the bid view's 7 columns,
    // then window_start, window_end, window_time).
    let tvf = "(SELECT * FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND)))";
    let tvf_join = plan(&format!(
        "SELECT a.price, b.price FROM {tvf} a JOIN {tvf} b ON a.auction = b.auction \
         AND a.window_start = b.window_start AND a.window_end = b.window_end"
    ))
    .unwrap();
    assert!(
        tvf_join.explain().contains("WindowJoin inner on [a.auction = b.auction, a.window_start = b.window_start, a.window_end = b.window_end]"),
        "{}",
        tvf_join.explain()
    );
    let unaggregated = format!(
        "SELECT a.price FROM {tvf} a JOIN {tvf} b ON a.auction = b.auction AND a.window_end = b.window_end"
    );
    let refused = plan(&unaggregated).unwrap_err();
    assert!(
        refused
            .message
            .contains("a window table function outside a window aggregation"),
        "{refused}"
    );
    let explain = plan(&window_join("AND a.s = b.s AND a.e = b.e"))
        .unwrap()
        .explain();
    assert!(
        explain.contains("WindowJoin inner on [a.auction = b.bidder, a.s = b.s, a.e = b.e]"),
        "{explain}"
    );
    let explain = plan(&format!(
        "{from} a.`dateTime` BETWEEN b.`dateTime` AND b.`dateTime` + INTERVAL '1' SECOND WHERE a.price > b.price"
    ))
    .unwrap()
    .explain();
    let lines: Vec<&str> = explain.lines().map(str::trim).collect();
    assert_eq!(lines[1], "Filter a.price > b.price", "{explain}");
    assert!(
        lines[2].starts_with("IntervalJoin inner on [a.auction = b.auction] within [a.`dateTime` BETWEEN b.`dateTime` AND b.`dateTime` + INTERVAL '1' SECOND]"),
        "{explain}"
    );
}

#[test]
fn malformed_rankings_are_refused_by_name() {
    let ranked = |over: &str, outer: &str| {
        format!("SELECT {outer} FROM (SELECT auction, price, ROW_NUMBER() OVER ({over}) AS rn FROM bid) WHERE rn <= 3")
    };
    for (query, message) in [
        (
            "SELECT auction, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price) AS rn FROM bid".to_owned(),
            "ROW_NUMBER() without a bound on it in the enclosing query's WHERE",
        ),
        (
            "SELECT * FROM (SELECT auction, RANK() OVER (PARTITION BY auction ORDER BY price) AS rn FROM bid) WHERE rn <= 3".to_owned(),
            "RANK(…) OVER is only supported as ROW_NUMBER() OVER",
        ),
        (
            ranked("PARTITION BY auction ORDER BY price DESC", "auction, price"),
            "a Top-N of more than one row without its row number",
        ),
        (
            ranked("PARTITION BY auction", "*"),
            "ROW_NUMBER() needs ORDER BY",
        ),
        (
            ranked("PARTITION BY auction ORDER BY price + 1", "*"),
            "ORDER BY an expression in ROW_NUMBER()",
        ),
        (
            ranked("PARTITION BY auction ORDER BY price NULLS LAST", "*"),
            "NULLS FIRST or NULLS LAST",
        ),
        (
            "SELECT * FROM (SELECT auction, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price) AS rn FROM bid) WHERE rn <= 0".to_owned(),
            "keeps no row",
        ),
        (
            "SELECT * FROM (SELECT auction, price, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price) AS rn FROM bid) WHERE rn <= 3 AND price > 10".to_owned(),
            "WHERE over an updating table (the result of an unbounded GROUP BY or a Top-N)",
        ),
    ] {
        let e = plan(&query).unwrap_err();
        assert!(e.message.contains(message), "{query}: {e}");
        assert!(e.position.line >= 1, "{query}: {e}");
    }
}
