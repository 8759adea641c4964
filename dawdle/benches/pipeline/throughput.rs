//! The watcher side alone, on MemoryQueue: sustained throughput of a bulk
//! load, and COMMIT → receive latency at a steady rate.
//!
//! Both end where the queue consumer receives the event (`consumer`), not at
//! a handler: `dawdle::Runtime` does not exist yet. When it does, run it
//! here with a handler for `Insert<Order>` that does what the consumer's
//! callback does (record the id and the time), and the same code measures
//! COMMIT → handler call.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dawdle::testing::TestDb;
use dawdle::watcher::{Watcher, WatcherHandle};
use dawdle::MemoryQueue;
use tokio::task::JoinHandle;

use crate::consumer::{self, key_id};
use crate::model;
use crate::report::{Bar, Report};
use crate::{Options, Result};

async fn prepared_db() -> Result<TestDb> {
    let db = TestDb::new().await?;
    let mut client = db.connect().await?;
    client.batch_execute(model::CREATE_TABLE).await?;
    dawdle::sql::apply(&mut client, &model::dawdle_up()).await?;
    Ok(db)
}

async fn leading(watcher: &WatcherHandle) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !watcher.stats().is_leading() {
        if Instant::now() > deadline {
            return Err("the watcher did not start leading within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Seconds of CPU (user + system) a process has used.
fn cpu_seconds(pid: &str) -> Option<f64> {
    crate::cluster::process_cpu(pid).map(|(own, _)| own)
}

/// The watcher's backend process, when the server runs on this machine.
async fn watcher_backend(db: &TestDb) -> Result<Option<String>> {
    let client = db.connect().await?;
    let row = client
        .query_opt(
            "SELECT pid FROM pg_stat_activity
             WHERE application_name = 'dawdle-watcher' AND datname = current_database()",
            &[],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let pid = row.get::<_, i32>(0).to_string();
    let is_postgres = std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("postgres"));
    Ok(is_postgres.then_some(pid))
}

pub async fn throughput(options: &Options, report: &mut Report) -> Result<()> {
    const WRITERS: usize = 4;
    const ROWS_PER_STATEMENT: i64 = 1000;
    let changes = options.throughput_changes;
    let db = prepared_db().await?;
    let queue = Arc::new(MemoryQueue::new());
    let seen = Arc::new(Mutex::new(HashSet::with_capacity(changes)));
    let received = Arc::new(AtomicU64::new(0));
    let consumer = {
        let (seen, received) = (seen.clone(), received.clone());
        consumer::spawn(
            queue.clone(),
            1,
            Arc::new(move |events, _| {
                let mut seen = seen.lock().unwrap();
                for event in events {
                    seen.insert(event.id);
                }
                received.store(seen.len() as u64, Ordering::Relaxed);
            }),
        )
    };
    let watcher = Watcher::builder_shared(db.config().clone(), queue)
        .build()
        .start();
    leading(&watcher).await?;
    let backend = watcher_backend(&db).await?;
    let backend_cpu = backend.as_deref().and_then(cpu_seconds);
    let own_cpu = cpu_seconds("self");

    let committed = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (committed, received, peak) = (committed.clone(), received.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                let backlog = committed
                    .load(Ordering::Relaxed)
                    .saturating_sub(received.load(Ordering::Relaxed));
                peak.fetch_max(backlog, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        clients.push(db.connect().await?);
    }
    let statements = (changes as i64 + ROWS_PER_STATEMENT - 1) / ROWS_PER_STATEMENT;
    let started = Instant::now();
    let writers: Vec<JoinHandle<Result<()>>> = clients
        .into_iter()
        .enumerate()
        .map(|(w, client)| {
            let committed = committed.clone();
            tokio::spawn(async move {
                let insert = client.prepare(&model::insert_many()).await?;
                let mut s = w as i64;
                while s < statements {
                    let first = s * ROWS_PER_STATEMENT + 1;
                    let rows = ROWS_PER_STATEMENT.min(changes as i64 - first + 1);
                    client.execute(&insert, &[&first, &rows]).await?;
                    committed.fetch_add(rows as u64, Ordering::Relaxed);
                    s += WRITERS as i64;
                }
                Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    let written = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    while received.load(Ordering::Relaxed) < changes as u64 {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {changes} events arrived within 300 s of the last write",
                received.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let total = started.elapsed().as_secs_f64();
    sampler.abort();
    let backend_cpu = backend
        .as_deref()
        .and_then(cpu_seconds)
        .zip(backend_cpu)
        .map(|(after, before)| after - before);
    let own_cpu = cpu_seconds("self")
        .zip(own_cpu)
        .map(|(after, before)| after - before);
    let (events_sent, send_calls) = (watcher.stats().events_sent(), watcher.stats().send_calls());
    watcher.shutdown().await?;
    consumer.stop().await;

    report.figure(
        "throughput",
        "throughput_events_per_s",
        format!(
            "{changes} inserts in {ROWS_PER_STATEMENT}-row statements by {WRITERS} writers → every event received (MemoryQueue; to receive, not to a handler)"
        ),
        changes as f64 / total,
        "events/s",
        Some(Bar::AtLeast(20_000.0)),
    );
    report.figure(
        "throughput",
        "throughput_total_s",
        "first write → last event received",
        total,
        "s",
        None,
    );
    report.figure(
        "throughput",
        "throughput_write_s",
        "time the writers took (capture triggers included)",
        written.as_secs_f64(),
        "s",
        None,
    );
    report.figure(
        "throughput",
        "throughput_peak_backlog",
        "peak backlog (committed, not yet received)",
        peak.load(Ordering::Relaxed) as f64,
        "events",
        None,
    );
    report.figure(
        "throughput",
        "events_per_send_batch",
        "events per send call (`events_sent / send_calls`; ≤ 10 messages of ≤ 100 events, as on SQS)",
        events_sent as f64 / send_calls.max(1) as f64,
        "events",
        Some(Bar::AtLeast(50.0)),
    );
    if let Some(cpu) = backend_cpu {
        report.figure(
            "throughput",
            "throughput_watcher_backend_cpu_s",
            "CPU of the watcher's PostgreSQL backend (fetch + delete)",
            cpu,
            "s",
            None,
        );
    }
    if let Some(cpu) = own_cpu {
        report.figure(
            "throughput",
            "throughput_bench_process_cpu_s",
            "CPU of this process (watcher task, consumer, writers' clients)",
            cpu,
            "s",
            None,
        );
    }
    Ok(())
}

pub async fn latency(options: &Options, report: &mut Report) -> Result<()> {
    const WRITERS: usize = 4;
    const RATE: f64 = 1000.0;
    let db = prepared_db().await?;
    let queue = Arc::new(MemoryQueue::new());
    let commits: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let receives: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let consumer = {
        let receives = receives.clone();
        consumer::spawn(
            queue.clone(),
            1,
            Arc::new(move |events, at| {
                let mut receives = receives.lock().unwrap();
                for event in events {
                    if let Some(id) = key_id(event) {
                        receives.entry(id).or_insert(at);
                    }
                }
            }),
        )
    };
    let watcher = Watcher::builder_shared(db.config().clone(), queue)
        .build()
        .start();
    leading(&watcher).await?;
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        clients.push(db.connect().await?);
    }
    let period = Duration::from_secs_f64(WRITERS as f64 / RATE);
    let end = Instant::now() + options.latency_window;
    let writers: Vec<JoinHandle<Result<()>>> = clients
        .into_iter()
        .enumerate()
        .map(|(w, client)| {
            let commits = commits.clone();
            tokio::spawn(async move {
                let insert = client.prepare(&model::insert_one()).await?;
                let mut ticks = tokio::time::interval(period);
                let mut id = (w as i64 + 1) * 1_000_000_000;
                loop {
                    ticks.tick().await;
                    if Instant::now() >= end {
                        return Ok(());
                    }
                    client.execute(&insert, &[&id]).await?;
                    let committed = Instant::now();
                    commits.lock().unwrap().insert(id, committed);
                    id += 1;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    let expected = commits.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while receives.lock().unwrap().len() < expected {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {expected} events arrived within 60 s",
                receives.lock().unwrap().len()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    watcher.shutdown().await?;
    consumer.stop().await;

    let commits = commits.lock().unwrap();
    let receives = receives.lock().unwrap();
    let mut latencies: Vec<f64> = commits
        .iter()
        .filter_map(|(id, committed)| {
            let received = receives.get(id)?;
            // A poll can read the event before the writer's COMMIT returns: 0.
            Some(received.saturating_duration_since(*committed).as_secs_f64() * 1e3)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |q: f64| {
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1]
    };
    report.figure(
        "latency",
        "latency_rate_per_s",
        format!("steady insert rate ({WRITERS} writers, 1 row/tx, MemoryQueue)"),
        latencies.len() as f64 / options.latency_window.as_secs_f64(),
        "events/s",
        None,
    );
    for (key, q, bar) in [
        ("latency_p50_ms", 0.50, Some(Bar::AtMost(5.0))),
        ("latency_p90_ms", 0.90, None),
        ("latency_p99_ms", 0.99, Some(Bar::AtMost(25.0))),
        ("latency_max_ms", 1.0, None),
    ] {
        report.figure(
            "latency",
            key,
            format!(
                "COMMIT returned → consumer received, p{} (to receive, not to a handler)",
                (q * 100.0) as u32
            ),
            percentile(q),
            "ms",
            bar,
        );
    }
    Ok(())
}
