//! PostgreSQL enums as Rust enums, column overrides, and a user `Decode` impl.

use std::borrow::Cow;
use std::error::Error;

use chrono::{DateTime, Utc};
use dawdle::decode::{Decode, ValueError};
use dawdle::Watched;
use postgres_types::{FromSql, ToSql};
use serde_json::Value;

use crate::harness::{assert_faithful, row_type, Db, Same, TestResult};

#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, FromSql, ToSql)]
#[postgres(name = "mood")]
pub enum Mood {
    #[serde(rename = "happy")]
    #[postgres(name = "happy")]
    Happy,
    #[serde(rename = "very sad")]
    #[postgres(name = "very sad")]
    VerySad,
    #[serde(rename = "it's \"meh\"")]
    #[postgres(name = "it's \"meh\"")]
    Meh,
}

impl Same for Mood {
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

row_type! {
    #[dawdle(table = "Feelings", schema = "my app")]
    struct Feelings {
        #[dawdle(primary_key)]
        id: i32,
        #[dawdle(serde)]
        mood: Mood,
        #[dawdle(serde)]
        maybe_mood: Option<Mood>,
        #[dawdle(serde)]
        history: Vec<Option<Mood>>,
    }
}

#[tokio::test]
async fn postgres_enums_as_rust_enums() -> TestResult {
    let db = Db::new(
        r#"CREATE SCHEMA "my app";
           CREATE TYPE mood AS ENUM ('happy', 'very sad', 'it''s "meh"');
           CREATE TABLE "my app"."Feelings" (id int PRIMARY KEY, mood mood NOT NULL, maybe_mood mood,
               history mood[] NOT NULL)"#,
        &[Feelings::TABLE],
    )
    .await?;
    let rows = [
        Feelings {
            id: 1,
            mood: Mood::Happy,
            maybe_mood: None,
            history: vec![],
        },
        Feelings {
            id: 2,
            mood: Mood::VerySad,
            maybe_mood: Some(Mood::Meh),
            history: vec![None, Some(Mood::Happy)],
        },
        Feelings {
            id: 3,
            mood: Mood::Meh,
            maybe_mood: Some(Mood::VerySad),
            history: vec![Some(Mood::Meh), None],
        },
    ];
    db.insert(&db.client, &rows).await?;
    assert_faithful::<Feelings>(
        &db.client,
        r#"SELECT id, mood, maybe_mood, history FROM "my app"."Feelings" ORDER BY id"#,
    )
    .await
}

/// A PostgreSQL `point`, decoded by a user's own `Decode` impl.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    x: f64,
    y: f64,
}

impl Decode for Point {
    fn sql_type() -> Cow<'static, str> {
        "point".into()
    }

    fn decode(value: &Value) -> Result<Self, ValueError> {
        let text = value
            .as_str()
            .ok_or_else(|| ValueError::expected("a string"))?;
        let inner = text
            .strip_prefix('(')
            .and_then(|t| t.strip_suffix(')'))
            .ok_or_else(|| ValueError::new("expected (x,y)"))?;
        let (x, y) = inner
            .split_once(',')
            .ok_or_else(|| ValueError::new("expected (x,y)"))?;
        let parse = |s: &str| s.parse::<f64>().map_err(ValueError::new);
        Ok(Point {
            x: parse(x)?,
            y: parse(y)?,
        })
    }
}

impl<'a> FromSql<'a> for Point {
    fn from_sql(
        _: &postgres_types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let raw: [u8; 16] = raw.try_into()?;
        Ok(Point {
            x: f64::from_be_bytes(raw[..8].try_into()?),
            y: f64::from_be_bytes(raw[8..].try_into()?),
        })
    }

    postgres_types::accepts!(POINT);
}

impl ToSql for Point {
    fn to_sql(
        &self,
        _: &postgres_types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres_types::IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(&self.x.to_be_bytes());
        out.extend_from_slice(&self.y.to_be_bytes());
        Ok(postgres_types::IsNull::No)
    }

    postgres_types::accepts!(POINT);
    postgres_types::to_sql_checked!();
}

impl Same for Point {
    fn same(&self, other: &Self) -> bool {
        self.x.same(&other.x) && self.y.same(&other.y)
    }
}

row_type! {
    #[dawdle(table = "places")]
    struct Places {
        #[dawdle(primary_key)]
        id: i32,
        #[dawdle(sql = "upper($1)")]
        name: String,
        spot: Point,
        #[dawdle(sql = "$1::text")]
        corner: String,
        #[dawdle(sql = "date_trunc('day', $1, 'Asia/Kolkata')")]
        seen_at: DateTime<Utc>,
        #[dawdle(sql = "$1 * 2::real")]
        score: f32,
        #[dawdle(rename = "Mixed \"Case\" col", sql = "length($1)")]
        mixed_len: i32,
        #[dawdle(sql = "to_jsonb($1) || '{\"via\": \"override\"}'")]
        meta: Value,
    }
}

#[tokio::test]
async fn column_overrides_and_a_user_decode_impl() -> TestResult {
    // Overrides are computed by the capture triggers: up refuses them
    // for capture from the WAL (tests/sql.rs).
    let db = Db::with_triggers(
        r#"CREATE TABLE places (id int PRIMARY KEY, name text NOT NULL, spot point NOT NULL,
               corner point NOT NULL, seen_at timestamptz NOT NULL, score real NOT NULL,
               "Mixed ""Case"" col" text NOT NULL, meta jsonb NOT NULL)"#,
        &[Places::TABLE],
    )
    .await?;
    db.client
        .batch_execute(
            r#"SET TimeZone = 'Pacific/Chatham';
               INSERT INTO places VALUES
               (1, 'straße 😀', '(1.5,-0)', '(0.1,1e300)', '2020-03-01 23:59:59.999999+00', 0.1, 'äbc', '{"a": 1}'),
               (2, '', '(NaN,-Infinity)', '(-0,5e-324)', '1800-01-01 00:00:00', -1.5e-38, '', '{}')"#,
        )
        .await?;
    assert_faithful::<Places>(
        &db.client,
        r#"SELECT id, upper(name) AS name, spot, corner::text AS corner,
                  date_trunc('day', seen_at, 'Asia/Kolkata') AS seen_at, score * 2::real AS score,
                  length("Mixed ""Case"" col") AS mixed_len,
                  to_jsonb(meta) || '{"via": "override"}' AS meta
           FROM places ORDER BY id"#,
    )
    .await
}
