//! [`sample_depth`]: a queue's [depth](super::QueueDepth) as gauges, read
//! every so often.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Queue, QueueDepth};
use crate::observability::{
    QUEUE_DEAD_LETTERS, QUEUE_DELAYED, QUEUE_DEPTH, QUEUE_IN_FLIGHT, QUEUE_OLDEST_AGE,
};

/// How often [`sample_depth`] reads a queue's depth by default: every 15 s.
pub const DEPTH_SAMPLE_INTERVAL: Duration = Duration::from_secs(15);

/// Reads the depth of `queue` now and then every `every` (at least a
/// millisecond apart; [`DEPTH_SAMPLE_INTERVAL`] is the usual) and sets the
/// gauges `dawdle_queue_depth`, `dawdle_queue_in_flight`,
/// `dawdle_queue_delayed`, `dawdle_queue_dead_letters` and
/// `dawdle_queue_oldest_age_seconds` (the last only where the queue can
/// tell), labelled `queue` with its [name](super::QueueAdmin::name); see
/// [`observability`](crate::observability).
///
/// Runs on a task of its own until it is aborted through the returned
/// handle, or the runtime ends. A failed read is logged (a warning, then
/// nothing more until the queue answers again), and the gauges keep their
/// last values meanwhile. `None`, and nothing started, when the queue
/// offers no [`admin`](Queue::admin).
///
/// # Panics
///
/// Outside a tokio runtime, as [`tokio::spawn`] does.
///
/// ```no_run
/// # async fn demo(config: tokio_postgres::Config) {
/// use dawdle::queue::{sample_depth, PgQueue, DEPTH_SAMPLE_INTERVAL};
///
/// let queue = PgQueue::new(config);
/// let sampler = sample_depth(&queue, DEPTH_SAMPLE_INTERVAL);
/// // ... and, to stop it:
/// if let Some(sampler) = sampler {
///     sampler.abort();
/// }
/// # }
/// ```
pub fn sample_depth(queue: &dyn Queue, every: Duration) -> Option<JoinHandle<()>> {
    let admin = queue.admin()?.to_shared();
    crate::observability::describe();
    let every = every.max(Duration::from_millis(1));
    Some(tokio::spawn(async move {
        let label = admin.name().to_owned();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match admin.depth().await {
                Ok(depth) => {
                    if failing {
                        tracing::info!(queue = %label, "reading the queue's depth works again");
                    }
                    failing = false;
                    record(&label, &depth);
                }
                Err(error) if failing => {
                    tracing::debug!(queue = %label, %error, "cannot read the queue's depth");
                }
                Err(error) => {
                    failing = true;
                    tracing::warn!(
                        queue = %label,
                        %error,
                        "cannot read the queue's depth; its gauges keep their last values"
                    );
                }
            }
        }
    }))
}

/// Sets the gauges of the queue `label` to `depth`.
fn record(label: &str, depth: &QueueDepth) {
    let counts = [
        (QUEUE_DEPTH, depth.waiting),
        (QUEUE_IN_FLIGHT, depth.in_flight),
        (QUEUE_DELAYED, depth.delayed),
        (QUEUE_DEAD_LETTERS, depth.dead_letters),
    ];
    for (name, count) in counts {
        metrics::gauge!(name, "queue" => label.to_owned()).set(count as f64);
    }
    if let Some(age) = depth.oldest_age {
        metrics::gauge!(QUEUE_OLDEST_AGE, "queue" => label.to_owned()).set(age.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::queue::{Failure, MemoryQueue, OutgoingMessage};

    /// The gauges of queue `memory` a recorder saw, by name.
    fn gauges(recorder: &DebuggingRecorder) -> HashMap<String, f64> {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| {
                key.key()
                    .labels()
                    .any(|l| l.key() == "queue" && l.value() == "memory")
            })
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Gauge(v) => Some((key.key().name().to_owned(), v.into_inner())),
                _ => None,
            })
            .collect()
    }

    // A current-thread runtime: the sampler's task runs on this thread,
    // where the local recorder is the default.
    #[tokio::test]
    async fn sets_the_gauges_from_the_queues_depth_until_aborted() {
        let recorder = DebuggingRecorder::new();
        let _local = metrics::set_default_local_recorder(&recorder);
        let queue = MemoryQueue::builder().max_receives(Some(5)).build();
        queue
            .send(&[
                OutgoingMessage::new("a"),
                OutgoingMessage::new("b"),
                OutgoingMessage::new("c"),
                OutgoingMessage {
                    delay: Duration::from_secs(60),
                    ..OutgoingMessage::new("later")
                },
            ])
            .await
            .unwrap();
        let got = queue
            .receive(2, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap();
        let failure = Failure::new(None, "bad", false);
        queue.dead_letter(&got[0], &failure).await.unwrap();

        let sampler = sample_depth(&queue, Duration::from_millis(10)).expect("it has admin");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let seen = loop {
            let seen = gauges(&recorder);
            if seen.len() == 5 || tokio::time::Instant::now() > deadline {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(seen.get(QUEUE_DEPTH), Some(&1.0), "{seen:?}");
        assert_eq!(seen.get(QUEUE_IN_FLIGHT), Some(&1.0), "{seen:?}");
        assert_eq!(seen.get(QUEUE_DELAYED), Some(&1.0), "{seen:?}");
        assert_eq!(seen.get(QUEUE_DEAD_LETTERS), Some(&1.0), "{seen:?}");
        let age = seen[QUEUE_OLDEST_AGE];
        assert!((0.0..5.0).contains(&age), "{age}");

        // Changes show at the next sample.
        queue.delete(&[got[1].receipt.clone()]).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while gauges(&recorder).get(QUEUE_IN_FLIGHT) != Some(&0.0) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never sampled again"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sampler.abort();
        assert!(sampler.await.unwrap_err().is_cancelled());
    }
}
