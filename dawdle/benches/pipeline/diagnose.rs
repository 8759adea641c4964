//! `--diagnose`: where the write cost of capture goes, measured without
//! concurrency so that the figures hold still on a busy machine.
//!
//! One writer with `synchronous_commit = off` (no commit wait) inserts rows
//! with each capture variant; the CPU time of its backend per row is the
//! trigger's cost. Then a watcher drains what the dawdle variant captured;
//! the CPU of its backend and of this process per event is the watcher's
//! cost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dawdle::testing::TestDatabase;
use dawdle::watcher::Watcher;
use dawdle::MemoryQueue;

use crate::cluster::{process_cpu, Server};
use crate::consumer;
use crate::model;
use crate::report::Report;
use crate::{Options, Result};

const ROWS_PER_STATEMENT_BULK: i64 = 100;

struct Capture {
    key: &'static str,
    label: &'static str,
    sql: fn() -> String,
}

const CAPTURES: [Capture; 5] = [
    Capture {
        key: "plain",
        label: "no capture",
        sql: String::new,
    },
    Capture {
        key: "dawdle",
        label: "dawdle's statement trigger as generated",
        sql: model::dawdle_up,
    },
    Capture {
        key: "no_doorbell",
        label: "… without the doorbell check",
        sql: model::dawdle_without_doorbell,
    },
    Capture {
        key: "design_0_1",
        label: "dawdle 0.1's row trigger (the row's JSON built by the writer)",
        sql: model::design_0_1,
    },
    Capture {
        key: "dawdledb",
        label: "DawdleDB's row trigger (event row + pg_notify)",
        sql: model::dawdle_db_up,
    },
];

pub async fn run(options: &Options, server: &Server, report: &mut Report) -> Result<()> {
    let rows: i64 = if options.quick { 5_000 } else { 20_000 };
    for capture in CAPTURES {
        for per_statement in [1, ROWS_PER_STATEMENT_BULK] {
            let db = server.database().await?;
            let result = trigger_cost(&db, &capture, rows, per_statement).await;
            let drained = if capture.key == "dawdle" && per_statement == 1 && result.is_ok() {
                Some(watcher_cost(&db, rows as u64 + 1_000).await)
            } else {
                None
            };
            drop(db);
            let (cpu_us, wall_us) = result?;
            let suffix = if per_statement == 1 { "" } else { "_100_rows" };
            let shape = if per_statement == 1 {
                "1 row/statement"
            } else {
                "100 rows/statement"
            };
            report.figure(
                "diagnosis",
                &format!(
                    "diag_trigger_{}{suffix}_backend_cpu_us_per_row",
                    capture.key
                ),
                format!("{shape}: {} — writer backend CPU per row", capture.label),
                cpu_us,
                "µs",
                None,
            );
            report.number(
                &format!("diag_trigger_{}{suffix}_wall_us_per_row", capture.key),
                wall_us,
            );
            if let Some(drained) = drained {
                let (backend_us, process_us) = drained?;
                report.figure(
                    "diagnosis",
                    "diag_watcher_backend_cpu_us_per_event",
                    "watcher draining a backlog: its PostgreSQL backend's CPU per event (fetch + delete)",
                    backend_us,
                    "µs",
                    None,
                );
                report.figure(
                    "diagnosis",
                    "diag_watcher_process_cpu_us_per_event",
                    "… and this process's CPU per event (watcher task + MemoryQueue + consumer's Envelope::parse)",
                    process_us,
                    "µs",
                    None,
                );
            }
        }
    }
    report.note(
        "diagnosis: one writer, synchronous_commit=off, CPU from /proc of its backend; \
         not held to any bar.",
    );
    Ok(())
}

/// (writer backend CPU µs per row, wall µs per row).
async fn trigger_cost(
    db: &TestDatabase,
    capture: &Capture,
    rows: i64,
    per_statement: i64,
) -> Result<(f64, f64)> {
    let mut client = db.connect().await?;
    client.batch_execute(model::CREATE_TABLE).await?;
    let sql = (capture.sql)();
    if !sql.is_empty() {
        if capture.key == "dawdledb" {
            client.batch_execute(&sql).await?;
        } else {
            // Nobody holds the doorbell: writers do not ring.
            dawdle::sql::apply(&mut client, &sql).await?;
        }
    }
    client.batch_execute("SET synchronous_commit = off").await?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let pid = pid.to_string();
    let one = client.prepare(&model::insert_one()).await?;
    let many = client.prepare(&model::insert_many()).await?;
    let mut next = 1_i64;
    let mut insert = |n: i64| {
        let first = next;
        next += n;
        let (client, one, many) = (&client, &one, &many);
        async move {
            if per_statement == 1 {
                for id in first..first + n {
                    client.execute(one, &[&id]).await?;
                }
            } else {
                let mut id = first;
                while id < first + n {
                    client.execute(many, &[&id, &per_statement]).await?;
                    id += per_statement;
                }
            }
            Ok::<_, tokio_postgres::Error>(())
        }
    };
    insert(1_000).await?; // warm up: plans, caches
    let cpu = process_cpu(&pid)
        .ok_or("cannot read the writer backend's CPU time")?
        .0;
    let started = Instant::now();
    insert(rows).await?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = process_cpu(&pid)
        .ok_or("cannot read the writer backend's CPU time")?
        .0
        - cpu;
    Ok((cpu * 1e6 / rows as f64, wall * 1e6 / rows as f64))
}

/// Drains `events` waiting events: (watcher backend CPU µs per event, this
/// process's CPU µs per event).
async fn watcher_cost(db: &TestDatabase, events: u64) -> Result<(f64, f64)> {
    let queue = Arc::new(MemoryQueue::new());
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let consumer = consumer::spawn(
        queue.clone(),
        1,
        Arc::new(move |events, _| {
            counter.fetch_add(events.len() as u64, Ordering::Relaxed);
        }),
    );
    let own = process_cpu("self").map(|c| c.0);
    let watcher = Watcher::builder_shared(db.config().clone(), queue)
        .build()
        .start();
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < events {
        if Instant::now() > deadline {
            return Err("the watcher did not drain the backlog within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let own = process_cpu("self")
        .map(|c| c.0)
        .zip(own)
        .map(|(a, b)| a - b);
    let client = db.connect().await?;
    let pid: i32 = client
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'dawdle-watcher'
             AND datname = current_database()",
            &[],
        )
        .await?
        .get(0);
    let backend = process_cpu(&pid.to_string()).map(|c| c.0);
    watcher.shutdown().await?;
    consumer.stop().await;
    let per_event = |cpu: Option<f64>| cpu.map_or(f64::NAN, |c| c * 1e6 / events as f64);
    Ok((per_event(backend), per_event(own)))
}
