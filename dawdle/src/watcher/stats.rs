//! What a watcher has done so far, shared with its handle.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::observability;

/// What a watcher has done so far; read it through [`WatcherHandle::stats`](super::WatcherHandle::stats).
#[derive(Debug, Default)]
pub struct Stats {
    connected: AtomicBool,
    leading: AtomicBool,
    events_sent: AtomicU64,
    send_calls: AtomicU64,
    send_micros: AtomicU64,
    backlog: AtomicU64,
    oldest_age_ms: AtomicU64,
}

impl Stats {
    pub(super) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    pub(super) fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Relaxed);
        metrics::gauge!(observability::WATCHER_LEADING).set(if leading { 1.0 } else { 0.0 });
    }

    pub(super) fn record_send(&self, route: &str, events: usize, messages: usize, took: Duration) {
        self.events_sent.fetch_add(events as u64, Ordering::Relaxed);
        self.send_calls.fetch_add(1, Ordering::Relaxed);
        self.send_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let route = route.to_owned();
        metrics::counter!(observability::WATCHER_EVENTS_SENT, "route" => route.clone())
            .increment(events as u64);
        metrics::counter!(observability::WATCHER_MESSAGES_SENT, "route" => route.clone())
            .increment(messages as u64);
        metrics::histogram!(observability::WATCHER_SEND_DURATION, "route" => route)
            .record(observability::seconds(took));
    }

    pub(super) fn record_backlog(&self, depth: i64, oldest_age: Option<Duration>) {
        let depth = depth.max(0) as u64;
        self.backlog.store(depth, Ordering::Relaxed);
        let age_ms = oldest_age.map_or(0, |a| a.as_millis() as u64);
        self.oldest_age_ms.store(age_ms, Ordering::Relaxed);
        metrics::gauge!(observability::WATCHER_BACKLOG).set(depth as f64);
        metrics::gauge!(observability::WATCHER_OLDEST_AGE)
            .set(oldest_age.map_or(0.0, observability::seconds));
    }

    /// Whether the watcher is connected and its database answers, leading
    /// or standing by: what a readiness probe asks.
    pub fn is_ready(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Whether this watcher is the active one.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// Events the queues accepted from this watcher (an event sent to
    /// several routes counts once per route).
    pub fn events_sent(&self) -> u64 {
        self.events_sent.load(Ordering::Relaxed)
    }

    /// Send calls made (one SendMessageBatch each on SQS).
    pub fn send_calls(&self) -> u64 {
        self.send_calls.load(Ordering::Relaxed)
    }

    /// Total time spent in send calls.
    pub fn send_time(&self) -> Duration {
        Duration::from_micros(self.send_micros.load(Ordering::Relaxed))
    }

    /// Events waiting in `dawdle.events` at the last check.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Age of the oldest waiting event at the last check.
    pub fn oldest_age(&self) -> Duration {
        Duration::from_millis(self.oldest_age_ms.load(Ordering::Relaxed))
    }
}
