//! Dates, times, timestamps and intervals, written as SQL text in sessions
//! whose time zone is not UTC.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use dawdle::{Interval, Watched};

use crate::harness::{assert_faithful, row_type, select_all, Db, TestResult};

row_type! {
    #[dawdle(table = "chrono_times")]
    struct ChronoTimes {
        #[dawdle(primary_key)]
        id: i32,
        d: NaiveDate,
        t: NaiveTime,
        ts: NaiveDateTime,
        tstz: DateTime<Utc>,
        fixed: DateTime<FixedOffset>,
        iv: Interval,
        maybe_ts: Option<NaiveDateTime>,
    }
}

const CHRONO_DDL: &str = "CREATE TABLE chrono_times (id int PRIMARY KEY, d date NOT NULL, \
    t time NOT NULL, ts timestamp NOT NULL, tstz timestamptz NOT NULL, fixed timestamptz NOT NULL, \
    iv interval NOT NULL, maybe_ts timestamp)";

/// (session time zone, date, time, timestamp, timestamptz, interval)
const CHRONO_ROWS: &[(&str, &str, &str, &str, &str, &str)] = &[
    // PostgreSQL's first day, and the year 0 (1 BC).
    (
        "UTC",
        "4714-11-24 BC",
        "00:00:00",
        "4714-11-24 00:00:00 BC",
        "4714-11-24 00:00:00+00 BC",
        "0",
    ),
    (
        "Pacific/Chatham",
        "0001-01-01 BC",
        "23:59:59.999999",
        "0001-12-31 23:59:59.999999 BC",
        "0001-01-01 00:00:00 BC",
        "-00:00:00.000001",
    ),
    (
        "UTC",
        "0001-01-01",
        "12:34:56.000001",
        "1970-01-01 00:00:00.000001",
        "1970-01-01 00:00:00+00",
        "00:00:00.000001",
    ),
    (
        "Asia/Kolkata",
        "2000-02-29",
        "00:00:00.5",
        "2000-02-29 12:00:00",
        "2020-03-01 12:00:00",
        "1 year 2 mons 3 days 04:05:06.789",
    ),
    // Local mean time: Amsterdam was UTC+00:19:32 in 1800.
    (
        "Europe/Amsterdam",
        "1800-01-01",
        "01:02:03",
        "1800-01-01 00:00:00",
        "1800-01-01 00:00:00",
        "-1 year -2 mons +3 days -04:05:06",
    ),
    (
        "America/St_Johns",
        "1999-12-31",
        "23:59:59",
        "2021-11-07 01:30:00",
        "2021-11-07 01:30:00",
        "1 mon -1 day 00:00:01",
    ),
    (
        "Asia/Kolkata",
        "9999-12-31",
        "00:00:01",
        "10000-01-01 00:00:00",
        "10000-01-01 00:00:00+14",
        "178000000 years",
    ),
    // chrono's last day.
    (
        "UTC",
        "262142-12-31",
        "11:11:11.111111",
        "262142-12-31 23:59:59.999999",
        "262142-12-31 23:59:59.999999+00",
        "-178956970 years -8 mons -2147483648 days -2562047788:00:54.775807",
    ),
    (
        "UTC",
        "2024-02-29",
        "00:00:00",
        "2024-02-29 00:00:00",
        "2024-02-29 00:00:00-12",
        "2147483647 days 2562047788:00:54.775807",
    ),
];

#[tokio::test]
async fn chrono_dates_times_timestamps_and_intervals() -> TestResult {
    let db = Db::new(CHRONO_DDL, &[ChronoTimes::TABLE]).await?;
    for (id, (zone, d, t, ts, tstz, iv)) in (1..).zip(CHRONO_ROWS) {
        db.client
            .batch_execute(&format!("SET TimeZone = '{zone}'"))
            .await?;
        db.client
            .execute(
                "INSERT INTO chrono_times VALUES ($1, $2::text::date, $3::text::time, \
                 $4::text::timestamp, $5::text::timestamptz, $5::text::timestamptz, $6::text::interval, \
                 CASE WHEN $1 % 2 = 0 THEN $4::text::timestamp END)",
                &[&id, d, t, ts, tstz, iv],
            )
            .await?;
    }
    assert_faithful::<ChronoTimes>(&db.client, &select_all::<ChronoTimes>()).await
}

row_type! {
    #[dawdle(table = "time_crate")]
    struct TimeCrate {
        #[dawdle(primary_key)]
        id: i32,
        d: time::Date,
        t: time::Time,
        ts: time::PrimitiveDateTime,
        tstz: time::OffsetDateTime,
        maybe_d: Option<time::Date>,
    }
}

#[tokio::test]
async fn time_crate_dates_times_and_timestamps() -> TestResult {
    let db = Db::new(
        "CREATE TABLE time_crate (id int PRIMARY KEY, d date NOT NULL, t time NOT NULL, \
         ts timestamp NOT NULL, tstz timestamptz NOT NULL, maybe_d date)",
        &[TimeCrate::TABLE],
    )
    .await?;
    // The `time` crate holds years -9999..=9999.
    let rows = [
        (
            "UTC",
            "4714-11-24 BC",
            "00:00:00",
            "4714-11-24 00:00:00 BC",
            "4714-11-24 00:00:00+00 BC",
        ),
        (
            "Asia/Kolkata",
            "0001-01-01 BC",
            "23:59:59.999999",
            "0001-12-31 23:59:59.999999 BC",
            "2020-03-01 12:00:00",
        ),
        (
            "Europe/Amsterdam",
            "1800-01-01",
            "12:00:00.000001",
            "1800-01-01 00:00:00",
            "1800-01-01 00:00:00",
        ),
        (
            "America/St_Johns",
            "2000-02-29",
            "00:00:00.5",
            "2000-02-29 12:00:00.123456",
            "2021-11-07 01:30:00",
        ),
        (
            "UTC",
            "9999-12-31",
            "23:59:59",
            "9999-12-31 23:59:59.999999",
            "9999-12-31 23:59:59.999999+00",
        ),
    ];
    for (id, (zone, d, t, ts, tstz)) in (1..).zip(rows) {
        db.client
            .batch_execute(&format!("SET TimeZone = '{zone}'"))
            .await?;
        db.client
            .execute(
                "INSERT INTO time_crate VALUES ($1, $2::text::date, $3::text::time, \
                 $4::text::timestamp, $5::text::timestamptz, CASE WHEN $1 % 2 = 0 THEN $2::text::date END)",
                &[&id, &d, &t, &ts, &tstz],
            )
            .await?;
    }
    assert_faithful::<TimeCrate>(&db.client, &select_all::<TimeCrate>()).await
}
