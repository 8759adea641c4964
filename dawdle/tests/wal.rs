//! Capture from the WAL, end to end: a cluster with `wal_level = logical`,
//! up rendered with `Capture::Wal`, a watcher reading the slot into a
//! MemoryQueue (or a PgQueue), and what arrives compared with the table as
//! a direct query reads it and with what the trigger mode sends.

use std::collections::BTreeMap;
use std::time::Duration;

use dawdle::queue::{MemoryQueue, Queue};
use dawdle::sql::Capture;
use dawdle::testing::{wait_until_drained, TestDatabase};
use dawdle::watcher::{Watcher, WatcherError, WatcherHandle};
use dawdle::wire::{Envelope, WireEvent};
use dawdle::{Action, Database, Table, Watched};
use dawdle_test::Cluster;
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio_postgres::Client;

const LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "kinds")]
struct Kinds {
    id: i32,
    at: chrono::DateTime<chrono::Utc>,
    score: f64,
    price: rust_decimal::Decimal,
    tags: Vec<String>,
    doc: Value,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "parts")]
struct Part {
    id: i64,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "emptied", events(insert, update, delete, truncate))]
struct Emptied {
    id: i64,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "animals", events(insert, update, delete))]
struct Animal {
    id: i64,
    name: String,
}

/// One logical cluster for the tests of this file (each its own database),
/// started once; it goes when the process exits.
async fn cluster() -> &'static Cluster {
    static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();
    CLUSTER
        .get_or_init(|| async { Cluster::builder().logical(true).start().await.unwrap() })
        .await
}

struct Delivered {
    queue: MemoryQueue,
    watcher: WatcherHandle,
    events: Vec<WireEvent>,
}

impl Delivered {
    fn start(database: &Database) -> Delivered {
        let queue = MemoryQueue::new();
        let watcher = Watcher::builder(database.clone(), queue.clone())
            .capture(Capture::Wal)
            .standby_retry(Duration::from_millis(200))
            .linger(Duration::from_millis(20))
            .build()
            .start();
        Delivered {
            queue,
            watcher,
            events: Vec::new(),
        }
    }

    /// Every event received so far, once each, in id order, after the
    /// watcher sent what was committed.
    async fn all(&mut self, client: &Client) -> &[WireEvent] {
        wait_until_drained(client, LIMIT).await.unwrap();
        self.receive().await;
        self.events.sort_by_key(|e| e.id);
        let before = self.events.len();
        self.events.dedup_by_key(|e| e.id);
        assert_eq!(before, self.events.len(), "an event arrived twice");
        &self.events
    }

    async fn receive(&mut self) {
        self.events.extend(receive_all(&self.queue).await);
    }
}

/// Every event the messages in `queue` carry, each message deleted.
async fn receive_all(queue: &MemoryQueue) -> Vec<WireEvent> {
    let mut events = Vec::new();
    loop {
        let messages = queue
            .receive(10, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap();
        if messages.is_empty() {
            return events;
        }
        for message in &messages {
            events.extend(Envelope::parse(&message.body).unwrap().events);
        }
        let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
        queue.delete(&receipts).await.unwrap();
    }
}

/// `users`, captured from the WAL, in a database of a logical cluster of
/// the test's own (which it may crash, or whose settings it may change).
async fn users_on_a_cluster_of_its_own() -> (Cluster, TestDatabase, Client) {
    let cluster = Cluster::builder().logical(true).start().await.unwrap();
    let db = TestDatabase::on(cluster.admin()).await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
    dawdle::sql::apply(
        &mut client,
        &dawdle::sql::up_with(&[User::TABLE], Capture::Wal).unwrap(),
    )
    .await
    .unwrap();
    (cluster, db, client)
}

async fn database(ddl: &str, tables: &[&'static Table]) -> (TestDatabase, Client) {
    let db = TestDatabase::on(cluster().await.admin()).await.unwrap();
    let mut client = db.connect().await.unwrap();
    client.batch_execute(ddl).await.unwrap();
    let up = dawdle::sql::up_with(tables, Capture::Wal).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    (db, client)
}

fn row_id(row: &Option<Value>) -> i64 {
    row.as_ref().expect("a row")["id"].as_i64().expect("an id")
}

/// The rows of `table` as its events, applied in id order, leave them.
fn replay(events: &[WireEvent], table: &str) -> BTreeMap<i64, Value> {
    let mut rows = BTreeMap::new();
    for e in events.iter().filter(|e| e.table == table) {
        match e.action {
            Action::Insert => {
                rows.insert(row_id(&e.new), e.new.clone().unwrap());
            }
            Action::Update => {
                rows.remove(&row_id(&e.old));
                rows.insert(row_id(&e.new), e.new.clone().unwrap());
            }
            Action::Delete => {
                rows.remove(&row_id(&e.old));
            }
            Action::Truncate => rows.clear(),
            other => panic!("unexpected {other:?} event"),
        }
    }
    rows
}

async fn rows(client: &Client, table: &str, columns: &str) -> BTreeMap<i64, Value> {
    client
        .query(
            &format!(
                "SELECT t.id::int8, row_to_json(t)::text FROM (SELECT {columns} FROM {table}) t"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let json: String = row.get(1);
            (row.get(0), serde_json::from_str(&json).unwrap())
        })
        .collect()
}

async fn assert_replays(events: &[WireEvent], client: &Client, table: &str, columns: &str) {
    assert_eq!(
        replay(events, table),
        rows(client, table, columns).await,
        "{table}: its events applied in id order (left) against the table (right): {:#?}",
        events
            .iter()
            .filter(|e| e.table == table)
            .map(|e| (e.id, e.action, &e.old, &e.new))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn changes_arrive_once_in_order_with_only_the_declared_columns() {
    let (db, client) = database(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, secret text)",
        &[User::TABLE],
    )
    .await;
    let mut delivered = Delivered::start(db.database());
    client
        .batch_execute(
            "INSERT INTO users VALUES (1, 'a', 's1');
             INSERT INTO users SELECT i, 'n' || i, 'x' FROM generate_series(2, 40) i;
             BEGIN; UPDATE users SET name = 'b' WHERE id = 1; UPDATE users SET name = 'c' WHERE id = 1; COMMIT;
             UPDATE users SET secret = 'only the undeclared column' WHERE id = 2;
             UPDATE users SET id = 100 WHERE id = 3;
             DELETE FROM users WHERE id BETWEEN 30 AND 35;",
        )
        .await
        .unwrap();
    // COPY: one WAL record for several rows.
    {
        use futures_util::SinkExt;
        let sink = client
            .copy_in("COPY users (id, name, secret) FROM STDIN")
            .await
            .unwrap();
        let mut sink = std::pin::pin!(sink);
        sink.send(bytes::Bytes::from_static(
            b"200\tcopied\ts\n201\tcopied too\ts\n202\tthird\ts\n",
        ))
        .await
        .unwrap();
        sink.close().await.unwrap();
    }
    let events = delivered.all(&client).await;
    assert!(
        events.iter().all(|e| e
            .new
            .as_ref()
            .or(e.old.as_ref())
            .is_some_and(|r| r.get("secret").is_none())),
        "an undeclared column left the database"
    );
    assert_eq!(
        events.iter().filter(|e| e.action == Action::Update).count(),
        3,
        "two name updates and the key change; the update of an undeclared column gives none"
    );
    let key_change = events
        .iter()
        .find(|e| e.action == Action::Update && row_id(&e.new) == 100)
        .expect("the key change");
    assert_eq!(row_id(&key_change.old), 3);
    assert_eq!(key_change.key.get(), "[100]");
    assert!(
        events.iter().all(|e| e.id > 1 << 62),
        "ids above the trigger mode's"
    );
    assert_replays(events, &client, "users", "id, name").await;
    let sent = events.len() as i64;
    delivered.watcher.shutdown().await.unwrap();
    // What the reader read, for the console's chart (saved at stop).
    let counted: i64 = client
        .query_one(
            "SELECT coalesce(sum(events), 0)::int8 FROM dawdle.activity WHERE table_name = 'users'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(counted, sent, "every event read is in dawdle.activity");
    // The console's pipeline page shows the slot.
    let console = dawdle::console::Console::builder(db.database().clone())
        .build()
        .unwrap();
    let page = get(console.router(), "/").await;
    assert!(page.contains("WAL slot dawdle_"), "{page}");
}

/// The body of a GET of `path` from `router`, served on loopback.
async fn get(router: axum::Router, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// The events of the messages in `queue`, as the raw JSON text each
/// message carries, with the values that differ between two capture runs
/// (id, source, capture time, transaction id) blanked.
async fn raw_events(queue: &MemoryQueue) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let mut events = Vec::new();
    for message in queue
        .receive(10, Duration::ZERO, Duration::from_secs(60))
        .await
        .unwrap()
    {
        let raw: Raw<'_> = serde_json::from_str(&message.body).unwrap();
        events.extend(raw.events.iter().map(|e| blank(e.get())));
    }
    events
}

/// `event` with the values of `"id"`, `"source"`, `"captured_at"` and
/// `"txid"` replaced by `_`.
fn blank(event: &str) -> String {
    let mut out = event.to_owned();
    for field in [
        "\"id\" : ",
        "\"source\" : ",
        "\"captured_at\" : ",
        "\"txid\" : ",
    ] {
        let at = out
            .find(field)
            .unwrap_or_else(|| panic!("{field} in {event}"))
            + field.len();
        let end = at + out[at..].find(", \"").unwrap();
        out.replace_range(at..end, "_");
    }
    out
}

#[tokio::test]
async fn the_wire_event_is_the_trigger_modes_byte_for_byte_but_for_id_time_and_txid() {
    let ddl = "CREATE TABLE kinds (id int PRIMARY KEY, at timestamptz, score float8, price numeric,
                                   tags text[], doc jsonb, note text)";
    let row = "INSERT INTO kinds VALUES (1, '2024-02-29 12:34:56.789+05:30', -0.0, 12345678901234567890.123,
                  ARRAY['a', NULL, 'c \"q\"'], '{\"k\": [1, 2.50, null], \"u\": \"\\u00e9\"}', E'tab\\there');
               UPDATE kinds SET score = 'NaN', note = NULL WHERE id = 1;
               INSERT INTO kinds VALUES (2, '-infinity', '1e-300', 'NaN', '{}', 'null', '');
               DELETE FROM kinds WHERE id = 1;";
    // By the WAL.
    let (db, client) = database(ddl, &[Kinds::TABLE]).await;
    let delivered = Delivered::start(db.database());
    client.batch_execute(row).await.unwrap();
    wait_until_drained(&client, LIMIT).await.unwrap();
    let wal = raw_events(&delivered.queue).await;
    delivered.watcher.shutdown().await.unwrap();
    // By the triggers, on a database of the same cluster.
    let triggers = TestDatabase::on(cluster().await.admin()).await.unwrap();
    let mut tclient = triggers.connect().await.unwrap();
    tclient.batch_execute(ddl).await.unwrap();
    dawdle::sql::apply(&mut tclient, &dawdle::sql::up(&[Kinds::TABLE]).unwrap())
        .await
        .unwrap();
    let queue = MemoryQueue::new();
    let watcher = Watcher::builder(triggers.database().clone(), queue.clone())
        .linger(Duration::from_millis(20))
        .build()
        .start();
    tclient.batch_execute(row).await.unwrap();
    wait_until_drained(&tclient, LIMIT).await.unwrap();
    let by_triggers = raw_events(&queue).await;
    watcher.shutdown().await.unwrap();
    assert_eq!(wal.len(), 4);
    assert_eq!(
        wal, by_triggers,
        "the WAL's events (left), the triggers' (right)"
    );
}

#[tokio::test]
async fn partitions_nested_statements_and_cascades_come_in_the_order_applied() {
    let (db, client) = database(
        "CREATE TABLE parts (id bigint PRIMARY KEY, name text NOT NULL) PARTITION BY HASH (id);
         CREATE TABLE parts_0 PARTITION OF parts FOR VALUES WITH (MODULUS 2, REMAINDER 0);
         CREATE TABLE parts_1 PARTITION OF parts FOR VALUES WITH (MODULUS 2, REMAINDER 1);
         CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL,
                             boss bigint REFERENCES users (id) ON UPDATE CASCADE ON DELETE CASCADE);
         CREATE FUNCTION verify() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN UPDATE users SET name = NEW.name || ' (verified)' WHERE id = NEW.id; RETURN NULL; END $$;
         CREATE TRIGGER verify AFTER INSERT ON users FOR EACH ROW WHEN (NEW.id < 10) EXECUTE FUNCTION verify();",
        &[Part::TABLE, User::TABLE],
    )
    .await;
    let mut delivered = Delivered::start(db.database());
    client
        .batch_execute(
            "INSERT INTO parts SELECT i, 'p' || i FROM generate_series(1, 20) i;
             INSERT INTO parts_0 VALUES (1000, 'named the partition');
             UPDATE parts_1 SET name = name || '!';
             DELETE FROM parts_0 WHERE id < 10;
             CREATE TABLE parts_later (LIKE parts);
             INSERT INTO users VALUES (1, 'alice', NULL), (20, 'bob', NULL);
             WITH d AS (DELETE FROM users WHERE id = 20 RETURNING id)
               INSERT INTO users SELECT id, 'bob again', NULL FROM d;
             INSERT INTO users VALUES (21, 'carol', 20);
             UPDATE users SET id = 22 WHERE id = 20;",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await.to_vec();
    assert!(events
        .iter()
        .filter(|e| e.table == "parts")
        .all(|e| e.schema == "public"));
    assert_replays(&events, &client, "parts", "id, name").await;
    assert_replays(&events, &client, "users", "id, name").await;
    let alice: Vec<_> = events
        .iter()
        .filter(|e| e.table == "users" && e.new.as_ref().is_some_and(|n| n["id"] == 1))
        .map(|e| e.new.as_ref().unwrap()["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        alice,
        ["alice", "alice (verified)"],
        "the nested update after the insert"
    );
    delivered.watcher.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_killed_watcher_leaves_nothing_unsent_and_signals_still_go() {
    let (db, client) = database(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)",
        &[User::TABLE],
    )
    .await;
    let queue = MemoryQueue::new();
    let start = || {
        Watcher::builder(db.database().clone(), queue.clone())
            .capture(Capture::Wal)
            .standby_retry(Duration::from_millis(100))
            .build()
            .start()
    };
    let first = start();
    client
        .batch_execute("INSERT INTO users SELECT i, 'n' FROM generate_series(1, 500) i")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    first.abort();
    client
        .batch_execute(
            "UPDATE users SET name = 'after' WHERE id % 7 = 0;
             SELECT dawdle.signal('wal.test', '{\"hello\": 1}'::json);",
        )
        .await
        .unwrap();
    let second = start();
    wait_until_drained(&client, LIMIT).await.unwrap();
    let events = receive_all(&queue).await;
    let mut ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    let inserts = events
        .iter()
        .filter(|e| e.action == Action::Insert)
        .map(|e| e.id);
    let updates = events
        .iter()
        .filter(|e| e.action == Action::Update)
        .map(|e| e.id);
    assert_eq!(
        inserts.collect::<std::collections::BTreeSet<_>>().len(),
        500,
        "every insert at least once"
    );
    assert_eq!(updates.collect::<std::collections::BTreeSet<_>>().len(), 71);
    assert_eq!(
        events.iter().filter(|e| e.action == Action::Signal).count(),
        1,
        "the signal, through the event tables"
    );
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_invalidated_slot_is_reported_and_stops_the_watcher() {
    // A cluster of its own: the WAL limit is the cluster's.
    let (cluster, db, client) = users_on_a_cluster_of_its_own().await;
    for statement in [
        "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'",
        "ALTER SYSTEM SET wal_keep_size = 0",
        "SELECT pg_reload_conf()",
    ] {
        client.execute(statement, &[]).await.unwrap();
    }
    // WAL the slot keeps, past the limit, while no watcher reads it.
    for _ in 0..6 {
        client
            .batch_execute(
                "INSERT INTO users SELECT i, repeat('x', 200) FROM generate_series(1, 2000) i
                   ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name || '.'",
            )
            .await
            .unwrap();
        client.execute("SELECT pg_switch_wal()", &[]).await.unwrap();
        client.execute("CHECKPOINT", &[]).await.unwrap();
    }
    let status: String = client
        .query_one(
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = dawdle.slot_name()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "lost", "the slot is invalidated");
    let watcher = Watcher::builder(db.database().clone(), MemoryQueue::new())
        .capture(Capture::Wal)
        .build()
        .start();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !watcher.is_finished() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher stops by itself"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = watcher.shutdown().await.expect_err("with an error");
    let message = error.to_string();
    assert!(matches!(error, WatcherError::Unsupported(_)), "{message}");
    assert!(message.contains("invalidated"), "{message}");
    assert!(message.contains("backfill"), "{message}");
    drop(client);
    drop(db);
    cluster.stop().await;
}

#[tokio::test]
async fn a_server_without_logical_wal_is_refused_with_what_to_do() {
    let cluster = Cluster::builder().start().await.unwrap();
    let db = TestDatabase::on(cluster.admin()).await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
    let up = dawdle::sql::up_with(&[User::TABLE], Capture::Wal).unwrap();
    let error = dawdle::sql::apply(&mut client, &up)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("wal_level"), "{error}");
    drop(client);
    drop(db);
    cluster.stop().await;
}

#[tokio::test]
async fn a_crash_of_postgresql_loses_no_event_of_a_committed_change() {
    // A cluster of its own, which this test crashes.
    let (cluster, db, client) = users_on_a_cluster_of_its_own().await;
    let queue = MemoryQueue::new();
    let watcher = Watcher::builder(db.database().clone(), queue.clone())
        .capture(Capture::Wal)
        .standby_retry(Duration::from_millis(100))
        .build()
        .start();
    for id in 1..=150i64 {
        client
            .execute("INSERT INTO users VALUES ($1, 'before')", &[&id])
            .await
            .unwrap();
    }
    cluster.crash().await.unwrap();
    let client = db.connect().await.unwrap();
    for id in 151..=300i64 {
        client
            .execute("INSERT INTO users VALUES ($1, 'after')", &[&id])
            .await
            .unwrap();
    }
    client
        .batch_execute("UPDATE users SET name = name || '!' WHERE id % 10 = 0")
        .await
        .unwrap();
    wait_until_drained(&client, LIMIT).await.unwrap();
    let mut events = receive_all(&queue).await;
    events.sort_by_key(|e| e.id);
    events.dedup_by_key(|e| e.id);
    // Every row that survived the crash (a commit the server had not
    // written may be gone, with its event) arrived, as it is now.
    assert_replays(&events, &client, "users", "id, name").await;
    watcher.shutdown().await.unwrap();
    drop(client);
    drop(db);
    cluster.stop().await;
}

#[tokio::test]
async fn concurrent_writers_rows_arrive_in_order_per_fifo_group() {
    let (db, client) = database(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)",
        &[User::TABLE],
    )
    .await;
    client
        .batch_execute("INSERT INTO users SELECT i, '0' FROM generate_series(1, 10) i")
        .await
        .unwrap();
    let queue = MemoryQueue::builder().fifo(true).build();
    let watcher = Watcher::builder(db.database().clone(), queue.clone())
        .capture(Capture::Wal)
        .build()
        .start();
    // Four writers update the same ten rows, each change its own
    // transaction, so that their transactions interleave in the WAL.
    let mut writers = Vec::new();
    for w in 0..4 {
        let client = db.connect().await.unwrap();
        writers.push(tokio::spawn(async move {
            for n in 0..50 {
                let id = (n * 7 + w) % 10 + 1;
                client
                    .execute(
                        "UPDATE users SET name = (name::int + 1)::text WHERE id = $1",
                        &[&(id as i64)],
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    wait_until_drained(&client, LIMIT).await.unwrap();
    // Received group by group as the queue hands them out, each message
    // deleted before the group's next is given.
    let mut last: BTreeMap<String, (i64, String)> = BTreeMap::new();
    let mut events = 0;
    loop {
        let messages = queue
            .receive(10, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap();
        if messages.is_empty() {
            break;
        }
        for message in &messages {
            let group = message.group_id.clone().expect("a FIFO group");
            for event in Envelope::parse(&message.body).unwrap().events {
                events += 1;
                let name = event.new.as_ref().unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                if let Some((id, previous)) = last.get(&group) {
                    assert!(event.id > *id, "{group}: event {} after {id}", event.id);
                    assert_eq!(
                        name.parse::<i64>().unwrap(),
                        previous.parse::<i64>().unwrap() + 1,
                        "{group}: each update once, in order"
                    );
                }
                last.insert(group.clone(), (event.id, name));
            }
        }
        let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
        queue.delete(&receipts).await.unwrap();
    }
    assert_eq!(events, 210, "every insert and update once");
    for (id, row) in rows(&client, "users", "id, name").await {
        let group = format!("public.users:[{id}]");
        assert_eq!(
            last.get(&group).map(|(_, name)| name.as_str()),
            row["name"].as_str(),
            "the last event of {group} is the row as it is"
        );
    }
    watcher.shutdown().await.unwrap();
}

#[tokio::test]
async fn children_later_partitions_and_truncates_as_the_triggers_capture_them() {
    let (db, client) = database(
        "CREATE TABLE emptied (id bigint PRIMARY KEY, name text NOT NULL) PARTITION BY RANGE (id);
         CREATE TABLE emptied_a PARTITION OF emptied FOR VALUES FROM (0) TO (100);
         CREATE TABLE animals (id bigint PRIMARY KEY, name text NOT NULL);
         CREATE TABLE dogs (breed text) INHERITS (animals);",
        &[Emptied::TABLE, Animal::TABLE],
    )
    .await;
    let mut delivered = Delivered::start(db.database());
    client
        .batch_execute(
            "INSERT INTO emptied VALUES (1, 'a');
             CREATE TABLE emptied_b PARTITION OF emptied FOR VALUES FROM (100) TO (200);
             INSERT INTO emptied_b VALUES (150, 'made after up');
             INSERT INTO animals VALUES (1, 'cat');
             INSERT INTO dogs VALUES (2, 'rex', 'collie');
             UPDATE dogs SET name = 'rex!';
             CREATE TABLE puppies () INHERITS (dogs);",
        )
        .await
        .unwrap();
    // The partition made after up came through its table.
    let events = delivered.all(&client).await.to_vec();
    let emptied: Vec<i64> = events
        .iter()
        .filter(|e| e.table == "emptied")
        .map(|e| row_id(&e.new))
        .collect();
    assert_eq!(emptied, [1, 150]);
    let animals: Vec<(Action, i64)> = events
        .iter()
        .filter(|e| e.table == "animals")
        .map(|e| (e.action, row_id(&e.new)))
        .collect();
    assert_eq!(
        animals,
        [
            (Action::Insert, 1),
            (Action::Insert, 2),
            (Action::Update, 2)
        ],
        "a child's changes as its parent's"
    );
    // TRUNCATE: the table's once; a partition's alone refused, as with
    // triggers (the WAL would not carry it through the table at all).
    let error = client
        .batch_execute("TRUNCATE emptied_a")
        .await
        .expect_err("a partition alone");
    assert!(
        error.to_string().contains("dawdle cannot capture")
            || format!("{error:?}").contains("dawdle cannot capture"),
        "{error:?}"
    );
    client.batch_execute("TRUNCATE emptied").await.unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.table == "emptied" && e.action == Action::Truncate)
            .count(),
        1
    );
    // The child made after up was readied by the event trigger (this
    // database has it): published, its old rows whole.
    let problems: Vec<String> = client
        .query_one("SELECT dawdle.unpublished()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(problems.is_empty(), "{problems:?}");
    client
        .batch_execute("INSERT INTO puppies VALUES (3, 'pup', 'beagle'); DELETE FROM puppies")
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    let puppy: Vec<Action> = events
        .iter()
        .filter(|e| e.table == "animals" && e.key.get() == "[3]")
        .map(|e| e.action)
        .collect();
    assert_eq!(puppy, [Action::Insert, Action::Delete]);
    delivered.watcher.shutdown().await.unwrap();
}

#[tokio::test]
async fn rows_a_logical_replication_subscriber_applies_are_captured_in_order() {
    let cluster = cluster().await;
    let publisher = TestDatabase::on(cluster.admin()).await.unwrap();
    let table = "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)";
    let source = publisher.connect().await.unwrap();
    let slot = format!(
        "sub_{}",
        publisher
            .name()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    source
        .batch_execute(&format!("{table}; CREATE PUBLICATION pub FOR TABLE users;"))
        .await
        .unwrap();
    source
        .batch_execute(&format!(
            "SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"
        ))
        .await
        .unwrap();
    let (subscriber, target) = database(table, &[User::TABLE]).await;
    let mut delivered = Delivered::start(subscriber.database());
    target
        .batch_execute(&format!(
            "CREATE SUBSCRIPTION {slot}
               CONNECTION 'host=127.0.0.1 port={port} user=postgres dbname={name}'
               PUBLICATION pub WITH (create_slot = false, slot_name = '{slot}', copy_data = false)",
            port = cluster.port(),
            name = publisher.name(),
        ))
        .await
        .unwrap();
    source
        .batch_execute(
            "INSERT INTO users VALUES (1, 'a');
             INSERT INTO users VALUES (2, 'b'), (3, 'c');
             UPDATE users SET name = 'b!' WHERE id = 2;
             DELETE FROM users WHERE id = 3;",
        )
        .await
        .unwrap();
    let published = rows(&source, "users", "id, name").await;
    let deadline = tokio::time::Instant::now() + LIMIT;
    while rows(&target, "users", "id, name").await != published {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscriber did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = delivered.all(&target).await.to_vec();
    let actions: Vec<Action> = events.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            Action::Insert,
            Action::Insert,
            Action::Insert,
            Action::Update,
            Action::Delete
        ],
        "the publisher's changes, once each, in order"
    );
    assert_replays(&events, &target, "users", "id, name").await;
    delivered.watcher.shutdown().await.unwrap();
    target
        .batch_execute(&format!("DROP SUBSCRIPTION {slot}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn switching_from_triggers_to_the_wal_takes_the_triggers_off_and_loses_nothing() {
    let db = TestDatabase::on(cluster().await.admin()).await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[User::TABLE]).unwrap())
        .await
        .unwrap();
    // Captured by the triggers, not sent yet.
    client
        .batch_execute("INSERT INTO users VALUES (1, 'by triggers')")
        .await
        .unwrap();
    let up = dawdle::sql::up_with(&[User::TABLE], Capture::Wal).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    let triggers: Vec<String> = client
        .query(
            "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'users'::regclass AND tgname LIKE 'dawdle%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Only the BEFORE TRUNCATE mark that lets the table's own TRUNCATE
    // through its partitions' refusals: nothing a row's write fires.
    assert_eq!(triggers, ["dawdle_truncating"], "no capture trigger left");
    client
        .batch_execute(
            "INSERT INTO users VALUES (2, 'from the WAL'); UPDATE users SET name = name || '!'",
        )
        .await
        .unwrap();
    let mut delivered = Delivered::start(db.database());
    let events = delivered.all(&client).await.to_vec();
    let seen: Vec<(Action, i64)> = events.iter().map(|e| (e.action, row_id(&e.new))).collect();
    assert_eq!(
        seen,
        [
            (Action::Insert, 1),
            (Action::Insert, 2),
            (Action::Update, 1),
            (Action::Update, 2)
        ],
        "the triggers' event first (its id is below the WAL's), each once"
    );
    assert_replays(&events, &client, "users", "id, name").await;
    delivered.watcher.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_row_too_large_for_its_routes_queue_goes_by_reference_claimed_by_the_routes_that_take_it()
{
    let (db, client) = database(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);
         CREATE TABLE animals (id bigint PRIMARY KEY, name text NOT NULL);",
        &[User::TABLE, Animal::TABLE],
    )
    .await;
    let small = MemoryQueue::builder().max_message_bytes(2_000).build();
    let other = MemoryQueue::new();
    let watcher = Watcher::routed(
        db.database().clone(),
        dawdle::watcher::Route::new("users", small.clone()).tables(["users"]),
    )
    .route(dawdle::watcher::Route::new("animals", other.clone()).tables(["animals"]))
    .capture(Capture::Wal)
    .build()
    .start();
    client
        .batch_execute("INSERT INTO users VALUES (1, repeat('x', 5000))")
        .await
        .unwrap();
    wait_until_drained(&client, LIMIT).await.unwrap();
    let events = receive_all(&small).await;
    assert_eq!(events.len(), 1);
    assert!(events[0].by_ref, "sent by reference");
    assert!(events[0].new.is_none(), "without its row");
    // Only the one route that takes it: no claim of a route that never
    // receives it, which would keep the rows forever.
    let routes: Option<Vec<String>> = client
        .query_one(
            "SELECT routes FROM dawdle.payloads WHERE id = $1",
            &[&events[0].id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(routes, None, "parked for one reader");
    assert!(receive_all(&other).await.is_empty());
    watcher.shutdown().await.unwrap();
}
