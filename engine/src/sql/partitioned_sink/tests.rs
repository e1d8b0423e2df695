use super::*;

fn q10_columns() -> Vec<(String, SqlType)> {
    [
        ("auction", SqlType::BigInt),
        ("dateTime", SqlType::Timestamp { precision: 3 }),
        ("dt", SqlType::Varchar),
        ("hm", SqlType::Varchar),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t))
    .collect()
}

fn q10_row(auction: i64, dt: &str, hm: &str) -> Row {
    Row(vec![
        Value::Int(auction),
        Value::Timestamp(auction),
        Value::Str(dt.into()),
        Value::Str(hm.into()),
    ])
}

#[test]
fn a_row_is_written_without_its_partition_columns_under_its_partitions_time() {
    let rows = PartitionedRows::new(
        &q10_columns(),
        &["dt".into(), "hm".into()],
        Some("$dt $hm:00"),
    )
    .unwrap();
    assert_eq!(rows.written_columns(), 2);
    let last = LastPartition::default();
    let prepared = rows
        .prepare(q10_row(7, "2023-11-14", "22:13"), &last)
        .unwrap();
    // 2023-11-14 22:13:00 UTC.
    let time = 1_700_000_000_000 - 20_000;
    assert_eq!(PartitionedRows::time_of_prepared(&prepared), time);
    assert_eq!(&prepared.0[..2], &[Value::Int(7), Value::Timestamp(7)]);
    assert_eq!(rows.path(time), "dt=2023-11-14/hm=22%3A13");
    // The same partition again (cached) and the next minute.
    let again = rows
        .prepare(q10_row(8, "2023-11-14", "22:13"), &last)
        .unwrap();
    assert_eq!(PartitionedRows::time_of_prepared(&again), time);
    let next = rows
        .prepare(q10_row(9, "2023-11-14", "22:14"), &last)
        .unwrap();
    assert_eq!(PartitionedRows::time_of_prepared(&next), time + 60_000);
    assert_eq!(rows.path(time + 60_000), "dt=2023-11-14/hm=22%3A14");
}

#[test]
fn bad_partitions_are_named() {
    let partition_by = ["dt".to_owned(), "hm".to_owned()];
    let rows = PartitionedRows::new(&q10_columns(), &partition_by, Some("$dt $hm:00")).unwrap();
    let last = LastPartition::default();
    let error = rows
        .prepare(q10_row(1, "2023/11/14", "22:13"), &last)
        .unwrap_err();
    assert!(
        error.contains("partition time '2023/11/14 22:13:00'"),
        "{error}"
    );
    let mut null = q10_row(1, "2023-11-14", "22:13");
    null.0[3] = Value::Null;
    let error = rows.prepare(null, &last).unwrap_err();
    assert!(error.contains("partition column `hm` is NULL"), "{error}");
    // Only dt makes the time: two hm values meet at one time.
    let by_day = PartitionedRows::new(&q10_columns(), &partition_by, None).unwrap();
    by_day
        .prepare(q10_row(1, "2023-11-14", "22:13"), &last)
        .unwrap();
    let error = by_day
        .prepare(q10_row(2, "2023-11-14", "22:14"), &last)
        .unwrap_err();
    assert!(
        error.contains("partitions dt=2023-11-14/hm=22%3A13 and dt=2023-11-14/hm=22%3A14 have the same partition time"),
        "{error}"
    );
    let error = PartitionedRows::new(&q10_columns(), &partition_by, Some("$day $hm")).unwrap_err();
    assert!(
        error.contains("`$day`, which is not a partition column"),
        "{error}"
    );
}

#[test]
fn flink_escapes_these_characters_in_partition_paths() {
    assert_eq!(escape_path_name("22:13"), "22%3A13");
    assert_eq!(escape_path_name("a/b=c%d e"), "a%2Fb%3Dc%25d e");
    assert_eq!(escape_path_name("x\ty"), "x%09y");
}
