//! A value the Rust type cannot hold is an error naming the table, the
//! column, the PostgreSQL type and the value; never a rounded or wrapped value.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use dawdle::Watched;
use rust_decimal::Decimal;

use crate::harness::{decode_error, row_type, Db, TestResult};

row_type! {
    #[dawdle(table = "unholdable")]
    struct Unholdable {
        #[dawdle(primary_key)]
        id: i32,
        ts: Option<NaiveDateTime>,
        tstz: Option<DateTime<Utc>>,
        num: Option<Decimal>,
        t: Option<NaiveTime>,
        d: Option<NaiveDate>,
        nums: Option<Vec<Option<Decimal>>>,
        time_date: Option<time::Date>,
        time_time: Option<time::Time>,
    }
}

const DDL: &str = "CREATE TABLE unholdable (id int PRIMARY KEY, ts timestamp, tstz timestamptz, \
    num numeric, t time, d date, nums numeric[], time_date date, time_time time)";

/// (column, SQL value, PostgreSQL type in the message, value in the message, reason)
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "ts",
        "'infinity'",
        "timestamp",
        r#""infinity""#,
        "infinity has no Rust equivalent",
    ),
    (
        "tstz",
        "'-infinity'",
        "timestamptz",
        r#""-infinity""#,
        "-infinity has no Rust equivalent",
    ),
    (
        "num",
        "'123456789012345678901234567890'",
        "numeric",
        r#""123456789012345678901234567890""#,
        "28 significant digits",
    ),
    (
        "num",
        "'-1.00000000000000000000000000000001'",
        "numeric",
        r#""-1.00000000000000000000000000000001""#,
        "28 significant digits",
    ),
    (
        "num",
        "'0.00000000000000000000000000001'",
        "numeric",
        r#""0.00000000000000000000000000001""#,
        "28 significant digits",
    ),
    ("num", "'NaN'", "numeric", r#""NaN""#, "cannot hold NaN"),
    (
        "num",
        "'-Infinity'",
        "numeric",
        r#""-Infinity""#,
        "cannot hold -Infinity",
    ),
    (
        "t",
        "'24:00:00'",
        "time",
        r#""24:00:00""#,
        "out of the range",
    ),
    (
        "d",
        "'262143-01-01'",
        "date",
        r#""262143-01-01""#,
        "out of the range",
    ),
    (
        "d",
        "'infinity'",
        "date",
        r#""infinity""#,
        "infinity has no Rust equivalent",
    ),
    (
        "nums",
        "'{1.5,NULL,NaN}'",
        "numeric[]",
        r#"["1.5",null,"NaN"]"#,
        "at element [2]: rust_decimal::Decimal cannot hold NaN",
    ),
    (
        "time_date",
        "'10000-01-01'",
        "date",
        r#""10000-01-01""#,
        "year",
    ),
    ("time_time", "'24:00:00'", "time", r#""24:00:00""#, "hour"),
];

#[tokio::test]
async fn unholdable_values_are_errors_that_name_everything() -> TestResult {
    let db = Db::new(DDL, &[Unholdable::TABLE]).await?;
    for (id, (column, value, ..)) in (1..).zip(CASES) {
        db.client
            .batch_execute(&format!(
                "INSERT INTO unholdable (id, {column}) VALUES ({id}, {value})"
            ))
            .await?;
    }
    let errors = decode_error::<Unholdable>(&db.client).await?;
    assert_eq!(errors.len(), CASES.len());
    for (error, (column, _, sql_type, value, reason)) in errors.iter().zip(CASES) {
        let names = format!("public.unholdable.{column} (PostgreSQL {sql_type})");
        assert!(
            error.starts_with(&format!("cannot decode {names} into ")),
            "{error}"
        );
        assert!(error.contains(&format!(" from {value}: ")), "{error}");
        assert!(error.contains(reason), "{error}");
    }
    Ok(())
}

/// The direct query rounds what the event refuses: the event is the stricter.
#[tokio::test]
async fn too_many_digits_are_refused_not_rounded() -> TestResult {
    let db = Db::new(DDL, &[Unholdable::TABLE]).await?;
    db.client
        .batch_execute(
            "INSERT INTO unholdable (id, num) VALUES (1, '1.00000000000000000000000000000001')",
        )
        .await?;
    let direct: Decimal = db
        .client
        .query_one("SELECT num FROM unholdable", &[])
        .await?
        .get(0);
    assert_eq!(
        direct.to_string(),
        "1.0000000000000000000000000000",
        "rust_decimal rounds"
    );
    let [error] = decode_error::<Unholdable>(&db.client)
        .await?
        .try_into()
        .expect("one event");
    assert!(
        error.contains("\"1.00000000000000000000000000000001\""),
        "{error}"
    );
    Ok(())
}
