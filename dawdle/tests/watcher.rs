//! The watcher against a real PostgreSQL, with MemoryQueue and with moto's
//! SQS server: every event id written arrives, whatever stops in between.

use std::collections::BTreeMap;
use std::time::Duration;

use dawdle::queue::{MemoryQueue, Queue, SqsQueue};
use dawdle::testing::TestDatabase;
use dawdle::watcher::{Watcher, WatcherHandle};
use dawdle::wire::Envelope;
use dawdle::{Column, Encoding, Events, SessionSettings, Table};
use dawdle_test::{until, Cluster, SqsServer, TestDb};
use tokio::time::{timeout, Instant};

static ITEMS: Table = Table {
    type_name: "tests::Item",
    schema: "public",
    name: "items",
    columns: &[
        Column {
            name: "id",
            field: "id",
            primary_key: true,
            sql: None,
            encoding: Encoding::Json,
            settings: SessionSettings::NONE,
        },
        Column {
            name: "body",
            field: "body",
            primary_key: false,
            sql: None,
            encoding: Encoding::Json,
            settings: SessionSettings::NONE,
        },
    ],
    events: Events::ALL,
    capture_unchanged: false,
    capture_replica: false,
};

async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let client = items(&db).await;
    (db, client)
}

/// Creates `items` in `db`, captured; a connection to `db`.
async fn items(db: &TestDatabase) -> tokio_postgres::Client {
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
        .await
        .unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[&ITEMS]).unwrap())
        .await
        .unwrap();
    client
}

/// Fast settings for tests: short standby retry and linger.
fn watcher(db: &TestDatabase, queue: impl Queue) -> WatcherHandle {
    Watcher::builder(db.config().clone(), queue)
        .standby_retry(Duration::from_millis(200))
        .linger(Duration::from_millis(50))
        .build()
        .start()
}

async fn insert(client: &tokio_postgres::Client, ids: std::ops::Range<i32>) {
    for chunk in ids.collect::<Vec<_>>().chunks(25) {
        let values: Vec<String> = chunk.iter().map(|i| format!("({i}, 'item {i}')")).collect();
        client
            .batch_execute(&format!("INSERT INTO items VALUES {}", values.join(",")))
            .await
            .unwrap();
    }
}

/// Every event received: id → how many times, (key, id) in arrival order,
/// and id → the event's `new` row.
#[derive(Debug, Default)]
struct Received {
    counts: BTreeMap<i64, u32>,
    order: Vec<(String, i64)>,
    rows: BTreeMap<i64, serde_json::Value>,
}

impl Received {
    fn add(&mut self, body: &str) {
        for event in Envelope::parse(body).unwrap().events {
            *self.counts.entry(event.id).or_default() += 1;
            self.order.push((event.key.get().to_owned(), event.id));
            self.rows.insert(event.id, event.new.unwrap_or_default());
        }
    }

    /// Each of `ids` arrived; nothing else did.
    fn assert_exactly(&self, ids: std::ops::RangeInclusive<i64>) {
        let got: Vec<i64> = self.counts.keys().copied().collect();
        assert_eq!(got, ids.collect::<Vec<_>>());
    }
}

/// Receives and deletes until `expected` distinct events arrived.
async fn collect(queue: &dyn Queue, expected: usize, received: &mut Received) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.counts.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} events arrived",
            received.counts.len()
        );
        let messages = queue
            .receive(10, Duration::from_secs(1), Duration::from_secs(30))
            .await
            .unwrap();
        for m in &messages {
            received.add(&m.body);
        }
        let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
        if !receipts.is_empty() {
            queue.delete(&receipts).await.unwrap();
        }
    }
}

/// Events still in `dawdle.events`.
async fn events_left(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM dawdle.events", &[])
        .await
        .unwrap()
        .get(0)
}

async fn wait_until(what: &str, condition: impl FnMut() -> bool) {
    dawdle_test::wait_until(what, Duration::from_secs(30), condition).await
}

#[tokio::test]
async fn delivers_every_event_and_empties_the_table() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let handle = watcher(&db, queue.clone());
    insert(&client, 1..301).await;
    client
        .batch_execute(
            "UPDATE items SET body = 'changed' WHERE id <= 100; DELETE FROM items WHERE id > 250;",
        )
        .await
        .unwrap();
    let mut received = Received::default();
    collect(&queue, 450, &mut received).await;
    received.assert_exactly(1..=450);
    assert!(
        received.counts.values().all(|&n| n == 1),
        "no duplicates without a failure"
    );
    // Standard queue, one watcher: the order of sending is the order of ids.
    let ids: Vec<i64> = received.order.iter().map(|(_, id)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(handle.stats().events_sent() >= 450);
    // The cursor moves after the last send: the round ends first.
    handle.shutdown().await.unwrap();
    assert_eq!(events_left(&client).await, 0);
}

#[tokio::test]
async fn events_that_commit_out_of_id_order_are_all_delivered() {
    // Writers hold their event ids for up to 0.3 s before committing (or
    // rolling back), across many of the watcher's floor checkpoints: the
    // watcher must skip no id that commits late.
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let handle = watcher(&db, queue.clone());
    // First for certain: one writer holds the lowest id while others stream
    // past it for longer than several checkpoints.
    let held = db.connect().await.unwrap();
    held.batch_execute("BEGIN; INSERT INTO items VALUES (10000, 'held')")
        .await
        .unwrap();
    for id in 10001..10021 {
        insert(&client, id..id + 1).await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    held.batch_execute("COMMIT").await.unwrap();
    let mut expected: Vec<String> = (10000..10021).map(|id| format!("[{id}]")).collect();
    let mut writers = Vec::new();
    for writer in 0..6i32 {
        let client = db.connect().await.unwrap();
        writers.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            for n in 0..15i32 {
                let id = writer * 100 + n;
                // Deterministic variety: hold times 0–280 ms, one in five rolled back.
                let hold = Duration::from_millis(((id * 37) % 8 * 40) as u64);
                let end = if id % 5 == 4 { "ROLLBACK" } else { "COMMIT" };
                client
                    .batch_execute(&format!("BEGIN; INSERT INTO items VALUES ({id}, 'x')"))
                    .await
                    .unwrap();
                tokio::time::sleep(hold).await;
                client.batch_execute(end).await.unwrap();
                if end == "COMMIT" {
                    committed.push(format!("[{id}]"));
                }
            }
            committed
        }));
    }
    for writer in writers {
        expected.extend(writer.await.unwrap());
    }
    let mut received = Received::default();
    collect(&queue, expected.len(), &mut received).await;
    let mut keys: Vec<String> = received.order.iter().map(|(key, _)| key.clone()).collect();
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected);
    handle.shutdown().await.unwrap();
    assert_eq!(events_left(&client).await, 0);
}

#[tokio::test]
async fn writer_and_watcher_roles_need_only_these_grants() {
    // The grants README.md lists: a writer role and a watcher role that own
    // nothing of dawdle's.
    let (db, client) = database().await;
    let (writer, watcher_role) = (
        format!("{}_writer", db.name()),
        format!("{}_watcher", db.name()),
    );
    client
        .batch_execute(&format!(
            r#"CREATE ROLE "{writer}" LOGIN; CREATE ROLE "{watcher_role}" LOGIN;
               GRANT SELECT, INSERT, UPDATE, DELETE ON items TO "{writer}";
               GRANT USAGE ON SCHEMA dawdle TO "{writer}", "{watcher_role}";
               GRANT USAGE ON SEQUENCE dawdle.event_id TO "{writer}";
               GRANT SELECT ON dawdle.cursor, dawdle.captures, dawdle.origin TO "{watcher_role}";
               GRANT UPDATE ON dawdle.cursor TO "{watcher_role}";
               GRANT SELECT, INSERT, DELETE ON dawdle.payloads TO "{watcher_role}";
               GRANT SELECT, INSERT, UPDATE, DELETE ON dawdle.activity TO "{watcher_role}";
               GRANT SELECT, INSERT, DELETE ON dawdle.delayed TO "{writer}";
               GRANT SELECT, UPDATE, DELETE ON dawdle.delayed TO "{watcher_role}";
               GRANT INSERT ON dawdle."signals:0", dawdle."signals:1", dawdle."signals:2" TO "{watcher_role}";
               DO $$
               DECLARE t text;
               BEGIN
                 FOR t IN SELECT unnest(slots) FROM dawdle.captures LOOP
                   EXECUTE format('GRANT INSERT ON %s TO "{writer}"', t);
                   EXECUTE format('GRANT SELECT, TRUNCATE ON %s TO "{watcher_role}"', t);
                 END LOOP;
               END $$;"#
        ))
        .await
        .unwrap();
    let mut as_watcher = db.config().clone();
    as_watcher.user(&watcher_role);
    let queue = MemoryQueue::new();
    let handle = Watcher::builder(as_watcher, queue.clone())
        .linger(Duration::from_millis(20))
        .build()
        .start();
    wait_until("it leads", || handle.stats().is_leading()).await;
    let mut as_writer = db.config().clone();
    as_writer.user(&writer);
    let (writes, connection) = as_writer.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    // Streaming (windows, and event tables emptied), then idle (the doorbell).
    for id in 0..20 {
        insert(&writes, id..id + 1).await;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let mut received = Received::default();
    collect(&queue, 20, &mut received).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    writes
        .batch_execute("UPDATE items SET body = 'changed' WHERE id = 0")
        .await
        .unwrap();
    collect(&queue, 21, &mut received).await;
    // A signal, delayed: sent by the writer, released by the watcher.
    writes
        .batch_execute("SELECT dawdle.signal('roles.test', '{}', now() + interval '300 ms')")
        .await
        .unwrap();
    collect(&queue, 22, &mut received).await;
    // A row larger than a message: parked, then sent by reference.
    writes
        .batch_execute("INSERT INTO items VALUES (1000, repeat('x', 1100000))")
        .await
        .unwrap();
    collect(&queue, 23, &mut received).await;
    let cancelled: bool = writes
        .query_one(
            "SELECT dawdle.cancel_signal(dawdle.signal('roles.test', '{}', now() + interval '1 hour'))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(cancelled);
    handle.shutdown().await.unwrap();
    // The watcher counted what it read (the signal's release included).
    let counted: i64 = client
        .query_one(
            "SELECT coalesce(sum(events), 0)::int8 FROM dawdle.activity",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(counted, 23);
    drop(writes);
    client
        .batch_execute(&format!(
            r#"DROP OWNED BY "{writer}", "{watcher_role}"; DROP ROLE "{writer}"; DROP ROLE "{watcher_role}";"#
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn catches_up_after_being_killed() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    insert(&client, 1..201).await;
    let first = watcher(&db, queue.clone());
    wait_until("some events were sent", || first.stats().events_sent() > 0).await;
    first.abort(); // as SIGKILL would: mid-stream, nothing cleaned up
    insert(&client, 201..401).await; // written while no watcher runs
    let second = watcher(&db, queue.clone());
    let mut received = Received::default();
    collect(&queue, 400, &mut received).await;
    received.assert_exactly(1..=400);
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_one_watcher_sends_and_a_standby_takes_over() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let a = watcher(&db, queue.clone());
    let b = watcher(&db, queue.clone());
    wait_until("one leads", || {
        a.stats().is_leading() || b.stats().is_leading()
    })
    .await;
    insert(&client, 1..101).await;
    let mut received = Received::default();
    collect(&queue, 100, &mut received).await;
    let (leader, standby) = if a.stats().is_leading() {
        (a, b)
    } else {
        (b, a)
    };
    assert!(!standby.stats().is_leading());
    assert_eq!(standby.stats().events_sent(), 0, "the standby sent nothing");

    leader.abort();
    let killed = Instant::now();
    wait_until("the standby leads", || standby.stats().is_leading()).await;
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "took over in {:?}",
        killed.elapsed()
    );
    insert(&client, 101..201).await;
    collect(&queue, 200, &mut received).await;
    received.assert_exactly(1..=200);
    standby.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_watcher_is_woken_by_the_doorbell() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    // The safety-net timer is far away: only the doorbell can wake it.
    let handle = Watcher::builder(db.config().clone(), queue.clone())
        .linger(Duration::from_millis(20))
        .poll_interval(Duration::from_secs(600))
        .build()
        .start();
    wait_until("it leads", || handle.stats().is_leading()).await;
    for round in 0..3 {
        // Idle long enough to arm the doorbell.
        tokio::time::sleep(Duration::from_millis(300)).await;
        insert(&client, round * 10..round * 10 + 1).await;
        let got = queue
            .receive(10, Duration::from_secs(60), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "round {round}");
        queue.delete(&[got[0].receipt.clone()]).await.unwrap();
    }
    handle.shutdown().await.unwrap();
}

/// Whether the watcher holds the doorbell (armed), seen from `pg_locks`.
async fn armed(client: &tokio_postgres::Client) -> bool {
    let (class, object) = dawdle::sql::DOORBELL_LOCK;
    client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted
                              AND mode = 'ExclusiveLock' AND classid::int = $1 AND objid::int = $2
                              AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
            &[&class, &object],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_open_writer_keeps_the_doorbell_disarmed_and_loses_nothing() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    // A writer captures a row and stays open. Nobody holds the doorbell
    // yet, so it does not ring: the watcher must not sleep until it ends.
    // (Started before the watcher, so that the watcher cannot have armed
    // the doorbell first: a writer then rings, and there is nothing to test.)
    let long = db.connect().await.unwrap();
    long.batch_execute("BEGIN; INSERT INTO items VALUES (1000, 'long')")
        .await
        .unwrap();
    let handle = Watcher::builder(db.config().clone(), queue.clone())
        .linger(Duration::from_millis(20))
        .poll_interval(Duration::from_secs(600))
        .build()
        .start();
    wait_until("it leads", || handle.stats().is_leading()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!armed(&client).await, "armed while a silent writer runs");
    // Other writers do not ring either, but the watcher still polls.
    insert(&client, 0..1).await;
    let got = timeout(
        Duration::from_secs(30),
        queue.receive(10, Duration::from_secs(60), Duration::from_secs(30)),
    )
    .await
    .expect("delivered by polling")
    .unwrap();
    assert_eq!(got.len(), 1);
    queue.delete(&[got[0].receipt.clone()]).await.unwrap();
    // The long writer commits: its event arrives, then the watcher arms.
    long.batch_execute("COMMIT").await.unwrap();
    let got = timeout(
        Duration::from_secs(30),
        queue.receive(10, Duration::from_secs(60), Duration::from_secs(30)),
    )
    .await
    .expect("the long writer's event is delivered")
    .unwrap();
    let events = Envelope::parse(&got[0].body).unwrap().events;
    assert_eq!(events[0].key.get(), "[1000]");
    queue.delete(&[got[0].receipt.clone()]).await.unwrap();
    until("the watcher arms", Duration::from_secs(30), || {
        armed(&client)
    })
    .await;
    // Armed, only the doorbell can wake it (the timer is 10 minutes away).
    insert(&client, 1..2).await;
    let got = timeout(
        Duration::from_secs(30),
        queue.receive(10, Duration::from_secs(60), Duration::from_secs(30)),
    )
    .await
    .expect("woken by the doorbell")
    .unwrap();
    assert_eq!(got.len(), 1);
    // A watcher that dies releases the doorbell with its session: writers
    // stop ringing.
    handle.abort();
    until(
        "the watcher's death disarms the doorbell",
        Duration::from_secs(30),
        || async { !armed(&client).await },
    )
    .await;
}

#[tokio::test]
async fn events_larger_than_a_message_go_by_reference() {
    let (db, client) = database().await;
    let queue = MemoryQueue::builder().max_message_bytes(64 * 1024).build();
    let big = "x".repeat(2 * 1024 * 1024);
    client
        .execute("INSERT INTO items VALUES (1, $1), (2, 'small')", &[&big])
        .await
        .unwrap();
    let handle = watcher(&db, queue.clone());
    let mut events = Vec::new();
    while events.len() < 2 {
        for m in queue
            .receive(10, Duration::from_secs(10), Duration::from_secs(30))
            .await
            .unwrap()
        {
            assert!(m.body.len() <= 64 * 1024);
            events.extend(Envelope::parse(&m.body).unwrap().events);
        }
    }
    assert!(
        events[0].by_ref && events[0].new.is_none(),
        "{:?}",
        events[0]
    );
    assert!(!events[1].by_ref);
    // The payload is in place before the message is sent.
    let row = client
        .query_one(
            "SELECT new->>'body' FROM dawdle.payloads WHERE id = $1",
            &[&events[0].id],
        )
        .await
        .unwrap();
    let body: String = row.get(0);
    assert_eq!(body, big, "the payload waits whole in PostgreSQL");
    handle.shutdown().await.unwrap();
}

async fn sqs_queue(fifo: bool) -> SqsQueue {
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("watcher", fifo, None).await.unwrap();
    SqsQueue::new(server.client().await, url)
}

#[tokio::test]
async fn delivers_to_a_standard_sqs_queue() {
    let (db, client) = database().await;
    let queue = sqs_queue(false).await;
    let handle = watcher(&db, queue.clone());
    insert(&client, 1..61).await;
    let mut received = Received::default();
    collect(&queue, 60, &mut received).await;
    received.assert_exactly(1..=60);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn fifo_keeps_each_rows_changes_in_order() {
    let (db, client) = database().await;
    let queue = sqs_queue(true).await;
    insert(&client, 1..6).await;
    for n in 0..8 {
        client
            .batch_execute(&format!("UPDATE items SET body = 'v{n}'"))
            .await
            .unwrap();
    }
    let handle = watcher(&db, queue.clone());
    let mut received = Received::default();
    collect(&queue, 45, &mut received).await;
    received.assert_exactly(1..=45);
    let mut per_row: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (key, id) in &received.order {
        per_row.entry(key.clone()).or_default().push(*id);
    }
    assert_eq!(per_row.len(), 5);
    for (key, ids) in per_row {
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "row {key}: {ids:?}");
    }
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_wait_while_sqs_is_unreachable() {
    let (db, client) = database().await;
    // Nothing listens on the port yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let url = format!("{endpoint}/123456789012/outage");
    let queue = SqsQueue::new(SqsServer::client_for(&endpoint).await, &url);
    let handle = watcher(&db, queue.clone());
    insert(&client, 1..21).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = events_left(&client).await;
    assert_eq!(waiting, 20, "nothing is removed while the queue is down");

    let server = SqsServer::start_on(port).await.unwrap();
    server
        .client()
        .await
        .create_queue()
        .queue_name("outage")
        .send()
        .await
        .unwrap();
    let mut received = Received::default();
    collect(&queue, 20, &mut received).await;
    received.assert_exactly(1..=20);
    handle.shutdown().await.unwrap();
}

/// The database goes away mid-stream, as in a restart: every connection to
/// it is terminated and new ones are refused for a while, then it is back.
#[tokio::test]
async fn survives_the_database_going_away_mid_stream() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let handle = watcher(&db, queue.clone());
    let admin = {
        let mut config = db.config().clone();
        config.dbname("postgres");
        let (admin, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        admin
    };
    let name = db.name().to_owned();
    let writer = tokio::spawn(async move {
        insert(&client, 1..301).await;
        client
    });
    wait_until("some events were sent", || handle.stats().events_sent() > 0).await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = '{name}' AND application_name = 'dawdle-watcher';"
        ))
        .await
        .unwrap();
    wait_until("the watcher noticed", || !handle.stats().is_leading()).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // reconnects are refused meanwhile
    admin
        .batch_execute(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let client = writer.await.unwrap();
    insert(&client, 301..351).await;
    let mut received = Received::default();
    collect(&queue, 350, &mut received).await;
    received.assert_exactly(1..=350);
    handle.shutdown().await.unwrap();
}

/// The current transaction id.
async fn txid(client: &tokio_postgres::Client) -> u64 {
    let text: String = client
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .unwrap()
        .get(0);
    text.parse().unwrap()
}

/// Ends transactions, each with an id of its own, until the next one's is
/// at least `until`.
async fn burn_txids_until(client: &tokio_postgres::Client, until: u64) {
    client
        .batch_execute(
            "CREATE OR REPLACE PROCEDURE pg_temp.burn(n int) LANGUAGE plpgsql AS $$
             BEGIN
               FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP;
             END $$",
        )
        .await
        .unwrap();
    let now = txid(client).await;
    if until > now {
        client
            .batch_execute(&format!("CALL pg_temp.burn({})", until - now))
            .await
            .unwrap();
    }
}

async fn rows_in(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(&format!(r#"SELECT count(*) FROM "dawdle"."{table}""#), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn event_tables_are_emptied_once_their_events_were_sent() {
    // A transaction writes to slot (txid / 4096) % 3 of the table's event
    // tables; once every transaction that could write to a slot has ended
    // and its events were sent, one TRUNCATE empties it. A cluster of its
    // own: transaction ids and snapshots are the cluster's, and the tests
    // running beside would move the spans on and hold the xmin back.
    let cluster = Cluster::builder().start().await.unwrap();
    let db = TestDatabase::on(cluster.admin()).await.unwrap();
    let client = items(&db).await;
    let queue = MemoryQueue::new();
    let handle = watcher(&db, queue.clone());
    // At the start of a span, so that both inserts below go to one slot.
    burn_txids_until(&client, ((txid(&client).await >> 12) + 1) << 12).await;
    let first = txid(&client).await + 1;
    let slot = |txid: u64| (txid >> 12) % 3;
    insert(&client, 0..50).await;
    let mut received = Received::default();
    collect(&queue, 50, &mut received).await;
    let early = format!("changes:{}:public.items", slot(first));
    assert!(rows_in(&client, &early).await > 0, "nothing to empty yet");

    // Into the span after next: the first slot is no longer written to.
    burn_txids_until(&client, ((first >> 12) + 2) << 12).await;
    let later = txid(&client).await + 1;
    assert_ne!(slot(later), slot(first));
    insert(&client, 50..100).await;
    collect(&queue, 100, &mut received).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows_in(&client, &early).await > 0 {
        assert!(Instant::now() < deadline, "{early} was never emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The slot written now keeps its events until its span is over.
    let current = format!("changes:{}:public.items", slot(later));
    assert_eq!(rows_in(&client, &current).await, 50);
    received.assert_exactly(1..=100);
    assert!(received.counts.values().all(|&n| n == 1), "{received:?}");
    handle.shutdown().await.unwrap();
    assert_eq!(events_left(&client).await, 0);
    drop(client);
    drop(db);
    cluster.stop().await;
}

#[tokio::test]
async fn a_window_larger_than_a_batch_is_sent_in_pages_in_order() {
    // Written before the watcher starts: one window of 300 events, read
    // 7 at a time, then 70 at a time.
    let (db, client) = database().await;
    insert(&client, 0..100).await;
    client
        .batch_execute(
            "UPDATE items SET body = body || ' once'; UPDATE items SET body = body || ' twice'",
        )
        .await
        .unwrap();
    let queue = MemoryQueue::new();
    let handle = Watcher::builder(db.config().clone(), queue.clone())
        .batch_size(7)
        .build()
        .start();
    let mut received = Received::default();
    collect(&queue, 300, &mut received).await;
    received.assert_exactly(1..=300);
    assert!(received.counts.values().all(|&n| n == 1), "{received:?}");
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for (key, id) in &received.order {
        let before = last.insert(key, *id).unwrap_or(0);
        assert!(before < *id, "row {key}: event {id} after {before}");
    }
    // The cursor moves after the last page is sent: the round ends first.
    handle.shutdown().await.unwrap();
    assert_eq!(events_left(&client).await, 0);
}

/// Receives and deletes until `expected` events arrived: their `new` rows,
/// by event id.
async fn new_rows(queue: &dyn Queue, expected: usize) -> BTreeMap<i64, serde_json::Value> {
    let mut received = Received::default();
    collect(queue, expected, &mut received).await;
    received.rows
}

#[tokio::test]
async fn events_follow_a_captured_columns_new_type() {
    // The watcher builds events with the column types it read once; an
    // ALTER TABLE changes them under it (the DDL trigger retypes the event
    // tables): a text turned jsonb is an object, no longer a string.
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let handle = watcher(&db, queue.clone());
    client
        .batch_execute(r#"INSERT INTO items VALUES (1, '{"a": 1}')"#)
        .await
        .unwrap();
    let before = new_rows(&queue, 1).await;
    assert_eq!(
        before.values().next().unwrap()["body"],
        serde_json::json!(r#"{"a": 1}"#)
    );
    client
        .batch_execute(
            r#"ALTER TABLE items ALTER COLUMN body TYPE jsonb USING body::jsonb;
               INSERT INTO items VALUES (2, '{"a": 2}')"#,
        )
        .await
        .unwrap();
    let after = new_rows(&queue, 1).await;
    assert_eq!(
        after.values().next().unwrap()["body"],
        serde_json::json!({"a": 2})
    );
    handle.shutdown().await.unwrap();
}

static MOODS: Table = Table {
    type_name: "tests::Mood",
    schema: "public",
    name: "moods",
    columns: &[
        Column {
            name: "id",
            field: "id",
            primary_key: true,
            sql: None,
            encoding: Encoding::Json,
            settings: SessionSettings::NONE,
        },
        Column {
            name: "mood",
            field: "mood",
            primary_key: false,
            sql: None,
            encoding: Encoding::Json,
            settings: SessionSettings::NONE,
        },
    ],
    events: Events::ALL,
    capture_unchanged: false,
    capture_replica: false,
};

#[tokio::test]
async fn a_type_with_its_own_cast_to_json_is_built_by_postgres() {
    // `to_json` calls a type's cast to json, which the watcher's encoder
    // cannot run: PostgreSQL builds those events, as the readers do.
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TYPE mood AS ENUM ('calm', 'glad');
             CREATE FUNCTION mood_json(mood) RETURNS json LANGUAGE sql IMMUTABLE
               AS $$ SELECT json_build_object('mood', $1::text) $$;
             CREATE CAST (mood AS json) WITH FUNCTION mood_json(mood);
             CREATE TABLE moods (id int PRIMARY KEY, mood mood NOT NULL);",
        )
        .await
        .unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[&MOODS]).unwrap())
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO moods VALUES (1, 'calm'), (2, 'glad')")
        .await
        .unwrap();
    assert_eq!(
        dawdle::__private::compare_encoders(&client).await.unwrap(),
        (0, 2),
        "both events left to PostgreSQL"
    );
    let queue = MemoryQueue::new();
    let handle = watcher(&db, queue.clone());
    let rows = new_rows(&queue, 2).await;
    let moods: Vec<_> = rows.values().map(|row| row["mood"].clone()).collect();
    assert_eq!(
        moods,
        [
            serde_json::json!({"mood": "calm"}),
            serde_json::json!({"mood": "glad"})
        ]
    );
    handle.shutdown().await.unwrap();
}
