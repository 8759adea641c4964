//! What every part of the listener shares: the queue, the handlers, the
//! pool for by-reference payloads, and the settings.

use std::sync::Arc;
use std::time::Duration;

use crate::handler::Registry;
use crate::queue::Queue;

/// Tuning of the listener.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub concurrency: usize,
    pub wait: Duration,
    pub visibility: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub shutdown_timeout: Duration,
    pub handler_timeout: Option<Duration>,
}

impl Settings {
    /// The delay before a failed message returns: doubling per receive.
    pub(crate) fn retry_delay(&self, receive_count: u32) -> Duration {
        self.retry_base
            .saturating_mul(1 << receive_count.saturating_sub(1).min(16))
            .min(self.retry_max)
    }
}

#[derive(Debug)]
pub(crate) struct Listener {
    pub queue: Arc<dyn Queue>,
    pub registry: Arc<Registry>,
    pub pool: Option<deadpool_postgres::Pool>,
    pub settings: Settings,
    /// The tables and signals whose events this program met without a
    /// type or handler for them: each is logged once.
    pub unknown: std::sync::Mutex<std::collections::HashSet<String>>,
}
