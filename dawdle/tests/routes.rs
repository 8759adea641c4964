//! Routes and fan-out against a real PostgreSQL and moto's SQS server: one
//! watcher delivers each table's and signal's events to every route that
//! takes them, each route getting every event once (in per-row order on
//! FIFO queues), whatever another route's queue does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dawdle::queue::{
    BoxFuture, MemoryQueue, OutgoingMessage, PgQueue, Queue, QueueError, Receipt, ReceivedMessage,
    SendOutcome, SqsQueue, TransactionalQueue,
};
use dawdle::watcher::{Route, Watcher, WatcherBuilder, WatcherHandle};
use dawdle::wire::Envelope;
use dawdle::{Column, Encoding, Events, SessionSettings, Table};
use dawdle_test::{eventually, SqsServer, TestDb};
use tokio::time::Instant;

const fn column(name: &'static str, primary_key: bool) -> Column {
    Column {
        name,
        field: name,
        primary_key,
        sql: None,
        encoding: Encoding::Json,
        settings: SessionSettings::NONE,
    }
}

static ITEMS: Table = Table {
    type_name: "tests::Item",
    schema: "public",
    name: "items",
    columns: &[column("id", true), column("body", false)],
    events: Events::ALL,
    capture_unchanged: false,
    capture_replica: false,
};

static NOTES: Table = Table {
    type_name: "tests::Note",
    schema: "public",
    name: "notes",
    columns: &[column("id", true), column("body", false)],
    events: Events::ALL,
    capture_unchanged: false,
    capture_replica: false,
};

async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL);
             CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL);",
        )
        .await
        .unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[&ITEMS, &NOTES]).unwrap())
        .await
        .unwrap();
    (db, client)
}

/// Fast settings for tests.
fn fast(builder: WatcherBuilder) -> WatcherHandle {
    builder
        .standby_retry(Duration::from_millis(200))
        .linger(Duration::from_millis(50))
        .build()
        .start()
}

fn pg_queue(db: &TestDb, name: &str, fifo: bool) -> PgQueue {
    PgQueue::builder(db.config().clone())
        .name(name)
        .fifo(fifo)
        .build()
}

/// Every event a queue delivered: id → how many times, the ids of each row
/// in arrival order, and each event's table and `route` member.
#[derive(Debug, Default)]
struct Received {
    counts: BTreeMap<i64, u32>,
    by_row: BTreeMap<String, Vec<i64>>,
    tables: BTreeMap<i64, String>,
    routes: BTreeMap<i64, Option<String>>,
}

impl Received {
    fn add(&mut self, body: &str) {
        for event in Envelope::parse(body).unwrap().events {
            *self.counts.entry(event.id).or_default() += 1;
            let row = format!("{}:{}", event.table, event.key.get());
            self.by_row.entry(row).or_default().push(event.id);
            self.tables.insert(event.id, event.table.clone());
            self.routes.insert(event.id, event.route.clone());
        }
    }

    /// Every event arrived once.
    fn assert_once(&self, expected: usize, route: &str) {
        assert_eq!(self.counts.len(), expected, "{route}: events that arrived");
        let twice: Vec<_> = self.counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{route}: arrived more than once: {twice:?}"
        );
    }

    /// Each row's events arrived in the order they were written.
    fn assert_row_order(&self, route: &str) {
        for (row, ids) in &self.by_row {
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(ids, &sorted, "{route}: events of {row} out of order");
        }
    }
}

/// Receives and deletes until `expected` distinct events arrived, then
/// waits a little longer for any that should not come.
async fn collect(queue: &dyn Queue, expected: usize) -> Received {
    let mut received = Received::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_until = None;
    loop {
        if received.counts.len() >= expected {
            let until = *quiet_until.get_or_insert(Instant::now() + Duration::from_millis(500));
            if Instant::now() >= until {
                return received;
            }
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} events arrived",
            received.counts.len()
        );
        let messages = queue
            .receive(10, Duration::from_millis(200), Duration::from_secs(30))
            .await
            .unwrap();
        for message in &messages {
            received.add(&message.body);
        }
        let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
        if !receipts.is_empty() {
            queue.delete(&receipts).await.unwrap();
        }
    }
}

/// 20 items inserted then updated twice, one statement each (60 events),
/// and 5 notes (5 events).
async fn write(client: &tokio_postgres::Client) {
    for id in 0..20 {
        client
            .execute("INSERT INTO items VALUES ($1, 'new')", &[&id])
            .await
            .unwrap();
    }
    for round in 1..=2 {
        for id in 0..20 {
            let body = format!("update {round}");
            client
                .execute("UPDATE items SET body = $2 WHERE id = $1", &[&id, &body])
                .await
                .unwrap();
        }
    }
    client
        .batch_execute("INSERT INTO notes SELECT g, 'note' FROM generate_series(1, 5) g")
        .await
        .unwrap();
}

#[tokio::test]
async fn one_table_fans_out_to_two_pg_queues_and_an_sqs_fifo_queue() {
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("routes", true, None).await.unwrap();
    let sqs = SqsQueue::builder(server.client().await, &url).build();
    let everything = pg_queue(&db, "everything", false);
    let items = pg_queue(&db, "items", true);
    let watcher = fast(
        Watcher::routed(
            db.config().clone(),
            Route::new("everything", everything.clone()),
        )
        .route(Route::new("items", items.clone()).tables(["items"]))
        .route(Route::new("sqs", sqs.clone()).tables(["public.items"])),
    );
    write(&client).await;

    let got = collect(&everything, 65).await;
    got.assert_once(65, "everything");
    assert_eq!(got.tables.values().filter(|t| *t == "notes").count(), 5);
    for (queue, name) in [(&items as &dyn Queue, "items"), (&sqs, "sqs")] {
        let got = collect(queue, 60).await;
        got.assert_once(60, name);
        got.assert_row_order(name);
        assert!(
            got.tables.values().all(|t| t == "items"),
            "{name} takes items only"
        );
        assert!(got.routes.values().all(Option::is_none), "sent inline");
    }
    watcher.shutdown().await.unwrap();
}

#[tokio::test]
async fn signals_follow_their_routes_and_unrouted_events_are_not_sent() {
    let (db, client) = database().await;
    let orders = MemoryQueue::new();
    let signals = MemoryQueue::new();
    let watcher = fast(
        Watcher::routed(
            db.config().clone(),
            Route::new("orders", orders.clone()).tables(["items"]),
        )
        .route(Route::new("signals", signals.clone()).signals(["invoice.due"])),
    );
    client
        .batch_execute(
            "INSERT INTO items VALUES (1, 'a'), (2, 'b');
             INSERT INTO notes VALUES (1, 'unrouted');
             SELECT dawdle.signal('invoice.due', '{\"invoice\": 7}');
             SELECT dawdle.signal('unrouted.signal', '{}');",
        )
        .await
        .unwrap();
    let got = collect(&orders, 2).await;
    got.assert_once(2, "orders");
    assert!(got.tables.values().all(|t| t == "items"));
    let got = collect(&signals, 1).await;
    got.assert_once(1, "signals");
    // The unrouted events were read and passed over: nothing waits.
    let deadline = Instant::now() + Duration::from_secs(10);
    while watcher.stats().backlog() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        orders
            .receive(10, Duration::ZERO, Duration::from_secs(1))
            .await
            .unwrap()
            .len(),
        0
    );
    watcher.shutdown().await.unwrap();
}

/// A queue whose first `failures` sends fail, as an unreachable queue's
/// would; then it sends to the queue it wraps.
#[derive(Debug, Clone)]
struct Flaky<Q> {
    inner: Q,
    failures: Arc<AtomicU32>,
}

impl<Q> Flaky<Q> {
    fn new(inner: Q, failures: u32) -> Flaky<Q> {
        let failures = Arc::new(AtomicU32::new(failures));
        Flaky { inner, failures }
    }

    fn fails(&self) -> bool {
        self.failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

fn unavailable() -> QueueError {
    QueueError::Unavailable("the test's queue is down".into())
}

impl<Q: Queue + Clone> Queue for Flaky<Q> {
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
        if self.fails() {
            return Box::pin(async { Err(unavailable()) });
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
    fn transactional(&self) -> Option<&dyn TransactionalQueue> {
        self.inner
            .transactional()
            .map(|_| self as &dyn TransactionalQueue)
    }
}

impl<Q: Queue + Clone> TransactionalQueue for Flaky<Q> {
    fn lives_in<'a>(
        &'a self,
        client: &'a tokio_postgres::Client,
    ) -> BoxFuture<'a, Result<bool, QueueError>> {
        self.inner.transactional().unwrap().lives_in(client)
    }
    fn send_in<'a>(
        &'a self,
        client: &'a tokio_postgres::Client,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        if self.fails() {
            return Box::pin(async { Err(unavailable()) });
        }
        self.inner
            .transactional()
            .unwrap()
            .send_in(client, messages)
    }
}

/// One route's queue fails for a while: the other route gets every event
/// once, not again with each retry, and the failing one gets them all
/// when it is back. Both ways round: the failing queue outside the
/// watcher's transaction (a MemoryQueue, after a PgQueue route), and inside
/// it (a PgQueue in the database, whose failed send rolls the round back,
/// after a MemoryQueue route that sent already).
#[tokio::test]
async fn a_failing_route_holds_up_only_itself() {
    for failing_in_transaction in [false, true] {
        let (db, client) = database().await;
        let (steady, flaky, flaky_reader): (Arc<dyn Queue>, Arc<dyn Queue>, Arc<dyn Queue>) =
            if failing_in_transaction {
                let queue = pg_queue(&db, "flaky", false);
                let flaky = Arc::new(Flaky::new(queue.clone(), 4));
                (Arc::new(MemoryQueue::new()), flaky, Arc::new(queue))
            } else {
                let queue = MemoryQueue::new();
                let flaky = Arc::new(Flaky::new(queue.clone(), 4));
                (
                    Arc::new(pg_queue(&db, "steady", false)),
                    flaky,
                    Arc::new(queue),
                )
            };
        let watcher = fast(
            Watcher::routed(db.config().clone(), Route::shared("steady", steady.clone()))
                .route(Route::shared("flaky", flaky))
                .max_events_per_message(5),
        );
        write(&client).await;
        let case = format!("failing in the transaction: {failing_in_transaction}");
        let got = collect(&*steady, 65).await;
        got.assert_once(65, &format!("steady ({case})"));
        let got = collect(&*flaky_reader, 65).await;
        got.assert_once(65, &format!("flaky ({case})"));
        watcher.shutdown().await.unwrap();
    }
}

/// A round that a failing route in the watcher's transaction rolls back,
/// while a transaction that took a lower event id is still open: the next
/// window holds that event too, and the route that got the round's events
/// gets it as well (its progress in the abandoned window does not count).
#[tokio::test]
async fn a_rolled_back_round_loses_no_event_that_commits_late() {
    let (db, client) = database().await;
    let steady = MemoryQueue::new();
    let flaky_queue = pg_queue(&db, "flaky", false);
    let flaky = Flaky::new(flaky_queue.clone(), 1);
    let failures = flaky.failures.clone();
    let late = db.connect().await.unwrap();
    // Takes event id 1 and stays open.
    late.batch_execute("BEGIN; INSERT INTO items VALUES (1, 'late')")
        .await
        .unwrap();
    // Event id 2, committed: the only event of the first window.
    client
        .execute("INSERT INTO items VALUES (2, 'early')", &[])
        .await
        .unwrap();
    let watcher = fast(
        Watcher::routed(db.config().clone(), Route::new("steady", steady.clone()))
            .route(Route::new("flaky", flaky)),
    );
    dawdle_test::wait_until(
        "the flaky route failed once",
        Duration::from_secs(30),
        || failures.load(Ordering::SeqCst) == 0,
    )
    .await;
    late.batch_execute("COMMIT").await.unwrap();
    let got = collect(&steady, 2).await;
    assert_eq!(got.counts.keys().copied().collect::<Vec<_>>(), [1, 2]);
    let got = collect(&flaky_queue, 2).await;
    got.assert_once(2, "flaky");
    watcher.shutdown().await.unwrap();
}

/// An event too large for the queues goes by reference to each route, each
/// copy naming its route; its rows stay until every route's reader removed
/// its claim, as the wire docs tell readers to.
#[tokio::test]
async fn by_reference_rows_wait_for_every_route() {
    let (db, client) = database().await;
    let small = |name: &str| {
        PgQueue::builder(db.config().clone())
            .name(name)
            .max_message_bytes(2048)
            .build()
    };
    let (a, b) = (small("a"), small("b"));
    let watcher = fast(
        Watcher::routed(db.config().clone(), Route::new("a", a.clone()))
            .route(Route::new("b", b.clone())),
    );
    client
        .batch_execute("INSERT INTO items VALUES (1, repeat('x', 5000)), (2, 'small')")
        .await
        .unwrap();
    let got_a = collect(&a, 2).await;
    let got_b = collect(&b, 2).await;
    got_a.assert_once(2, "a");
    got_b.assert_once(2, "b");
    let big = *got_a.routes.iter().find(|(_, r)| r.is_some()).unwrap().0;
    assert_eq!(got_a.routes[&big].as_deref(), Some("a"));
    assert_eq!(got_b.routes[&big].as_deref(), Some("b"));
    let forget = "UPDATE dawdle.payloads SET routes = array_remove(routes, $2)
                  WHERE id = $1 AND $2 = ANY(routes)";
    let delete = "DELETE FROM dawdle.payloads
                  WHERE id = $1 AND (routes IS NULL OR routes = '{}')";
    let left = || async {
        client
            .query_one(
                "SELECT count(*) FROM dawdle.payloads WHERE id = $1",
                &[&big],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(left().await, 1);
    client.execute(forget, &[&big, &"a"]).await.unwrap();
    client.execute(delete, &[&big]).await.unwrap();
    assert_eq!(left().await, 1, "route b still needs the rows");
    client.execute(forget, &[&big, &"b"]).await.unwrap();
    client.execute(delete, &[&big]).await.unwrap();
    assert_eq!(left().await, 0);
    watcher.shutdown().await.unwrap();
}

#[derive(Debug, Clone, PartialEq, dawdle::Watched)]
#[dawdle(table = "bigs")]
struct Big {
    id: i32,
    body: String,
}

/// Handled `Big` rows: id → calls.
static BIG_CALLS: std::sync::Mutex<BTreeMap<i32, u32>> = std::sync::Mutex::new(BTreeMap::new());

#[dawdle::handler]
async fn on_big(event: dawdle::Insert<Big>) {
    assert!(event.new.body.len() >= 5000 || event.new.body == "small");
    *BIG_CALLS.lock().unwrap().entry(event.new.id).or_default() += 1;
}

/// Two services, each with its listener on its own route's queue, both
/// handle a by-reference event; its rows are gone once both did.
#[tokio::test]
async fn two_services_handle_a_by_reference_event_then_its_rows_go() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE bigs (id int PRIMARY KEY, body text NOT NULL)")
        .await
        .unwrap();
    let tables = [<Big as dawdle::Watched>::TABLE];
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&tables).unwrap())
        .await
        .unwrap();
    let small = |name: &str| {
        PgQueue::builder(db.config().clone())
            .name(name)
            .max_message_bytes(2048)
            .build()
    };
    let (a, b) = (small("a"), small("b"));
    let service_a = dawdle::Runtime::builder()
        .database(db.config().clone())
        .route(Route::new("a", a.clone()).table::<Big>())
        .route(Route::new("b", b.clone()).table::<Big>())
        .queue(a)
        .watcher(|w| w.linger(Duration::from_millis(50)))
        .watch()
        .listen()
        .build()
        .unwrap()
        .start();
    let service_b = dawdle::Runtime::builder()
        .database(db.config().clone())
        .queue(b)
        .listen()
        .build()
        .unwrap()
        .start();
    client
        .batch_execute("INSERT INTO bigs VALUES (1, repeat('y', 5000)), (2, 'small')")
        .await
        .unwrap();
    dawdle_test::wait_until(
        "both services handled both rows",
        Duration::from_secs(60),
        || {
            let calls = BIG_CALLS.lock().unwrap();
            calls.get(&1) == Some(&2) && calls.get(&2) == Some(&2)
        },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = client
            .query_one("SELECT count(*) FROM dawdle.payloads", &[])
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} payload rows left after both handled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service_a.shutdown().await.unwrap();
    service_b.shutdown().await.unwrap();
}

#[derive(Debug, serde::Serialize, serde::Deserialize, dawdle::Signal)]
#[dawdle(name = "tests.routes.ping")]
struct Ping {
    n: u32,
}

/// `RuntimeHandle::signal` sends to the routes that take the signal, and
/// says so when none does.
#[tokio::test]
async fn a_runtime_signal_goes_to_the_routes_that_take_it() {
    let (db, _client) = database().await;
    let (pings, rows) = (MemoryQueue::new(), MemoryQueue::new());
    let runtime = dawdle::Runtime::builder()
        .database(db.config().clone())
        .route(Route::new("pings", pings.clone()).signal::<Ping>())
        .route(Route::new("rows", rows.clone()).tables(["items"]))
        .watch()
        .build()
        .unwrap()
        .start();
    runtime.signal(&Ping { n: 7 }).await.unwrap();
    let got = collect(&pings, 1).await;
    got.assert_once(1, "pings");
    let none = rows
        .receive(10, Duration::ZERO, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(none.is_empty(), "the rows route takes no signal");
    runtime.shutdown().await.unwrap();

    let runtime = dawdle::Runtime::builder()
        .database(db.config().clone())
        .route(Route::new("rows", rows).tables(["items"]))
        .watch()
        .build()
        .unwrap()
        .start();
    let error = runtime.signal(&Ping { n: 8 }).await.unwrap_err();
    assert!(
        matches!(&error, dawdle::signal::SignalError::NoRoute(name) if name == "tests.routes.ping"),
        "{error}"
    );
    runtime.shutdown().await.unwrap();
}

static TAGS: Table = Table {
    type_name: "tests::Tag",
    schema: "public",
    name: "tags",
    columns: &[column("name", true)],
    events: Events::ALL,
    capture_unchanged: false,
    capture_replica: false,
};

/// An event whose key alone is larger than the routes' messages is held in
/// `dawdle.held` once per route that refuses it, and the others go on.
#[tokio::test]
async fn an_event_refused_even_by_reference_is_held_for_each_route() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE tags (name text PRIMARY KEY)")
        .await
        .unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[&TAGS]).unwrap())
        .await
        .unwrap();
    let small = || MemoryQueue::builder().max_message_bytes(1024).build();
    let (a, b) = (small(), small());
    let watcher = fast(
        Watcher::routed(db.config().clone(), Route::new("a", a.clone()))
            .route(Route::new("b", b.clone())),
    );
    client
        .batch_execute(
            "INSERT INTO tags VALUES (repeat('k', 3000)); INSERT INTO tags VALUES ('small')",
        )
        .await
        .unwrap();
    for (queue, name) in [(&a, "a"), (&b, "b")] {
        let got = collect(queue, 1).await;
        got.assert_once(1, name);
    }
    // Held once refused by reference too, which may be a round after the
    // small one arrived: until each route has held it.
    let held = || async {
        client
            .query("SELECT route FROM dawdle.held ORDER BY route", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect::<Vec<String>>()
    };
    let routes = eventually("each route holds it", Duration::from_secs(30), || async {
        Some(held().await).filter(|routes| routes.len() >= 2)
    })
    .await;
    assert_eq!(routes, ["a", "b"]);
    watcher.shutdown().await.unwrap();
}
