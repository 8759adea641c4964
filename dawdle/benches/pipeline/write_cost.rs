//! Write cost: what capture costs the application's writers.
//!
//! Writers (one connection each) insert autocommit transactions into
//! `orders` for a fixed window, in three fresh databases on the same server,
//! one after another:
//!
//! - (a) `plain`: no capture;
//! - (b) `dawdle`: dawdle's triggers, a `Watcher` draining to a `MemoryQueue`
//!   that a consumer empties;
//! - (c) `dawdledb`: DawdleDB's triggers (an event row and a `pg_notify` per
//!   row) with a LISTEN consumer that claims each event by
//!   `DELETE ... RETURNING`, as DawdleDB's watcher does;
//! - (b') `dawdle_pg`: as (b), with the watcher draining to a `PgQueue` in
//!   the same database, which a consumer empties;
//! - (w) `dawdle_wal`: as (b), captured from the WAL instead of by triggers
//!   (when the server has `wal_level = logical`; the bench's own cluster
//!   has).

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dawdle::queue::{OutgoingMessage, Queue};
use dawdle::sql::Capture;
use dawdle::testing::TestDatabase;
use dawdle::watcher::{Watcher, WatcherHandle};
use dawdle::{MemoryQueue, PgQueue};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::cluster::Server;
use crate::consumer::{self, Consumer};
use crate::model;
use crate::report::{Bar, Report};
use crate::{Options, Result};

#[derive(Debug, Clone, Copy)]
enum Variant {
    Plain,
    Dawdle,
    DawdleDb,
    DawdlePg,
    DawdleWal,
    /// `--diagnose`: dawdle's capture taken apart, to see what costs what.
    Diagnose(Diagnosis),
}

/// A variant of (b), to see what costs what.
#[derive(Debug, Clone, Copy)]
struct Diagnosis {
    key: &'static str,
    label: &'static str,
    /// What drains the events (with no watcher, events pile up, and nobody
    /// holds the doorbell, so writers never notify).
    drain: Drain,
    sql: fn() -> String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drain {
    None,
    /// dawdle 0.1's watcher queries (see [`drain_0_1`]).
    Design0_1,
}

const DIAGNOSES: [Diagnosis; 3] = [
    Diagnosis {
        key: "no_watcher",
        label: "(b) triggers only, no watcher",
        drain: Drain::None,
        sql: model::dawdle_up,
    },
    Diagnosis {
        key: "no_doorbell",
        label: "(b) trigger without the doorbell check, no watcher",
        drain: Drain::None,
        sql: model::dawdle_without_doorbell,
    },
    Diagnosis {
        key: "design_0_1",
        label: "(b) as in 0.1: a row trigger building JSON, drained by DELETE",
        drain: Drain::Design0_1,
        sql: model::design_0_1,
    },
];

impl Variant {
    const ALL: [Variant; 5] = [
        Variant::Plain,
        Variant::Dawdle,
        Variant::DawdleDb,
        Variant::DawdlePg,
        Variant::DawdleWal,
    ];

    fn key(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Dawdle => "dawdle",
            Variant::DawdleDb => "dawdledb",
            Variant::DawdlePg => "dawdle_pg",
            Variant::DawdleWal => "dawdle_wal",
            Variant::Diagnose(d) => d.key,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "(a) plain table",
            Variant::Dawdle => "(b) dawdle + watcher",
            Variant::DawdleDb => "(c) DawdleDB trigger + LISTEN",
            Variant::DawdlePg => "(b') dawdle + watcher on PgQueue",
            Variant::DawdleWal => "(w) dawdle from the WAL + watcher",
            Variant::Diagnose(d) => d.label,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Load {
    key: &'static str,
    label: &'static str,
    writers: usize,
    rows: i64,
}

const LOADS: [Load; 3] = [
    Load {
        key: "8_writers",
        label: "8 writers, 1 row/tx",
        writers: 8,
        rows: 1,
    },
    Load {
        key: "1_writer",
        label: "1 writer, 1 row/tx",
        writers: 1,
        rows: 1,
    },
    Load {
        key: "8_writers_100_rows",
        label: "8 writers, 100 rows/tx",
        writers: 8,
        rows: 100,
    },
];

/// What one window of one variant gave.
#[derive(Debug, Default, Clone)]
struct Outcome {
    /// Transactions per second in the window.
    tps: f64,
    /// Events consumed (received, or claimed) per second in the window.
    consumed_per_s: f64,
    /// Rows committed and not yet consumed when the window closed.
    backlog_at_end: f64,
    /// (b) Time from the last commit until every event was received.
    drain_s: f64,
    /// (w) CPU of the WAL sender per event consumed in the window, in µs.
    decoder_us_per_event: Option<f64>,
    /// CPU of the bench's process (the writers' clients, and the watcher
    /// and consumer when the variant has them) per transaction, in µs.
    own_us_per_tx: Option<f64>,
}

pub async fn run(options: &Options, server: &Server, report: &mut Report) -> Result<()> {
    for load in LOADS.into_iter().filter(|l| options.runs_load(l.key)) {
        let mut variants = Variant::ALL.to_vec();
        if !server.logical().await? {
            eprintln!("  (w) skipped: the server's wal_level is not logical");
            variants.retain(|v| !matches!(v, Variant::DawdleWal));
        }
        if options.diagnose && load.writers == 8 {
            variants.extend(DIAGNOSES.map(Variant::Diagnose));
        }
        let mut outcomes: Vec<Vec<Outcome>> = vec![Vec::new(); variants.len()];
        for round in 0..options.rounds {
            for (i, &variant) in variants.iter().enumerate() {
                server.checkpoint().await?;
                let outcome = measure(server, variant, load, options).await?;
                eprintln!(
                    "  {} {} round {}: {:.0} tx/s, consumed {:.0}/s, backlog at end {}",
                    load.label,
                    variant.key(),
                    round + 1,
                    outcome.tps,
                    outcome.consumed_per_s,
                    outcome.backlog_at_end,
                );
                outcomes[i].push(outcome);
            }
        }
        let mean = |v: &[Outcome], f: fn(&Outcome) -> f64| {
            v.iter().map(f).sum::<f64>() / v.len().max(1) as f64
        };
        // The median of the rounds (the rounds interleave the variants, so
        // a disturbance hits one round of each, not one variant).
        let tps: Vec<f64> = outcomes
            .iter()
            .map(|o| median(o.iter().map(|o| o.tps).collect()))
            .collect();
        // Each round's ratio to plain, for the spread of the ratios.
        let ratios = |i: usize| -> Vec<f64> {
            outcomes[i]
                .iter()
                .zip(&outcomes[0])
                .map(|(v, plain)| v.tps / plain.tps)
                .collect()
        };
        if options.rounds > 1 {
            for (i, &variant) in variants.iter().enumerate().skip(1) {
                let r = ratios(i);
                let (lo, hi) = r
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                report.figure(
                    "write cost",
                    &format!("write_ratio_{}_{}_spread", load.key, variant.key()),
                    format!(
                        "{}: {} ÷ plain, per round: {}",
                        load.label,
                        variant.label(),
                        r.iter()
                            .map(|x| format!("{x:.3}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    hi - lo,
                    "(max − min)",
                    None,
                );
            }
        }
        for (i, &variant) in variants.iter().enumerate() {
            report.figure(
                "write cost",
                &format!("write_{}_{}_tps", load.key, variant.key()),
                format!("{}: {}", load.label, variant.label()),
                tps[i],
                if load.rows == 1 {
                    "tx/s"
                } else {
                    "tx/s (×100 rows)"
                },
                None,
            );
        }
        for (i, &variant) in variants.iter().enumerate().skip(3) {
            report.figure(
                "write cost",
                &format!("write_ratio_{}_{}", load.key, variant.key()),
                format!("{}: {} ÷ plain", load.label, variant.label()),
                tps[i] / tps[0],
                "",
                None,
            );
        }
        if let Some(w) = variants
            .iter()
            .position(|v| matches!(v, Variant::DawdleWal))
        {
            let bar = match load.key {
                "8_writers" => Some(Bar::AtLeast(0.90)),
                "8_writers_100_rows" => Some(Bar::AtLeast(0.85)),
                _ => None,
            };
            report.figure(
                "write cost",
                &format!("write_ratio_{}_wal", load.key),
                format!("{}: w/a (dawdle from the WAL ÷ plain)", load.label),
                tps[w] / tps[0],
                "",
                bar,
            );
            let decoder: Vec<f64> = outcomes[w]
                .iter()
                .filter_map(|o| o.decoder_us_per_event)
                .collect();
            let own =
                |i: usize| median(outcomes[i].iter().filter_map(|o| o.own_us_per_tx).collect());
            report.figure(
                "write cost",
                &format!("write_{}_wal_process_cpu_us_per_tx", load.key),
                format!(
                    "{}: (w) CPU of the bench's process per transaction, less plain's (watcher, queue, consumer)",
                    load.label
                ),
                own(w) - own(0),
                "µs",
                None,
            );
            report.figure(
                "write cost",
                &format!("write_{}_dawdle_process_cpu_us_per_tx", load.key),
                format!(
                    "{}: (b) CPU of the bench's process per transaction, less plain's (watcher, queue, consumer)",
                    load.label
                ),
                own(1) - own(0),
                "µs",
                None,
            );
            if !decoder.is_empty() {
                report.figure(
                    "write cost",
                    &format!("write_{}_wal_decoder_cpu_us_per_event", load.key),
                    format!("{}: (w) CPU of the WAL sender per event", load.label),
                    median(decoder),
                    "µs",
                    None,
                );
            }
            report.figure(
                "write cost",
                &format!("write_{}_dawdle_wal_drain_s", load.key),
                format!("{}: (w) last commit → every event received", load.label),
                mean(&outcomes[w], |o| o.drain_s),
                "s",
                None,
            );
        }
        let bar = match load.key {
            "8_writers" => Some(Bar::AtLeast(0.80)),
            "8_writers_100_rows" => Some(Bar::AtLeast(0.50)),
            _ => None,
        };
        report.figure(
            "write cost",
            &format!("write_ratio_{}", load.key),
            format!("{}: b/a (dawdle ÷ plain)", load.label),
            tps[1] / tps[0],
            "",
            bar,
        );
        report.figure(
            "write cost",
            &format!("write_ratio_{}_pg_vs_memory", load.key),
            format!(
                "{}: b'/a ÷ b/a (PgQueue's write ratio ÷ MemoryQueue's, same run)",
                load.label
            ),
            tps[3] / tps[1],
            "",
            None,
        );
        report.figure(
            "write cost",
            &format!("write_ratio_dawdledb_{}", load.key),
            format!("{}: c/a (DawdleDB ÷ plain)", load.label),
            tps[2] / tps[0],
            "",
            None,
        );
        report.figure(
            "write cost",
            &format!("write_{}_dawdle_drain_s", load.key),
            format!("{}: (b) last commit → every event received", load.label),
            mean(&outcomes[1], |o| o.drain_s),
            "s",
            None,
        );
        report.figure(
            "write cost",
            &format!("write_{}_dawdledb_claims_per_s", load.key),
            format!("{}: (c) events claimed by DawdleDB's watcher", load.label),
            mean(&outcomes[2], |o| o.consumed_per_s),
            "/s",
            None,
        );
        report.figure(
            "write cost",
            &format!("write_{}_dawdledb_backlog_at_end", load.key),
            format!(
                "{}: (c) events not yet claimed at the window's end",
                load.label
            ),
            mean(&outcomes[2], |o| o.backlog_at_end),
            "events",
            None,
        );
    }
    report.note(format!(
        "write cost: each variant in a fresh database on the same server, {} s window after {} s warm-up, \
         {} round(s) interleaved a/b/c/b'/w, the median of the rounds; before each window, no autovacuum \
         worker running and a CHECKPOINT.",
        options.write_window.as_secs_f64(),
        options.write_warmup.as_secs_f64(),
        options.rounds
    ));
    Ok(())
}

/// The capture side of a variant while the writers run.
enum Side {
    Plain,
    Dawdle {
        watcher: WatcherHandle,
        consumer: Consumer,
    },
    DawdleDb {
        tasks: [JoinHandle<()>; 2],
    },
    Design0_1 {
        drain: JoinHandle<()>,
        consumer: Consumer,
    },
}

async fn measure(
    server: &Server,
    variant: Variant,
    load: Load,
    options: &Options,
) -> Result<Outcome> {
    let db = server.database().await?;
    measure_on(&db, variant, load, options).await
}

async fn measure_on(
    db: &TestDatabase,
    variant: Variant,
    load: Load,
    options: &Options,
) -> Result<Outcome> {
    let mut client = db.connect().await?;
    client.batch_execute(model::CREATE_TABLE).await?;
    let consumed = Arc::new(AtomicU64::new(0));
    let side = match variant {
        Variant::Plain => Side::Plain,
        Variant::Dawdle => {
            dawdle::sql::apply(&mut client, &model::dawdle_up()).await?;
            start_dawdle(db, &consumed, Arc::new(MemoryQueue::new())).await?
        }
        Variant::DawdlePg => {
            dawdle::sql::apply(&mut client, &model::dawdle_up()).await?;
            let queue = PgQueue::builder(db.database().clone()).build();
            start_dawdle(db, &consumed, Arc::new(queue)).await?
        }
        Variant::DawdleWal => {
            dawdle::sql::apply(&mut client, &model::dawdle_up_wal()).await?;
            start_dawdle_with(db, &consumed, Arc::new(MemoryQueue::new()), Capture::Wal).await?
        }
        Variant::DawdleDb => {
            client.batch_execute(&model::dawdle_db_up()).await?;
            Side::DawdleDb {
                tasks: dawdle_db_watcher(db, consumed.clone()).await?,
            }
        }
        Variant::Diagnose(diagnosis) => {
            dawdle::sql::apply(&mut client, &(diagnosis.sql)()).await?;
            match diagnosis.drain {
                Drain::None => Side::Plain,
                Drain::Design0_1 => drain_0_1(db, &consumed).await?,
            }
        }
    };

    let committed = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::with_capacity(load.writers);
    for _ in 0..load.writers {
        clients.push(db.connect().await?);
    }
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + options.write_warmup;
    let end = measure_from + options.write_window;
    let writers: Vec<JoinHandle<Result<u64>>> = clients
        .into_iter()
        .enumerate()
        .map(|(w, client)| {
            let committed = committed.clone();
            tokio::spawn(writer(
                client,
                w,
                load.rows,
                start,
                measure_from,
                end,
                committed,
            ))
        })
        .collect();
    // (w): the WAL sender decoding for the watcher, when the server runs here.
    let decoder = match variant {
        Variant::DawdleWal => client
            .query_opt(
                "SELECT pid::text FROM pg_stat_replication WHERE application_name = 'dawdle-watcher-wal'",
                &[],
            )
            .await?
            .map(|row| row.get::<_, String>(0)),
        _ => None,
    };
    let decoder_cpu = || {
        decoder
            .as_deref()
            .and_then(crate::cluster::process_cpu)
            .map(|(own, _)| own)
    };
    tokio::time::sleep_until(measure_from.into()).await;
    let consumed_from = consumed.load(Ordering::Relaxed);
    let decoder_from = decoder_cpu();
    let own_from = crate::cluster::process_cpu("self").map(|(own, _)| own);
    tokio::time::sleep_until(end.into()).await;
    let consumed_to = consumed.load(Ordering::Relaxed);
    let decoder_to = decoder_cpu();
    let own_to = crate::cluster::process_cpu("self").map(|(own, _)| own);
    let committed_at_end = committed.load(Ordering::Relaxed);
    let mut transactions = 0;
    for writer in writers {
        transactions += writer.await??;
    }
    let window = options.write_window.as_secs_f64();
    let mut outcome = Outcome {
        tps: transactions as f64 / window,
        consumed_per_s: (consumed_to - consumed_from) as f64 / window,
        backlog_at_end: committed_at_end.saturating_sub(consumed_to) as f64,
        drain_s: 0.0,
        own_us_per_tx: own_from
            .zip(own_to)
            .filter(|_| transactions > 0)
            .map(|(from, to)| (to - from) * 1e6 / transactions as f64),
        decoder_us_per_event: decoder_from
            .zip(decoder_to)
            .filter(|_| consumed_to > consumed_from)
            .map(|(from, to)| (to - from) * 1e6 / (consumed_to - consumed_from) as f64),
    };
    let writers_done = Instant::now();
    match side {
        Side::Plain => {}
        Side::Dawdle { watcher, consumer } => {
            let total = committed.load(Ordering::Relaxed);
            let deadline = writers_done + Duration::from_secs(120);
            while consumed.load(Ordering::Relaxed) < total {
                if Instant::now() > deadline {
                    return Err(format!(
                        "(b) only {} of {total} events arrived within 120 s",
                        consumed.load(Ordering::Relaxed)
                    )
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcome.drain_s = writers_done.elapsed().as_secs_f64();
            watcher.shutdown().await?;
            consumer.stop().await;
            // The slot of (w) goes with the database, whose drop
            // (`TestDatabase`) ends its WAL sender first.
        }
        Side::Design0_1 { drain, consumer } => {
            let total = committed.load(Ordering::Relaxed);
            let deadline = writers_done + Duration::from_secs(120);
            while consumed.load(Ordering::Relaxed) < total && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcome.drain_s = writers_done.elapsed().as_secs_f64();
            drain.abort();
            consumer.stop().await;
        }
        Side::DawdleDb { tasks } => {
            for task in tasks {
                task.abort();
            }
        }
    }
    Ok(outcome)
}

/// (b)'s far side: a watcher draining to `queue`, a consumer emptying it.
async fn start_dawdle(
    db: &TestDatabase,
    consumed: &Arc<AtomicU64>,
    queue: Arc<dyn Queue>,
) -> Result<Side> {
    start_dawdle_with(db, consumed, queue, Capture::Triggers).await
}

/// [`start_dawdle`] for either capture mode.
async fn start_dawdle_with(
    db: &TestDatabase,
    consumed: &Arc<AtomicU64>,
    queue: Arc<dyn Queue>,
    capture: Capture,
) -> Result<Side> {
    let counter = consumed.clone();
    let consumer = consumer::spawn(
        queue.clone(),
        1,
        Arc::new(move |events, _| {
            counter.fetch_add(events.len() as u64, Ordering::Relaxed);
        }),
    );
    let watcher = Watcher::builder_shared(db.config().clone(), queue)
        .capture(capture)
        .build()
        .start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !watcher.stats().is_leading() {
        if Instant::now() > deadline {
            return Err("the watcher did not start leading within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(Side::Dawdle { watcher, consumer })
}

/// dawdle 0.1's drain, with its own queries: read up to 1,000 events from a
/// floor (here the lowest id of the previous read, which every earlier
/// event was deleted below), send them in messages of up to 100 events and
/// calls of 10 messages to a MemoryQueue, and delete them.
async fn drain_0_1(db: &TestDatabase, consumed: &Arc<AtomicU64>) -> Result<Side> {
    let queue = Arc::new(MemoryQueue::new());
    let counter = consumed.clone();
    let consumer = consumer::spawn(
        queue.clone(),
        1,
        Arc::new(move |events, _| {
            counter.fetch_add(events.len() as u64, Ordering::Relaxed);
        }),
    );
    let client = db.connect().await?;
    client.batch_execute("SET synchronous_commit = off").await?;
    let fetch = client.prepare(model::FETCH_0_1).await?;
    let delete = client.prepare(model::DELETE_0_1).await?;
    let drain = tokio::spawn(async move {
        let mut floor = 0i64;
        loop {
            let Ok(rows) = client.query(&fetch, &[&1000i64, &floor]).await else {
                return;
            };
            if rows.is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            floor = ids[0];
            let messages: Vec<OutgoingMessage> = rows
                .chunks(100)
                .map(|chunk| {
                    let events: Vec<&str> = chunk.iter().map(|r| r.get(1)).collect();
                    OutgoingMessage {
                        body: format!(r#"{{"dawdle":1,"events":[{}]}}"#, events.join(",")),
                        group_id: None,
                        dedup_id: None,
                        failure: None,
                        delay: std::time::Duration::ZERO,
                    }
                })
                .collect();
            for call in messages.chunks(10) {
                if queue.send(call).await.is_err() {
                    return;
                }
            }
            if client.execute(&delete, &[&ids]).await.is_err() {
                return;
            }
        }
    });
    Ok(Side::Design0_1 { drain, consumer })
}

/// One writer: autocommit inserts of `rows` rows until `end`; counts the
/// transactions whose COMMIT returned inside the window.
async fn writer(
    client: Client,
    w: usize,
    rows: i64,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    committed: Arc<AtomicU64>,
) -> Result<u64> {
    let statement = if rows == 1 {
        client.prepare(&model::insert_one()).await?
    } else {
        client.prepare(&model::insert_many()).await?
    };
    let mut next: i64 = (w as i64 + 1) * 1_000_000_000_000;
    let mut counted = 0;
    tokio::time::sleep_until(start.into()).await;
    loop {
        if rows == 1 {
            client.execute(&statement, &[&next]).await?;
        } else {
            client.execute(&statement, &[&next, &rows]).await?;
        }
        next += rows;
        committed.fetch_add(rows as u64, Ordering::Relaxed);
        let now = Instant::now();
        if now >= end {
            return Ok(counted);
        }
        if now >= measure_from {
            counted += 1;
        }
    }
}

/// DawdleDB's watcher: LISTEN on the channel, and for each notification
/// claim the event with `DELETE ... RETURNING payload` and decode it, one
/// at a time (DawdleDB's GenServer handles notifications sequentially).
async fn dawdle_db_watcher(
    db: &TestDatabase,
    claimed: Arc<AtomicU64>,
) -> Result<[JoinHandle<()>; 2]> {
    let (listener, mut connection) = db.config().connect(NoTls).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    listener
        .batch_execute(&format!("LISTEN {}", model::DAWDLE_DB_CHANNEL))
        .await?;
    let claimer = db.connect().await?;
    let claim = claimer
        .prepare("DELETE FROM watcher_events WHERE id = $1 RETURNING payload")
        .await?;
    let task = tokio::spawn(async move {
        let _listener = listener; // LISTEN lasts as long as this connection
        while let Some(payload) = rx.recv().await {
            let Ok(note) = serde_json::from_str::<serde_json::Value>(&payload) else {
                continue;
            };
            let Some(id) = note.get("id").and_then(serde_json::Value::as_i64) else {
                continue;
            };
            let Ok(rows) = claimer.query(&claim, &[&id]).await else {
                return;
            };
            for row in rows {
                let payload: &str = row.get(0);
                let _ = std::hint::black_box(serde_json::from_str::<serde_json::Value>(payload));
                claimed.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Ok([task, driver])
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}
