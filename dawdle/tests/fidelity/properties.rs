//! The Ecto rule over generated values: each property writes 64 rows through
//! tokio-postgres parameters, from a session with [`HOSTILE`] settings.
//!
//! [`HOSTILE`]: crate::harness::HOSTILE

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use dawdle::Interval;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{property, row_type};

/// Text PostgreSQL accepts: anything but NUL.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,12}",
        Just("NULL".to_owned()),
        Just("\\x00 \"'\\".to_owned()),
    ]
    .prop_map(|s| s.replace('\0', ""))
}

fn f32s() -> impl Strategy<Value = f32> {
    prop_oneof![any::<f32>(), any::<u32>().prop_map(f32::from_bits)]
}

fn f64s() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits),
        // f32 values in a double column.
        any::<f32>().prop_map(f64::from),
    ]
}

/// Every `Decimal`: a 96-bit mantissa at scale 0 to 28.
fn decimals() -> impl Strategy<Value = Decimal> {
    let mantissa = prop_oneof![
        any::<i128>().prop_map(|m| m % (1i128 << 96)),
        -1000i128..1000,
    ];
    (mantissa, 0..=28u32).prop_map(|(m, scale)| Decimal::from_i128_with_scale(m, scale))
}

fn uuids() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// From PostgreSQL's first day (4714-11-24 BC) to chrono's last (262142-12-31).
fn dates() -> impl Strategy<Value = NaiveDate> {
    let first = NaiveDate::from_ymd_opt(-4713, 11, 24)
        .expect("a date")
        .num_days_from_ce();
    (first..=NaiveDate::MAX.num_days_from_ce())
        .prop_map(|days| NaiveDate::from_num_days_from_ce_opt(days).expect("in range"))
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn times() -> impl Strategy<Value = NaiveTime> {
    (0..MICROS_PER_DAY).prop_map(|us| {
        NaiveTime::from_num_seconds_from_midnight_opt(
            (us / 1_000_000) as u32,
            (us % 1_000_000) as u32 * 1000,
        )
        .expect("in range")
    })
}

fn timestamps() -> impl Strategy<Value = NaiveDateTime> {
    prop_oneof![
        (dates(), times()).prop_map(|(d, t)| d.and_time(t)),
        // Near 2000-01-01, where most rows live.
        (-(1i64 << 50)..(1i64 << 50)).prop_map(|us| {
            DateTime::from_timestamp_micros(946_684_800_000_000 + us)
                .expect("in range")
                .naive_utc()
        }),
    ]
}

fn intervals() -> impl Strategy<Value = Interval> {
    let small = (
        -1200..1200i32,
        -400..400i32,
        -MICROS_PER_DAY * 2..MICROS_PER_DAY * 2,
    );
    prop_oneof![(any::<i32>(), any::<i32>(), any::<i64>()), small,].prop_map(
        |(months, days, microseconds)| Interval {
            months,
            days,
            microseconds,
        },
    )
}

fn time_dates() -> impl Strategy<Value = time::Date> {
    // Julian day 0 is PostgreSQL's first day; `time` ends at 9999-12-31.
    (0..=time::Date::MAX.to_julian_day())
        .prop_map(|day| time::Date::from_julian_day(day).expect("in range"))
}

fn time_times() -> impl Strategy<Value = time::Time> {
    (0..MICROS_PER_DAY).prop_map(|us| {
        let s = us / 1_000_000;
        time::Time::from_hms_micro(
            (s / 3600) as u8,
            (s / 60 % 60) as u8,
            (s % 60) as u8,
            (us % 1_000_000) as u32,
        )
        .expect("in range")
    })
}

/// JSON documents jsonb accepts (no `\u0000`), with keys that look like
/// atoms, numbers and keywords.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // non-finite becomes null
        text().prop_map(Value::String),
    ];
    let key = prop_oneof![
        text(),
        "-?[0-9]{1,4}(\\.[0-9])?",
        Just(":ok".to_owned()),
        Just("nil".to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

row_type! {
    #[dawdle(table = "scalar_props")]
    struct ScalarProps {
        #[dawdle(primary_key)]
        id: i32,
        small: i16,
        int: i32,
        big: i64,
        real: f32,
        double: f64,
        num: Decimal,
        flag: bool,
        text: String,
        padded: Option<String>,
        bytes: Vec<u8>,
        uid: Uuid,
        maybe_double: Option<f64>,
        maybe_num: Option<Decimal>,
    }
}

#[test]
fn scalars() {
    let strategy = (
        (
            any::<i16>(),
            any::<i32>(),
            any::<i64>(),
            f32s(),
            f64s(),
            decimals(),
        ),
        (
            any::<bool>(),
            text(),
            option::of(text().prop_map(|s| s.chars().take(12).collect())),
            vec(any::<u8>(), 0..300),
            uuids(),
        ),
        (option::of(f64s()), option::of(decimals())),
    )
        .prop_map(
            |(
                (small, int, big, real, double, num),
                (flag, text, padded, bytes, uid),
                (maybe_double, maybe_num),
            )| {
                ScalarProps {
                    id: 1,
                    small,
                    int,
                    big,
                    real,
                    double,
                    num,
                    flag,
                    text,
                    padded,
                    bytes,
                    uid,
                    maybe_double,
                    maybe_num,
                }
            },
        );
    property(
        "CREATE TABLE scalar_props (id int PRIMARY KEY, small smallint NOT NULL, int integer NOT NULL, \
         big bigint NOT NULL, real real NOT NULL, double double precision NOT NULL, num numeric NOT NULL, \
         flag boolean NOT NULL, text text NOT NULL, padded char(12), bytes bytea NOT NULL, uid uuid NOT NULL, \
         maybe_double double precision, maybe_num numeric)",
        strategy,
    );
}

row_type! {
    #[dawdle(table = "temporal_props")]
    struct TemporalProps {
        #[dawdle(primary_key)]
        id: i32,
        d: NaiveDate,
        t: NaiveTime,
        ts: NaiveDateTime,
        tstz: DateTime<Utc>,
        iv: Interval,
        maybe_tstz: Option<DateTime<Utc>>,
        time_d: time::Date,
        time_t: time::Time,
        time_ts: time::PrimitiveDateTime,
        time_tstz: time::OffsetDateTime,
    }
}

#[test]
fn temporal() {
    let strategy = (
        (
            dates(),
            times(),
            timestamps(),
            timestamps(),
            intervals(),
            option::of(timestamps()),
        ),
        (time_dates(), time_times(), time_dates(), time_times()),
    )
        .prop_map(
            |((d, t, ts, tstz, iv, maybe_tstz), (time_d, time_t, date, time))| {
                let time_ts = time::PrimitiveDateTime::new(date, time);
                TemporalProps {
                    id: 1,
                    d,
                    t,
                    ts,
                    tstz: tstz.and_utc(),
                    iv,
                    maybe_tstz: maybe_tstz.map(|ts| ts.and_utc()),
                    time_d,
                    time_t,
                    time_ts,
                    time_tstz: time_ts.assume_utc(),
                }
            },
        );
    property(
        "CREATE TABLE temporal_props (id int PRIMARY KEY, d date NOT NULL, t time NOT NULL, \
         ts timestamp NOT NULL, tstz timestamptz NOT NULL, iv interval NOT NULL, maybe_tstz timestamptz, \
         time_d date NOT NULL, time_t time NOT NULL, time_ts timestamp NOT NULL, time_tstz timestamptz NOT NULL)",
        strategy,
    );
}

row_type! {
    #[dawdle(table = "json_props")]
    struct JsonProps {
        #[dawdle(primary_key)]
        id: i32,
        doc: Value,
        raw: Value,
        maybe_doc: Option<Value>,
    }
}

#[test]
fn json_documents() {
    let maybe = prop_oneof![Just(None), Just(Some(Value::Null)), json().prop_map(Some)];
    let strategy = (json(), json(), maybe).prop_map(|(doc, raw, maybe_doc)| JsonProps {
        id: 1,
        doc,
        raw,
        maybe_doc,
    });
    property(
        "CREATE TABLE json_props (id int PRIMARY KEY, doc jsonb NOT NULL, raw json NOT NULL, maybe_doc jsonb)",
        strategy,
    );
}

row_type! {
    #[dawdle(table = "array_props")]
    struct ArrayProps {
        #[dawdle(primary_key)]
        id: i32,
        ints: Vec<Option<i32>>,
        texts: Vec<Option<String>>,
        doubles: Vec<Option<f64>>,
        reals: Vec<f32>,
        nums: Vec<Option<Decimal>>,
        uids: Vec<Option<Uuid>>,
        stamps: Vec<Option<DateTime<Utc>>>,
        docs: Vec<Option<Value>>,
        maybe_bigs: Option<Vec<Option<i64>>>,
        blobs: Vec<Option<Vec<u8>>>,
        dates: Vec<Option<NaiveDate>>,
        intervals: Vec<Option<Interval>>,
    }
}

#[test]
fn arrays() {
    fn items<T: std::fmt::Debug>(
        s: impl Strategy<Value = T>,
    ) -> impl Strategy<Value = Vec<Option<T>>> {
        vec(option::of(s), 0..6)
    }
    let strategy = (
        (
            items(any::<i32>()),
            items(text()),
            items(f64s()),
            vec(f32s(), 0..6),
            items(decimals()),
            items(uuids()),
        ),
        (
            items(timestamps().prop_map(|ts| ts.and_utc())),
            items(prop_oneof![Just(Value::Null), json()]),
            option::of(items(any::<i64>())),
            items(vec(any::<u8>(), 0..8)),
            items(dates()),
            items(intervals()),
        ),
    )
        .prop_map(
            |(
                (ints, texts, doubles, reals, nums, uids),
                (stamps, docs, maybe_bigs, blobs, dates, intervals),
            )| {
                ArrayProps {
                    id: 1,
                    ints,
                    texts,
                    doubles,
                    reals,
                    nums,
                    uids,
                    stamps,
                    docs,
                    maybe_bigs,
                    blobs,
                    dates,
                    intervals,
                }
            },
        );
    property(
        "CREATE TABLE array_props (id int PRIMARY KEY, ints int4[] NOT NULL, texts text[] NOT NULL, \
         doubles float8[] NOT NULL, reals float4[] NOT NULL, nums numeric[] NOT NULL, uids uuid[] NOT NULL, \
         stamps timestamptz[] NOT NULL, docs jsonb[] NOT NULL, maybe_bigs int8[], blobs bytea[] NOT NULL, \
         dates date[] NOT NULL, intervals interval[] NOT NULL)",
        strategy,
    );
}
