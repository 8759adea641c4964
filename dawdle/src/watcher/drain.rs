//! One round of the drain: open the window of events committed since the
//! cursor (see `window.rs`), send them page by page, and move the cursor
//! past what the queue accepted, in one transaction.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tracing::Instrument;

use super::activity::Activity;
use super::encoder::Encoder;
use super::error::WatcherError;
use super::pack::{self, Limits, PendingEvent};
use super::rotate::Rotation;
use super::route::Route;
use super::session::Session;
use super::settings::Settings;
use super::stats::Stats;
use super::window::{Cursor, Snapshot};
use crate::queue::{Queue, QueueError, Retention, SendOutcome, TransactionalQueue};
use crate::sql::catalog::watcher;
use crate::wire;

/// Pages after the first of a window are this many batches, then twice as
/// many each, up to [`LARGEST_PAGES`].
const LARGE_PAGES: usize = 10;

/// The most batches a page holds. Each page of a window walks the rest of
/// the window (its index entries, and a sort for the page's first events),
/// so that fewer, larger pages walk a large window fewer times: with 1,000
/// events a batch, 200,000 waiting events are read in 7 pages rather than
/// 21 (the bench's backend CPU for them: 1.2 s rather than 2.0 s).
const LARGEST_PAGES: usize = 50;

/// A round stops opening pages after this long, and saves where it is: a
/// huge window (after an outage) is sent in parts that each commit.
const ROUND_BUDGET: Duration = Duration::from_secs(1);

/// What one round did.
#[derive(Debug, Default)]
pub(crate) struct Round {
    /// Events read.
    pub read: usize,
    /// Events the queue accepted.
    pub sent: usize,
    /// The window holds more: read again at once.
    pub more: bool,
    /// A transient queue failure: back off before the next round.
    pub queue_error: Option<QueueError>,
    /// Events of messages the queue refused for what they contain: they go
    /// by reference next time, which carries no row data.
    pub refused: Vec<i64>,
    /// A send in the round's transaction failed, which aborted it: it is
    /// rolled back, and the cursor stays.
    rolled_back: bool,
    /// Per route: the id up to which this round's sends reached, kept in
    /// [`Position::reached`] once the round ends (a route that sends in the
    /// round's transaction, only if it commits).
    reached: Vec<Option<i64>>,
    /// The routes that sent in the round's transaction (bit `i`: route `i`).
    in_transaction: u64,
    /// The send of the route at hand held events in `dawdle.held` inside
    /// the round's transaction: a rollback undoes that too.
    held_in_transaction: bool,
}

/// Where the round's messages go: the queue, or a [`PgQueue`] in the
/// watcher's own database, which takes them in the round's transaction.
/// Then the messages and the cursor's move commit together: a crash between
/// "sent" and "saved" leaves neither, and nothing is sent twice (to that
/// queue: a leader that restarts knows no route's progress in the window,
/// and sends the window's events to every route again).
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    Queue(&'a dyn Queue),
    SameDatabase(&'a dyn TransactionalQueue),
}

impl<'a> Target<'a> {
    /// Where `queue` is sent to: into the round's transaction when it is a
    /// PgQueue in the watcher's own database.
    pub(crate) async fn of(queue: &'a dyn Queue, session: &Session) -> Target<'a> {
        let Some(pg) = queue.transactional() else {
            return Target::Queue(queue);
        };
        match pg.lives_in(session.client()).await {
            Ok(true) => Target::SameDatabase(pg),
            Ok(false) => Target::Queue(queue),
            Err(error) => {
                tracing::warn!(%error, "could not tell whether the queue is in this database; sending as to any queue");
                Target::Queue(queue)
            }
        }
    }

    fn queue(&self) -> &'a dyn Queue {
        match *self {
            Target::Queue(queue) => queue,
            Target::SameDatabase(queue) => queue,
        }
    }

    async fn send(
        &self,
        session: &Session,
        messages: &[crate::queue::OutgoingMessage],
    ) -> Result<SendOutcome, QueueError> {
        match *self {
            Target::Queue(queue) => queue.send(messages).await,
            Target::SameDatabase(queue) => queue.send_in(session.client(), messages).await,
        }
    }
}

/// The watcher's routes, each with where it sends, and which routes take
/// the events of each table and signal met so far.
pub(crate) struct Routing<'a> {
    routes: Vec<(&'a Route, Target<'a>)>,
    /// Every route takes everything: the mask of every event.
    everything: Option<u64>,
    /// Route masks (bit `i`: route `i` takes it) by schema and table.
    tables: HashMap<String, HashMap<String, u64>>,
    /// Route masks by signal name.
    signals: HashMap<String, u64>,
}

impl<'a> Routing<'a> {
    /// At most this many routes per watcher (a mask's bits).
    pub(crate) const MAX_ROUTES: usize = 64;

    pub(crate) fn new(routes: Vec<(&'a Route, Target<'a>)>) -> Routing<'a> {
        debug_assert!(routes.len() <= Self::MAX_ROUTES);
        let everything = routes
            .iter()
            .all(|(route, _)| route.takes_everything())
            .then(|| u64::MAX.checked_shr(64 - routes.len() as u32).unwrap_or(0));
        Routing {
            routes,
            everything,
            tables: HashMap::new(),
            signals: HashMap::new(),
        }
    }

    /// The routes that take the event of a row of [`watcher::PAGE`]: of its
    /// table, or of its signal.
    fn mask(&mut self, row: &tokio_postgres::Row) -> u64 {
        if let Some(mask) = self.everything {
            return mask;
        }
        let (schema, table, signal): (&str, &str, Option<&str>) =
            (row.get(5), row.get(6), row.get(7));
        let routes = &self.routes;
        let of = |takes: &dyn Fn(&Route) -> bool| {
            routes
                .iter()
                .enumerate()
                .filter(|(_, (route, _))| takes(route))
                .fold(0u64, |mask, (i, _)| mask | 1 << i)
        };
        match signal {
            Some(signal) => match self.signals.get(signal) {
                Some(&mask) => mask,
                None => {
                    let mask = of(&|route| route.takes_signal(signal));
                    self.signals.insert(signal.to_owned(), mask);
                    mask
                }
            },
            None => match self.tables.get(schema).and_then(|t| t.get(table)) {
                Some(&mask) => mask,
                None => {
                    let mask = of(&|route| route.takes_table(schema, table));
                    let tables = self.tables.entry(schema.to_owned()).or_default();
                    tables.insert(table.to_owned(), mask);
                    mask
                }
            },
        }
    }

    fn len(&self) -> usize {
        self.routes.len()
    }

    /// The routes of `mask`, with their index.
    fn of(&self, mask: u64) -> impl Iterator<Item = (usize, &'a Route, Target<'a>)> + '_ {
        self.routes
            .iter()
            .enumerate()
            .filter(move |(i, _)| mask & (1 << i) != 0)
            .map(|(i, &(route, target))| (i, route, target))
    }
}

/// What the watcher carries from round to round about the current window.
#[derive(Debug)]
pub(crate) struct Position {
    /// As saved in `dawdle.cursor`.
    pub cursor: Cursor,
    /// Events of this window that go by reference (refused by the queue as
    /// they were).
    pub by_reference: HashSet<i64>,
    /// Events of this window whose rows are parked in `dawdle.payloads`
    /// by a committed round.
    parked: HashSet<i64>,
    /// Per route: the id up to which it got this window's events. When one
    /// route's queue fails, the cursor stays before the events it missed,
    /// and the next rounds send them to that route alone: the others do not
    /// get them again.
    reached: Vec<i64>,
    /// The id up to which this window's events were counted in the
    /// activity (rounds that fail read them again).
    counted: i64,
    /// What is known of the tables' columns, to build their events.
    encoder: Encoder,
}

impl Position {
    pub(crate) fn new(cursor: Cursor) -> Position {
        Position {
            cursor,
            by_reference: HashSet::new(),
            parked: HashSet::new(),
            reached: Vec::new(),
            counted: 0,
            encoder: Encoder::default(),
        }
    }
}

/// One event as read from the window.
#[derive(Debug)]
struct ReadEvent {
    id: i64,
    /// The wire event, built by the encoder (or by PostgreSQL).
    json: String,
    /// The FIFO group: `schema.table:key`.
    group: String,
    /// The routes that take it (bit `i`: route `i`).
    routes: u64,
}

/// How a page went.
enum Page {
    /// Every event was sent.
    Sent,
    /// Stopped: events from this id on were not sent (or not known to be).
    Stopped { first_unsent: i64 },
}

/// Reads the position saved in `dawdle.cursor`.
pub(crate) async fn load_cursor(session: &Session) -> Result<Cursor, WatcherError> {
    let row = session.query_one(watcher::CURSOR, &[]).await?;
    let snapshot = |text: String| {
        Snapshot::parse(text.clone()).ok_or_else(|| {
            WatcherError::Unsupported(format!("dawdle.cursor holds {text:?}, not a snapshot"))
        })
    };
    let read = snapshot(row.get(0))?;
    let partial = match row.get::<_, Option<String>>(1) {
        Some(window) => Some((snapshot(window)?, row.get(2))),
        None => None,
    };
    Ok(Cursor { read, partial })
}

/// The round's transaction, begun only when the round writes (parks
/// payloads, or sends to a PgQueue in this database): a round that only
/// reads and sends needs none.
struct Tx<'s> {
    session: &'s Session,
    open: bool,
}

impl<'s> Tx<'s> {
    fn new(session: &'s Session) -> Self {
        Tx {
            session,
            open: false,
        }
    }

    async fn begin(&mut self) -> Result<(), WatcherError> {
        if !self.open {
            self.session.batch(watcher::BEGIN).await?;
            self.open = true;
        }
        Ok(())
    }
}

/// One round of the drain.
pub(crate) async fn round(
    session: &Session,
    routing: &mut Routing<'_>,
    activity: &mut Activity,
    settings: &Settings,
    stats: &Stats,
    position: &mut Position,
    rotation: &mut Rotation,
) -> Result<Round, WatcherError> {
    let (upto, after) = position.cursor.next_window();
    let upto = upto.cloned();
    let read = position.cursor.read.as_str().to_owned();
    let upto_text = upto.as_ref().map(|s| s.as_str().to_owned());
    let limit = settings.batch_size as i64;
    let bounds = Bounds {
        read: &read,
        upto: &upto_text,
        after,
        limit,
    };
    let (mut page, ends) =
        page_events(session, position, rotation, routing, activity, bounds).await?;
    let mut tx = Tx::new(session);
    let Some(ends) = ends else {
        if let Some(upto) = upto {
            // The rest of a window read in part was empty: it is done.
            return finish(&mut tx, position, upto, None, Round::default()).await;
        }
        return Ok(Round::default());
    };
    let upto = match upto {
        Some(upto) => upto,
        None => Snapshot::parse(ends).ok_or_else(|| unexpected("a snapshot"))?,
    };
    rotation.note_upto(&upto);
    let span = tracing::debug_span!("drain", events = page.len());
    async {
        let started = Instant::now();
        let mut round = Round {
            reached: vec![None; routing.len()],
            ..Round::default()
        };
        let mut sent_up_to = after;
        let mut limit = limit;
        loop {
            let full = page.len() as i64 >= limit;
            let last = page.last().map_or(sent_up_to, |e| e.id);
            round.read += page.len();
            match send_page(
                &mut tx, routing, settings, stats, position, page, &mut round,
            )
            .await?
            {
                Page::Sent => sent_up_to = last,
                Page::Stopped { first_unsent } => {
                    // Every event of the window below it was sent.
                    sent_up_to = sent_up_to.max(first_unsent - 1);
                    round.more = round.queue_error.is_none();
                    return finish(&mut tx, position, upto, Some(sent_up_to), round).await;
                }
            }
            if !full {
                return finish(&mut tx, position, upto, None, round).await;
            }
            if started.elapsed() >= ROUND_BUDGET {
                round.more = true;
                return finish(&mut tx, position, upto, Some(sent_up_to), round).await;
            }
            // A large window (after an outage, say): larger pages, each
            // costing a walk of the window's index entries.
            limit = (limit * 2).clamp(
                (settings.batch_size * LARGE_PAGES) as i64,
                (settings.batch_size * LARGEST_PAGES) as i64,
            );
            let upto_text = Some(upto.as_str().to_owned());
            let bounds = Bounds {
                read: &read,
                upto: &upto_text,
                after: sent_up_to,
                limit,
            };
            (page, _) = page_events(session, position, rotation, routing, activity, bounds).await?;
            if page.is_empty() {
                return finish(&mut tx, position, upto, None, round).await;
            }
        }
    }
    .instrument(span)
    .await
}

/// Keeps how far the round's sends reached: for every route, or after a
/// rollback only for those that did not send in the round's transaction.
fn keep_reached(position: &mut Position, round: &Round) {
    if position.reached.len() < round.reached.len() {
        position.reached.resize(round.reached.len(), 0);
    }
    for (i, reached) in round.reached.iter().enumerate() {
        let undone = round.rolled_back && round.in_transaction & (1 << i) != 0;
        if let (Some(reached), false) = (*reached, undone) {
            position.reached[i] = position.reached[i].max(reached);
        }
    }
}

/// Saves the position the round reached in the window ending at `upto`
/// (committing the round's transaction, if it has one): the window done,
/// or read in part (`sent_up_to`: the id up to which its events were sent).
async fn finish(
    tx: &mut Tx<'_>,
    position: &mut Position,
    upto: Snapshot,
    sent_up_to: Option<i64>,
    round: Round,
) -> Result<Round, WatcherError> {
    if round.rolled_back {
        if tx.open {
            tx.session.simple(watcher::ROLLBACK).await?;
        }
        // Payloads parked in it are gone too: park again what needs it.
        position.parked.clear();
        if position.cursor.partial.is_none() && round.reached.iter().any(Option::is_some) {
            // Routes outside the transaction got some of a fresh window:
            // save it (from its start), so that the next round reads this
            // same window again and their marks hold. A later window could
            // hold events of transactions that commit meanwhile with ids
            // below the marks, which the marks would skip.
            let read = position.cursor.read.as_str().to_owned();
            let window = Some(upto.as_str().to_owned());
            tx.session
                .execute(watcher::SAVE, &[&read, &window, &0i64])
                .await?;
            position.cursor.partial = Some((upto, 0));
        }
        // The next round reads this same window again: the routes outside
        // the transaction keep what they got of it.
        keep_reached(position, &round);
        return Ok(round);
    }
    keep_reached(position, &round);
    let cursor = match sent_up_to {
        Some(after) => Cursor {
            read: position.cursor.read.clone(),
            partial: Some((upto, after)),
        },
        None => Cursor {
            read: upto,
            partial: None,
        },
    };
    let (window, after) = match &cursor.partial {
        Some((upto, after)) => (Some(upto), *after),
        None => (None, 0),
    };
    let read = cursor.read.as_str().to_owned();
    let window = window.map(|w| w.as_str().to_owned());
    tx.session
        .execute(watcher::SAVE, &[&read, &window, &after])
        .await?;
    if tx.open {
        // Only after the save succeeded: an error aborts the transaction.
        tx.session.batch(watcher::COMMIT).await?;
    }
    if cursor.partial.is_none() {
        // The window is done: what was kept about its events is not needed.
        position.by_reference.clear();
        position.parked.clear();
        position.reached.clear();
        position.counted = 0;
    }
    position.cursor = cursor;
    Ok(round)
}

/// Parks what must go by reference, packs the page into messages, sends
/// them to each route that takes them, and says how far it got.
async fn send_page(
    tx: &mut Tx<'_>,
    routing: &Routing<'_>,
    settings: &Settings,
    stats: &Stats,
    position: &mut Position,
    page: Vec<ReadEvent>,
    round: &mut Round,
) -> Result<Page, WatcherError> {
    let Some(page_end) = page.last().map(|e| e.id) else {
        return Ok(Page::Sent);
    };
    let fan_out = routing.len() > 1;
    let mut ready: Vec<(u64, PendingEvent)> = Vec::with_capacity(page.len());
    let mut newly_parked = Vec::new();
    // Asked of each route's queue at the first park of the page.
    let mut retentions: Vec<Option<Option<Duration>>> = vec![None; routing.len()];
    // The first event that needed parking and could not be parked.
    let mut unparked = None;
    'events: for ReadEvent {
        id,
        json,
        group,
        routes,
    } in page
    {
        // The routes that still need it (not those that got it in an
        // earlier round of this window).
        let routes = routes & !reached_by(position, id);
        if routes == 0 {
            continue;
        }
        let max_bytes = routing
            .of(routes)
            .map(|(_, _, target)| target.queue().max_message_bytes())
            .min()
            .unwrap_or(usize::MAX);
        let too_large = json.len() + wire::ENVELOPE_OVERHEAD > max_bytes;
        if !too_large && !position.by_reference.contains(&id) {
            ready.push((routes, PendingEvent { id, json, group }));
            continue;
        }
        if !position.parked.contains(&id) {
            // Kept as long as the longest of its queues may deliver it.
            let mut kept = Some(Duration::ZERO);
            for (i, _, target) in routing.of(routes) {
                if retentions[i].is_none() {
                    match payload_retention(target.queue(), settings).await {
                        Ok(retention) => retentions[i] = Some(retention),
                        Err(error) => {
                            // As a failed send: this event and those after
                            // it wait, while the watcher backs off.
                            round.queue_error = Some(error);
                            unparked = Some(id);
                            break 'events;
                        }
                    }
                }
                kept = kept.zip(retentions[i].flatten()).map(|(a, b)| a.max(b));
            }
            // Its rows are parked in this transaction: a listener could not
            // see them before it commits, so the event goes in a later round.
            let seconds = kept.map(|kept| kept.as_secs_f64());
            // Several routes: each listener removes its own claim.
            let claims: Option<Vec<&str>> = (routes.count_ones() > 1).then(|| {
                routing
                    .of(routes)
                    .map(|(_, route, _)| route.name())
                    .collect()
            });
            tx.begin().await?;
            match &claims {
                None => {
                    let params: [&(dyn ToSql + Sync); 3] = [&id, &json, &seconds];
                    tx.session.execute(watcher::PARK, &params).await?
                }
                Some(claims) => {
                    let params: [&(dyn ToSql + Sync); 4] = [&id, &json, &seconds, claims];
                    tx.session.execute(watcher::PARK_ROUTED, &params).await?
                }
            };
            newly_parked.push(id);
            continue;
        }
        let reference: String = tx
            .session
            .query_one(watcher::REFERENCE, &[&json])
            .await?
            .get(0);
        tracing::info!(
            event = id,
            bytes = json.len(),
            "event larger than a message: sending it by reference"
        );
        let json = if fan_out {
            // Fanned out, each route's copy names its route (see `wire`).
            for (i, route, _) in routing.of(routes) {
                let json = wire::with_route(&reference, route.name())
                    .map_err(|_| unexpected("a JSON object for a by-reference event"))?;
                let group = group.clone();
                ready.push((1 << i, PendingEvent { id, json, group }));
            }
            continue;
        } else {
            reference
        };
        ready.push((routes, PendingEvent { id, json, group }));
    }
    let first_waiting = newly_parked
        .first()
        .copied()
        .into_iter()
        .chain(unparked)
        .min();
    if let Some(first) = first_waiting {
        // Only what comes before it may go now.
        ready.retain(|(_, e)| e.id < first);
    }
    // How far the page goes now: to its end, or to the first that waits.
    let page_end = first_waiting.map_or(page_end, |first| first - 1);
    let mut first_unsent = first_waiting;
    for (i, route, target) in routing.of(u64::MAX) {
        if round.rolled_back {
            // The round's transaction is gone: nothing more goes this round.
            if let Some((_, event)) = ready.first() {
                first_unsent = Some(first_unsent.map_or(event.id, |f| f.min(event.id)));
            }
            break;
        }
        // This route's events: moved when no later route needs them (one
        // route: every event), copied otherwise.
        let bit = 1u64 << i;
        let mut events = Vec::new();
        let mut later = Vec::new();
        for (routes, event) in ready.drain(..) {
            match (routes & bit != 0, routes & !bit) {
                (false, _) => later.push((routes, event)),
                (true, 0) => events.push(event),
                (true, others) => {
                    events.push(event.clone());
                    later.push((others, event));
                }
            }
        }
        ready = later;
        if matches!(target, Target::SameDatabase(_)) {
            round.in_transaction |= 1 << i;
        }
        let outcome = if events.is_empty() {
            Page::Sent
        } else {
            let span = tracing::debug_span!("route", route = route.name());
            send(
                tx,
                (route.name(), target),
                settings,
                stats,
                &position.by_reference,
                events,
                round,
            )
            .instrument(span)
            .await?
        };
        if std::mem::take(&mut round.held_in_transaction) {
            // Its held events count as done only if the round commits.
            round.in_transaction |= 1 << i;
        }
        let reached = match outcome {
            Page::Sent => page_end,
            Page::Stopped {
                first_unsent: first,
            } => {
                first_unsent = Some(first_unsent.map_or(first, |f| f.min(first)));
                first - 1
            }
        };
        let slot = &mut round.reached[i];
        *slot = Some(slot.map_or(reached, |r| r.max(reached)));
    }
    // Parks commit with the round; the next round sends those events.
    position.parked.extend(newly_parked);
    Ok(match first_unsent {
        Some(first_unsent) => Page::Stopped { first_unsent },
        None => Page::Sent,
    })
}

/// The routes that got event `id` in an earlier round of this window.
fn reached_by(position: &Position, id: i64) -> u64 {
    position
        .reached
        .iter()
        .enumerate()
        .filter(|&(_, &reached)| reached >= id)
        .fold(0, |mask, (i, _)| mask | 1 << i)
}

/// One send call, bounded by `send_timeout`: a call that takes longer
/// counts as failed (the events stay where they are and go again), so that
/// a hung call never holds the leadership.
pub(super) async fn timed_send(
    settings: &Settings,
    send: impl std::future::Future<Output = Result<SendOutcome, QueueError>>,
) -> Result<SendOutcome, QueueError> {
    tokio::time::timeout(settings.send_timeout, send)
        .await
        .unwrap_or_else(|_| {
            Err(QueueError::Unavailable(format!(
                "the send call took longer than {:?}",
                settings.send_timeout
            )))
        })
}

/// How long the rows of a by-reference event wait in `dawdle.payloads`:
/// as long as the queue may still deliver its message, and at least
/// `payload_retention`; `None`, until a listener handles it.
pub(super) async fn payload_retention(
    queue: &dyn Queue,
    settings: &Settings,
) -> Result<Option<Duration>, QueueError> {
    Ok(match queue.retention().await? {
        Retention::UntilDeleted => None,
        Retention::AtMost(kept) => Some(kept.max(settings.payload_retention)),
    })
}

/// How old the session's last answer may be before a send is fenced on a
/// check of the leader's lock.
const FENCE_AFTER: Duration = Duration::from_millis(100);

/// Packs `events` into messages and sends them. On a standard queue, a
/// message refused although its events went by reference can never be
/// sent: its events are held in `dawdle.held`, with the route and the
/// reason, and the others go on. (On a FIFO queue they wait: later changes of their rows
/// must not overtake them.)
async fn send(
    tx: &mut Tx<'_>,
    (route, target): (&str, Target<'_>),
    settings: &Settings,
    stats: &Stats,
    by_reference: &HashSet<i64>,
    events: Vec<PendingEvent>,
    round: &mut Round,
) -> Result<Page, WatcherError> {
    let session = tx.session;
    if matches!(target, Target::SameDatabase(_)) {
        // The messages go in the round's transaction, with the cursor's move.
        tx.begin().await?;
    }
    let queue = target.queue();
    let limits = Limits {
        fifo: queue.is_fifo(),
        max_bytes: queue.max_message_bytes(),
        max_events_per_message: settings.max_events_per_message,
        source: session.source(),
    };
    // The queries of this page have just been answered.
    let mut answered = Instant::now();
    let mut first_unsent: Option<i64> = None;
    for call in pack::pack(events, limits) {
        if first_unsent.is_some() {
            // A call failed: nothing after it goes in this round.
            first_unsent = lowest(
                first_unsent,
                call.iter().flat_map(|p| p.events.iter().copied()),
            );
            continue;
        }
        let messages: Vec<_> = call.iter().map(|p| p.message.clone()).collect();
        // The fence: a leader that lost its lock never sends again. The
        // lock is a session lock the watcher never releases, so a session
        // that answered a moment ago held it then: the check is needed, and
        // made, only when the last answer is older than `FENCE_AFTER` (after
        // a slow send, say). Under load, rounds take milliseconds, and a
        // query per send would cost the writers' cores for nothing.
        if answered.elapsed() >= FENCE_AFTER {
            if !session.still_leads().await? {
                return Err(WatcherError::LostLeadership);
            }
            answered = Instant::now();
        }
        let started = Instant::now();
        let sent = timed_send(settings, target.send(session, &messages)).await;
        let outcome = match sent {
            Ok(outcome) => outcome,
            Err(error) => {
                // Logged by the caller, which backs off.
                round.queue_error = Some(error);
                round.rolled_back = matches!(target, Target::SameDatabase(_));
                first_unsent = lowest(
                    first_unsent,
                    call.iter().flat_map(|p| p.events.iter().copied()),
                );
                continue;
            }
        };
        let accepted = pack::accepted_events(&outcome, &call);
        stats.record_send(route, accepted, outcome.accepted.len(), started.elapsed());
        round.sent += accepted;
        tracing::debug!(
            messages = messages.len(),
            events = accepted,
            latency_ms = started.elapsed().as_secs_f64() * 1e3,
            "sent"
        );
        for (index, error) in outcome.failed {
            let Some(packed) = call.get(index) else {
                continue;
            };
            if error.is_transient() {
                tracing::warn!(events = packed.events.len(), %error, "the queue failed a message; its events stay in PostgreSQL");
                round.queue_error = Some(error);
            } else if !limits.fifo && packed.events.iter().all(|id| by_reference.contains(id)) {
                let reason = error.to_string();
                for id in &packed.events {
                    session
                        .execute(watcher::HOLD, &[id, &packed.message.body, &reason, &route])
                        .await?;
                }
                round.held_in_transaction |= tx.open;
                tracing::error!(events = ?packed.events, %error, "the queue refused a message even by reference: its events are held in dawdle.held");
                continue;
            } else {
                // Backing off would not help: the same message would be
                // refused again, and hold up everything behind it.
                tracing::error!(events = packed.events.len(), %error, "the queue refused a message; its events go by reference");
                round.refused.extend(packed.events.iter().copied());
            }
            first_unsent = lowest(first_unsent, packed.events.iter().copied());
        }
    }
    Ok(match first_unsent {
        Some(first_unsent) => Page::Stopped { first_unsent },
        None => Page::Sent,
    })
}

/// The lowest of `current` and `ids`.
fn lowest(current: Option<i64>, ids: impl Iterator<Item = i64>) -> Option<i64> {
    ids.chain(current).min()
}

/// Which page of a window to read: the `limit` events after `after` of
/// the transactions visible in `upto` (NULL: now) and not in `read`.
struct Bounds<'a> {
    read: &'a str,
    upto: &'a Option<String>,
    after: i64,
    limit: i64,
}

/// Reads a page of the window and makes its events: the events, and the
/// snapshot that ends a new window (`None` when the page is empty).
async fn page_events(
    session: &Session,
    position: &mut Position,
    rotation: &mut Rotation,
    routing: &mut Routing<'_>,
    activity: &mut Activity,
    bounds: Bounds<'_>,
) -> Result<(Vec<ReadEvent>, Option<String>), WatcherError> {
    let (rows, built) = read_page(session, &mut position.encoder, &bounds).await?;
    let ends = rows.first().map(|row| row.get(4));
    let page = events(
        &rows,
        built,
        rotation,
        routing,
        activity,
        &mut position.counted,
    )?;
    Ok((page, ends))
}

/// Reads a page of the window through the text readers, and builds the
/// events PostgreSQL left to the watcher: the rows, and per row its event
/// JSON and FIFO group.
async fn read_page(
    session: &Session,
    encoder: &mut Encoder,
    bounds: &Bounds<'_>,
) -> Result<(Vec<tokio_postgres::Row>, Vec<(String, String)>), WatcherError> {
    let Bounds {
        read,
        upto,
        after,
        limit,
    } = *bounds;
    let rows = session
        .query_long(watcher::PAGE_TEXT, &[&read, upto, &after, &limit])
        .await?;
    let mut built = encoder.page(session.client(), &rows).await?;
    // Where the encoder could not, PostgreSQL builds the events: the same
    // window again, from the event before the first of them to the last,
    // gives the same events in the same order.
    let first = built.iter().position(Option::is_none);
    let last = built.iter().rposition(Option::is_none);
    if let (Some(first), Some(last)) = (first, last) {
        let from = if first == 0 {
            after
        } else {
            rows[first - 1].get(0)
        };
        let span = (last - first + 1) as i64;
        let again = session
            .query_long(watcher::PAGE, &[&read, upto, &from, &span])
            .await?;
        for (row, event) in rows.iter().zip(&mut built).skip(first) {
            if event.is_none() {
                let id: i64 = row.get(0);
                let again = again
                    .iter()
                    .find(|r| r.get::<_, i64>(0) == id)
                    .ok_or_else(|| unexpected("an event read a moment before"))?;
                *event = Some((again.get(2), again.get(3)));
            }
        }
    }
    let built = built.into_iter().map(Option::unwrap_or_default).collect();
    Ok((rows, built))
}

/// The events of a page.
fn events(
    rows: &[tokio_postgres::Row],
    built: Vec<(String, String)>,
    rotation: &mut Rotation,
    routing: &mut Routing<'_>,
    activity: &mut Activity,
    counted: &mut i64,
) -> Result<Vec<ReadEvent>, WatcherError> {
    rows.iter()
        .zip(built)
        .map(|(row, (json, group))| {
            let txid: String = row.get(1);
            rotation.saw(txid.parse().map_err(|_| unexpected("a transaction id"))?);
            let routes = routing.mask(row);
            let id: i64 = row.get(0);
            if id > *counted {
                activity.count(row.get(5), row.get(6), row.get(8));
                *counted = id;
            }
            Ok(ReadEvent {
                id,
                json,
                group,
                routes,
            })
        })
        .collect()
}

fn unexpected(what: &str) -> WatcherError {
    WatcherError::Unsupported(format!(
        "the window query did not return {what}: is dawdle's SQL of this version applied?"
    ))
}

/// Deletes expired payloads of by-reference events, and says how many.
pub(crate) async fn expire_payloads(session: &Session) -> Result<u64, WatcherError> {
    session.execute(watcher::EXPIRE_PAYLOADS, &[]).await
}

/// Releases the delayed signals that are due (at most `max`): how many, and
/// in how many seconds the next one not due yet falls due (less than zero:
/// it fell due meanwhile).
pub(crate) async fn release_signals(
    session: &Session,
    max: i32,
) -> Result<(i32, Option<f64>), WatcherError> {
    let row = session.query_one(watcher::RELEASE, &[&max]).await?;
    Ok((row.get(0), row.get::<_, Option<f64>>(1).map(|s| s.min(1e9))))
}

/// Backlog depth and the age of the oldest waiting event.
pub(crate) async fn backlog(session: &Session) -> Result<(i64, Option<Duration>), WatcherError> {
    let row = session.query_one(watcher::BACKLOG, &[]).await?;
    let age: Option<f64> = row.get(1);
    Ok((
        row.get::<_, Option<i64>>(0).unwrap_or(0),
        age.map(|s| Duration::from_secs_f64(s.max(0.0))),
    ))
}
