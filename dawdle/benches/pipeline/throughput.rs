//! Sustained throughput of a bulk load, and COMMIT → delivery latency at a
//! steady rate, on MemoryQueue (and PgQueue, SQS). Each is measured to two ends:
//!
//! - [`End::Handler`]: a `dawdle::Runtime` (watcher + listener) calling the
//!   bench's `#[dawdle::handler]`: decode included, what the bars are
//!   about;
//! - [`End::Receive`]: the watcher alone, to a consumer that receives from
//!   the queue and parses the envelopes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dawdle::queue::{PgQueue, SqsQueue};
use dawdle::sql::Capture;
use dawdle::watcher::{Stats, Watcher, WatcherHandle};
use dawdle::{MemoryQueue, Runtime, RuntimeHandle};
use dawdle_test::{CountingQueue, QueueCalls, SqsServer, TestDb};
use tokio::task::JoinHandle;

use crate::consumer::{self, key_id, Consumer};
use crate::figures::Traces;
use crate::handler::{self, Sink};
use crate::model;
use crate::report::{trim, Bar, Report};
use crate::{Options, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Handler,
    /// A Runtime on a PgQueue in the same database.
    PgHandler,
    Receive,
    /// A Runtime on moto's SQS server (slow Python: reported, not tuned to).
    SqsHandler,
    /// A Runtime on MemoryQueue, the database captured from the WAL.
    WalHandler,
}

impl End {
    /// Prefix of the JSON keys: the handler figures carry the bars' names.
    fn prefix(self) -> &'static str {
        match self {
            End::Handler => "",
            End::PgHandler => "pg_",
            End::Receive => "watcher_",
            End::SqsHandler => "sqs_",
            End::WalHandler => "wal_",
        }
    }

    /// Whether the bars apply: to the Runtime on MemoryQueue and on PgQueue.
    pub fn has_bars(self) -> bool {
        matches!(self, End::Handler | End::PgHandler | End::WalHandler)
    }

    fn to(self) -> &'static str {
        match self {
            End::Handler => "handler call (Runtime: watcher + listener)",
            End::PgHandler => "handler call (Runtime on PgQueue)",
            End::Receive => "queue receive (watcher alone)",
            End::SqsHandler => "handler call (Runtime on moto's SQS)",
            End::WalHandler => "handler call (Runtime, capture from the WAL)",
        }
    }

    /// The series' name in the plots.
    pub fn queue(self) -> &'static str {
        match self {
            End::Handler => "MemoryQueue",
            End::PgHandler => "PgQueue",
            End::Receive => "MemoryQueue, watcher alone",
            End::SqsHandler => "SqsQueue on moto",
            End::WalHandler => "MemoryQueue, from the WAL",
        }
    }

    fn section(self) -> &'static str {
        match self {
            End::Handler => "end to end",
            End::PgHandler => "PgQueue end to end",
            End::Receive => "watcher alone",
            End::SqsHandler => "SQS (moto)",
            End::WalHandler => "from the WAL, end to end",
        }
    }
}

/// A watcher and whatever takes the events off the queue.
enum Running {
    Runtime(RuntimeHandle, Arc<QueueCalls>),
    Watcher(WatcherHandle, Consumer),
}

impl Running {
    async fn start(db: &TestDb, end: End, sink: Sink) -> Result<Running> {
        let queue = MemoryQueue::new();
        let running = match end {
            End::Handler | End::PgHandler | End::SqsHandler | End::WalHandler => {
                handler::install(Some(sink));
                let builder = Runtime::builder().database(db.config().clone());
                let (builder, calls) = if end == End::SqsHandler {
                    let server = SqsServer::get().await?;
                    let url = server.create_queue("dawdle-bench", false, None).await?;
                    let queue = CountingQueue::new(SqsQueue::new(server.client().await, url));
                    let calls = queue.calls();
                    // Short long-polls, so that shutdown does not wait 20 s.
                    (
                        builder.queue(queue).receive_wait(Duration::from_secs(1)),
                        calls,
                    )
                } else if end == End::PgHandler {
                    let queue = CountingQueue::new(PgQueue::builder(db.database().clone()).build());
                    let calls = queue.calls();
                    (
                        builder.queue(queue).receive_wait(Duration::from_secs(1)),
                        calls,
                    )
                } else {
                    let queue = CountingQueue::new(queue);
                    let calls = queue.calls();
                    (builder.queue(queue), calls)
                };
                let builder = if end == End::WalHandler {
                    builder.watcher(|w| w.capture(Capture::Wal))
                } else {
                    builder
                };
                let runtime = builder.watch().listen().build()?;
                Running::Runtime(runtime.start(), calls)
            }
            End::Receive => {
                let consumer = consumer::spawn(
                    Arc::new(queue.clone()),
                    1,
                    Arc::new(move |events, at| {
                        for event in events {
                            sink(event.id, key_id(event), at);
                        }
                    }),
                );
                let watcher = Watcher::builder(db.config().clone(), queue).build().start();
                Running::Watcher(watcher, consumer)
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !running.stats().is_leading() {
            if Instant::now() > deadline {
                return Err("the watcher did not start leading within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(running)
    }

    fn stats(&self) -> &Stats {
        match self {
            Running::Runtime(handle, _) => {
                handle.watcher_stats().expect("the runtime runs a watcher")
            }
            Running::Watcher(watcher, _) => watcher.stats(),
        }
    }

    /// (send, receive, delete) calls, when counted.
    fn calls(&self) -> Option<(u64, u64, u64)> {
        match self {
            Running::Runtime(_, calls) => Some((calls.sends(), calls.receives(), calls.deletes())),
            Running::Watcher(..) => None,
        }
    }

    async fn stop(self) -> Result<()> {
        match self {
            Running::Runtime(handle, _) => {
                handle.shutdown().await?;
                handler::install(None);
            }
            Running::Watcher(watcher, consumer) => {
                watcher.shutdown().await?;
                consumer.stop().await;
            }
        }
        Ok(())
    }
}

async fn prepared_db(end: End) -> Result<TestDb> {
    let db = TestDb::new().await?;
    let mut client = db.connect().await?;
    quiet(&client).await;
    client.batch_execute(model::CREATE_TABLE).await?;
    let up = match end {
        End::WalHandler => model::dawdle_up_wal(),
        _ => model::dawdle_up(),
    };
    dawdle::sql::apply(&mut client, &up).await?;
    Ok(db)
}

/// A writer's connection. From the WAL, its commits flush the WAL at once
/// (`synchronous_commit = on`, as in production): the WAL sender sends
/// only flushed WAL, and the tests' cluster has it off, which would leave
/// each commit waiting for the WAL writer (`wal_writer_delay`, 200 ms).
async fn writer(db: &TestDb, end: End) -> Result<tokio_postgres::Client> {
    let client = db.connect().await?;
    if end == End::WalHandler {
        client.batch_execute("SET synchronous_commit = on").await?;
    }
    Ok(client)
}

/// A quiet server before a run: no autovacuum worker running (after the
/// last run's inserts; up to 30 s), and a checkpoint, so that a run does
/// not pay for the last one's WAL. Best effort: a role that may not
/// checkpoint skips it.
async fn quiet(client: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let busy = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
                &[],
            )
            .await
            .map_or(0, |row| row.get::<_, i64>(0));
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = client.batch_execute("CHECKPOINT").await;
}

/// Whether the tests' server can capture from the WAL.
pub async fn logical() -> Result<bool> {
    let db = TestDb::new().await?;
    let level: String = db
        .connect()
        .await?
        .query_one("SHOW wal_level", &[])
        .await?
        .get(0);
    Ok(level == "logical")
}

/// Seconds of CPU (user + system) processes (`pid`, or several joined by
/// commas) have used.
fn cpu_seconds(pid: &str) -> Option<f64> {
    pid.split(',')
        .map(|pid| crate::cluster::process_cpu(pid).map(|(own, _)| own))
        .sum()
}

/// The watcher's backend process, when the server runs on this machine;
/// with capture from the WAL, also the WAL sender that decodes for it
/// (waited for, up to 5 s).
async fn watcher_backend(db: &TestDb, end: End) -> Result<Option<String>> {
    let client = db.connect().await?;
    // The WAL sender connects a moment after the watcher leads.
    let wanted = if end == End::WalHandler { 2 } else { 1 };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let connected: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name IN ('dawdle-watcher', 'dawdle-watcher-wal')
                   AND datname = current_database()",
                &[],
            )
            .await?
            .get(0);
        if connected >= wanted || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = client
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE application_name IN ('dawdle-watcher', 'dawdle-watcher-wal')
               AND datname = current_database()",
            &[],
        )
        .await?;
    let pids: Vec<String> = rows
        .iter()
        .map(|row| row.get::<_, i32>(0).to_string())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("postgres"))
        })
        .collect();
    Ok((!pids.is_empty()).then(|| pids.join(",")))
}

/// The events delivered in the throughput run, and when each first was.
#[derive(Debug)]
struct Seen {
    ids: HashSet<i64>,
    /// For the plot; preallocated, so a delivery costs a push under the
    /// lock the sink already holds.
    at: Vec<Instant>,
}

pub async fn throughput(
    options: &Options,
    report: &mut Report,
    traces: &mut Traces,
    end: End,
) -> Result<()> {
    const WRITERS: usize = 4;
    const ROWS_PER_STATEMENT: i64 = 1000;
    let changes = options.throughput_changes;
    let db = prepared_db(end).await?;
    let seen = Arc::new(Mutex::new(Seen {
        ids: HashSet::with_capacity(changes),
        at: Vec::with_capacity(changes),
    }));
    let delivered = Arc::new(AtomicU64::new(0));
    let sink: Sink = {
        let (seen, delivered) = (seen.clone(), delivered.clone());
        Arc::new(move |event_id, _, at| {
            let mut seen = seen.lock().unwrap();
            if seen.ids.insert(event_id) {
                seen.at.push(at);
            }
            delivered.store(seen.ids.len() as u64, Ordering::Relaxed);
        })
    };
    let running = Running::start(&db, end, sink).await?;
    let backend = watcher_backend(&db, end).await?;
    let backend_cpu = backend.as_deref().and_then(cpu_seconds);
    let own_cpu = cpu_seconds("self");

    let committed = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (committed, delivered, peak) = (committed.clone(), delivered.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                let backlog = committed
                    .load(Ordering::Relaxed)
                    .saturating_sub(delivered.load(Ordering::Relaxed));
                peak.fetch_max(backlog, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        clients.push(writer(&db, end).await?);
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
    while delivered.load(Ordering::Relaxed) < changes as u64 {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {changes} events arrived at the {} within 300 s of the last write",
                delivered.load(Ordering::Relaxed),
                end.to()
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
    let (events_sent, send_calls) = (running.stats().events_sent(), running.stats().send_calls());
    let calls = running.calls();
    running.stop().await?;
    let handled = std::mem::take(&mut seen.lock().unwrap().at);
    let load = format!(
        "{} inserts in {}-row statements by {WRITERS} writers",
        trim(changes as f64),
        trim(ROWS_PER_STATEMENT as f64)
    );
    traces.handled(end, load, written.as_secs_f64(), started, &handled);

    let p = end.prefix();
    let section = end.section();
    let bar = |bar| end.has_bars().then_some(bar);
    report.figure(
        section,
        &format!("{p}throughput_events_per_s"),
        format!(
            "throughput: {changes} inserts ({ROWS_PER_STATEMENT}-row statements, {WRITERS} writers), first write → every {}",
            end.to()
        ),
        changes as f64 / total,
        "events/s",
        // MemoryQueue's bar is 100,000 events/s; PgQueue's 20,000.
        bar(Bar::AtLeast(if matches!(end, End::PgHandler) {
            20_000.0
        } else {
            100_000.0
        })),
    );
    report.figure(
        section,
        &format!("{p}throughput_total_s"),
        "throughput: first write → last delivery",
        total,
        "s",
        None,
    );
    report.figure(
        section,
        &format!("{p}throughput_write_s"),
        "throughput: time the writers took (capture triggers included)",
        written.as_secs_f64(),
        "s",
        None,
    );
    report.figure(
        section,
        &format!("{p}throughput_peak_backlog"),
        "throughput: peak backlog (committed, not yet delivered)",
        peak.load(Ordering::Relaxed) as f64,
        "events",
        None,
    );
    report.figure(
        section,
        &format!("{p}events_per_send_batch"),
        "events per send call at saturation (≤ 10 messages of ≤ 100 events, as SendMessageBatch)",
        events_sent as f64 / send_calls.max(1) as f64,
        "events",
        // The bar is for SQS; MemoryQueue and PgQueue pack the same way.
        (end != End::Receive).then_some(Bar::AtLeast(50.0)),
    );
    if let (End::SqsHandler, Some((send, receive, delete))) = (end, calls) {
        let per_1000 = |calls: u64| calls as f64 * 1000.0 / changes as f64;
        for (name, calls) in [
            ("SendMessageBatch", send),
            ("ReceiveMessage", receive),
            ("DeleteMessageBatch", delete),
        ] {
            report.figure(
                section,
                &format!("sqs_{}_per_1000_events", name.to_lowercase()),
                format!("throughput: {name} requests per 1,000 events"),
                per_1000(calls),
                "",
                None,
            );
        }
    }
    if let Some(cpu) = backend_cpu {
        report.figure(
            section,
            &format!("{p}throughput_watcher_backend_cpu_s"),
            "throughput: CPU of the watcher's PostgreSQL backend (fetch + delete)",
            cpu,
            "s",
            None,
        );
    }
    if let Some(cpu) = own_cpu {
        report.figure(
            section,
            &format!("{p}throughput_bench_process_cpu_s"),
            "throughput: CPU of this process (watcher, listener or consumer, writers' clients)",
            cpu,
            "s",
            None,
        );
    }
    Ok(())
}

/// The nearest-rank `q` quantile of sorted values (NaN for none).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub async fn latency(
    options: &Options,
    report: &mut Report,
    traces: &mut Traces,
    end: End,
) -> Result<()> {
    const WRITERS: usize = 4;
    const RATE: f64 = 1000.0;
    let db = prepared_db(end).await?;
    let commits: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let deliveries: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let sink: Sink = {
        let deliveries = deliveries.clone();
        Arc::new(move |_, row, at| {
            if let Some(row) = row {
                deliveries.lock().unwrap().entry(row).or_insert(at);
            }
        })
    };
    let running = Running::start(&db, end, sink).await?;
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        clients.push(writer(&db, end).await?);
    }
    let period = Duration::from_secs_f64(WRITERS as f64 / RATE);
    let stop = Instant::now() + options.latency_window;
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
                    if Instant::now() >= stop {
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
    while deliveries.lock().unwrap().len() < expected {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {expected} events arrived at the {} within 60 s",
                deliveries.lock().unwrap().len(),
                end.to()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.stop().await?;

    let commits = commits.lock().unwrap();
    let deliveries = deliveries.lock().unwrap();
    let mut latencies: Vec<f64> = commits
        .iter()
        .filter_map(|(id, committed)| {
            let delivered = deliveries.get(id)?;
            // A poll can read the event before the writer's COMMIT returns: 0.
            Some(
                delivered
                    .saturating_duration_since(*committed)
                    .as_secs_f64()
                    * 1e3,
            )
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let p = match end {
        End::Handler => "",
        End::PgHandler => "pg_",
        End::Receive => "receive_",
        End::SqsHandler => "sqs_",
        End::WalHandler => "wal_",
    };
    let section = end.section();
    report.figure(
        section,
        &format!("{p}latency_rate_per_s"),
        format!("latency: steady insert rate ({WRITERS} writers, 1 row/tx)"),
        latencies.len() as f64 / options.latency_window.as_secs_f64(),
        "events/s",
        None,
    );
    // PgQueue's bar is on p99 only.
    let (p50_bar, p99_bar) = match end {
        End::Handler => (Some(Bar::AtMost(5.0)), Some(Bar::AtMost(10.0))),
        End::PgHandler => (None, Some(Bar::AtMost(25.0))),
        End::WalHandler => (None, Some(Bar::AtMost(10.0))),
        _ => (None, None),
    };
    for (key, name, q, bar) in [
        ("latency_p50_ms", "p50", 0.50, p50_bar),
        ("latency_p90_ms", "p90", 0.90, None),
        ("latency_p99_ms", "p99", 0.99, p99_bar),
        ("latency_max_ms", "max", 1.0, None),
    ] {
        report.figure(
            section,
            &format!("{p}{key}"),
            format!("latency: COMMIT returned → {}, {name}", end.to()),
            percentile(&latencies, q),
            "ms",
            bar,
        );
    }
    let load = format!(
        "{} single-row inserts/s by {WRITERS} writers for {} s",
        trim(RATE),
        trim(options.latency_window.as_secs_f64())
    );
    traces.latencies(end, load, latencies);
    Ok(())
}
