//! The leader's reader of the write-ahead log ([`Capture::Wal`]): streams
//! the changes of the publication `dawdle` from the database's logical
//! replication slot (`pgoutput`, through the streaming replication
//! protocol, so one decoding context serves the whole session), builds
//! each change's event in Rust, sends it to every route that takes it,
//! and only then confirms the position to the slot.
//!
//! # Never losing an event
//!
//! The slot keeps every change after its confirmed position. The reader
//! confirms the end of a transaction only once every route's queue
//! accepted all of its events and those of the transactions before it; a
//! crash or a lost leadership before that makes the next leader read them
//! again (at least once: a repeated event has the same id).
//!
//! # Event ids
//!
//! An event's id is `2^62 + lsn + n`: the WAL position of its change, and
//! `n` for the changes that share one record (a multi-row insert, a
//! truncate of several tables), so that ids are stable across reads, above
//! every id the trigger mode's sequence gave, and, per row, rise in the
//! order PostgreSQL applied the changes (a row's later change waits for
//! the earlier one's commit, whose record comes after it). Events of
//! different rows are in commit order, which is not id order.
//!
//! [`Capture::Wal`]: crate::sql::Capture::Wal

use std::time::Duration;

use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_postgres::Client;

use super::activity::Activity;
use super::drain;
use super::error::WatcherError;
use super::pack::{self, Limits, PendingEvent};
use super::route::Route;
use super::session::Session;
use super::settings::Settings;
use super::stats::Stats;
use crate::backoff::{sleep_or_stop, Backoff};
use crate::database::{Database, SslMode};
use crate::queue::{Queue, QueueError};
use crate::sql::catalog::watcher;
use crate::table::Action;
use crate::wal::encode::TypeCatalog;
use crate::wal::event::{self, Meta};
use crate::wal::pgoutput::{self, Datum, Message, Relation};
use crate::wal::tables::{self, Captured, ReadError, Relations};
use crate::wire;

/// The first id of events read from the WAL: `2^62`, above any id of the
/// trigger mode's sequence.
pub(crate) const WAL_ID_BASE: i64 = 1 << 62;

/// How long the reader waits for more of the stream before it sends what
/// it has.
const GATHER: Duration = Duration::from_millis(2);

/// How often the slot's retained WAL and lag are measured.
const SLOT_REPORT: Duration = Duration::from_secs(5);

/// One event read, waiting to be sent.
#[derive(Debug, Clone)]
struct Read {
    event: PendingEvent,
    /// The routes that take it (bit `i`: route `i`).
    routes: u64,
}

/// The WAL reader of the leader.
pub(super) struct WalReader<'a> {
    database: &'a Database,
    routes: &'a [Route],
    settings: &'a Settings,
    stats: &'a Stats,
    session: &'a Session,
}

/// How old the last check of the leader's lock may be before a send
/// checks it again.
const FENCE_AFTER: Duration = Duration::from_millis(100);

/// The transaction being read.
#[derive(Debug, Default)]
struct Transaction {
    captured_at: String,
    txid: String,
}

impl<'a> WalReader<'a> {
    pub(super) fn new(
        database: &'a Database,
        routes: &'a [Route],
        settings: &'a Settings,
        stats: &'a Stats,
        session: &'a Session,
    ) -> WalReader<'a> {
        WalReader {
            database,
            routes,
            settings,
            stats,
            session,
        }
    }

    /// Reads and sends until `stop` turns true or the stream fails.
    pub(super) async fn run(self, stop: &mut watch::Receiver<bool>) -> Result<(), WatcherError> {
        // The replication client's TLS takes the process's default crypto
        // provider (and would make `ring` it): dawdle's own connections
        // use aws-lc-rs, and so does it. Nothing changes when the
        // application installed one already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let (client, connection) = self.database.connect().await?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let result = self.stream(&client, stop).await;
        driver.abort();
        result
    }

    async fn stream(
        &self,
        client: &Client,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), WatcherError> {
        // Commits wait for the disk here: a by-reference event's rows are
        // parked, committed, then its reference is sent to a queue outside
        // this database, which a crash must not leave pointing at nothing.
        client.batch_execute("SET TimeZone = 'UTC'").await?;
        let slot = prepare(client).await?;
        let source: String = client.query_one(watcher::SOURCE, &[]).await?.get(0);
        let source = json_string(&source);
        let mut tables = tables::load(client).await?;
        let mut routing = self.routing(&tables);
        let mut types = TypeCatalog::new();
        let mut relations = Relations::default();
        let mut xids = XidEpoch::new(client).await?;
        let mut replication = ReplicationClient::connect(config(self.database, &slot)?)
            .await
            .map_err(|e| stream_failed(&slot, &e))?;
        tracing::info!(slot = %slot, "reading changes from the WAL");
        let mut pending: Vec<Read> = Vec::new();
        // The end of the last transaction whose events are all in `pending`
        // or sent: confirmed once they are sent.
        let mut complete: Option<Lsn> = None;
        let mut in_transaction = false;
        let mut transaction = Transaction::default();
        // The WAL position of the last event's change, and how many events
        // had it: events of one record (a multi-row insert, a truncate of
        // several tables) get `lsn + n`.
        let mut last_lsn = 0u64;
        let mut same_lsn = 0i64;
        let mut next_report = Instant::now();
        // Events read, for the console's charts (`dawdle.activity`).
        let mut activity = Activity::default();
        let mut backoff = Backoff::new();
        // When the session last proved it holds the leader's lock.
        let mut fenced = Instant::now();
        // When what waits is sent, more or not.
        let mut gather_until: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            if Instant::now() >= next_report {
                next_report = Instant::now() + SLOT_REPORT;
                report_slot(client).await;
                activity.save_on(client).await;
            }
            // Gather: wait for the stream (long when nothing waits to be
            // sent); once something waits, take what follows for at most
            // `GATHER` after it, up to a batch, then send.
            let waiting = !pending.is_empty() || complete.is_some();
            let deadline = match (waiting, gather_until) {
                (false, _) => {
                    gather_until = None;
                    Instant::now() + self.settings.poll_interval
                }
                (true, Some(until)) => until,
                (true, None) => *gather_until.insert(Instant::now() + GATHER),
            };
            let received = tokio::select! {
                received = tokio::time::timeout_at(deadline, replication.recv()) => received,
                _ = stop.changed() => continue,
            };
            let flush = match received {
                Err(_elapsed) => true,
                Ok(Err(error)) => return Err(stream_failed(&slot, &error)),
                Ok(Ok(None)) => return Err(WatcherError::ConnectionClosed),
                Ok(Ok(Some(message))) => {
                    match message {
                        ReplicationEvent::Begin {
                            xid,
                            commit_time_micros,
                            ..
                        } => {
                            in_transaction = true;
                            transaction.captured_at = commit_time(commit_time_micros);
                            transaction.txid = format!("\"{}\"", xids.full(xid));
                        }
                        ReplicationEvent::Commit { end_lsn, .. } => {
                            in_transaction = false;
                            complete = Some(end_lsn);
                        }
                        ReplicationEvent::KeepAlive { wal_end, .. } => {
                            if !in_transaction && pending.is_empty() {
                                // Everything before it was read and sent.
                                complete = Some(complete.map_or(wal_end, |c| c.max(wal_end)));
                            }
                        }
                        ReplicationEvent::XLogData {
                            wal_start, data, ..
                        } => {
                            let message = pgoutput::decode(&data).map_err(|e| {
                                WatcherError::Unsupported(format!("slot {slot}: {e}"))
                            })?;
                            let lsn = wal_start.as_u64();
                            let mut next_id = || {
                                if lsn == last_lsn {
                                    same_lsn += 1;
                                } else {
                                    last_lsn = lsn;
                                    same_lsn = 0;
                                }
                                WAL_ID_BASE + lsn as i64 + same_lsn
                            };
                            let meta = Meta {
                                source: &source,
                                captured_at: &transaction.captured_at,
                                txid: &transaction.txid,
                            };
                            self.change(
                                client,
                                &mut tables,
                                &mut routing,
                                &mut types,
                                &mut relations,
                                &meta,
                                message,
                                &mut next_id,
                                &mut pending,
                                &mut activity,
                            )
                            .await?;
                        }
                        ReplicationEvent::Message { .. } => {}
                        ReplicationEvent::StoppedAt { .. } => {
                            return Err(WatcherError::ConnectionClosed)
                        }
                    }
                    pending.len() >= self.settings.batch_size
                }
            };
            if !flush {
                continue;
            }
            gather_until = None;
            if !pending.is_empty() {
                match self
                    .send_all(client, &mut pending, &mut fenced, stop)
                    .await?
                {
                    true => backoff.reset(),
                    false => {
                        // Stopped while a queue was down: nothing more
                        // is confirmed.
                        break;
                    }
                }
            }
            if let Some(end) = complete.take() {
                replication.update_applied_lsn(end);
            }
        }
        let _ = replication.shutdown().await;
        activity.save_on(client).await;
        Ok(())
    }

    /// Per captured table, the routes that take its events.
    fn routing(&self, tables: &[Captured]) -> Vec<u64> {
        tables
            .iter()
            .map(|table| {
                self.routes
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.takes_table(&table.schema, &table.name))
                    .fold(0u64, |mask, (i, _)| mask | 1 << i)
            })
            .collect()
    }

    /// Turns one message of the stream into events.
    #[allow(clippy::too_many_arguments)]
    async fn change(
        &self,
        client: &Client,
        tables: &mut Vec<Captured>,
        routing: &mut Vec<u64>,
        types: &mut TypeCatalog,
        relations: &mut Relations,
        meta: &Meta<'_>,
        message: Message,
        next_id: &mut impl FnMut() -> i64,
        pending: &mut Vec<Read>,
        activity: &mut Activity,
    ) -> Result<(), WatcherError> {
        if let Message::Relation(relation) = &message {
            relearn(client, tables, types, relations, relation).await?;
            *routing = self.routing(tables);
            return Ok(());
        }
        for (relation, action, old, new) in row_changes(&message, relations) {
            self.event(
                tables, routing, types, relations, meta, relation, action, old, new, next_id,
                pending, activity,
            )?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        tables: &[Captured],
        routing: &[u64],
        types: &TypeCatalog,
        relations: &Relations,
        meta: &Meta<'_>,
        relation: u32,
        action: Action,
        old: Option<&[Datum]>,
        new: Option<&[Datum]>,
        next_id: &mut impl FnMut() -> i64,
        pending: &mut Vec<Read>,
        activity: &mut Activity,
    ) -> Result<(), WatcherError> {
        let Some((index, mapped, id)) =
            captured(tables, relations, relation, action, old, new, next_id)?
        else {
            return Ok(());
        };
        let table = &tables[index];
        activity.count(&table.schema, &table.name, action.as_str());
        let routes = routing[index];
        if routes == 0 {
            return Ok(());
        }
        let built = build(id, meta, table, mapped, types, action, old, new)?;
        pending.push(Read {
            event: PendingEvent {
                id,
                json: built.json,
                group: built.group,
            },
            routes,
        });
        Ok(())
    }

    /// Sends `pending` to every route that takes each event, retrying a
    /// failing route alone (after a backoff) until it accepted them all;
    /// false when stopped first.
    async fn send_all(
        &self,
        client: &Client,
        pending: &mut Vec<Read>,
        fenced: &mut Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, WatcherError> {
        // The fence, as the trigger mode's: a leader that lost its lock
        // never sends again. Checked when the last check is older than
        // `FENCE_AFTER`: under load, a query per send would cost the
        // writers' cores for nothing.
        if fenced.elapsed() >= FENCE_AFTER {
            if !self.session.still_leads().await? {
                return Err(WatcherError::LostLeadership);
            }
            *fenced = Instant::now();
        }
        let events = std::mem::take(pending);
        let last = self.routes.len() - 1;
        let mut events = Some(events);
        for (i, route) in self.routes.iter().enumerate() {
            let bit = 1u64 << i;
            let mine: Vec<Read> = if i == last {
                events
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.routes & bit != 0)
                    .collect()
            } else {
                events
                    .as_ref()
                    .map(|all| {
                        all.iter()
                            .filter(|r| r.routes & bit != 0)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if mine.is_empty() {
                continue;
            }
            if !self.send_route(client, route, mine, stop).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends `events` to one route until its queue accepted them all (or
    /// `stop`): a transient failure backs off and sends the rest again; a
    /// message the queue refuses for what it holds goes by reference; one
    /// refused even so is held in `dawdle.held` (standard queues).
    async fn send_route(
        &self,
        client: &Client,
        route: &Route,
        mut events: Vec<Read>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, WatcherError> {
        let queue: &dyn Queue = &**route.queue();
        let limits = Limits {
            fifo: queue.is_fifo(),
            max_bytes: queue.max_message_bytes(),
            max_events_per_message: self.settings.max_events_per_message,
            source: self.session.source(),
        };
        let fan_out = self.routes.len() > 1;
        let mut by_reference = std::collections::HashSet::new();
        // Events whose JSON is their by-reference form already.
        let mut parked = std::collections::HashSet::new();
        let mut backoff = Backoff::new();
        // How long parked rows are kept: asked of the queue once, at the
        // first park.
        let mut retention: Option<Option<f64>> = None;
        while !events.is_empty() {
            let mut failed: Option<QueueError> = None;
            // Too large for a message: by reference. A queue that cannot
            // say how long it keeps messages failed, as a failed send.
            for read in &mut events {
                let event = &read.event;
                let too_large = event.json.len() + wire::ENVELOPE_OVERHEAD > limits.max_bytes;
                if !(too_large || by_reference.contains(&event.id)) || parked.contains(&event.id) {
                    continue;
                }
                let kept = match retention {
                    Some(kept) => kept,
                    None => match drain::payload_retention(queue, self.settings).await {
                        Ok(kept) => *retention.insert(kept.map(|kept| kept.as_secs_f64())),
                        Err(error) => {
                            failed = Some(error);
                            break;
                        }
                    },
                };
                read.event.json = self.park(client, route, fan_out, read, kept).await?;
                parked.insert(read.event.id);
            }
            // Until a call accepts them, every event is unsent.
            let mut unsent: std::collections::HashSet<i64> =
                events.iter().map(|r| r.event.id).collect();
            let calls = match failed {
                Some(_) => Vec::new(),
                None => {
                    unsent.clear();
                    pack::pack(events.iter().map(|r| r.event.clone()).collect(), limits)
                }
            };
            for call in calls {
                if failed.is_some() {
                    unsent.extend(call.iter().flat_map(|p| p.events.iter().copied()));
                    continue;
                }
                let messages: Vec<_> = call.iter().map(|p| p.message.clone()).collect();
                let started = Instant::now();
                let sent = drain::timed_send(self.settings, queue.send(&messages)).await;
                let outcome = match sent {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        unsent.extend(call.iter().flat_map(|p| p.events.iter().copied()));
                        failed = Some(error);
                        continue;
                    }
                };
                let accepted = pack::accepted_events(&outcome, &call);
                self.stats.record_send(
                    route.name(),
                    accepted,
                    outcome.accepted.len(),
                    started.elapsed(),
                );
                for (index, error) in outcome.failed {
                    let Some(packed) = call.get(index) else {
                        continue;
                    };
                    if error.is_transient() {
                        unsent.extend(packed.events.iter().copied());
                        failed = Some(error);
                    } else if !limits.fifo
                        && packed.events.iter().all(|id| by_reference.contains(id))
                    {
                        let reason = error.to_string();
                        for id in &packed.events {
                            client
                                .execute(
                                    watcher::HOLD,
                                    &[id, &packed.message.body, &reason, &route.name()],
                                )
                                .await?;
                        }
                        tracing::error!(events = ?packed.events, %error, "the queue refused a message even by reference: its events are held in dawdle.held");
                    } else {
                        tracing::error!(events = packed.events.len(), %error, "the queue refused a message; its events go by reference");
                        by_reference.extend(packed.events.iter().copied());
                        unsent.extend(packed.events.iter().copied());
                    }
                }
            }
            events.retain(|r| unsent.contains(&r.event.id));
            if let Some(error) = failed {
                let delay = backoff.next();
                tracing::warn!(route = route.name(), %error, events = events.len(), retry_in_ms = delay.as_millis() as u64,
                    "the queue failed; the events wait in the replication slot");
                sleep_or_stop(delay, stop).await;
                if *stop.borrow() {
                    return Ok(false);
                }
                if !self.session.still_leads().await? {
                    return Err(WatcherError::LostLeadership);
                }
            }
        }
        Ok(true)
    }

    /// Parks the rows of `read`'s event in `dawdle.payloads` (committed
    /// before the reference is sent), kept `kept` seconds (`None`: until a
    /// listener removes them), and returns its by-reference form. Taken by
    /// several routes, each route's listener removes its own claim.
    async fn park(
        &self,
        client: &Client,
        route: &Route,
        fan_out: bool,
        read: &Read,
        kept: Option<f64>,
    ) -> Result<String, WatcherError> {
        let event = &read.event;
        if read.routes.count_ones() > 1 {
            let claims: Vec<&str> = self
                .routes
                .iter()
                .enumerate()
                .filter(|(i, _)| read.routes & (1 << i) != 0)
                .map(|(_, r)| r.name())
                .collect();
            client
                .execute(
                    watcher::PARK_ROUTED,
                    &[&event.id, &event.json, &kept, &claims],
                )
                .await?;
        } else {
            client
                .execute(watcher::PARK, &[&event.id, &event.json, &kept])
                .await?;
        }
        let reference: String = client
            .query_one(watcher::REFERENCE, &[&event.json])
            .await?
            .get(0);
        tracing::info!(
            event = event.id,
            bytes = event.json.len(),
            "event larger than a message: sending it by reference"
        );
        Ok(if fan_out {
            wire::with_route(&reference, route.name()).map_err(|e| {
                WatcherError::Unsupported(format!("a by-reference event is not a JSON object: {e}"))
            })?
        } else {
            reference
        })
    }
}

/// Checks that the database is ready for capture from the WAL, and makes
/// the slot if it is missing: its name.
async fn prepare(client: &Client) -> Result<String, WatcherError> {
    let level: String = client.query_one("SHOW wal_level", &[]).await?.get(0);
    if level != "logical" {
        return Err(WatcherError::Unsupported(format!(
            "capture from the WAL needs wal_level = logical; the server has {level} \
             (set it in postgresql.conf, or rds.logical_replication = 1 on Amazon RDS, and restart)"
        )));
    }
    if client
        .query_opt(
            "SELECT FROM pg_catalog.pg_publication WHERE pubname = 'dawdle'",
            &[],
        )
        .await?
        .is_none()
        || client
            .query_one(
                "SELECT to_regprocedure('\"dawdle\".\"unpublished\"()') IS NOT NULL",
                &[],
            )
            .await?
            .get::<_, bool>(0)
            .eq(&false)
    {
        return Err(WatcherError::Unsupported(
            "the database is not set up for capture from the WAL: apply up with --capture wal \
             (dawdle-sql --capture wal apply)"
                .into(),
        ));
    }
    let problems: Vec<String> = client
        .query_one("SELECT \"dawdle\".\"unpublished\"()", &[])
        .await?
        .get(0);
    if !problems.is_empty() {
        return Err(WatcherError::Unsupported(format!(
            "tables below a captured one are not ready for capture from the WAL: {}; \
             apply up again (dawdle-sql --capture wal apply), which readies them",
            problems.join(", ")
        )));
    }
    let slot: String = client
        .query_one("SELECT \"dawdle\".\"slot_name\"()", &[])
        .await?
        .get(0);
    if let Some(row) = client
        .query_opt(
            "SELECT wal_status, confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?
    {
        let status: Option<String> = row.get(0);
        if status.as_deref() == Some("lost") {
            let confirmed: Option<String> = row.get(1);
            metrics::gauge!(crate::observability::WAL_SLOT_LOST).set(1.0);
            return Err(WatcherError::Unsupported(format!(
                "the replication slot {slot} was invalidated: PostgreSQL removed WAL it still needed \
                 (max_slot_wal_keep_size), so the changes after {} that were not sent yet are lost. \
                 To go on: SELECT pg_drop_replication_slot('{slot}'); start the watcher (it makes a new \
                 slot); then run a backfill of the captured tables (dawdle backfill) to send their rows again",
                confirmed.as_deref().unwrap_or("its last confirmed position")
            )));
        }
        metrics::gauge!(crate::observability::WAL_SLOT_LOST).set(0.0);
        return Ok(slot);
    }
    let created: bool = client
        .query_one("SELECT \"dawdle\".\"ensure_slot\"()", &[])
        .await?
        .get(0);
    if created {
        tracing::warn!(slot = %slot, "made the replication slot now: changes committed before this moment \
            (since up) were not captured; run a backfill if writes ran since up");
    }
    Ok(slot)
}

/// Measures the slot's retained WAL and lag into the metrics, with the
/// query `dawdle status` and the console read it with.
async fn report_slot(client: &Client) {
    if let Ok(Some(slot)) = crate::status::wal_slot(client).await {
        metrics::gauge!(crate::observability::WAL_RETAINED_BYTES).set(slot.retained_bytes as f64);
        metrics::gauge!(crate::observability::WAL_LAG_BYTES).set(slot.lag_bytes as f64);
    }
}

/// The replication connection's settings: the watcher's database, and the
/// session settings the readers fix, so that values are written as the
/// trigger mode writes them.
fn config(database: &Database, slot: &str) -> Result<ReplicationConfig, WatcherError> {
    let pg = database.config();
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    // With `hostaddr`, connect there and check the certificate against
    // the host's name, as libpq does.
    let (address, name) = match pg.get_hostaddrs().first() {
        Some(address) => (address.to_string(), Some(host)),
        None => (host, None),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let user = pg.get_user().unwrap_or("postgres").to_owned();
    let password = pg
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let dbname = pg.get_dbname().unwrap_or(&user).to_owned();
    let roots = database
        .root_file_for_replication()
        .map_err(WatcherError::Unsupported)?;
    let mut tls = match database.get_ssl_mode() {
        SslMode::Disable => TlsConfig::disabled(),
        // TLS when the server offers it (`allow` tries it first too).
        SslMode::Allow | SslMode::Prefer => TlsConfig {
            mode: pgwire_replication::SslMode::Prefer,
            ..TlsConfig::disabled()
        },
        // As libpq: `require` with a root certificate checks the chain.
        SslMode::Require if roots.is_some() => TlsConfig::verify_ca(roots),
        SslMode::Require => TlsConfig::require(),
        SslMode::VerifyCa => TlsConfig::verify_ca(roots),
        SslMode::VerifyFull => TlsConfig::verify_full(roots),
    };
    if let Some(name) = name {
        tls = tls.with_sni_hostname(name);
    }
    let options = crate::table::SessionSettings::EACH
        .iter()
        .map(|(_, name, value)| {
            format!("-c {name}={}", value.trim_matches('\'').replace(' ', "\\ "))
        })
        .collect::<Vec<_>>()
        .join(" ");
    Ok(
        ReplicationConfig::new(address, user, password, dbname, slot, "dawdle")
            .with_port(port)
            .with_tls(tls)
            .with_options(options)
            .with_application_name("dawdle-watcher-wal")
            .with_status_interval(Duration::from_secs(1))
            .with_buffer_size(8192),
    )
}

/// The stream's failure, which the watcher retries as a lost connection
/// (after a backoff, from the slot's confirmed position): the server's
/// refusals too, since the usual one is the slot still held by the session
/// of a leader that just died. What cannot pass (an invalidated slot, a
/// missing publication) is found and reported at the next start.
fn stream_failed(slot: &str, error: &pgwire_replication::PgWireError) -> WatcherError {
    if error.is_io() || error.is_transient() {
        tracing::warn!(%error, slot, "the replication stream was lost");
    } else {
        tracing::error!(%error, slot, "the server ended the replication stream");
    }
    WatcherError::ConnectionClosed
}

/// Maps a relation the stream describes onto the captured tables, read
/// again from the registry: up may have added the table since the session
/// began.
async fn relearn(
    client: &Client,
    tables: &mut Vec<Captured>,
    types: &mut TypeCatalog,
    relations: &mut Relations,
    relation: &Relation,
) -> Result<(), ReadError> {
    *tables = tables::load(client).await?;
    relations.learn(client, tables, types, relation).await
}

/// The changes of rows a message carries: `(relation, action, old, new)`,
/// and for a TRUNCATE one per captured table (its inheritance children
/// are listed too).
#[allow(clippy::type_complexity)]
fn row_changes<'m>(
    message: &'m Message,
    relations: &Relations,
) -> Vec<(u32, Action, Option<&'m [Datum]>, Option<&'m [Datum]>)> {
    match message {
        Message::Insert { relation, new } => vec![(*relation, Action::Insert, None, Some(new))],
        Message::Update { relation, old, new } => vec![(
            *relation,
            Action::Update,
            old.as_ref().map(|(_, old)| old.as_slice()),
            Some(new),
        )],
        Message::Delete { relation, old } => {
            vec![(*relation, Action::Delete, Some(&old.1), None)]
        }
        Message::Truncate {
            relations: truncated,
        } => {
            let mut seen = Vec::with_capacity(truncated.len());
            let mut changes = Vec::with_capacity(truncated.len());
            for &relation in truncated {
                let table = match relations.get(relation) {
                    Some(Some(mapped)) => Some(mapped.table),
                    _ => None,
                };
                if table.is_some() && seen.contains(&table) {
                    continue;
                }
                seen.push(table);
                changes.push((relation, Action::Truncate, None, None));
            }
            changes
        }
        Message::Relation(_) | Message::Other(_) => Vec::new(),
    }
}

/// Whether a change makes an event: the captured table it is of (its
/// index), how its relation maps onto it, and the event's id; `None` for
/// a relation not captured (or no longer), an action the table does not
/// capture or an update of no captured column. An id is taken for every
/// change of a captured table, so that ids do not depend on what the
/// table captures.
#[allow(clippy::type_complexity)]
fn captured<'t>(
    tables: &[Captured],
    relations: &'t Relations,
    relation: u32,
    action: Action,
    old: Option<&[Datum]>,
    new: Option<&[Datum]>,
    next_id: &mut impl FnMut() -> i64,
) -> Result<Option<(usize, &'t tables::Mapped, i64)>, WatcherError> {
    let Some(mapped) = relations.get(relation) else {
        return Err(WatcherError::Unsupported(format!(
            "the stream changed relation {relation} before describing it"
        )));
    };
    let Some(mapped) = mapped else {
        // Not a captured table's.
        return Ok(None);
    };
    let Some(index) = tables.iter().position(|t| t.oid == mapped.table) else {
        // No longer captured (up ran again without it).
        return Ok(None);
    };
    let table = &tables[index];
    let id = next_id();
    if !table.actions.contains(&action) {
        return Ok(None);
    }
    if let (Action::Update, false, Some(old), Some(new)) = (action, table.unchanged, old, new) {
        if event::unchanged(mapped, old, new) {
            return Ok(None);
        }
    }
    Ok(Some((index, mapped, id)))
}

/// The event of a captured change.
#[allow(clippy::too_many_arguments)]
fn build(
    id: i64,
    meta: &Meta<'_>,
    table: &Captured,
    mapped: &tables::Mapped,
    types: &TypeCatalog,
    action: Action,
    old: Option<&[Datum]>,
    new: Option<&[Datum]>,
) -> Result<event::Built, WatcherError> {
    match event::build(id, meta, table, mapped, types, action, old, new) {
        Ok(built) => Ok(built),
        Err(error) => {
            // Sent without what could not be read: its handler fails to
            // decode it and the event is dead-lettered, with the reason,
            // rather than lost or holding up every other.
            tracing::error!(event = id, error = %error.0, "an event of the WAL could not be built whole");
            event::build(id, meta, table, mapped, types, action, None, None)
                .map_err(|e| WatcherError::Unsupported(e.0))
        }
    }
}

/// Flushes the WAL written so far, which logical decoding through SQL
/// reads only once flushed: a commit that wrote WAL and waits for the
/// flush flushes what the writers (`synchronous_commit = off`, say) left.
pub(crate) const FLUSH_WAL: &str = "BEGIN; SET LOCAL synchronous_commit = on; \
     SELECT pg_catalog.pg_logical_emit_message(true, 'dawdle', ''); COMMIT;";

/// The events waiting in the database's slot, built as the WAL reader
/// builds them (their ids, capture times and transaction ids aside),
/// without consuming them: through `pg_logical_slot_peek_binary_changes`,
/// in a session with the settings the reader's replication connection
/// has. For tests: `__private::peek_wal_events`.
pub(crate) async fn peek(client: &Client) -> Result<Vec<String>, WatcherError> {
    client.batch_execute(FLUSH_WAL).await?;
    let mut settings = String::from("BEGIN;");
    for (_, name, value) in crate::table::SessionSettings::EACH {
        settings.push_str(&format!(" SET LOCAL \"{name}\" TO {value};"));
    }
    client.batch_execute(&settings).await?;
    let rows = client
        .query(
            "SELECT data FROM pg_logical_slot_peek_binary_changes(dawdle.slot_name(), NULL, NULL, \
             'proto_version', '1', 'publication_names', 'dawdle')",
            &[],
        )
        .await;
    client.batch_execute("COMMIT").await?;
    let mut tables = tables::load(client).await?;
    let mut types = TypeCatalog::new();
    let mut relations = Relations::default();
    let meta = Meta {
        source: "null",
        captured_at: "null",
        txid: "null",
    };
    let mut id = 0;
    let mut next_id = || {
        id += 1;
        id
    };
    let mut events = Vec::new();
    for row in rows? {
        let data = bytes::Bytes::from(row.get::<_, Vec<u8>>(0));
        let message = pgoutput::decode(&data)
            .map_err(|e| WatcherError::Unsupported(format!("the slot: {e}")))?;
        if let Message::Relation(relation) = &message {
            relearn(client, &mut tables, &mut types, &mut relations, relation).await?;
            continue;
        }
        for (relation, action, old, new) in row_changes(&message, &relations) {
            if let Some((index, mapped, id)) = captured(
                &tables,
                &relations,
                relation,
                action,
                old,
                new,
                &mut next_id,
            )? {
                let built = build(id, &meta, &tables[index], mapped, &types, action, old, new)?;
                events.push(built.json);
            }
        }
    }
    Ok(events)
}

/// A commit time (microseconds since 2000-01-01 UTC) as `to_json` writes a
/// `timestamptz` in UTC, as a JSON string.
pub(super) fn commit_time(micros: i64) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    const EPOCH_2000: i64 = 946_684_800;
    let seconds = EPOCH_2000 + micros.div_euclid(1_000_000);
    let micros = micros.rem_euclid(1_000_000);
    let time = chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .naive_utc();
    // Written field by field: a format string is parsed on every call.
    let mut text = String::with_capacity(36);
    let _ = write!(
        text,
        "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    if micros != 0 {
        let fraction = format!("{micros:06}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str("+00:00\"");
    text
}

fn json_string(text: &str) -> String {
    let mut out = String::new();
    event::push_string(&mut out, text);
    out
}

/// Full (64-bit) transaction ids from the stream's 32-bit ones.
struct XidEpoch {
    /// A full id near those of the stream.
    reference: u64,
}

impl XidEpoch {
    async fn new(client: &Client) -> Result<XidEpoch, WatcherError> {
        let next: String = client
            .query_one("SELECT pg_snapshot_xmax(pg_current_snapshot())::text", &[])
            .await?
            .get(0);
        Ok(XidEpoch {
            reference: next.parse().unwrap_or(0),
        })
    }

    /// The full id of `xid`: the one nearest the last seen.
    fn full(&mut self, xid: u32) -> u64 {
        let epoch = self.reference >> 32;
        let candidates = [epoch.wrapping_sub(1), epoch, epoch + 1].map(|e| (e << 32) | xid as u64);
        let full = candidates
            .into_iter()
            .min_by_key(|c| c.abs_diff(self.reference))
            .expect("three candidates");
        self.reference = full;
        full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_times_are_spelled_as_to_json_spells_them() {
        assert_eq!(commit_time(0), "\"2000-01-01T00:00:00+00:00\"");
        assert_eq!(commit_time(1_500_000), "\"2000-01-01T00:00:01.5+00:00\"");
        assert_eq!(commit_time(-1), "\"1999-12-31T23:59:59.999999+00:00\"");
    }

    #[test]
    fn full_transaction_ids_follow_the_epoch() {
        let mut xids = XidEpoch {
            reference: (3 << 32) | 10,
        };
        assert_eq!(xids.full(5), (3 << 32) | 5);
        assert_eq!(xids.full(u32::MAX - 2), (2 << 32) | (u32::MAX - 2) as u64);
        assert_eq!(xids.full(7), (3 << 32) | 7);
    }

    #[test]
    fn ids_start_above_the_sequence() {
        assert_eq!(WAL_ID_BASE, 4_611_686_018_427_387_904);
    }
}
