//! `dawdle status`: the backlog, the leader, the payloads, the delayed
//! signals and the queues.

use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use clap::Args;
use dawdle::sql::{DELAYED_TABLE, EVENTS_TABLE, PAYLOADS_TABLE, SCHEMA};
use serde::Serialize;

use crate::opts::{self, Database, PgQueueName, Queues};
use crate::Failure;

/// The watcher's leader lock, `dawdle` in ASCII, as the watcher takes it
/// (`pg_try_advisory_lock(bigint)`): `pg_locks` shows the high 32 bits as
/// `classid`, the low ones as `objid`, and `objsubid` 1 for a bigint key.
const LEADER_LOCK: i64 = 0x6461_7764_6c65;

const AFTER_HELP: &str = concat!(
    r#"With --json, one object:
  {
    "backlog": { "events": 120, "oldest_event_age_seconds": 3.2 },
    "capture": { "uncaptured": [], "event_trigger": true },
    "leader": { "pid": 4242, "application_name": "dawdle-watcher",
                "client_addr": "10.0.0.7", "backend_start": "2026-01-02 03:04:05.6+00",
                "connected_seconds": 3600.0 },
    "payloads": { "pending": 2, "expired": 0 },
    "signals": { "delayed": 3, "next_due_in_seconds": 42.5 },
    "queue": { "url": "...", "visible": 5, "in_flight": 1, "delayed": 0 },
    "dead_letter_queue": { "url": "...", "visible": 0, "in_flight": 0, "delayed": 0 }
  }
"capture.uncaptured" lists partitions and inheritance children of watched tables
that lack dawdle's triggers (writes to them are not captured; run the up
migration again); "capture.event_trigger" says whether dawdle_ddl is installed.
"backlog.events" counts the id range of the waiting events, as the watcher does
(rolled-back ids included); "oldest_event_age_seconds", "leader", "client_addr"
(a Unix socket), "next_due_in_seconds" (of the earliest delayed signal), "queue"
and "dead_letter_queue" are null when there is none or none was given. Queue counts are SQS's approximate ones.
Without --queue-url they are the PgQueue's (--queue, "default"): "name" in place of "url", and
"dead_letter_queue.visible" counts its dead letters.

"#,
    exit_codes!()
);

/// Shows what waits in the database, which watcher leads, and the queues.
///
/// The backlog (events waiting in `dawdle.events` and the oldest one's
/// age), the session holding the watcher's leader lock, the by-reference
/// payloads waiting in `dawdle.payloads`, and, with `--queue-url`, the
/// approximate message counts of the queue and of its dead-letter queue.
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
    leader: Option<Leader>,
    payloads: Payloads,
    signals: Signals,
    queue: Option<QueueCounts>,
    dead_letter_queue: Option<QueueCounts>,
}

#[derive(Debug, Serialize)]
struct Backlog {
    events: i64,
    oldest_event_age_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Capture {
    uncaptured: Vec<String>,
    event_trigger: bool,
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
    pending: i64,
    expired: i64,
}

/// Signals waiting in `dawdle.delayed` for their time.
#[derive(Debug, Serialize)]
struct Signals {
    delayed: i64,
    next_due_in_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
struct QueueCounts {
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

impl Status {
    pub async fn run(self) -> Result<(), Failure> {
        let db = self.database.connect().await?;
        let backlog = backlog(&db).await?;
        let health = dawdle::sql::capture_health(&db)
            .await
            .map_err(Failure::runtime("cannot read the capture's health"))?;
        let capture = Capture {
            uncaptured: health.uncaptured,
            event_trigger: health.event_trigger,
        };
        let leader = leader(&db).await?;
        let payloads = payloads(&db).await?;
        let signals = signals(&db).await?;
        let (queue, dead_letter_queue) = match &self.queues.queue_url {
            Some(url) => {
                let client = self.queues.sqs.client().await;
                let queue = counts(&client, url).await?;
                let dlq = match self.queues.dead_letter_queue(&client).await? {
                    Some(dlq) => Some(counts(&client, &dlq).await?),
                    None => None,
                };
                (Some(queue), dlq)
            }
            None => pg_counts(&self.database, &self.queue.name).await?,
        };
        let report = Report {
            backlog,
            capture,
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
            Some(q) => describe(q),
            None => "not available (no --queue-url given, and no PgQueue tables)".to_owned(),
        };
        let dlq = match (&report.dead_letter_queue, &self.queues.queue_url) {
            (Some(q), _) => describe(q),
            (None, Some(_)) => {
                "none (the queue has no redrive policy; or give --dead-letter-queue)".to_owned()
            }
            (None, None) => {
                "not available (no --queue-url given, and no PgQueue tables)".to_owned()
            }
        };
        let capture = match (&report.capture.uncaptured[..], report.capture.event_trigger) {
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
        let rows = [
            ("backlog", backlog),
            ("capture", capture),
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

fn describe(q: &QueueCounts) -> String {
    let which = match (&q.url, &q.name) {
        (Some(url), _) => url.clone(),
        (None, Some(name)) => format!("PgQueue {name:?}"),
        (None, None) => String::new(),
    };
    format!(
        "{which}: {} visible, {} in flight, {} delayed",
        q.visible, q.in_flight, q.delayed
    )
}

/// The counts of the PgQueue `name` in the database, and of its dead
/// letters; none where the database has no PgQueue tables.
async fn pg_counts(
    database: &Database,
    name: &str,
) -> Result<(Option<QueueCounts>, Option<QueueCounts>), Failure> {
    let queue = dawdle::queue::PgQueue::builder(database.config()?)
        .name(name)
        .max_connections(1)
        .build();
    match queue.depth().await {
        Ok(depth) => Ok((
            Some(QueueCounts {
                url: None,
                name: Some(name.to_owned()),
                visible: depth.waiting,
                in_flight: depth.in_flight,
                delayed: 0,
            }),
            Some(QueueCounts {
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

/// `age` seconds, as humantime prints them, to the millisecond.
fn seconds(age: f64) -> String {
    let millis = (age.max(0.0) * 1000.0).round() as u64;
    humantime::format_duration(std::time::Duration::from_millis(millis)).to_string()
}

fn query_failed(what: &str) -> impl FnOnce(tokio_postgres::Error) -> Failure + '_ {
    move |e| {
        match e.as_db_error().map(|db| db.code().clone()) {
        Some(
            tokio_postgres::error::SqlState::UNDEFINED_TABLE
            | tokio_postgres::error::SqlState::UNDEFINED_FUNCTION,
        ) => Failure::Message(format!(
            "{what}: the database has no {SCHEMA}.{EVENTS_TABLE}; apply dawdle's SQL (of this version) first"
        )),
        _ => Failure::runtime(what)(e),
    }
    }
}

/// The waiting events, as the watcher measures them: `dawdle.backlog()`
/// counts what its cursor has not passed, without building their JSON.
async fn backlog(db: &tokio_postgres::Client) -> Result<Backlog, Failure> {
    let sql = format!(r#"SELECT "events", "oldest_age" FROM "{SCHEMA}"."backlog"()"#);
    let row = db
        .query_one(&sql, &[])
        .await
        .map_err(query_failed("reading the backlog"))?;
    Ok(Backlog {
        events: row.get(0),
        oldest_event_age_seconds: row.get(1),
    })
}

/// The session holding the leader lock in this database.
async fn leader(db: &tokio_postgres::Client) -> Result<Option<Leader>, Failure> {
    let row = db
        .query_opt(
            "SELECT a.pid, coalesce(a.application_name, ''), host(a.client_addr),
                    a.backend_start::text,
                    extract(epoch FROM now() - a.backend_start)::float8
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid::text::int8 = $1 AND l.objid::text::int8 = $2 AND l.objsubid = 1
             LIMIT 1",
            &[&(LEADER_LOCK >> 32), &(LEADER_LOCK & 0xffff_ffff)],
        )
        .await
        .map_err(query_failed("reading the leader"))?;
    Ok(row.map(|row| Leader {
        pid: row.get(0),
        application_name: row.get(1),
        client_addr: row.get(2),
        backend_start: row.get(3),
        connected_seconds: row.get(4),
    }))
}

async fn payloads(db: &tokio_postgres::Client) -> Result<Payloads, Failure> {
    let sql = format!(
        r#"SELECT count(*), count(*) FILTER (WHERE "expires_at" < now())
           FROM "{SCHEMA}"."{PAYLOADS_TABLE}""#
    );
    let row = db
        .query_one(&sql, &[])
        .await
        .map_err(query_failed("reading the payloads"))?;
    Ok(Payloads {
        pending: row.get(0),
        expired: row.get(1),
    })
}

async fn signals(db: &tokio_postgres::Client) -> Result<Signals, Failure> {
    let sql = format!(
        r#"SELECT count(*), extract(epoch FROM min("deliver_at") - now())::float8
           FROM "{SCHEMA}"."{DELAYED_TABLE}""#
    );
    let row = db
        .query_one(&sql, &[])
        .await
        .map_err(query_failed("reading the delayed signals"))?;
    Ok(Signals {
        delayed: row.get(0),
        next_due_in_seconds: row.get(1),
    })
}

async fn counts(client: &Client, url: &str) -> Result<QueueCounts, Failure> {
    let attributes = opts::attributes(
        client,
        url,
        &[
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ],
    )
    .await?;
    let count = |name| {
        attributes
            .get(&name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(QueueCounts {
        url: Some(url.to_owned()),
        name: None,
        visible: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}
