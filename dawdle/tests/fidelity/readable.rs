//! A row that a direct query reads is never refused: at the edges of what the
//! Rust types hold, where tokio-postgres reads a value the event decodes to
//! the same one, and where tokio-postgres refuses a value the event is
//! refused too.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use dawdle::{DecodeError, Interval, Watched};
use rust_decimal::Decimal;

use crate::harness::{assert_same, captured_json, row_type, select_all, Db, Fidelity, TestResult};

row_type! {
    #[dawdle(table = "edges")]
    struct Edges {
        #[dawdle(primary_key)]
        id: i32,
        d: Option<NaiveDate>,
        t: Option<NaiveTime>,
        ts: Option<NaiveDateTime>,
        tstz: Option<DateTime<Utc>>,
        fixed: Option<DateTime<FixedOffset>>,
        times: Option<Vec<Option<NaiveTime>>>,
        stamps: Option<Vec<Option<DateTime<Utc>>>>,
        num: Option<Decimal>,
        nums: Option<Vec<Option<Decimal>>>,
        ints: Option<Vec<Option<i32>>>,
        iv: Option<Interval>,
        time_d: Option<time::Date>,
        time_t: Option<time::Time>,
        time_ts: Option<time::PrimitiveDateTime>,
        time_tstz: Option<time::OffsetDateTime>,
    }
}

const DDL: &str = "CREATE TABLE edges (id int PRIMARY KEY, d date, t time, ts timestamp, \
    tstz timestamptz, fixed timestamptz, times time[], stamps timestamptz[], num numeric, \
    nums numeric[], ints int4[], iv interval, time_d date, time_t time, time_ts timestamp, time_tstz timestamptz)";

const READ: bool = true;
const REFUSED: bool = false;

/// (writer's time zone, column, SQL value, whether a direct query reads it)
const CASES: &[(&str, &str, &str, bool)] = &[
    // PostgreSQL's end of the day; tokio-postgres reads it as midnight.
    ("UTC", "t", "'24:00:00'", READ),
    ("UTC", "time_t", "'24:00:00'", READ),
    ("UTC", "times", "'{24:00:00,NULL,23:59:59.999999}'", READ),
    // The last instants chrono and `time` hold, written where the local
    // date is already past them.
    (
        "Asia/Tokyo",
        "tstz",
        "'262142-12-31 23:59:59.999999+00'",
        READ,
    ),
    (
        "Pacific/Kiritimati",
        "fixed",
        "'262142-12-31 23:59:59.999999+00'",
        READ,
    ),
    (
        "Asia/Kolkata",
        "stamps",
        "'{\"262142-12-31 20:00:00+00\",NULL}'",
        READ,
    ),
    (
        "Asia/Tokyo",
        "time_tstz",
        "'9999-12-31 23:59:59.999999+00'",
        READ,
    ),
    // Past them, written where the local date is not.
    (
        "America/St_Johns",
        "tstz",
        "'262143-01-01 00:00:00+00'",
        REFUSED,
    ),
    (
        "America/St_Johns",
        "fixed",
        "'262143-01-01 00:00:00+00'",
        REFUSED,
    ),
    (
        "America/St_Johns",
        "time_tstz",
        "'10000-01-01 00:00:00+00'",
        REFUSED,
    ),
    ("UTC", "d", "'262143-01-01'", REFUSED),
    ("UTC", "ts", "'294276-12-31 23:59:59.999999'", REFUSED),
    ("UTC", "time_d", "'10000-01-01'", REFUSED),
    ("UTC", "time_ts", "'10000-01-01 00:00:00'", REFUSED),
    // Infinities: tokio-postgres reads them as out of range.
    ("UTC", "d", "'infinity'", REFUSED),
    ("UTC", "d", "'-infinity'", REFUSED),
    ("UTC", "ts", "'infinity'", REFUSED),
    ("UTC", "tstz", "'-infinity'", REFUSED),
    ("UTC", "time_d", "'-infinity'", REFUSED),
    ("UTC", "time_tstz", "'infinity'", REFUSED),
    ("UTC", "stamps", "'{infinity}'", REFUSED),
    // Numerics: rounded past 28 decimal places, refused past Decimal::MAX.
    ("UTC", "num", "'0.1234567890123456789012345678901'", READ),
    ("UTC", "num", "'-1.00000000000000000000000000000001'", READ),
    ("UTC", "num", "'0.00000000000000000000000000005'", READ),
    ("UTC", "num", "'1e-40'", READ),
    ("UTC", "num", "'12345678901234567890123456789.5'", READ),
    ("UTC", "num", "'79228162514264337593543950336'", REFUSED),
    ("UTC", "num", "'123456789012345678901234567890.5'", REFUSED),
    ("UTC", "num", "'NaN'", REFUSED),
    ("UTC", "num", "'-Infinity'", REFUSED),
    (
        "UTC",
        "nums",
        "'{0.12345678901234567890123456789012,NULL}'",
        READ,
    ),
    ("UTC", "nums", "'{1.5,NULL,NaN}'", REFUSED),
    // Every field of an interval at its limits.
    (
        "UTC",
        "iv",
        "'-178956970 years -8 mons -2147483648 days -2562047788:00:54.775807'::interval \
         - '0.000001 s'",
        READ,
    ),
    (
        "UTC",
        "iv",
        "'178956970 years 7 mons 2147483647 days 2562047788:00:54.775807'",
        READ,
    ),
    // Arrays: lower bounds other than 1 are dropped, more dimensions refused.
    ("UTC", "ints", "'[0:2]={1,NULL,3}'", READ),
    ("UTC", "nums", "'[-1:0]={1.5,2}'", READ),
    ("UTC", "ints", "'{{1,2},{3,4}}'", REFUSED),
    ("UTC", "times", "'{{01:00:00,24:00:00}}'", REFUSED),
];

#[tokio::test]
async fn what_a_direct_query_reads_decodes_and_nothing_else() -> TestResult {
    let db = Db::new(DDL, &[Edges::TABLE]).await?;
    for (id, (zone, column, value, _)) in (1..).zip(CASES) {
        db.client
            .batch_execute(&format!(
                "SET TimeZone = '{zone}'; INSERT INTO edges (id, {column}) VALUES ({id}, {value})"
            ))
            .await?;
    }
    let rows = db.client.query(&select_all::<Edges>(), &[]).await?;
    let json = captured_json::<Edges>(&db.client, "insert", "new").await?;
    assert_eq!(rows.len(), CASES.len());
    assert_eq!(json.len(), CASES.len());
    let mut wrong = Vec::new();
    for ((row, json), (zone, column, value, read)) in rows.iter().zip(&json).zip(CASES) {
        let case = format!("{column} = {value} written in {zone}");
        let direct = Edges::from_pg(row);
        assert_eq!(
            direct.is_ok(),
            *read,
            "{case}: a direct query gives {direct:?}"
        );
        match (direct, Edges::from_json(json)) {
            (Ok(direct), Ok(event)) => assert_same(&event, &direct, json),
            (Err(_), Err(DecodeError::Value { column: named, .. })) if named == *column => {}
            (Ok(_), Err(e)) => wrong.push(format!(
                "{case}: a direct query reads it, the event is refused: {e}"
            )),
            (Err(direct), Ok(event)) => wrong.push(format!(
                "{case}: a direct query fails ({direct}), the event decodes to {event:?}"
            )),
            (Err(_), Err(e)) => wrong.push(format!("{case}: refused for another column: {e}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}
