//! Metrics through the `metrics` facade, a span per handler call that the
//! handler's own logs run in, and the handler timeout.
//!
//! One test binary of its own: it installs a global metrics recorder and a
//! global tracing subscriber.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use dawdle::queue::MemoryQueue;
use dawdle::{Insert, Runtime, Watched};
use dawdle_test::{wait_for, TestDb};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "tasks")]
struct Task {
    id: i64,
    /// `ok`, or `hang-once`: the first call never returns.
    behavior: String,
}

/// Per row: calls so far, and the span each call ran in.
static CALLS: Mutex<Vec<(i64, Option<String>)>> = Mutex::new(Vec::new());

#[dawdle::handler(name = "tests.run_task")]
async fn run_task(event: Insert<Task>) {
    let span = tracing::Span::current();
    let name = span.metadata().map(|m| m.name().to_owned());
    let first = {
        let mut calls = CALLS.lock().unwrap();
        calls.push((event.new.id, name));
        calls.iter().filter(|(id, _)| *id == event.new.id).count() == 1
    };
    if event.new.behavior == "hang-once" && first {
        std::future::pending::<()>().await;
    }
}

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this test binary");
        // Spans are recorded only with a subscriber.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        snapshotter
    })
}

/// A metric's value so far.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Counter(u64),
    Gauge(f64),
    /// Every value recorded.
    Histogram(Vec<f64>),
}

/// Every metric so far by name and labels, as text. A snapshot drains
/// counters and histograms: their values add up here across snapshots.
fn metrics() -> HashMap<String, Value> {
    static SEEN: Mutex<Option<HashMap<String, Value>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap();
    let seen = seen.get_or_insert_with(HashMap::new);
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
        let value = match (key.kind(), value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => Value::Counter(n),
            (MetricKind::Gauge, DebugValue::Gauge(v)) => Value::Gauge(v.into_inner()),
            (_, DebugValue::Histogram(values)) => {
                Value::Histogram(values.into_iter().map(|v| v.into_inner()).collect())
            }
            (kind, value) => panic!("{name}: {kind:?} {value:?}"),
        };
        match (seen.get_mut(&name), value) {
            (Some(Value::Histogram(old)), Value::Histogram(new)) => old.extend(new),
            (Some(Value::Counter(old)), Value::Counter(new)) => *old += new,
            (_, value) => {
                seen.insert(name, value);
            }
        }
    }
    seen.clone()
}

fn counter(metrics: &HashMap<String, Value>, key: &str) -> u64 {
    match metrics.get(key) {
        Some(Value::Counter(n)) => *n,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_spans_and_the_handler_timeout() {
    snapshotter();
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE tasks (id bigint PRIMARY KEY, behavior text NOT NULL)")
        .await
        .unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[Task::TABLE]).unwrap())
        .await
        .unwrap();
    let handle = Runtime::builder()
        .database(db.config().clone())
        .pool(db.pool())
        .queue(MemoryQueue::new())
        .watch()
        .listen()
        .receive_wait(Duration::from_millis(200))
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .handler_timeout(Some(Duration::from_millis(300)))
        .watcher(|w| w.linger(Duration::from_millis(50)))
        .build()
        .unwrap()
        .start();
    client
        .batch_execute("INSERT INTO tasks VALUES (1, 'ok'), (2, 'ok'), (3, 'hang-once')")
        .await
        .unwrap();
    // The hung call times out, fails, and the event comes again.
    let done = wait_for(Duration::from_secs(30), || {
        let calls = CALLS.lock().unwrap();
        [1, 2].iter().all(|id| calls.iter().any(|(c, _)| c == id))
            && calls.iter().filter(|(c, _)| *c == 3).count() >= 2
    })
    .await;
    let settled = wait_for(Duration::from_secs(10), || {
        counter(
            &metrics(),
            "dawdle_listener_events_handled_total{handler=tests.run_task}",
        ) >= 3
    })
    .await;
    handle.shutdown().await.unwrap();
    assert!(done, "calls: {:?}", CALLS.lock().unwrap());
    assert!(settled, "{:?}", metrics().keys().collect::<Vec<_>>());

    // Every call ran in its handler span.
    for (id, span) in CALLS.lock().unwrap().iter() {
        assert_eq!(span.as_deref(), Some("handler"), "the call for row {id}");
    }
    let metrics = metrics();
    assert_eq!(
        counter(
            &metrics,
            "dawdle_listener_events_failed_total{handler=tests.run_task}"
        ),
        1,
        "the timed-out call"
    );
    assert!(counter(&metrics, "dawdle_watcher_events_sent_total{route=default}") >= 3);
    assert!(
        counter(
            &metrics,
            "dawdle_watcher_messages_sent_total{route=default}"
        ) >= 1
    );
    for histogram in [
        "dawdle_listener_handler_duration_seconds{handler=tests.run_task}",
        "dawdle_listener_commit_to_handler_seconds{table=public.tasks}",
        "dawdle_watcher_send_duration_seconds{route=default}",
    ] {
        assert!(
            matches!(metrics.get(histogram), Some(Value::Histogram(v)) if !v.is_empty()),
            "{histogram}: {:?}",
            metrics.get(histogram)
        );
    }
    assert!(
        matches!(
            metrics.get("dawdle_watcher_leading{}"),
            Some(Value::Gauge(_))
        ),
        "{:?}",
        metrics.keys().collect::<Vec<_>>()
    );
}
