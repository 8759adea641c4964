//! Decode: rows/s turning a captured row's JSON text into its `Watched`
//! struct, beside serde_json deserializing the same text into a plain
//! `#[derive(Deserialize)]` struct of the same shape.

use std::fmt::Display;
use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dawdle::Watched;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use crate::model::{self, Order};
use crate::report::Report;
use crate::{Options, Result};

/// `Order` for serde alone. `numeric` and `double precision` travel as
/// strings, and this build of rust_decimal and uuid has no serde: those
/// three fields parse their string with `FromStr`.
#[derive(Debug, Deserialize)]
struct PlainOrder {
    id: i64,
    customer_id: i64,
    status: String,
    quantity: i32,
    #[serde(deserialize_with = "parse")]
    price: Decimal,
    #[serde(deserialize_with = "parse")]
    weight: f64,
    paid: bool,
    #[serde(deserialize_with = "parse")]
    reference: Uuid,
    note: Option<String>,
    tags: Vec<String>,
    created_at: DateTime<Utc>,
    attributes: serde_json::Value,
}

fn parse<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = <&str>::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

impl From<PlainOrder> for Order {
    fn from(p: PlainOrder) -> Order {
        Order {
            id: p.id,
            customer_id: p.customer_id,
            status: p.status,
            quantity: p.quantity,
            price: p.price,
            weight: p.weight,
            paid: p.paid,
            reference: p.reference,
            note: p.note,
            tags: p.tags,
            created_at: p.created_at,
            attributes: p.attributes,
        }
    }
}

/// The `new` row of a real captured insert, as JSON text.
async fn sample() -> Result<String> {
    let db = dawdle_test::TestDb::new().await?;
    let mut client = db.connect().await?;
    client.batch_execute(model::CREATE_TABLE).await?;
    dawdle::sql::apply(&mut client, &model::dawdle_up()).await?;
    client
        .execute(&model::insert_one(), &[&4_200_000_i64])
        .await?;
    let row = client
        .query_one("SELECT new::text FROM dawdle.events", &[])
        .await?;
    Ok(row.get(0))
}

/// Runs `f` in batches until `window` has passed; calls per second.
fn rate(window: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f(); // warm up
    }
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < window {
        for _ in 0..1000 {
            f();
        }
        calls += 1000;
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

pub async fn run(options: &Options, report: &mut Report) -> Result<()> {
    let text = sample().await?;
    let window = options.decode_window;
    let (dawdle, from_value, serde) = tokio::task::spawn_blocking(move || -> Result<_> {
        let value: serde_json::Value = serde_json::from_str(&text)?;
        let decoded = Order::from_json(&value)?;
        let plain: Order = serde_json::from_str::<PlainOrder>(&text)?.into();
        if decoded != plain {
            return Err(format!("the decoders disagree:\n{decoded:?}\n{plain:?}").into());
        }
        let text = text.as_str();
        let dawdle = rate(window, || {
            let value: serde_json::Value = serde_json::from_str(black_box(text)).unwrap();
            black_box(Order::from_json(&value).unwrap());
        });
        let from_value = rate(window, || {
            black_box(Order::from_json(black_box(&value)).unwrap());
        });
        let serde = rate(window, || {
            black_box(serde_json::from_str::<PlainOrder>(black_box(text)).unwrap());
        });
        Ok((dawdle, from_value, serde))
    })
    .await??;
    report.figure(
        "decode",
        "decode_rows_per_s",
        "12-column row, JSON text → `Order::from_json` (via serde_json::Value)",
        dawdle,
        "rows/s",
        None,
    );
    report.figure(
        "decode",
        "decode_from_value_rows_per_s",
        "the same, from an already parsed serde_json::Value (what the listener holds)",
        from_value,
        "rows/s",
        None,
    );
    report.figure(
        "decode",
        "serde_rows_per_s",
        "the same JSON text → plain #[derive(Deserialize)] struct",
        serde,
        "rows/s",
        None,
    );
    report.figure(
        "decode",
        "decode_vs_serde_ratio",
        "dawdle decode ÷ serde_json (text → struct, both)",
        dawdle / serde,
        "",
        None,
    );
    Ok(())
}
