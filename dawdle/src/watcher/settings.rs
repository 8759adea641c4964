//! The watcher's tuning, set through [`WatcherBuilder`](super::WatcherBuilder).

use std::time::Duration;

/// Tuning of a [`Watcher`](super::Watcher).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub batch_size: usize,
    pub max_events_per_message: usize,
    pub poll_interval: Duration,
    pub linger: Duration,
    pub linger_poll: Duration,
    pub standby_retry: Duration,
    pub payload_retention: Duration,
    pub backlog_interval: Duration,
    pub send_timeout: Duration,
}
