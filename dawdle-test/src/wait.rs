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

/// Polls the async `condition` until it gives a value or `limit` passes,
/// panicking with "timed out waiting until {what}" then: for conditions
/// that ask the database or a queue.
pub async fn eventually<T, F>(what: &str, limit: Duration, mut condition: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for an async condition that holds or not.
pub async fn until<F>(what: &str, limit: Duration, mut condition: impl FnMut() -> F)
where
    F: std::future::Future<Output = bool>,
{
    eventually(what, limit, || {
        let holds = condition();
        async move { holds.await.then_some(()) }
    })
    .await
}
