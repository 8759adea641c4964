//! Direct mode ([`RuntimeBuilder::signal_directly`]): `RuntimeHandle::signal`
//! calls the handlers as the listener does, each within the handler
//! timeout, in its `handler` span, counted in the handler metrics, with a
//! panic or a timeout failing that handler only and coming back as an error.
//!
//! One test binary of its own: it installs a global metrics recorder and a
//! global tracing subscriber. No database: direct mode needs none. Handlers
//! are global and tests run concurrently: each test has signal types and
//! handler names of its own.
//!
//! [`RuntimeBuilder::signal_directly`]: dawdle::RuntimeBuilder::signal_directly

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use dawdle::signal::SignalError;
use dawdle::{MemoryQueue, Runtime, RuntimeHandle, Signaled};
use dawdle_test::wait_until;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use serde::{Deserialize, Serialize};

/// Its handler never returns.
#[derive(Debug, Serialize, Deserialize, dawdle::Signal)]
#[dawdle(name = "direct.hang")]
struct Hang {}

/// Its first handler panics; its second records the call.
#[derive(Debug, Serialize, Deserialize, dawdle::Signal)]
#[dawdle(name = "direct.boom")]
struct Boom {}

/// Its handler records the span it runs in.
#[derive(Debug, Serialize, Deserialize, dawdle::Signal)]
#[dawdle(name = "direct.hello")]
struct Hello {}

/// Set when the hung handler's future is dropped: its call was cancelled.
static HANG_DROPPED: AtomicBool = AtomicBool::new(false);
static BOOM_RECORDED: AtomicU32 = AtomicU32::new(0);
static HELLO_SPANS: Mutex<Vec<Option<String>>> = Mutex::new(Vec::new());

struct SetOnDrop(&'static AtomicBool);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[dawdle::handler(name = "direct.hang")]
async fn hang(_: Signaled<Hang>) {
    let _dropped = SetOnDrop(&HANG_DROPPED);
    std::future::pending::<()>().await;
}

// Handlers are called in the order of their names.
#[dawdle::handler(name = "direct.boom.1_panics")]
async fn boom_panics(_: Signaled<Boom>) {
    panic!("kaboom");
}

#[dawdle::handler(name = "direct.boom.2_records")]
async fn boom_records(_: Signaled<Boom>) {
    BOOM_RECORDED.fetch_add(1, Ordering::SeqCst);
}

#[dawdle::handler(name = "direct.hello")]
async fn hello(_: Signaled<Hello>) {
    let span = tracing::Span::current();
    let name = span.metadata().map(|m| m.name().to_owned());
    HELLO_SPANS.lock().unwrap().push(name);
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

/// The handler metrics so far, by name and `handler` label: counters as
/// their total, histograms as their number of values. A snapshot drains
/// them, and tests run concurrently: every test's values add up here.
fn metrics() -> HashMap<String, u64> {
    static SEEN: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap();
    let seen = seen.get_or_insert_with(HashMap::new);
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
        let n = match (key.kind(), value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => n,
            (_, DebugValue::Histogram(values)) => values.len() as u64,
            _ => continue,
        };
        *seen.entry(name).or_default() += n;
    }
    seen.clone()
}

fn metric(name: &str, handler: &str) -> u64 {
    metrics()
        .get(&format!("{name}{{handler={handler}}}"))
        .copied()
        .unwrap_or(0)
}

fn direct(timeout: Option<Duration>) -> RuntimeHandle {
    snapshotter();
    Runtime::builder()
        .queue(MemoryQueue::new())
        .listen()
        .handler_timeout(timeout)
        .signal_directly()
        .build()
        .unwrap()
        .start()
}

/// `signal`, or a failed test if it does not return within `limit`.
async fn signal<T: dawdle::Signal>(
    handle: &RuntimeHandle,
    value: &T,
    limit: Duration,
) -> Result<i64, SignalError> {
    tokio::time::timeout(limit, handle.signal(value))
        .await
        .unwrap_or_else(|_| panic!("signal did not return within {limit:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_handler_times_out_and_is_cancelled() {
    let handle = direct(Some(Duration::from_millis(200)));
    let error = signal(&handle, &Hang {}, Duration::from_secs(10))
        .await
        .unwrap_err();
    let SignalError::Handler { handler, error } = error else {
        panic!("not a handler's failure: {error}");
    };
    assert_eq!(handler, "direct.hang");
    assert!(!error.is_panic());
    assert!(
        error
            .to_string()
            .contains("timed out after 200ms (the runtime's handler_timeout)"),
        "{error}"
    );
    wait_until("the hung call is cancelled", Duration::from_secs(5), || {
        HANG_DROPPED.load(Ordering::SeqCst)
    })
    .await;
    assert_eq!(
        metric("dawdle_listener_events_failed_total", "direct.hang"),
        1
    );
    assert_eq!(
        metric("dawdle_listener_events_handled_total", "direct.hang"),
        0
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_comes_back_as_an_error_and_the_other_handlers_still_run() {
    let handle = direct(None);
    let error = signal(&handle, &Boom {}, Duration::from_secs(10))
        .await
        .unwrap_err();
    let SignalError::Handler { handler, error } = error else {
        panic!("not a handler's failure: {error}");
    };
    assert_eq!(handler, "direct.boom.1_panics");
    assert!(error.is_panic(), "{error:?}");
    assert_eq!(error.to_string(), "panicked: kaboom");
    // As the listener does: one handler's failure does not skip the others.
    assert_eq!(BOOM_RECORDED.load(Ordering::SeqCst), 1);
    assert_eq!(
        metric(
            "dawdle_listener_events_failed_total",
            "direct.boom.1_panics"
        ),
        1
    );
    assert_eq!(
        metric(
            "dawdle_listener_events_handled_total",
            "direct.boom.2_records"
        ),
        1
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_runs_in_its_handler_span_and_is_measured() {
    let handle = direct(Some(Duration::from_secs(30)));
    let id = signal(&handle, &Hello {}, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(id, 1);
    assert_eq!(
        *HELLO_SPANS.lock().unwrap(),
        vec![Some("handler".to_owned())]
    );
    assert_eq!(
        metric("dawdle_listener_events_handled_total", "direct.hello"),
        1
    );
    assert_eq!(
        metric("dawdle_listener_handler_duration_seconds", "direct.hello"),
        1,
        "one call's duration"
    );
    handle.shutdown().await.unwrap();
}
