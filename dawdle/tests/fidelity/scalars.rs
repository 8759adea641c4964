//! Integers, floats, numeric, boolean, text, bytea and uuid at their edges.

use dawdle::Watched;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::harness::{assert_faithful, row_type, select_all, Db, TestResult};

row_type! {
    #[dawdle(table = "integers")]
    struct Integers {
        #[dawdle(primary_key)]
        id: i32,
        small: i16,
        int: i32,
        big: i64,
        maybe: Option<i64>,
    }
}

#[tokio::test]
async fn integers_at_their_limits() -> TestResult {
    let db = Db::new(
        "CREATE TABLE integers (id int PRIMARY KEY, small smallint NOT NULL, int integer NOT NULL, \
         big bigint NOT NULL, maybe bigint)",
        &[Integers::TABLE],
    )
    .await?;
    let rows = [
        (i16::MIN, i32::MIN, i64::MIN, Some(i64::MIN)),
        (i16::MAX, i32::MAX, i64::MAX, Some(i64::MAX)),
        (0, 0, 0, None),
        (-1, -1, -1, Some(0)),
        // Past 2^53, where a JSON reader that goes through f64 would round.
        (1, 1, 9_007_199_254_740_993, Some(-9_007_199_254_740_993)),
    ];
    let rows: Vec<Integers> = rows
        .into_iter()
        .zip(1..)
        .map(|((small, int, big, maybe), id)| Integers {
            id,
            small,
            int,
            big,
            maybe,
        })
        .collect();
    db.insert(&db.client, &rows).await?;
    assert_faithful::<Integers>(&db.client, &select_all::<Integers>()).await
}

row_type! {
    #[dawdle(table = "floats")]
    struct Floats {
        #[dawdle(primary_key)]
        id: i32,
        real: f32,
        double: f64,
        maybe_real: Option<f32>,
        maybe_double: Option<f64>,
    }
}

#[tokio::test]
async fn floats_keep_nan_infinities_signed_zero_and_every_digit() -> TestResult {
    let db = Db::new(
        "CREATE TABLE floats (id int PRIMARY KEY, real real NOT NULL, double double precision NOT NULL, \
         maybe_real real, maybe_double double precision)",
        &[Floats::TABLE],
    )
    .await?;
    let pairs: [(f32, f64); 16] = [
        (f32::NAN, f64::NAN),
        (f32::INFINITY, f64::INFINITY),
        (f32::NEG_INFINITY, f64::NEG_INFINITY),
        (-0.0, -0.0),
        (0.0, 0.0),
        (f32::from_bits(1), f64::from_bits(1)), // smallest subnormals
        (
            -f32::from_bits(0x007f_ffff),
            -f64::from_bits(0x000f_ffff_ffff_ffff),
        ), // largest subnormals
        (f32::MIN_POSITIVE, f64::MIN_POSITIVE),
        (f32::MAX, f64::MAX),
        (f32::MIN, f64::MIN),
        (f32::EPSILON, f64::EPSILON),
        (0.1, 0.1),
        (1.0 / 3.0, 1.0 / 3.0),
        // An f32 value held in a double column: every digit of it survives.
        (16_777_217.0, f64::from(0.1f32)),
        (-1.5e-38, 1e300),
        (123_456.79, 2f64.powi(53) + 2.0),
    ];
    let rows: Vec<Floats> = pairs
        .into_iter()
        .zip(1..)
        .map(|((real, double), id)| Floats {
            id,
            real,
            double,
            maybe_real: (id % 2 == 0).then_some(real),
            maybe_double: (id % 3 != 0).then_some(double),
        })
        .collect();
    db.insert(&db.client, &rows).await?;
    assert_faithful::<Floats>(&db.client, &select_all::<Floats>()).await
}

row_type! {
    #[dawdle(table = "numerics")]
    struct Numerics {
        #[dawdle(primary_key)]
        id: i32,
        num: Decimal,
        fixed: Option<Decimal>,
    }
}

#[tokio::test]
async fn numeric_keeps_every_digit_and_the_scale() -> TestResult {
    let db = Db::new(
        "CREATE TABLE numerics (id int PRIMARY KEY, num numeric NOT NULL, fixed numeric(28, 10))",
        &[Numerics::TABLE],
    )
    .await?;
    // Written as SQL text, so PostgreSQL holds exactly these digits and scales.
    let values = [
        ("0", Some("0")),
        ("1", Some("1.5")),
        ("-1", Some("-123456789012345678.0123456789")),
        ("1.000", None),
        ("0.10", Some("0.0000000001")),
        ("79228162514264337593543950335", None), // Decimal::MAX, 29 digits
        ("-79228162514264337593543950335", None), // Decimal::MIN
        ("0.0000000000000000000000000001", None), // the smallest scale Decimal holds
        ("-0.0000000000000000000000000001", None),
        ("7.9228162514264337593543950335", None), // 29 digits at scale 28
        ("1234567890.123456789012345678", None),  // 28 significant digits
        (
            "-9999999999999999999999999999",
            Some("999999999999999999.9999999999"),
        ),
        ("0.0000000000000000000000000000", None), // zero at scale 28
    ];
    for (id, (num, fixed)) in (1..).zip(values) {
        db.client
            .execute(
                "INSERT INTO numerics VALUES ($1, $2::text::numeric, $3::text::numeric)",
                &[&id, &num, &fixed],
            )
            .await?;
    }
    assert_faithful::<Numerics>(&db.client, &select_all::<Numerics>()).await
}

row_type! {
    #[dawdle(table = "texts")]
    struct Texts {
        #[dawdle(primary_key)]
        id: i32,
        flag: bool,
        maybe_flag: Option<bool>,
        text: String,
        maybe_text: Option<String>,
        short: String,
        padded: Option<String>,
    }
}

#[tokio::test]
async fn booleans_and_text_of_every_kind() -> TestResult {
    let db = Db::new(
        "CREATE TABLE texts (id int PRIMARY KEY, flag boolean NOT NULL, maybe_flag boolean, \
         text text NOT NULL, maybe_text text, short varchar(12) NOT NULL, padded char(8))",
        &[Texts::TABLE],
    )
    .await?;
    let texts = [
        "",
        " ",
        "plain",
        "NULL",
        "null",
        "\"double\" 'single' `back`",
        "back\\slash \\x00 \\u0000 \\n",
        "tab\tnew\nline\rcarriage \u{1} \u{1f} \u{7f}",
        "é ß 中文 עברית",
        "astral 😀 𝄞 🏳️‍🌈 \u{10ffff}",
        "{\"looks\": [\"like\", \"json\"]}",
        "{1,2,\"3\"}",
        "trailing spaces   ",
    ];
    let rows: Vec<Texts> = texts
        .iter()
        .zip(1..)
        .map(|(text, id)| Texts {
            id,
            flag: id % 2 == 0,
            maybe_flag: [None, Some(true), Some(false)][id as usize % 3],
            text: text.to_string(),
            // The empty string and NULL stay apart.
            maybe_text: match id % 3 {
                0 => None,
                1 => Some(String::new()),
                _ => Some(text.to_string()),
            },
            short: text.chars().take(12).collect(),
            padded: (id % 4 != 0).then(|| text.chars().take(5).collect()),
        })
        .collect();
    db.insert(&db.client, &rows).await?;
    assert_faithful::<Texts>(&db.client, &select_all::<Texts>()).await
}

row_type! {
    #[dawdle(table = "blobs")]
    struct Blobs {
        #[dawdle(primary_key)]
        id: i32,
        bytes: Vec<u8>,
        maybe_bytes: Option<Vec<u8>>,
        uid: Uuid,
        maybe_uid: Option<Uuid>,
    }
}

#[tokio::test]
async fn bytea_and_uuid() -> TestResult {
    let db = Db::new(
        "CREATE TABLE blobs (id int PRIMARY KEY, bytes bytea NOT NULL, maybe_bytes bytea, \
         uid uuid NOT NULL, maybe_uid uuid)",
        &[Blobs::TABLE],
    )
    .await?;
    let all: Vec<u8> = (0..=255).collect();
    let values = [
        (vec![], Some(vec![]), Uuid::nil(), None),
        (vec![0], None, Uuid::from_u128(u128::MAX), Some(Uuid::nil())),
        (
            vec![0; 3],
            Some(vec![0, 0]),
            Uuid::from_u128(1),
            Some(Uuid::from_u128(u128::MAX)),
        ),
        (
            all.clone(),
            Some(all.iter().rev().copied().collect()),
            Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
            None,
        ),
        (
            b"\\x00 not hex".to_vec(),
            Some(b"'\"\\".to_vec()),
            Uuid::from_u128(u128::MAX / 3),
            Some(Uuid::from_u128(7)),
        ),
    ];
    let rows: Vec<Blobs> = values
        .into_iter()
        .zip(1..)
        .map(|((bytes, maybe_bytes, uid, maybe_uid), id)| Blobs {
            id,
            bytes,
            maybe_bytes,
            uid,
            maybe_uid,
        })
        .collect();
    db.insert(&db.client, &rows).await?;
    assert_faithful::<Blobs>(&db.client, &select_all::<Blobs>()).await
}
