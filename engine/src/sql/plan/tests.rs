use super::*;
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
            "a comma join is not supported yet",
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
