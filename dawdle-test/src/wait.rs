//! Waiting on a condition, with a limit: tests wait on signals, never on
//! fixed sleeps.

use std::time::Duration;

use tokio::time::Instant;

/// How often the condition is polled.
const POLL: Duration = Duration::from_millis(10);

/// Polls `condition` until it holds or `limit` passes; whether it held.
pub async fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !condition() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

/// [`wait_for`], panicking with "timed out waiting until {what}" when the
/// limit passes.
pub async fn wait_until(what: &str, limit: Duration, condition: impl FnMut() -> bool) {
    assert!(
        wait_for(limit, condition).await,
        "timed out waiting until {what}"
    );
}
