//! Waiting before a retry: capped exponential backoff with jitter, for
//! everything dawdle retries (the watcher's connection and queue, the
//! listener's receives), and a sleep that a stop cuts short.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::sync::watch;

/// Steps of 100 ms doubling to 30 s, each wait a random 50–100 % of its
/// step, so that processes that failed together do not retry together.
#[derive(Debug)]
pub(crate) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { attempt: 0 }
    }

    /// Starts again from the first step, after a success.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The wait before the next attempt.
    pub(crate) fn next(&mut self) -> Duration {
        let cap = Duration::from_millis(100)
            .saturating_mul(1 << self.attempt.min(9))
            .min(Duration::from_secs(30));
        self.attempt += 1;
        // RandomState is seeded randomly per instance: enough jitter, no dependency.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let fraction = (random % 1000) as f64 / 1000.0;
        cap.mul_f64(0.5 + fraction / 2.0)
    }
}

/// Waits `delay`, or less if `stop` changes first.
pub(crate) async fn sleep_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap() {
        let mut backoff = Backoff::new();
        let first = backoff.next();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let second = backoff.next();
        assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
        for _ in 0..20 {
            assert!(backoff.next() <= Duration::from_secs(30));
        }
        backoff.reset();
        assert!(backoff.next() <= Duration::from_millis(100));
    }
}
