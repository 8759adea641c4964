//! The active watcher's loop, as a state machine: after every round of the
//! drain it picks the state the round calls for, and the state's method
//! decides how long to wait before the next round (see the [module
//! docs](super) for why these states exist).

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::activity::Activity;
use super::drain::{self, Position, Round, Routing, Target};
use super::error::WatcherError;
use super::rotate::Rotation;
use super::route::Route;
use super::session::Session;
use super::settings::Settings;
use super::stats::Stats;
use crate::backoff::{sleep_or_stop, Backoff};
use crate::queue::QueueError;

/// The longest wait between polls while a writer keeps the watcher from
/// arming the doorbell.
const MAX_ARM_RETRY: Duration = Duration::from_millis(100);

/// The longest wait between two looks at the delayed signals: a signal
/// sent with a due time earlier than every other waiting one (or whose due
/// time was moved) is released at most this late.
const SIGNAL_RECHECK: Duration = Duration::from_millis(500);

/// At most this many delayed signals are released by one statement.
const RELEASE_LIMIT: i32 = 10_000;

/// The wait before another try after releasing failed.
const RELEASE_RETRY: Duration = Duration::from_secs(5);

/// What the leader does before its next round.
#[derive(Debug)]
enum State {
    /// The round read a full batch, or must send refused events by
    /// reference: read again at once.
    Busy,
    /// The queue failed, or refused events even by reference: the events
    /// wait in PostgreSQL while it backs off.
    QueueDown(QueueError),
    /// Events came recently: poll every `linger_poll` until `linger` has
    /// passed since the last one, so that a loaded system never arms the
    /// doorbell and its writers never notify.
    Lingering,
    /// Idle past the linger: try to arm the doorbell, and poll, at doubling
    /// intervals, while a writer that did not ring keeps it from arming.
    Arming,
    /// Armed, and the round after arming found nothing: sleep until the
    /// doorbell rings or the safety-net timer fires.
    Asleep,
}

/// Where each route sends: into the rounds' own transaction when its queue
/// is a PgQueue in the watcher's own database.
async fn routing<'a>(routes: &'a [Route], session: &Session) -> Routing<'a> {
    let mut targets = Vec::with_capacity(routes.len());
    for route in routes {
        let target = Target::of(&**route.queue(), session).await;
        if matches!(target, Target::SameDatabase(_)) {
            tracing::info!(
                route = route.name(),
                "the queue is in this database: events move to it in the drain's transactions"
            );
        }
        targets.push((route, target));
    }
    Routing::new(targets)
}

/// The leader's state between rounds.
pub(super) struct Leader<'a> {
    settings: &'a Settings,
    session: &'a Session,
    stats: &'a Stats,
    /// Where reads start, and what is known of the current window.
    position: Position,
    /// Emptying the event tables behind the cursor.
    rotation: Rotation,
    /// Where rounds send.
    routing: Routing<'a>,
    /// Events read since the activity was last saved.
    activity: Activity,
    queue_backoff: Backoff,
    next_backlog: Instant,
    /// When to look at the delayed signals next: when the earliest is due,
    /// or after [`SIGNAL_RECHECK`].
    next_release: Instant,
    last_event: Instant,
    /// Whether this session holds the doorbell lock (a new session never does).
    armed: bool,
    /// The wait before the next try to arm.
    arm_retry: Duration,
}

impl<'a> Leader<'a> {
    /// Reads the saved position; the leader then drains from there.
    pub(super) async fn new(
        settings: &'a Settings,
        routes: &'a [Route],
        session: &'a Session,
        stats: &'a Stats,
    ) -> Result<Leader<'a>, WatcherError> {
        Ok(Leader {
            settings,
            session,
            stats,
            position: Position::new(drain::load_cursor(session).await?),
            rotation: Rotation::new(),
            routing: routing(routes, session).await,
            activity: Activity::default(),
            queue_backoff: Backoff::new(),
            next_backlog: Instant::now(),
            next_release: Instant::now(),
            last_event: Instant::now(),
            armed: false,
            arm_retry: settings.linger_poll,
        })
    }

    /// Drains until `stop` turns true or the connection is lost.
    pub(super) async fn run(
        mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), WatcherError> {
        while !*stop.borrow() {
            let round = self.round().await?;
            match self.next_state(round).await? {
                State::Busy => {}
                State::QueueDown(error) => self.queue_down(error, stop).await,
                State::Lingering => self.linger(stop).await,
                State::Arming => self.arm(stop).await?,
                State::Asleep => self.sleep(stop).await?,
            }
        }
        // What was counted since the last report.
        let _ = self.activity.save(self.session).await;
        // Nobody listens once we are gone: writers need not notify.
        // (Closing the connection would release the lock too.)
        if self.armed {
            let _ = self.session.disarm().await;
        }
        Ok(())
    }

    /// One round of the drain, with the backlog report when it is due.
    async fn round(&mut self) -> Result<Round, WatcherError> {
        if Instant::now() >= self.next_backlog {
            // A report is not worth losing the lead over.
            if let Err(error) = self.report_backlog().await {
                tracing::warn!(%error, "could not measure the backlog");
            }
            // Under steady load too, not only when idle: the table of
            // by-reference payloads must not grow without bound.
            self.expire_payloads().await?;
            self.activity.save(self.session).await?;
            self.next_backlog = Instant::now() + self.settings.backlog_interval;
        }
        if Instant::now() >= self.next_release {
            self.release_signals().await?;
        }
        self.rotation
            .run(self.session, &self.position.cursor.read)
            .await?;
        drain::round(
            self.session,
            &mut self.routing,
            &mut self.activity,
            self.settings,
            self.stats,
            &mut self.position,
            &mut self.rotation,
        )
        .await
    }

    /// The state a round calls for. Events disarm the doorbell: the watcher
    /// polls while they flow.
    async fn next_state(&mut self, round: Round) -> Result<State, WatcherError> {
        let settings = self.settings;
        if !round.refused.is_empty() {
            let by_reference = &mut self.position.by_reference;
            let fresh = round.refused.iter().any(|id| !by_reference.contains(id));
            by_reference.extend(round.refused);
            if fresh {
                return Ok(State::Busy);
            }
            // Refused even by reference: sent again at once, they would be
            // refused again, in a loop. They wait in PostgreSQL instead.
            let error = round.queue_error.unwrap_or_else(|| {
                QueueError::Refused("events refused even by reference".to_owned())
            });
            return Ok(State::QueueDown(error));
        }
        if round.read > 0 {
            self.last_event = Instant::now();
            self.arm_retry = settings.linger_poll;
            if self.armed {
                self.session.disarm().await?;
                self.armed = false;
            }
        }
        if let Some(error) = round.queue_error {
            return Ok(State::QueueDown(error));
        }
        self.queue_backoff.reset();
        Ok(if round.more {
            State::Busy
        } else if round.read > 0 || self.last_event.elapsed() < settings.linger {
            State::Lingering
        } else if !self.armed {
            State::Arming
        } else {
            State::Asleep
        })
    }

    async fn queue_down(&mut self, error: QueueError, stop: &mut watch::Receiver<bool>) {
        let delay = self.queue_backoff.next();
        tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "queue unavailable; events wait in PostgreSQL");
        sleep_or_stop(delay, stop).await;
    }

    async fn linger(&mut self, stop: &mut watch::Receiver<bool>) {
        self.wait(self.settings.linger_poll, stop).await;
    }

    async fn arm(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), WatcherError> {
        if self.session.arm().await? {
            // Every writer that captured a row without ringing has ended:
            // the next round sees its events, and sleeps only if there are none.
            self.armed = true;
        } else {
            // Such a writer is still running: poll until it ends.
            self.wait(self.arm_retry, stop).await;
            self.arm_retry = (self.arm_retry * 2).min(MAX_ARM_RETRY);
        }
        Ok(())
    }

    async fn sleep(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), WatcherError> {
        self.wait(self.settings.poll_interval, stop).await;
        if !self.session.is_alive() {
            return Err(WatcherError::ConnectionClosed);
        }
        Ok(())
    }

    /// Waits for the doorbell, `timeout`, the next look at the delayed
    /// signals, or stop.
    async fn wait(&self, timeout: Duration, stop: &mut watch::Receiver<bool>) {
        let timeout = timeout.min(self.next_release.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = self.session.rung() => {}
            _ = tokio::time::sleep(timeout) => {}
            _ = stop.changed() => {}
        }
    }

    /// Moves the delayed signals that are due to the event tables, where
    /// this round reads them, and plans the next look. A failure (a grant
    /// missing) holds up the signals only, not the row events: it is
    /// logged and tried again later.
    async fn release_signals(&mut self) -> Result<(), WatcherError> {
        let (released, next_due) = match drain::release_signals(self.session, RELEASE_LIMIT).await {
            Ok(released) => released,
            Err(error) if self.session.is_alive() => {
                tracing::warn!(%error, "could not release the delayed signals that are due; retrying in 5 s");
                self.next_release = Instant::now() + RELEASE_RETRY;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        if released > 0 {
            tracing::debug!(released, "released delayed signals that are due");
        }
        // A signal due already but locked by a transaction (a cancel, a
        // move) is not in `next_due`: it waits for the next look, not in a
        // busy loop.
        let wait = match next_due {
            _ if released >= RELEASE_LIMIT => Duration::ZERO,
            None => SIGNAL_RECHECK,
            Some(due) => Duration::from_secs_f64(due.max(0.0)).min(SIGNAL_RECHECK),
        };
        self.next_release = Instant::now() + wait;
        Ok(())
    }

    async fn expire_payloads(&self) -> Result<(), WatcherError> {
        let expired = drain::expire_payloads(self.session).await?;
        if expired > 0 {
            tracing::warn!(
                payloads = expired,
                "removed expired payloads of by-reference events"
            );
        }
        Ok(())
    }

    async fn report_backlog(&self) -> Result<(), WatcherError> {
        let (depth, age) = drain::backlog(self.session).await?;
        self.stats.record_backlog(depth, age);
        tracing::info!(
            backlog = depth,
            oldest_age_ms = age.map_or(0, |a| a.as_millis() as u64),
            sent = self.stats.events_sent(),
            "watcher backlog"
        );
        let uncaptured = self.session.uncaptured().await?;
        if !uncaptured.is_empty() {
            tracing::error!(
                tables = %uncaptured.join(", "),
                "{}",
                super::session::uncaptured_message(&uncaptured)
            );
        }
        Ok(())
    }
}
