//! Signals: how fast signals sent in bulk reach their handler, and how late
//! delayed signals are handled when 1,000 fall due every second (the
//! watcher releases them from `dawdle.delayed`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dawdle::{MemoryQueue, Runtime, Signaled};
use dawdle_test::TestDb;
use serde::{Deserialize, Serialize};

use crate::report::{Bar, Report};
use crate::{Options, Result};

#[derive(Debug, Serialize, Deserialize, dawdle::Signal)]
#[dawdle(name = "bench.signal")]
struct Tick {
    n: i64,
}

/// Called with each handled signal's due time and when it was handled.
type Sink = Arc<dyn Fn(DateTime<Utc>, DateTime<Utc>) + Send + Sync>;

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

#[dawdle::handler(name = "bench::on_signal")]
async fn on_signal(tick: Signaled<Tick>) {
    let at = Utc::now();
    let _ = tick.payload.n;
    let sink = SINK.lock().unwrap().clone();
    if let Some(sink) = sink {
        sink(tick.deliver_at.with_timezone(&Utc), at);
    }
}

/// Signals per writer statement.
const PER_STATEMENT: i64 = 1_000;
/// Signals falling due per second in the delay run.
const DUE_PER_SECOND: i64 = 1_000;

pub async fn run(options: &Options, report: &mut Report) -> Result<()> {
    let db = TestDb::new().await?;
    let mut client = db.connect().await?;
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[])?).await?;
    let handled = Arc::new(AtomicU64::new(0));
    let lateness = Arc::new(Mutex::new(Vec::new()));
    {
        let (handled, lateness) = (handled.clone(), lateness.clone());
        *SINK.lock().unwrap() = Some(Arc::new(move |due, at| {
            lateness
                .lock()
                .unwrap()
                .push((at - due).num_microseconds().unwrap_or(i64::MAX));
            handled.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let handle = Runtime::builder()
        .database(db.config().clone())
        .pool(db.pool())
        .queue(MemoryQueue::new())
        .watch()
        .listen()
        .concurrency(64)
        .build()?
        .start();

    // Throughput: signals sent from SQL in bulk by 4 writers, until every
    // one was handled.
    let total = if options.quick { 20_000 } else { 100_000 };
    let mut writers = Vec::new();
    for _ in 0..4 {
        writers.push(db.connect().await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(w, client)| {
            tokio::spawn(async move {
                let mut first = w as i64 * PER_STATEMENT;
                while first < total {
                    client
                        .execute(
                            "SELECT count(dawdle.signal('bench.signal', json_build_object('n', i)))
                             FROM generate_series($1::int8, $2::int8) i",
                            &[&first, &(first + PER_STATEMENT - 1).min(total - 1)],
                        )
                        .await?;
                    first += 4 * PER_STATEMENT;
                }
                Ok::<_, tokio_postgres::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    wait_for(&handled, total as u64, Duration::from_secs(600)).await?;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    report.figure(
        "signals",
        "signal_throughput",
        format!("{total} signals sent by SQL in bulk → handler (MemoryQueue)"),
        rate,
        "signals/s",
        None,
    );

    // Delay error: signals sent at once, falling due at 1,000 per second
    // from 2 s on, while many more wait for tomorrow; how late after its
    // due time each is handled.
    let waiting: i64 = if options.quick { 20_000 } else { 200_000 };
    client
        .execute(
            "SELECT count(dawdle.signal('bench.signal', json_build_object('n', i), now() + interval '1 day'))
             FROM generate_series(1, $1::int8) i",
            &[&waiting],
        )
        .await?;
    handled.store(0, Ordering::Relaxed);
    lateness.lock().unwrap().clear();
    let seconds = if options.quick { 3 } else { 10 };
    let delayed = DUE_PER_SECOND * seconds;
    let start: String = client
        .query_one("SELECT (clock_timestamp() + interval '2 s')::text", &[])
        .await?
        .get(0);
    client
        .execute(
            "SELECT count(dawdle.signal('bench.signal', json_build_object('n', i),
                                        $1::text::timestamptz + i * ($2::float8 * interval '1 s')))
             FROM generate_series(0, $3::int8 - 1) i",
            &[&start, &(1.0 / DUE_PER_SECOND as f64), &delayed],
        )
        .await?;
    wait_for(
        &handled,
        delayed as u64,
        Duration::from_secs(seconds as u64 + 60),
    )
    .await?;
    let mut late = std::mem::take(&mut *lateness.lock().unwrap());
    late.sort_unstable();
    let ms = |q: f64| late[((late.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    let early = late.iter().filter(|l| **l < 0).count();
    let what = format!(
        "{delayed} delayed signals, {DUE_PER_SECOND} due/s, {waiting} more waiting: handled after due time"
    );
    report.figure(
        "signals",
        "signal_delay_p50_ms",
        format!("{what}, p50"),
        ms(0.5),
        "ms",
        None,
    );
    report.figure(
        "signals",
        "signal_delay_p99_ms",
        format!("{what}, p99"),
        ms(0.99),
        "ms",
        None,
    );
    report.figure(
        "signals",
        "signal_delay_max_ms",
        format!("{what}, max"),
        ms(1.0),
        "ms",
        Some(Bar::AtMost(1000.0)),
    );
    report.figure(
        "signals",
        "signal_early",
        "delayed signals handled before their due time",
        early as f64,
        "",
        Some(Bar::AtMost(0.0)),
    );
    handle.shutdown().await?;
    *SINK.lock().unwrap() = None;
    Ok(())
}

async fn wait_for(handled: &AtomicU64, expected: u64, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while handled.load(Ordering::Relaxed) < expected {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {expected} signals were handled within {limit:?}",
                handled.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
