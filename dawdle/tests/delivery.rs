//! Delivery guarantees end to end: per-row order on FIFO queues when
//! handlers fail, and a graceful shutdown that loses nothing on an
//! in-process queue.
//!
//! Handlers are global (inventory), and tests run concurrently: each test
//! writes rows with keys of its own and looks only at what those keys got.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dawdle::queue::{
    BoxFuture, MemoryQueue, OutgoingMessage, Queue, QueueError, Receipt, ReceivedMessage,
    SendOutcome,
};
use dawdle::{Change, Runtime, Truncate, Watched};
use dawdle_test::{wait_for, TestDb};

/// A row whose every change bumps `version`: the order of its changes.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "counters")]
struct Counter {
    id: i64,
    /// Which test wrote the row.
    test: String,
    version: i32,
}

/// Per test, per row: the highest version handled successfully, the
/// versions whose first handling started too early, and every event id
/// handled.
#[derive(Debug, Default)]
struct Seen {
    handled: HashMap<i64, i32>,
    attempts: HashMap<i64, u32>,
    out_of_order: Vec<(i64, i32, i32)>,
    ids: HashSet<i64>,
    /// Each row's event sources, in the order handled.
    sources: HashMap<i64, Vec<Option<String>>>,
}

static SEEN: Mutex<BTreeMap<String, Seen>> = Mutex::new(BTreeMap::new());

/// A table whose truncation handlers want to know about.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "wiped")]
struct Wiped {
    id: i64,
}

/// A table captured in replica sessions too.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "replicated", capture_replica)]
struct Replicated {
    id: i64,
}

/// The database names whose `wiped` table was truncated, with the event ids.
static TRUNCATED: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());

#[dawdle::handler]
async fn wiped(event: Truncate<Wiped>) {
    TRUNCATED
        .lock()
        .unwrap()
        .push((event.meta.table.clone(), event.meta.id));
}

#[dawdle::handler]
async fn wiped_row(event: Change<Wiped>) -> Result<(), String> {
    Err(format!("a row handler got {:?}", event.meta().action))
}

/// Fails the first handling of about one event in 30 (3 %), and notes a
/// change whose handling starts before every earlier change of its row
/// succeeded.
#[dawdle::handler]
async fn count(event: Change<Counter>) -> Result<(), String> {
    let row = event.new().or(event.old()).expect("a row").clone();
    let version = if event.new().is_some() {
        row.version
    } else {
        i32::MAX // a delete comes after every update
    };
    let fail = {
        let mut seen = SEEN.lock().unwrap();
        let seen = seen.entry(row.test.clone()).or_default();
        let attempts = seen.attempts.entry(event.meta().id).or_default();
        *attempts += 1;
        let first_attempt = *attempts == 1;
        let done = seen.handled.get(&row.id).copied().unwrap_or(-1);
        let previous = if version == i32::MAX {
            done
        } else {
            version - 1
        };
        if first_attempt && done < previous {
            seen.out_of_order.push((row.id, version, done));
        }
        first_attempt && event.meta().id % 30 == 7
    };
    // Long enough for later messages of the row to be received meanwhile.
    tokio::time::sleep(Duration::from_millis(1)).await;
    if fail {
        return Err(format!("event {} fails once", event.meta().id));
    }
    let mut seen = SEEN.lock().unwrap();
    let seen = seen.entry(row.test).or_default();
    let done = seen.handled.entry(row.id).or_insert(-1);
    *done = (*done).max(version);
    seen.ids.insert(event.meta().id);
    seen.sources
        .entry(row.id)
        .or_default()
        .push(event.meta().source.clone());
    Ok(())
}

fn seen<T>(test: &str, read: impl FnOnce(&Seen) -> T) -> T {
    read(SEEN.lock().unwrap().entry(test.to_owned()).or_default())
}

async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE counters (id bigint PRIMARY KEY, test text NOT NULL, version int NOT NULL);
             CREATE TABLE wiped (id bigint PRIMARY KEY);
             CREATE TABLE replicated (id bigint PRIMARY KEY);",
        )
        .await
        .unwrap();
    let up = dawdle::sql::up(&[Counter::TABLE, Wiped::TABLE, Replicated::TABLE]).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    (db, client)
}

/// A runtime that watches and listens on `db` through `queue`, with the
/// short waits a test wants. A test that tunes the watcher again sets the
/// linger too: `.watcher(..)` replaces the tuning.
fn runtime(db: &TestDb, queue: impl Queue) -> dawdle::RuntimeBuilder {
    Runtime::builder()
        .database(db.config().clone())
        .pool(db.pool())
        .queue(queue)
        .watch()
        .listen()
        .receive_wait(Duration::from_millis(200))
        .watcher(|w| w.linger(Duration::from_millis(50)))
}

/// Every event id in `dawdle.events`.
async fn waiting_ids(client: &tokio_postgres::Client) -> HashSet<i64> {
    client
        .query(r#"SELECT "id" FROM "dawdle"."events""#, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_fifo_queue_a_later_change_waits_for_the_earlier_to_succeed() {
    const TEST: &str = "fifo";
    const ROWS: i64 = 200;
    const UPDATES: i32 = 10;
    let (db, client) = database().await;
    let queue = MemoryQueue::builder().fifo(true).max_receives(None).build();
    let handle = runtime(&db, queue)
        .concurrency(16)
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .unwrap()
        .start();
    client
        .execute(
            "INSERT INTO counters SELECT g, $1, 0 FROM generate_series(1, $2::int8) g",
            &[&TEST, &ROWS],
        )
        .await
        .unwrap();
    // Quick single-row updates, rows interleaved, so that a row's changes
    // spread over several messages and rounds.
    for _ in 0..UPDATES {
        for id in 1..=ROWS {
            client
                .execute(
                    "UPDATE counters SET version = version + 1 WHERE id = $1",
                    &[&id],
                )
                .await
                .unwrap();
        }
    }
    let all_done = wait_for(Duration::from_secs(60), || {
        seen(TEST, |s| {
            s.handled.len() == ROWS as usize && s.handled.values().all(|v| *v == UPDATES)
        })
    })
    .await;
    handle.shutdown().await.unwrap();
    let (out_of_order, handled) = seen(TEST, |s| (s.out_of_order.clone(), s.handled.len()));
    assert!(all_done, "only {handled} of {ROWS} rows were fully handled");
    assert!(
        out_of_order.is_empty(),
        "{} changes were first handled before an earlier change of their row \
         succeeded (row, version, highest handled): {:?}",
        out_of_order.len(),
        &out_of_order[..out_of_order.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_loses_nothing_on_an_in_process_queue() {
    const TEST: &str = "shutdown";
    const ROWS: i64 = 300;
    let (db, client) = database().await;
    let handle = runtime(&db, MemoryQueue::new())
        // One at a time, so that the queue holds a backlog at shutdown.
        .concurrency(1)
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .shutdown_timeout(Duration::from_secs(30))
        .watcher(|w| {
            w.linger(Duration::from_millis(50))
                .max_events_per_message(1)
        })
        .build()
        .unwrap()
        .start();
    client
        .execute(
            "INSERT INTO counters SELECT g, $1, 0 FROM generate_series(1, $2::int8) g",
            &[&TEST, &ROWS],
        )
        .await
        .unwrap();
    let all: HashSet<i64> = client
        .query(r#"SELECT "id" FROM "dawdle"."events""#, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(all.len(), ROWS as usize);
    // Shut down while events flow: some handled, some in the queue, some
    // perhaps still in PostgreSQL.
    assert!(
        wait_for(Duration::from_secs(30), || seen(TEST, |s| s.ids.len() >= 5)).await,
        "no event was handled"
    );
    handle.shutdown().await.unwrap();
    let handled = seen(TEST, |s| s.ids.clone());
    let waiting = waiting_ids(&client).await;
    let lost: Vec<_> = all
        .iter()
        .filter(|id| !handled.contains(id) && !waiting.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {ROWS} events were neither handled nor left in dawdle.events ({} handled, {} waiting)",
        lost.len(),
        handled.len(),
        waiting.len()
    );
}

/// A queue whose first send call never returns, as a queue whose server
/// froze mid-request would; later calls go through.
#[derive(Debug, Clone)]
struct HangsOnce {
    inner: MemoryQueue,
    hung: Arc<AtomicBool>,
    sends: Arc<AtomicU64>,
}

impl Queue for HangsOnce {
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }

    fn is_fifo(&self) -> bool {
        self.inner.is_fifo()
    }

    fn send<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        self.sends.fetch_add(1, Ordering::SeqCst);
        if !self.hung.swap(true, Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        self.inner.send(messages)
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, QueueError>> {
        self.inner.receive(max, wait, visibility)
    }

    fn delete<'a>(&'a self, receipts: &'a [Receipt]) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.delete(receipts)
    }

    fn change_visibility<'a>(
        &'a self,
        receipt: &'a Receipt,
        visibility: Duration,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.change_visibility(receipt, visibility)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_never_returns_times_out_and_loses_nothing() {
    const TEST: &str = "hung";
    const ROWS: i64 = 50;
    let (db, client) = database().await;
    let queue = HangsOnce {
        inner: MemoryQueue::new(),
        hung: Arc::default(),
        sends: Arc::default(),
    };
    let sends = queue.sends.clone();
    let handle = runtime(&db, queue)
        .watcher(|w| {
            w.linger(Duration::from_millis(50))
                .send_timeout(Duration::from_millis(300))
        })
        .build()
        .unwrap()
        .start();
    client
        .execute(
            "INSERT INTO counters SELECT g, $1, 0 FROM generate_series(1, $2::int8) g",
            &[&TEST, &ROWS],
        )
        .await
        .unwrap();
    let delivered = wait_for(Duration::from_secs(30), || {
        seen(TEST, |s| s.handled.len() == ROWS as usize)
    })
    .await;
    handle.shutdown().await.unwrap();
    assert!(
        delivered,
        "{} of {ROWS} rows handled after the hung send ({} send calls)",
        seen(TEST, |s| s.handled.len()),
        sends.load(Ordering::SeqCst)
    );
    assert!(
        sends.load(Ordering::SeqCst) >= 2,
        "the hung call was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_payloads_are_removed_while_events_flow() {
    let (db, client) = database().await;
    client
        .batch_execute(
            r#"INSERT INTO "dawdle"."payloads" ("id", "old", "new", "expires_at")
               VALUES (-1, NULL, '{}', now() - interval '1 second')"#,
        )
        .await
        .unwrap();
    // A linger longer than the test: the watcher never goes idle.
    let watcher = dawdle::Watcher::builder(db.config().clone(), MemoryQueue::new())
        .linger(Duration::from_secs(3600))
        .build()
        .start();
    let left = || async {
        client
            .query_one(r#"SELECT count(*) FROM "dawdle"."payloads""#, &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut id = 0_i64;
    while left().await > 0 && tokio::time::Instant::now() < deadline {
        id += 1;
        client
            .execute("INSERT INTO counters VALUES ($1, 'payloads', 0)", &[&id])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(watcher.stats().is_leading());
    watcher.shutdown().await.unwrap();
    assert_eq!(left().await, 0, "the expired payload is still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_their_database_origin_and_a_copy_can_take_a_new_one() {
    const TEST: &str = "source";
    let (db, client) = database().await;
    let handle = runtime(&db, MemoryQueue::new()).build().unwrap().start();
    let origin = || async {
        let row = client
            .query_one(r#"SELECT "source"::text FROM "dawdle"."origin""#, &[])
            .await
            .unwrap();
        Some(row.get::<_, String>(0))
    };
    let first = origin().await;
    client
        .execute("INSERT INTO counters VALUES (1, $1, 0)", &[&TEST])
        .await
        .unwrap();
    assert!(wait_for(Duration::from_secs(30), || seen(TEST, |s| s.ids.len() == 1)).await);
    // What a cloned or restored database does before its watcher starts.
    client
        .batch_execute(r#"UPDATE "dawdle"."origin" SET "source" = gen_random_uuid()"#)
        .await
        .unwrap();
    let second = origin().await;
    client
        .execute("UPDATE counters SET version = 1 WHERE id = 1", &[])
        .await
        .unwrap();
    assert!(wait_for(Duration::from_secs(30), || seen(TEST, |s| s.ids.len() == 2)).await);
    handle.shutdown().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(seen(TEST, |s| s.sources[&1].clone()), [first, second]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_refuses_event_ids_handed_out_in_blocks() {
    let (db, client) = database().await;
    client
        .batch_execute(r#"ALTER SEQUENCE "dawdle"."event_id" CACHE 20"#)
        .await
        .unwrap();
    client
        .execute("INSERT INTO counters VALUES (1, 'cache', 0)", &[])
        .await
        .unwrap();
    let watcher = dawdle::Watcher::builder(db.config().clone(), MemoryQueue::new())
        .build()
        .start();
    let stopped = wait_for(Duration::from_secs(30), || watcher.is_finished()).await;
    let error = watcher
        .shutdown()
        .await
        .map(|()| "stopped cleanly".to_owned());
    assert!(stopped, "the watcher kept running");
    let error = error.unwrap_err();
    assert!(error.is_fatal(), "{error}");
    assert!(error.to_string().contains("CACHE 20"), "{error}");
    // Nothing was sent: the event waits for a watcher that can read it.
    assert_eq!(waiting_ids(&client).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_is_one_event_for_truncate_handlers_only() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let handle = runtime(&db, queue.clone()).build().unwrap().start();
    client.batch_execute("TRUNCATE wiped").await.unwrap();
    // Only this test truncates `wiped`.
    let delivered = wait_for(Duration::from_secs(30), || {
        !TRUNCATED.lock().unwrap().is_empty()
    })
    .await;
    // Handled: gone from the queue, and no row handler failed on it.
    let emptied = wait_for(Duration::from_secs(10), || {
        queue.waiting() + queue.in_flight() == 0
    })
    .await;
    handle.shutdown().await.unwrap();
    assert!(delivered, "the Truncate handler was not called");
    assert_eq!(TRUNCATED.lock().unwrap()[0].0, "wiped");
    assert!(emptied, "the message stayed on the queue");
    assert!(
        queue.dead_letters().is_empty(),
        "{:?}",
        queue.dead_letters()
    );
}

#[tokio::test]
async fn capture_replica_captures_in_replica_sessions_too() {
    let (_db, client) = database().await;
    client
        .batch_execute(
            "SET session_replication_role = replica;
             INSERT INTO replicated VALUES (1);
             INSERT INTO counters VALUES (1, 'replica', 0);
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    let tables: Vec<String> = client
        .query(r#"SELECT "table_name" FROM "dawdle"."events""#, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(tables, ["replicated"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_is_ready_when_it_leads_or_stands_by_and_not_when_it_cannot_connect() {
    let (db, _client) = database().await;
    let start = || {
        dawdle::Watcher::builder(db.config().clone(), MemoryQueue::new())
            .standby_retry(Duration::from_millis(50))
            .build()
            .start()
    };
    let (a, b) = (start(), start());
    let ready = wait_for(Duration::from_secs(30), || {
        a.stats().is_ready()
            && b.stats().is_ready()
            && a.stats().is_leading() != b.stats().is_leading()
    })
    .await;
    assert!(ready, "a leader and a standby are both ready");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();

    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut nowhere = db.config().clone();
    nowhere.port(port);
    let lost = dawdle::Watcher::builder(nowhere, MemoryQueue::new())
        .build()
        .start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!lost.stats().is_ready());
    lost.shutdown().await.unwrap();
}
