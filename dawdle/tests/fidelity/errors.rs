//! A value that a direct query cannot read either is an error naming the
//! table, the column, the PostgreSQL type and the value.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use dawdle::Watched;
use rust_decimal::Decimal;

use crate::harness::{captured, decode_error, row_type, Db, TestResult};

row_type! {
    #[dawdle(table = "unholdable")]
    struct Unholdable {
        #[dawdle(primary_key)]
        id: i32,
        ts: Option<NaiveDateTime>,
        tstz: Option<DateTime<Utc>>,
        num: Option<Decimal>,
        d: Option<NaiveDate>,
        nums: Option<Vec<Option<Decimal>>>,
        time_date: Option<time::Date>,
    }
}

const DDL: &str = "CREATE TABLE unholdable (id int PRIMARY KEY, ts timestamp, tstz timestamptz, \
    num numeric, d date, nums numeric[], time_date date)";

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
        "out of the range of rust_decimal::Decimal",
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

/// Past 28 decimal places, the event rounds as the direct query does.
#[tokio::test]
async fn too_many_digits_round_as_a_direct_query_does() -> TestResult {
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
    let [event] = captured::<Unholdable>(&db.client, "insert", "new")
        .await?
        .try_into()
        .expect("one event");
    assert_eq!(event?.num.map(|n| n.to_string()), Some(direct.to_string()));
    Ok(())
}
