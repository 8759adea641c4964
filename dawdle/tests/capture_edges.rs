//! Capture at its edges, end to end (triggers, watcher, a MemoryQueue),
//! counting what arrives: writes naming partitions and inheritance
//! children, partitions made after up (with and without the event
//! trigger), statements nested in others (application triggers, writable
//! CTEs, cascades), logical replication into a `capture_replica` table, up
//! applied again under load, and schema changes of captured columns.
//!
//! The rule for order: per row, applying the row's events in id order
//! gives the row as a direct query reads it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dawdle::queue::{MemoryQueue, Queue};
use dawdle::testing::{wait_until_drained, TestDatabase};
use dawdle::watcher::{Watcher, WatcherHandle};
use dawdle::wire::{Envelope, WireEvent};
use dawdle::{Action, Database, Table, Watched};
use dawdle_test::{wait_until, Cluster, TestDb};
use serde_json::Value;
use tokio_postgres::Client;

/// How long any wait may take.
const LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "users")]
struct User {
    id: i64,
    name: String,
}

/// `users` with one more captured column: an up that changes the capture.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "users")]
struct WideUser {
    id: i64,
    name: String,
    email: Option<String>,
}

/// `users` on a logical replication subscriber.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "users", capture_replica)]
struct ReplicatedUser {
    id: i64,
    name: String,
}

/// A range-partitioned table, which gets partitions after up.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "ranged")]
struct Ranged {
    id: i64,
    name: String,
}

/// A partitioned table that captures TRUNCATE too.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "emptied", events(insert, update, delete, truncate))]
struct Emptied {
    id: i64,
    name: String,
}

/// The parent of an inheritance child.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "users_inh")]
struct Inherited {
    id: i64,
    name: String,
}

/// A table with an application trigger of its own.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "people")]
struct Person {
    id: i64,
    name: String,
}

/// A table written by writable CTEs, and by plain transactions.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "items")]
struct Item {
    id: i64,
    name: String,
}

/// A self-referencing table whose key updates cascade onto its own rows.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "nodes")]
struct Node {
    id: i64,
    parent_id: Option<i64>,
    name: String,
}

/// Another table, captured by a later up.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "others")]
struct Other {
    id: i64,
}

/// A watcher on a database, sending to a MemoryQueue, and every event
/// received from that queue so far.
struct Delivered {
    queue: MemoryQueue,
    watcher: WatcherHandle,
    events: Vec<WireEvent>,
}

impl Delivered {
    fn start(database: &Database) -> Delivered {
        let queue = MemoryQueue::new();
        let watcher = Watcher::builder(database.clone(), queue.clone())
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

    /// Waits until the watcher sent every event committed so far (of the
    /// database `client` is on), receives them all, and returns every
    /// event received yet, in id order.
    async fn all(&mut self, client: &Client) -> &[WireEvent] {
        wait_until_drained(client, LIMIT).await.unwrap();
        loop {
            let messages = self
                .queue
                .receive(10, Duration::ZERO, Duration::from_secs(60))
                .await
                .unwrap();
            if messages.is_empty() {
                break;
            }
            for message in &messages {
                self.events
                    .extend(Envelope::parse(&message.body).unwrap().events);
            }
            let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
            self.queue.delete(&receipts).await.unwrap();
        }
        self.events.sort_by_key(|e| e.id);
        let mut ids: Vec<i64> = self.events.iter().map(|e| e.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), self.events.len(), "an event arrived twice");
        &self.events
    }

    async fn stop(self) {
        self.watcher.shutdown().await.unwrap();
    }
}

/// A fresh database with `ddl` run and dawdle's up for `tables` applied,
/// and a watcher on it.
async fn database(ddl: &str, tables: &[&'static Table]) -> (TestDb, Client, Delivered) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client.batch_execute(ddl).await.unwrap();
    up(&mut client, tables).await;
    let delivered = Delivered::start(db.database());
    (db, client, delivered)
}

async fn up(client: &mut Client, tables: &[&'static Table]) {
    dawdle::sql::apply(client, &dawdle::sql::up(tables).unwrap())
        .await
        .unwrap();
}

/// The server's message of a failed query.
fn message(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map_or_else(|| error.to_string(), |e| e.message().to_owned())
}

/// Events of `table` with `action`.
fn count(events: &[WireEvent], table: &str, action: Action) -> usize {
    events
        .iter()
        .filter(|e| e.table == table && e.action == action)
        .count()
}

/// `[inserts, updates, deletes]` of `table`.
fn counts(events: &[WireEvent], table: &str) -> [usize; 3] {
    [Action::Insert, Action::Update, Action::Delete].map(|a| count(events, table, a))
}

fn row_id(row: &Option<Value>) -> i64 {
    row.as_ref().expect("a row")["id"]
        .as_i64()
        .expect("an integer id")
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
            other => panic!("unexpected {other:?} event of {table}"),
        }
    }
    rows
}

/// The rows of `table` as a direct query reads them.
async fn rows(client: &Client, table: &str) -> BTreeMap<i64, Value> {
    client
        .query(
            &format!("SELECT t.id, row_to_json(t)::text FROM {table} t"),
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

/// Applying the events of `table` in id order gives the table.
async fn assert_replays(events: &[WireEvent], client: &Client, table: &str) {
    let table_rows = rows(client, table).await;
    assert_eq!(
        replay(events, table),
        table_rows,
        "{table}: its events, applied in id order (left), against the table (right); events: {:#?}",
        events
            .iter()
            .filter(|e| e.table == table)
            .map(|e| (e.id, e.action, &e.old, &e.new))
            .collect::<Vec<_>>()
    );
}

/// The actions and new names of the row `id` of `table`, in id order.
fn history(events: &[WireEvent], table: &str, id: i64) -> Vec<(Action, Option<String>)> {
    events
        .iter()
        .filter(|e| e.table == table)
        .filter(|e| {
            [&e.old, &e.new]
                .into_iter()
                .any(|r| r.as_ref().is_some_and(|r| r["id"] == id))
        })
        .map(|e| {
            let name = e
                .new
                .as_ref()
                .map(|n| n["name"].as_str().unwrap().to_owned());
            (e.action, name)
        })
        .collect()
}

/// The first `n` ids of 1..1000 that hash to partition `remainder` of
/// `users` (modulus 2).
async fn ids_of_partition(client: &Client, remainder: i32, n: i64) -> Vec<i64> {
    client
        .query(
            "SELECT id FROM generate_series(1::int8, 1000::int8) id
             WHERE satisfies_hash_partition('users'::regclass, 2, $1, id) ORDER BY id LIMIT $2",
            &[&remainder, &n],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

// 1. Partitions and inheritance children.

#[tokio::test]
async fn writes_naming_a_hash_partition_or_its_parent_are_captured_once_each() {
    let (_db, client, mut delivered) = database(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL) PARTITION BY HASH (id);
         CREATE TABLE users_p0 PARTITION OF users FOR VALUES WITH (MODULUS 2, REMAINDER 0);
         CREATE TABLE users_p1 PARTITION OF users FOR VALUES WITH (MODULUS 2, REMAINDER 1);",
        &[User::TABLE],
    )
    .await;
    let p0 = ids_of_partition(&client, 0, 3).await;
    let p1 = ids_of_partition(&client, 1, 3).await;
    // Naming a partition: 6 inserts, 3 updates, 1 delete.
    client
        .batch_execute(&format!(
            "INSERT INTO users_p0 VALUES {};
             INSERT INTO users_p1 VALUES {};
             UPDATE users_p1 SET name = name || ' (p1)';
             DELETE FROM users_p0 WHERE id = {};",
            p0.iter()
                .map(|id| format!("({id}, 'p0 {id}')"))
                .collect::<Vec<_>>()
                .join(", "),
            p1.iter()
                .map(|id| format!("({id}, 'p1 {id}')"))
                .collect::<Vec<_>>()
                .join(", "),
            p0[0],
        ))
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(
        counts(events, "users"),
        [6, 3, 1],
        "writes naming a partition: [inserts, updates, deletes]"
    );
    // Naming the parent, rows landing in both partitions: 4 inserts, 5
    // updates (every row left), 2 deletes.
    client
        .batch_execute(
            "INSERT INTO users VALUES (1001, 'a'), (1002, 'b'), (1003, 'c'), (1004, 'd');
             UPDATE users SET name = upper(name);
             DELETE FROM users WHERE id IN (1001, 1002);",
        )
        .await
        .unwrap();
    let left = 5 + 4;
    let events = delivered.all(&client).await;
    assert_eq!(
        counts(events, "users"),
        [6 + 4, 3 + left, 1 + 2],
        "then writes naming the parent: [inserts, updates, deletes]"
    );
    // One statement naming a partition, one naming the parent, in one
    // transaction, touching the same row.
    client
        .batch_execute(&format!(
            "BEGIN;
             UPDATE users_p1 SET name = 'by the partition' WHERE id = {id};
             UPDATE users SET name = 'by the parent' WHERE id = {id};
             COMMIT;",
            id = p1[0]
        ))
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(counts(events, "users"), [10, 3 + left + 2, 3]);
    assert!(events.iter().all(|e| e.schema == "public"));
    assert_replays(events, &client, "users").await;
    delivered.stop().await;
}

#[tokio::test]
async fn partitions_made_after_up_are_captured_by_the_event_trigger() {
    let (_db, client, mut delivered) = database(
        "CREATE TABLE ranged (id bigint PRIMARY KEY, name text NOT NULL) PARTITION BY RANGE (id);
         CREATE TABLE ranged_a PARTITION OF ranged FOR VALUES FROM (0) TO (100);",
        &[Ranged::TABLE],
    )
    .await;
    // Made after up, then written by name: nothing else is run.
    client
        .batch_execute(
            "CREATE TABLE ranged_b PARTITION OF ranged FOR VALUES FROM (100) TO (200);
             INSERT INTO ranged_b VALUES (150, 'b'), (151, 'b');
             UPDATE ranged_b SET name = 'b!' WHERE id = 150;
             DELETE FROM ranged_b WHERE id = 151;
             INSERT INTO ranged VALUES (160, 'through the parent');",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(
        counts(events, "ranged"),
        [3, 1, 1],
        "a partition created after up"
    );
    // Made as a plain table, then attached.
    client
        .batch_execute(
            "CREATE TABLE ranged_c (id bigint NOT NULL, name text NOT NULL);
             ALTER TABLE ranged ATTACH PARTITION ranged_c FOR VALUES FROM (200) TO (300);
             INSERT INTO ranged_c VALUES (250, 'c');
             UPDATE ranged_c SET name = 'c!';
             DELETE FROM ranged_c;",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(
        counts(events, "ranged"),
        [4, 2, 2],
        "then a table attached as a partition after up"
    );
    assert_replays(events, &client, "ranged").await;
    delivered.stop().await;
}

#[tokio::test]
async fn writes_naming_an_inheritance_child_are_captured() {
    let (_db, client, mut delivered) = database(
        "CREATE TABLE users_inh (id bigint PRIMARY KEY, name text NOT NULL);
         CREATE TABLE users_child () INHERITS (users_inh);",
        &[Inherited::TABLE],
    )
    .await;
    client
        .batch_execute(
            "INSERT INTO users_child VALUES (1, 'child'), (2, 'child');
             UPDATE users_child SET name = 'child!' WHERE id = 1;
             DELETE FROM users_child WHERE id = 2;
             INSERT INTO users_inh VALUES (3, 'parent');",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(
        counts(events, "users_inh"),
        [3, 1, 1],
        "writes naming the child, then an insert naming the parent"
    );
    // Naming the parent reaches the child's rows too: once each.
    client
        .batch_execute("UPDATE users_inh SET name = name || ' (all)'")
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(counts(events, "users_inh"), [3, 3, 1]);
    assert_replays(events, &client, "users_inh").await;
    delivered.stop().await;
}

// 2. A partition made after up, without the event trigger.

#[tokio::test]
async fn a_partition_made_without_the_event_trigger_refuses_writes_until_up_runs_again() {
    let (_db, mut client, mut delivered) = database(
        "CREATE TABLE ranged (id bigint PRIMARY KEY, name text NOT NULL) PARTITION BY RANGE (id);
         CREATE TABLE ranged_a PARTITION OF ranged FOR VALUES FROM (0) TO (100);",
        &[Ranged::TABLE],
    )
    .await;
    client
        .batch_execute(
            "INSERT INTO ranged_a VALUES (1, 'a');
             DROP EVENT TRIGGER dawdle_ddl;
             CREATE TABLE ranged_b PARTITION OF ranged FOR VALUES FROM (100) TO (200);",
        )
        .await
        .unwrap();
    for write in [
        "INSERT INTO ranged_b VALUES (150, 'b')",
        "INSERT INTO ranged VALUES (150, 'b')",
        // A transaction with a write that can be captured before it.
        "BEGIN; INSERT INTO ranged_a VALUES (2, 'a'); INSERT INTO ranged_b VALUES (151, 'b'); COMMIT",
    ] {
        let error = client
            .batch_execute(write)
            .await
            .expect_err(&format!("{write} must fail: it would not be captured"));
        assert!(
            message(&error).contains("dawdle cannot capture"),
            "{write}: {error}"
        );
        client.batch_execute("ROLLBACK").await.ok();
    }
    // Nothing was written, and nothing is lost: one insert, the first.
    let events = delivered.all(&client).await;
    assert_eq!(counts(events, "ranged"), [1, 0, 0]);
    assert_replays(events, &client, "ranged").await;

    up(&mut client, &[Ranged::TABLE]).await;
    client
        .batch_execute(
            "INSERT INTO ranged_b VALUES (150, 'b'), (151, 'b');
             UPDATE ranged_b SET name = 'b!' WHERE id = 150;
             DELETE FROM ranged_b WHERE id = 151;
             INSERT INTO ranged VALUES (160, 'through the parent');",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(counts(events, "ranged"), [1 + 3, 1, 1], "after up again");
    // Up put the event trigger back: the next partition needs nothing.
    client
        .batch_execute(
            "CREATE TABLE ranged_c PARTITION OF ranged FOR VALUES FROM (200) TO (300);
             INSERT INTO ranged_c VALUES (250, 'c');",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(counts(events, "ranged"), [5, 1, 1]);
    assert_replays(events, &client, "ranged").await;
    delivered.stop().await;
}

#[tokio::test]
async fn the_watcher_refuses_to_start_while_an_inheritance_child_lacks_the_triggers() {
    // Unlike a partition, a child has no guard: its writes would be lost.
    let (test_db, mut client, delivered) = database(
        "CREATE TABLE users_inh (id bigint PRIMARY KEY, name text NOT NULL);",
        &[Inherited::TABLE],
    )
    .await;
    delivered.stop().await;
    client
        .batch_execute(
            "DROP EVENT TRIGGER dawdle_ddl;
             CREATE TABLE users_late () INHERITS (users_inh);",
        )
        .await
        .unwrap();
    let db = test_db.database().clone();
    let watcher = Watcher::builder(db.clone(), MemoryQueue::new())
        .standby_retry(Duration::from_millis(200))
        .build()
        .start();
    wait_until("the watcher stops", LIMIT, || watcher.is_finished()).await;
    let error = watcher.shutdown().await.unwrap_err().to_string();
    assert!(
        error.contains("users_late") && error.contains("Run the up migration again"),
        "{error}"
    );
    // Up installs the triggers, and the watcher runs.
    up(&mut client, &[Inherited::TABLE]).await;
    let mut delivered = Delivered::start(&db);
    client
        .batch_execute("INSERT INTO users_late VALUES (1, 'late')")
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(counts(events, "users_inh"), [1, 0, 0]);
    delivered.stop().await;
}

#[tokio::test]
async fn a_truncate_of_a_partitioned_table_is_one_event_and_of_a_partition_alone_refused() {
    let (_db, client, mut delivered) = database(
        "CREATE TABLE emptied (id bigint PRIMARY KEY, name text NOT NULL) PARTITION BY RANGE (id);
         CREATE TABLE emptied_a PARTITION OF emptied FOR VALUES FROM (0) TO (100);
         CREATE TABLE emptied_b PARTITION OF emptied FOR VALUES FROM (100) TO (200);",
        &[Emptied::TABLE],
    )
    .await;
    client
        .batch_execute(
            "INSERT INTO emptied VALUES (1, 'a'), (150, 'b');
             TRUNCATE emptied;
             INSERT INTO emptied VALUES (2, 'a'), (151, 'b');",
        )
        .await
        .unwrap();
    // The partitions' truncate triggers fire too: still one event.
    let events = delivered.all(&client).await;
    assert_eq!(count(events, "emptied", Action::Truncate), 1);
    assert_eq!(counts(events, "emptied"), [4, 0, 0]);

    // A partition alone: no event could say only its rows are gone.
    let error = client
        .batch_execute("TRUNCATE emptied_a")
        .await
        .expect_err("a TRUNCATE of one partition cannot be captured");
    assert!(
        message(&error).contains("dawdle cannot capture a TRUNCATE of public.emptied_a alone"),
        "{error}"
    );
    // Nor after the table's own TRUNCATE in the same transaction.
    client
        .batch_execute("BEGIN; TRUNCATE emptied; INSERT INTO emptied VALUES (3, 'a')")
        .await
        .unwrap();
    let error = client
        .batch_execute("TRUNCATE emptied_b")
        .await
        .expect_err("the table's TRUNCATE does not open the partitions' for the transaction");
    assert!(message(&error).contains("dawdle cannot capture"), "{error}");
    client.batch_execute("ROLLBACK").await.unwrap();
    let rows: i64 = client
        .query_one("SELECT count(*) FROM emptied", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2, "nothing was truncated");
    let events = delivered.all(&client).await;
    assert_eq!(count(events, "emptied", Action::Truncate), 1);
    delivered.stop().await;
}

// 3. Order, when statements run inside others or beside them.

/// `people`, with an application trigger that updates each inserted row.
const PEOPLE_VERIFIED: &str = "
CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL);
CREATE FUNCTION verify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE people SET name = name || ' (verified)' WHERE id = NEW.id;
  RETURN NULL;
END $$;
CREATE TRIGGER verify AFTER INSERT ON people FOR EACH ROW EXECUTE FUNCTION verify();";

#[tokio::test]
async fn an_application_trigger_updating_the_inserted_row_comes_after_the_insert() {
    let (_db, client, mut delivered) = database(PEOPLE_VERIFIED, &[Person::TABLE]).await;
    client
        .batch_execute(
            "INSERT INTO people VALUES (1, 'alice');
             INSERT INTO people VALUES (2, 'bob'), (3, 'carol');",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(counts(events, "people"), [3, 3, 0]);
    assert_eq!(
        history(events, "people", 1),
        [
            (Action::Insert, Some("alice".to_owned())),
            (Action::Update, Some("alice (verified)".to_owned())),
        ]
    );
    assert_eq!(
        history(events, "people", 3),
        [
            (Action::Insert, Some("carol".to_owned())),
            (Action::Update, Some("carol (verified)".to_owned())),
        ]
    );
    assert_replays(events, &client, "people").await;
    delivered.stop().await;
}

/// A command can run statements inside an INSERT without any trigger of
/// the inserted table firing on INSERT: the UPDATE part of an upsert or a
/// MERGE, or another part of a writable CTE, fires triggers (here one on
/// `users` for UPDATE, one on an unwatched table) that change a row the
/// INSERT part inserted, before the INSERT's statement trigger captures
/// it. Each INSERT is marked, so the insert still comes first.
#[tokio::test]
async fn an_insert_comes_before_what_the_rest_of_its_command_changes_in_its_rows() {
    let (_db, client, mut delivered) = database(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF pg_trigger_depth() = 1 THEN
             UPDATE users SET name = name || ' (touched)' WHERE id = NEW.id - 1;
           END IF;
           RETURN NULL;
         END $$;
         CREATE TRIGGER touch AFTER UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
         CREATE TABLE tags (id bigint PRIMARY KEY, user_id bigint);
         CREATE FUNCTION tag() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           UPDATE users SET name = name || ' (tagged)' WHERE id = NEW.user_id;
           RETURN NULL;
         END $$;
         CREATE TRIGGER tag AFTER UPDATE ON tags FOR EACH ROW EXECUTE FUNCTION tag();
         INSERT INTO users VALUES (2, 'old'), (4, 'old');
         INSERT INTO tags VALUES (1, NULL);",
        &[User::TABLE],
    )
    .await;
    client
        .batch_execute(
            "INSERT INTO users VALUES (1, 'one'), (2, 'two')
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;
             MERGE INTO users u USING (VALUES (3::bigint, 'three'), (4, 'four')) v (id, name) ON u.id = v.id
               WHEN MATCHED THEN UPDATE SET name = v.name
               WHEN NOT MATCHED THEN INSERT VALUES (v.id, v.name);
             WITH t AS (UPDATE tags SET user_id = 5 WHERE id = 1 RETURNING user_id)
               INSERT INTO users SELECT user_id, 'five' FROM t;",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    for (id, name, changed) in [
        (1, "one", "one (touched)"),
        (3, "three", "three (touched)"),
        (5, "five", "five (tagged)"),
    ] {
        assert_eq!(
            history(events, "users", id),
            [
                (Action::Insert, Some(name.to_owned())),
                (Action::Update, Some(changed.to_owned())),
            ],
            "row {id}"
        );
    }
    assert_replays(events, &client, "users").await;
    delivered.stop().await;
}

#[tokio::test]
async fn a_writable_cte_deleting_and_inserting_a_key_delivers_the_delete_first() {
    let (_db, client, mut delivered) = database(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
         INSERT INTO items VALUES (1, 'first'), (2, 'second'), (3, 'third');",
        &[Item::TABLE],
    )
    .await;
    client
        .batch_execute(
            "WITH d AS (DELETE FROM items WHERE id = 1 RETURNING id)
               INSERT INTO items SELECT id, 'again' FROM d LIMIT 1;
             WITH d AS (DELETE FROM items WHERE id = 2 RETURNING id)
               INSERT INTO items SELECT id, 'again' FROM d;
             WITH u AS (UPDATE items SET name = 'updated' WHERE id = 3 RETURNING id),
                  d AS (DELETE FROM items WHERE id = 1 RETURNING id)
               INSERT INTO items SELECT id, 'third time' FROM d;",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(counts(events, "items"), [3, 1, 3]);
    assert_eq!(
        history(events, "items", 1),
        [
            (Action::Delete, None),
            (Action::Insert, Some("again".to_owned())),
            (Action::Delete, None),
            (Action::Insert, Some("third time".to_owned())),
        ]
    );
    assert_eq!(
        history(events, "items", 2),
        [
            (Action::Delete, None),
            (Action::Insert, Some("again".to_owned()))
        ]
    );
    assert_replays(events, &client, "items").await;
    assert_eq!(rows(&client, "items").await.len(), 3, "every row exists");
    delivered.stop().await;
}

/// PostgreSQL runs a referential action's query with its AFTER triggers
/// queued behind the statement's own, so this order held before dawdle
/// reordered anything: a guard that the reorder (which runs here, the
/// clock having moved) keeps it.
#[tokio::test]
async fn a_cascade_onto_the_same_table_comes_after_the_update_that_caused_it() {
    let (_db, client, mut delivered) = database(
        "CREATE TABLE nodes (
           id bigint PRIMARY KEY,
           parent_id bigint REFERENCES nodes (id) ON UPDATE CASCADE,
           name text NOT NULL
         );
         -- 1 is its own parent: the cascade changes the row the update changed.
         INSERT INTO nodes VALUES (1, 1, 'root'), (2, 1, 'a'), (3, 2, 'b'), (4, 1, 'c');",
        &[Node::TABLE],
    )
    .await;
    client
        .batch_execute(
            "UPDATE nodes SET id = 10, name = 'root!' WHERE id = 1;
             UPDATE nodes SET id = 20 WHERE id = 2;",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    // The first update: the root; its cascade: 10 (itself), 2 and 4. The
    // second: 2 → 20; its cascade: 3.
    assert_eq!(counts(events, "nodes"), [0, 1 + 3 + 1 + 1, 0]);
    let nodes: Vec<(i64, Option<i64>)> = events
        .iter()
        .map(|e| {
            let new = e.new.as_ref().unwrap();
            (new["id"].as_i64().unwrap(), new["parent_id"].as_i64())
        })
        .collect();
    // Each statement before what it cascaded to.
    let position = |row: (i64, Option<i64>)| {
        nodes
            .iter()
            .position(|&n| n == row)
            .unwrap_or_else(|| panic!("no event leaves {row:?}: {nodes:?}"))
    };
    assert!(
        position((10, Some(1))) < position((10, Some(10))),
        "{nodes:?}"
    );
    assert!(
        position((10, Some(1))) < position((2, Some(10))),
        "{nodes:?}"
    );
    assert!(
        position((20, Some(10))) < position((3, Some(20))),
        "{nodes:?}"
    );
    assert_replays(events, &client, "nodes").await;
    delivered.stop().await;
}

#[tokio::test]
async fn a_transaction_of_plain_statements_keeps_their_order() {
    let (_db, client, mut delivered) = database(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);",
        &[Item::TABLE],
    )
    .await;
    let mut statements = vec!["BEGIN".to_owned()];
    let mut expected: BTreeMap<i64, Vec<(Action, Option<String>)>> = BTreeMap::new();
    for round in 0..9 {
        for id in 1..=3i64 {
            let name = format!("{id} in round {round}");
            let (statement, action) = match round % 3 {
                0 => (
                    format!("INSERT INTO items VALUES ({id}, '{name}')"),
                    Action::Insert,
                ),
                1 => (
                    format!("UPDATE items SET name = '{name}' WHERE id = {id}"),
                    Action::Update,
                ),
                _ => (format!("DELETE FROM items WHERE id = {id}"), Action::Delete),
            };
            statements.push(statement);
            let name = (action != Action::Delete).then_some(name);
            expected.entry(id).or_default().push((action, name));
        }
    }
    // A last round inserting all three in one statement, then updating them
    // in another.
    statements.push("INSERT INTO items VALUES (1, 'x'), (2, 'x'), (3, 'x')".to_owned());
    statements.push("UPDATE items SET name = 'y'".to_owned());
    for id in 1..=3 {
        let history = expected.entry(id).or_default();
        history.push((Action::Insert, Some("x".to_owned())));
        history.push((Action::Update, Some("y".to_owned())));
    }
    statements.push("COMMIT".to_owned());
    client.batch_execute(&statements.join(";\n")).await.unwrap();
    let events = delivered.all(&client).await;
    for (&id, history_of) in &expected {
        assert_eq!(&history(events, "items", id), history_of, "row {id}");
    }
    let txids: Vec<&str> = events.iter().map(|e| e.txid.as_str()).collect();
    assert!(txids.windows(2).all(|w| w[0] == w[1]), "one transaction");
    assert_replays(events, &client, "items").await;
    delivered.stop().await;
}

/// The marks and clocks are transaction-local settings, which a rollback to
/// a savepoint undoes and the end of a transaction empties: statements
/// first in their transaction, after others, after savepoints rolled back
/// and released, each with the application's trigger nesting an update in
/// it, in one session.
#[tokio::test]
async fn nested_order_holds_across_savepoints_and_a_sessions_transactions() {
    let (_db, client, mut delivered) = database(PEOPLE_VERIFIED, &[Person::TABLE]).await;
    client
        .batch_execute(
            "BEGIN;
             INSERT INTO people VALUES (1, 'a');
             SAVEPOINT s;
             INSERT INTO people VALUES (2, 'b');
             ROLLBACK TO s;
             INSERT INTO people VALUES (3, 'c');
             UPDATE people SET name = name || '!' WHERE id IN (1, 3);
             COMMIT;
             BEGIN;
             SAVEPOINT s;
             INSERT INTO people VALUES (4, 'd');
             ROLLBACK TO s;
             INSERT INTO people VALUES (5, 'e');
             SAVEPOINT t;
             INSERT INTO people VALUES (6, 'f');
             RELEASE t;
             UPDATE people SET name = name || '!' WHERE id IN (5, 6);
             INSERT INTO people VALUES (7, 'g');
             COMMIT;
             INSERT INTO people VALUES (8, 'h');",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(counts(events, "people"), [6, 10, 0]);
    for (id, name) in [(1, "a"), (3, "c"), (5, "e"), (6, "f")] {
        assert_eq!(
            history(events, "people", id),
            [
                (Action::Insert, Some(name.to_owned())),
                (Action::Update, Some(format!("{name} (verified)"))),
                (Action::Update, Some(format!("{name} (verified)!"))),
            ],
            "row {id}"
        );
    }
    for (id, name) in [(7, "g"), (8, "h")] {
        assert_eq!(
            history(events, "people", id),
            [
                (Action::Insert, Some(name.to_owned())),
                (Action::Update, Some(format!("{name} (verified)"))),
            ],
            "row {id}"
        );
    }
    assert_replays(events, &client, "people").await;
    delivered.stop().await;
}

// 4. Logical replication into a table with capture_replica.

#[tokio::test]
async fn rows_applied_by_logical_replication_are_captured_once_in_order() {
    let cluster = Cluster::builder().logical(true).start().await.unwrap();
    let publisher = TestDatabase::on(cluster.admin()).await.unwrap();
    let subscriber = TestDatabase::on(cluster.admin()).await.unwrap();
    let table = "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)";
    let source = publisher.connect().await.unwrap();
    source
        .batch_execute(&format!("{table}; CREATE PUBLICATION pub FOR TABLE users;"))
        .await
        .unwrap();
    // In a transaction of its own: one that wrote may not make a slot.
    source
        .batch_execute("SELECT pg_create_logical_replication_slot('sub', 'pgoutput')")
        .await
        .unwrap();
    let mut target = subscriber.connect().await.unwrap();
    target.batch_execute(table).await.unwrap();
    up(&mut target, &[ReplicatedUser::TABLE]).await;
    target
        .batch_execute(&format!(
            "CREATE SUBSCRIPTION sub
               CONNECTION 'host=127.0.0.1 port={port} user=postgres dbname={name}'
               PUBLICATION pub WITH (create_slot = false, slot_name = 'sub', copy_data = false)",
            port = cluster.port(),
            name = publisher.name(),
        ))
        .await
        .unwrap();
    let mut delivered = Delivered::start(subscriber.database());
    source
        .batch_execute(
            "INSERT INTO users VALUES (1, 'a');
             INSERT INTO users VALUES (2, 'b'), (3, 'c');
             BEGIN; INSERT INTO users VALUES (4, 'd'); INSERT INTO users VALUES (5, 'e'); COMMIT;
             UPDATE users SET name = 'b!' WHERE id = 2;
             DELETE FROM users WHERE id = 3;",
        )
        .await
        .unwrap();
    let published = rows(&source, "users").await;
    // Replication runs on its own: wait until the subscriber has it all.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while rows(&target, "users").await != published {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscriber did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = delivered.all(&target).await;
    let actions: Vec<(Action, i64)> = events
        .iter()
        .map(|e| {
            (
                e.action,
                row_id(if e.new.is_some() { &e.new } else { &e.old }),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (Action::Insert, 1),
            (Action::Insert, 2),
            (Action::Insert, 3),
            (Action::Insert, 4),
            (Action::Insert, 5),
            (Action::Update, 2),
            (Action::Delete, 3),
        ],
        "the publisher's 7 changes, once each, in order"
    );
    assert_replays(events, &target, "users").await;
    // An ordinary session's write on the subscriber: once, not twice.
    target
        .batch_execute(
            "INSERT INTO users VALUES (100, 'local'); UPDATE users SET name = 'local!' WHERE id = 100;",
        )
        .await
        .unwrap();
    let events = delivered.all(&target).await;
    assert_eq!(counts(events, "users"), [6, 2, 1], "a local write once");
    assert_replays(events, &target, "users").await;
    delivered.stop().await;
    // The subscription (and its slot on the publisher) goes first, or
    // neither database could be dropped.
    target.batch_execute("DROP SUBSCRIPTION sub").await.unwrap();
    drop((source, target));
    drop((subscriber, publisher));
    cluster.stop().await;
}

// 5. Up applied again while the captured table is written.

/// Writers of `users`, each on its own connection, each write its own
/// transaction: an insert of a new row, then an update of it.
struct Writers {
    stop: Arc<AtomicBool>,
    inserts: Arc<AtomicU64>,
    updates: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Writers {
    /// `n` writers, whose ids start after `base`.
    async fn start(db: &TestDb, n: i64, base: i64) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let inserts = Arc::new(AtomicU64::new(0));
        let updates = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for writer in 0..n {
            let client = db.connect().await.unwrap();
            let (stop, inserts, updates) = (stop.clone(), inserts.clone(), updates.clone());
            tasks.push(tokio::spawn(async move {
                let mut failures = Vec::new();
                let mut id = base + writer * 1_000_000;
                while !stop.load(Ordering::SeqCst) {
                    id += 1;
                    match client
                        .execute("INSERT INTO users (id, name) VALUES ($1, 'new')", &[&id])
                        .await
                    {
                        Ok(_) => inserts.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            failures.push(format!("insert {id}: {}", message(&e)));
                            continue;
                        }
                    };
                    match client
                        .execute("UPDATE users SET name = 'changed' WHERE id = $1", &[&id])
                        .await
                    {
                        Ok(1) => updates.fetch_add(1, Ordering::SeqCst),
                        Ok(n) => panic!("update {id} changed {n} rows"),
                        Err(e) => {
                            failures.push(format!("update {id}: {}", message(&e)));
                            continue;
                        }
                    };
                }
                failures
            }));
        }
        Writers {
            stop,
            inserts,
            updates,
            tasks,
        }
    }

    fn writes(&self) -> u64 {
        self.inserts.load(Ordering::SeqCst) + self.updates.load(Ordering::SeqCst)
    }

    /// Waits until they wrote `more` times more.
    async fn wait_for_more(&self, more: u64) {
        let target = self.writes() + more;
        wait_until("the writers write", LIMIT, || self.writes() >= target).await;
    }

    /// Stops them: their failures, inserts and updates.
    async fn stop(self) -> (Vec<String>, u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        let mut failures = Vec::new();
        for task in self.tasks {
            failures.extend(task.await.unwrap());
        }
        (
            failures,
            self.inserts.load(Ordering::SeqCst),
            self.updates.load(Ordering::SeqCst),
        )
    }
}

#[tokio::test]
async fn up_applied_again_under_load_fails_no_write_and_loses_no_event() {
    let (db, mut client, mut delivered) = database(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);
         CREATE TABLE others (id bigint PRIMARY KEY);",
        &[User::TABLE],
    )
    .await;
    let writers = Writers::start(&db, 4, 0).await;
    writers.wait_for_more(20).await;
    let same = dawdle::sql::up(&[User::TABLE]).unwrap();
    for n in 0..8 {
        let before = writers.writes();
        dawdle::sql::apply(&mut client, &same)
            .await
            .unwrap_or_else(|e| panic!("apply {n} of the same up: {e}"));
        if n % 2 == 1 {
            // Writes go on between applies too.
            writers.wait_for_more(4).await;
        }
        assert!(writers.writes() >= before);
    }
    let (failures, inserts, updates) = writers.stop().await;
    assert_eq!(failures, Vec::<String>::new(), "failed writes, same up");
    let events = delivered.all(&client).await;
    assert_eq!(
        counts(events, "users"),
        [inserts as usize, updates as usize, 0],
        "an event per committed write, same up"
    );
    assert_replays(events, &client, "users").await;

    // Ups that change something: another table captured, then a column
    // more of this one, each applied while the writers write.
    client
        .batch_execute("ALTER TABLE users ADD COLUMN email text")
        .await
        .unwrap();
    let writers = Writers::start(&db, 4, 100_000_000).await;
    writers.wait_for_more(20).await;
    for (what, tables) in [
        ("another table", &[User::TABLE, Other::TABLE][..]),
        ("a column more", &[WideUser::TABLE, Other::TABLE][..]),
    ] {
        dawdle::sql::apply(&mut client, &dawdle::sql::up(tables).unwrap())
            .await
            .unwrap_or_else(|e| panic!("apply of an up with {what}: {e}"));
        writers.wait_for_more(20).await;
    }
    let (failures, more_inserts, more_updates) = writers.stop().await;
    assert_eq!(failures, Vec::<String>::new(), "failed writes, changed up");
    client
        .batch_execute("INSERT INTO others VALUES (1); UPDATE users SET email = 'e' WHERE id = 1;")
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(
        counts(events, "users"),
        [
            (inserts + more_inserts) as usize,
            (updates + more_updates + 1) as usize,
            0
        ],
        "an event per committed write, changed ups"
    );
    assert_eq!(counts(events, "others"), [1, 0, 0]);
    let last = events.iter().rfind(|e| e.table == "users").unwrap();
    assert_eq!(last.new.as_ref().unwrap()["email"], "e");
    delivered.stop().await;
}

// 6. Schema changes of a captured column.

#[tokio::test]
async fn renaming_a_captured_column_is_refused_and_retyping_it_is_captured() {
    let (_db, client, mut delivered) = database(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);",
        &[User::TABLE],
    )
    .await;
    client
        .batch_execute("INSERT INTO users VALUES (1, 'ada')")
        .await
        .unwrap();
    let error = client
        .batch_execute("ALTER TABLE users RENAME COLUMN name TO full_name")
        .await
        .expect_err("renaming a captured column must be refused");
    assert!(
        message(&error).contains("dawdle captures column"),
        "{error}"
    );
    client
        .batch_execute(
            "INSERT INTO users VALUES (2, 'grace'); UPDATE users SET name = 'Ada' WHERE id = 1;",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(
        counts(events, "users"),
        [2, 1, 0],
        "writes after the refusal"
    );

    client
        .batch_execute("ALTER TABLE users ALTER COLUMN name TYPE varchar(200)")
        .await
        .unwrap();
    client
        .batch_execute(
            "INSERT INTO users VALUES (3, 'barbara'); UPDATE users SET name = 'Grace' WHERE id = 2;
             DELETE FROM users WHERE id = 1;",
        )
        .await
        .unwrap();
    let events = delivered.all(&client).await;
    assert_eq!(
        counts(events, "users"),
        [3, 2, 1],
        "writes after the retype"
    );
    assert_replays(events, &client, "users").await;
    delivered.stop().await;
}
