use super::*;

/// Nexmark's generator table and views, as the examples write them.
const NEXMARK_DDL: &str = "
CREATE TABLE datagen (
    event_type int,
    person ROW<id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR,
               city VARCHAR, state VARCHAR, `dateTime` TIMESTAMP(3), extra VARCHAR>,
    bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
            `dateTime` TIMESTAMP(3), extra VARCHAR>,
    `dateTime` AS
        CASE
            WHEN event_type = 0 THEN person.`dateTime`
            ELSE bid.`dateTime`
        END,
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
    'connector' = 'nexmark',
    'events.num' = '1000'
);

CREATE VIEW bid AS
SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, `dateTime`, bid.extra
FROM datagen WHERE event_type = 2;
";

#[test]
fn nexmark_tables_and_views_parse() {
    let statements = parse_script(NEXMARK_DDL).unwrap();
    assert_eq!(statements.len(), 2);
    let Statement::CreateTable(table) = &statements[0].node else {
        panic!("{:?}", statements[0]);
    };
    assert_eq!(statements[0].position, Position::new(2, 1));
    assert_eq!(table.name, "datagen");
    let names: Vec<&str> = table.columns.iter().map(|c| c.node.name.as_str()).collect();
    assert_eq!(names, ["event_type", "person", "bid", "dateTime"]);
    assert!(matches!(
        table.columns[0].node.kind,
        ColumnKind::Physical(SqlType::Int)
    ));
    assert!(matches!(
        table.columns[3].node.kind,
        ColumnKind::Computed(ref e) if matches!(**e, Expr::Case { .. })
    ));
    assert_eq!(table.columns[3].position, Position::new(8, 5));
    let watermark = table.watermark.as_ref().unwrap();
    assert_eq!(watermark.node.column, "dateTime");
    assert_eq!(
        watermark.node.expr.to_string(),
        "`dateTime` - INTERVAL '4' SECOND"
    );
    let options: Vec<(&str, &str)> = table
        .options
        .iter()
        .map(|o| (o.node.0.as_str(), o.node.1.as_str()))
        .collect();
    assert_eq!(options, [("connector", "nexmark"), ("events.num", "1000")]);
    let Statement::CreateView { name, query } = &statements[1].node else {
        panic!("{:?}", statements[1]);
    };
    assert_eq!(name, "bid");
    assert!(query.to_string().contains("WHERE event_type = 2"));
}

#[test]
fn window_functions_joins_and_inserts_parse() {
    let script = "
CREATE TABLE nexmark_q7 (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO nexmark_q7
SELECT B.auction, B.price FROM bid B
JOIN (
  SELECT MAX(price) AS maxprice, window_end AS `dateTime`
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
  GROUP BY window_start, window_end
) B1 ON B.price = B1.maxprice
WHERE B.`dateTime` BETWEEN B1.`dateTime` - INTERVAL '10' SECOND AND B1.`dateTime`;
INSERT INTO nexmark_q7 (auction, price)
SELECT count(*) FILTER (WHERE price < 10000), count(DISTINCT bidder) FROM bid B
JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S ON mod(B.auction, 10000) = S.key;
EXPLAIN SELECT * FROM bid;
CREATE FUNCTION count_char AS 'com.github.nexmark.flink.udf.CountChar';
";
    let statements = parse_script(script).unwrap();
    assert_eq!(statements.len(), 5);
    let Statement::Insert {
        table,
        columns,
        query,
    } = &statements[1].node
    else {
        panic!("{:?}", statements[1]);
    };
    assert_eq!((table.as_str(), columns.len()), ("nexmark_q7", 0));
    let text = query.to_string();
    assert!(
        text.contains("TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))"),
        "{text}"
    );
    let Statement::Insert { columns, query, .. } = &statements[2].node else {
        panic!("{:?}", statements[2]);
    };
    assert_eq!(columns, &["auction", "price"]);
    assert!(
        query.to_string().contains("FOR SYSTEM_TIME AS OF B.p_time"),
        "{query}"
    );
    assert!(
        matches!(&statements[3].node, Statement::Explain(inner) if matches!(inner.node, Statement::Query(_)))
    );
    assert!(
        matches!(&statements[4].node, Statement::CreateFunction { name, class }
        if name == "count_char" && class.ends_with("CountChar"))
    );
}

#[test]
fn malformed_scripts_name_what_and_where() {
    for (script, position, message) in [
        ("SELEC 1", (1, 1), "unsupported statement"),
        (
            "CREATE TABLE t (a BIGINT) WITH ('connector' = 'blackhole') x",
            (1, 60),
            "expected `;`",
        ),
        (
            "CREATE TABLE t (a BIGINT, a INT) WITH ('connector' = 'x')",
            (1, 27),
            "column `a` appears twice",
        ),
        (
            "CREATE TABLE t (a BIGNUM) WITH ('connector' = 'x')",
            (1, 19),
            "unsupported type BIGNUM",
        ),
        (
            "CREATE TABLE t (a BIGINT)",
            (1, 26),
            "expected WITH ('connector' = …)",
        ),
        (
            "CREATE TABLE t (a BIGINT) WITH (connector = 'x')",
            (1, 33),
            "expected an option name in quotes",
        ),
        (
            "CREATE TABLE t (a BIGINT) WITH ('connector' = 5)",
            (1, 47),
            "must be a quoted string",
        ),
        (
            "CREATE TABLE t (a BIGINT) WITH ('a' = 'x', 'a' = 'y')",
            (1, 44),
            "option 'a' is set twice",
        ),
        (
            "CREATE TABLE t (a BIGINT, PRIMARY KEY (a)) WITH ('a' = 'x')",
            (1, 27),
            "NOT ENFORCED",
        ),
        (
            "CREATE TABLE t (a TIMESTAMP(3),\n  WATERMARK a AS a) WITH ('a' = 'x')",
            (2, 3),
            "WATERMARK FOR",
        ),
        ("SELECT a FROM t WHERE", (1, 22), "Expected: an expression"),
        ("CREATE INDEX i ON t (a)", (1, 8), "unsupported statement"),
        ("EXPLAIN CREATE VIEW v AS SELECT 1", (1, 9), "EXPLAIN takes"),
        ("INSERT t SELECT 1", (1, 8), "Expected: INTO"),
    ] {
        let e = parse_script(script).unwrap_err();
        assert!(e.message.contains(message), "{script}: {e}");
        if position != (0, 0) {
            assert_eq!(
                e.position,
                Position::new(position.0, position.1),
                "{script}: {e}"
            );
        }
    }
}
