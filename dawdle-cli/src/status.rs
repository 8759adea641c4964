//! `dawdle status`: the backlog, the leader, the payloads, the delayed
//! signals and the queue's depth, each read by the library (`dawdle::status`,
//! `dawdle::sql::capture_health`, the queue's `QueueAdmin`).

use clap::Args;
use dawdle::queue::{PgQueue, Queue, QueueDepth, SqsQueue};
use dawdle::status::StatusError;
use serde::Serialize;

use crate::opts::{Database, PgQueueName, Queues};
use crate::Failure;

const AFTER_HELP: &str = concat!(
    r#"With --json, one object:
  {
    "backlog": { "events": 120, "oldest_event_age_seconds": 3.2 },
    "capture": { "uncaptured": [], "event_trigger": true, "unpublished": [], "wal_tables": 0 },
    "wal_slot": null,
    "leader": { "pid": 4242, "application_name": "dawdle-watcher",
                "client_addr": "10.0.0.7", "backend_start": "2026-01-02T03:04:05.600+00:00",
                "connected_seconds": 3600.0 },
    "payloads": { "pending": 2, "expired": 0 },
    "signals": { "delayed": 3, "next_due_in_seconds": 42.5 },
    "queue": { "url": "...", "visible": 5, "in_flight": 1, "delayed": 0,
               "oldest_age_seconds": null, "dead_letters": 2 },
    "dead_letter_queue": { "url": "...", "visible": 2, "in_flight": 0, "delayed": 0 }
  }
"capture.uncaptured" lists partitions and inheritance children of watched tables
that lack dawdle's triggers (writes to them are not captured; run the up
migration again); "capture.event_trigger" says whether dawdle_ddl is installed;
"capture.unpublished" lists tables captured from the WAL that are not ready
(replica identity, publication), "capture.wal_tables" counts those captured
from the WAL. "wal_slot" (null with triggers): { "name", "active",
"wal_status" ("lost": invalidated), "retained_bytes", "lag_bytes" }.
"backlog.events" counts the id range of the waiting events, as the watcher does
(rolled-back ids included); "oldest_event_age_seconds", "leader", "client_addr"
(a Unix socket), "next_due_in_seconds" (of the earliest delayed signal; negative
when overdue), "queue" and "dead_letter_queue" are null when there is none or
none was given. "queue" is the queue's depth: messages visible (waiting),
in flight (received, not yet deleted), delayed; "oldest_age_seconds", the age of
its oldest message (0 when it holds none; null on SQS, which cannot tell); and
its "dead_letters". Queue counts are SQS's approximate ones.
Without --queue-url they are the PgQueue's (--queue, "default"): "name" in place of "url", and
"dead_letter_queue.visible" counts its dead letters.

"#,
    exit_codes!()
);

/// Shows what waits in the database, which watcher leads, and the queues.
///
/// The backlog (events waiting in `dawdle.events` and the oldest one's
/// age), the session holding the watcher's leader lock, the by-reference
/// payloads waiting in `dawdle.payloads`, and the depth of the queue
/// (waiting, in flight, delayed, the oldest message's age, dead letters):
/// the database's PgQueue, or with `--queue-url` the SQS queue (SQS's
/// approximate counts), and of its dead-letter queue.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Status {
    #[command(flatten)]
    database: Database,

    #[command(flatten)]
    queues: Queues,

    #[command(flatten)]
    queue: PgQueueName,

    /// Prints one JSON object (its shape is in `--help`) instead of a table.
    #[arg(long, env = "DAWDLE_JSON")]
    json: bool,
}

/// What `--json` prints; documented in `AFTER_HELP`, which must follow it.
#[derive(Debug, Serialize)]
struct Report {
    backlog: Backlog,
    capture: Capture,
    wal_slot: Option<WalSlot>,
    leader: Option<Leader>,
    payloads: Payloads,
    signals: Signals,
    queue: Option<QueueReport>,
    dead_letter_queue: Option<DeadLetterQueueReport>,
}

#[derive(Debug, Serialize)]
struct Backlog {
    events: u64,
    oldest_event_age_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Capture {
    uncaptured: Vec<String>,
    event_trigger: bool,
    unpublished: Vec<String>,
    wal_tables: u64,
}

#[derive(Debug, Serialize)]
struct WalSlot {
    name: String,
    active: bool,
    wal_status: Option<String>,
    retained_bytes: u64,
    lag_bytes: u64,
}

#[derive(Debug, Serialize)]
struct Leader {
    pid: i32,
    application_name: String,
    client_addr: Option<String>,
    backend_start: String,
    connected_seconds: f64,
}

#[derive(Debug, Serialize)]
struct Payloads {
    pending: u64,
    expired: u64,
}

/// Signals waiting in `dawdle.delayed` for their time.
#[derive(Debug, Serialize)]
struct Signals {
    delayed: u64,
    next_due_in_seconds: Option<f64>,
}

/// The depth of the queue the watchers send to.
#[derive(Debug, Serialize)]
struct QueueReport {
    /// An SQS queue's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// A PgQueue's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    visible: u64,
    in_flight: u64,
    delayed: u64,
    oldest_age_seconds: Option<f64>,
    dead_letters: u64,
}

/// The counts of its dead-letter queue.
#[derive(Debug, Serialize)]
struct DeadLetterQueueReport {
    /// An SQS queue's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// A PgQueue's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    visible: u64,
    in_flight: u64,
    delayed: u64,
}

impl QueueReport {
    fn new(url: Option<String>, name: Option<String>, depth: &QueueDepth) -> QueueReport {
        QueueReport {
            url,
            name,
            visible: depth.waiting,
            in_flight: depth.in_flight,
            delayed: depth.delayed,
            oldest_age_seconds: depth.oldest_age.map(|age| age.as_secs_f64()),
            dead_letters: depth.dead_letters,
        }
    }
}

impl Status {
    pub async fn run(self) -> Result<(), Failure> {
        let db = self.database.connect().await?;
        let backlog = dawdle::status::backlog(&db).await.map_err(status_failed)?;
        let backlog = Backlog {
            events: backlog.events,
            oldest_event_age_seconds: backlog.oldest_age.map(|age| age.as_secs_f64()),
        };
        let health = dawdle::sql::capture_health(&db)
            .await
            .map_err(Failure::runtime("cannot read the capture's health"))?;
        let capture = Capture {
            uncaptured: health.uncaptured,
            event_trigger: health.event_trigger,
            unpublished: health.unpublished,
            wal_tables: health.wal_tables,
        };
        let wal_slot = dawdle::status::wal_slot(&db)
            .await
            .map_err(status_failed)?
            .map(|s| WalSlot {
                name: s.name,
                active: s.active,
                wal_status: s.wal_status,
                retained_bytes: s.retained_bytes,
                lag_bytes: s.lag_bytes,
            });
        let leader = dawdle::status::leader(&db)
            .await
            .map_err(status_failed)?
            .map(|l| Leader {
                pid: l.pid,
                application_name: l.application_name,
                client_addr: l.client_addr,
                backend_start: l.backend_start.to_rfc3339(),
                connected_seconds: l.connected_for.as_secs_f64(),
            });
        let payloads = dawdle::status::payloads(&db).await.map_err(status_failed)?;
        let payloads = Payloads {
            pending: payloads.pending,
            expired: payloads.expired,
        };
        let signals = dawdle::status::delayed_signals(&db)
            .await
            .map_err(status_failed)?;
        let signals = Signals {
            delayed: signals.delayed,
            next_due_in_seconds: signals
                .next_due_in
                .map(|due| due.num_milliseconds() as f64 / 1000.0),
        };
        let (queue, dead_letter_queue) = match &self.queues.queue_url {
            Some(url) => self.sqs_depth(url).await?,
            None => pg_depth(&self.database, &self.queue.name).await?,
        };
        let report = Report {
            backlog,
            capture,
            wal_slot,
            leader,
            payloads,
            signals,
            queue,
            dead_letter_queue,
        };
        if self.json {
            let json = serde_json::to_string_pretty(&report)
                .map_err(Failure::runtime("cannot write JSON"))?;
            outln!("{json}")?;
        } else {
            out!("{}", self.table(&report))?;
        }
        Ok(())
    }

    /// The depth of the SQS queue `url`, and the counts of its dead-letter
    /// queue (`--dead-letter-queue`, else its redrive policy's), if any.
    async fn sqs_depth(
        &self,
        url: &str,
    ) -> Result<(Option<QueueReport>, Option<DeadLetterQueueReport>), Failure> {
        let client = self.queues.sqs.client().await;
        let dlq = self.queues.dead_letter_queue(&client).await?;
        let mut queue = SqsQueue::builder(client.clone(), url);
        if let Some(dlq) = &dlq {
            queue = queue.dead_letter_queue(dlq);
        }
        let depth = depth_of(&queue.build(), url).await?;
        let queue = QueueReport::new(Some(url.to_owned()), None, &depth);
        let dlq = match dlq {
            Some(dlq) => {
                let depth = depth_of(&SqsQueue::new(client, &dlq), &dlq).await?;
                Some(DeadLetterQueueReport {
                    url: Some(dlq),
                    name: None,
                    visible: depth.waiting,
                    in_flight: depth.in_flight,
                    delayed: depth.delayed,
                })
            }
            None => None,
        };
        Ok((Some(queue), dlq))
    }

    fn table(&self, report: &Report) -> String {
        let backlog = match report.backlog.oldest_event_age_seconds {
            Some(age) => format!(
                "{} events, the oldest captured {} ago",
                report.backlog.events,
                seconds(age)
            ),
            None => "none".to_owned(),
        };
        let leader = match &report.leader {
            Some(l) => format!(
                "pid {} ({}) from {}, connected {} ago (since {})",
                l.pid,
                if l.application_name.is_empty() {
                    "no application name"
                } else {
                    &l.application_name
                },
                l.client_addr.as_deref().unwrap_or("a Unix socket"),
                seconds(l.connected_seconds),
                l.backend_start
            ),
            None => "none: no watcher holds the leader lock".to_owned(),
        };
        let payloads = format!(
            "{} by-reference payloads, {} expired",
            report.payloads.pending, report.payloads.expired
        );
        let signals = match report.signals.next_due_in_seconds {
            Some(due) => format!(
                "{} delayed, the next due in {}",
                report.signals.delayed,
                seconds(due)
            ),
            None => "none delayed".to_owned(),
        };
        let queue = match &report.queue {
            Some(q) => describe_queue(q),
            None => "not available (no --queue-url given, and no PgQueue tables)".to_owned(),
        };
        let dlq = match (&report.dead_letter_queue, &self.queues.queue_url) {
            (Some(q), _) => describe_dead_letter_queue(q),
            (None, Some(_)) => {
                "none (the queue has no redrive policy; or give --dead-letter-queue)".to_owned()
            }
            (None, None) => {
                "not available (no --queue-url given, and no PgQueue tables)".to_owned()
            }
        };
        let capture = match (&report.capture.uncaptured[..], report.capture.event_trigger) {
            _ if !report.capture.unpublished.is_empty() => format!(
                "NOT WHOLE: {} not ready for capture from the WAL: run the up migration again",
                report.capture.unpublished.join(", ")
            ),
            ([], _) if report.capture.wal_tables > 0 => format!(
                "whole; {} table(s) from the WAL (new partitions come through their table)",
                report.capture.wal_tables
            ),
            ([], true) => "whole; new partitions and children get the triggers".to_owned(),
            ([], false) => "whole; no event trigger: a partition made later refuses writes, \
                            a child is not captured, until up runs again"
                .to_owned(),
            (tables, _) => format!(
                "NOT WHOLE: {} lack dawdle's triggers, their writes are not captured: \
                 run the up migration again",
                tables.join(", ")
            ),
        };
        let slot = match &report.wal_slot {
            Some(s) if s.wal_status.as_deref() == Some("lost") => format!(
                "{} LOST: PostgreSQL removed WAL it still needed; changes not sent are gone \
                 (see README, \"Choosing a capture mode\": drop the slot, restart, backfill)",
                s.name
            ),
            Some(s) => format!(
                "{} ({}, {}): retains {} of WAL, {} not yet confirmed",
                s.name,
                if s.active {
                    "read by a watcher"
                } else {
                    "NOT READ"
                },
                s.wal_status.as_deref().unwrap_or("unknown"),
                bytes(s.retained_bytes),
                bytes(s.lag_bytes)
            ),
            None => "none (capture by triggers)".to_owned(),
        };
        let rows = [
            ("backlog", backlog),
            ("capture", capture),
            ("wal slot", slot),
            ("leader", leader),
            ("payloads", payloads),
            ("signals", signals),
            ("queue", queue),
            ("dead-letter queue", dlq),
        ];
        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(name, value)| format!("{name:width$}  {value}\n"))
            .collect()
    }
}

/// A size in bytes, as kB, MB or GB past 1,000.
fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.1} GB", n as f64 / 1e9),
    }
}

/// The depth of `queue`, named `name` in messages.
async fn depth_of(queue: &dyn Queue, name: &str) -> Result<QueueDepth, Failure> {
    let admin = queue
        .admin()
        .ok_or_else(|| Failure::Message(format!("{name} cannot tell its depth")))?;
    admin
        .depth()
        .await
        .map_err(Failure::runtime(format!("cannot read the depth of {name}")))
}

/// The depth of the PgQueue `name` in the database, and its dead letters
/// as its dead-letter queue; none where the database has no PgQueue tables.
async fn pg_depth(
    database: &Database,
    name: &str,
) -> Result<(Option<QueueReport>, Option<DeadLetterQueueReport>), Failure> {
    let queue = PgQueue::builder(database.config()?)
        .name(name)
        .max_connections(1)
        .build();
    match depth_of(&queue, name).await {
        Ok(depth) => Ok((
            Some(QueueReport::new(None, Some(name.to_owned()), &depth)),
            Some(DeadLetterQueueReport {
                url: None,
                name: Some(name.to_owned()),
                visible: depth.dead_letters,
                in_flight: 0,
                delayed: 0,
            }),
        )),
        Err(error) => {
            tracing::debug!(%error, "no PgQueue to count");
            Ok((None, None))
        }
    }
}

/// The queue's line: where, its counts, the age of its oldest message
/// (when it holds any and can tell), its dead letters.
fn describe_queue(q: &QueueReport) -> String {
    let which = place(q.url.as_deref(), q.name.as_deref());
    let age = match q.oldest_age_seconds {
        Some(age) if q.visible + q.in_flight + q.delayed > 0 => {
            format!(", the oldest sent {} ago", seconds(age))
        }
        _ => String::new(),
    };
    format!(
        "{which}: {} visible, {} in flight, {} delayed{age}, {} dead letters",
        q.visible, q.in_flight, q.delayed, q.dead_letters
    )
}

fn describe_dead_letter_queue(q: &DeadLetterQueueReport) -> String {
    format!(
        "{}: {} visible, {} in flight, {} delayed",
        place(q.url.as_deref(), q.name.as_deref()),
        q.visible,
        q.in_flight,
        q.delayed
    )
}

/// An SQS queue's URL, or `PgQueue "name"`.
fn place(url: Option<&str>, name: Option<&str>) -> String {
    match (url, name) {
        (Some(url), _) => url.to_owned(),
        (None, Some(name)) => format!("PgQueue {name:?}"),
        (None, None) => String::new(),
    }
}

/// A failed read of `dawdle::status`: missing objects are told plainly.
fn status_failed(error: StatusError) -> Failure {
    match error {
        error @ StatusError::NotInstalled { .. } => Failure::Message(error.to_string()),
        error => Failure::runtime("cannot read the status")(error),
    }
}

/// `age` seconds, as humantime prints them, to the millisecond.
fn seconds(age: f64) -> String {
    let millis = (age.max(0.0) * 1000.0).round() as u64;
    humantime::format_duration(std::time::Duration::from_millis(millis)).to_string()
}
