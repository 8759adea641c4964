//! Signals end to end: a transactional outbox (delivered only if committed),
//! delays held in PostgreSQL across restarts, cancelling, due times moved
//! by an UPDATE, signals without a handler dead-lettered, and signals sent
//! without a database.
//!
//! Handlers are global (inventory) and tests run concurrently: each test
//! tags its signals with a tag of its own and looks only at those.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dawdle::queue::MemoryQueue;
use dawdle::signal::{SignalBuilder, SignalError};
use dawdle::testing::TestDatabase;
use dawdle::{Action, Runtime, Signaled};
use dawdle_test::{wait_until, Cluster, TestDb};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, dawdle::Signal)]
#[dawdle(name = "test.ping")]
struct Ping {
    tag: String,
    n: u32,
}

/// A signal whose handler fails, for direct mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, dawdle::Signal)]
struct Grumble {
    reason: String,
}

/// Per tag: each handled ping's `n`, id, deliver_at and when it was handled.
type Handled = (u32, i64, DateTime<Utc>, DateTime<Utc>);
static PINGS: Mutex<BTreeMap<String, Vec<Handled>>> = Mutex::new(BTreeMap::new());

#[dawdle::handler]
async fn on_ping(ping: Signaled<Ping>) {
    assert_eq!(ping.meta.action, Action::Signal);
    assert_eq!(
        (ping.meta.schema.as_str(), ping.meta.table.as_str()),
        ("dawdle", "signals")
    );
    PINGS
        .lock()
        .unwrap()
        .entry(ping.payload.tag)
        .or_default()
        .push((
            ping.payload.n,
            ping.meta.id,
            ping.deliver_at.with_timezone(&Utc),
            Utc::now(),
        ));
}

#[dawdle::handler]
async fn on_grumble(grumble: Signaled<Grumble>) -> Result<(), String> {
    Err(grumble.payload.reason)
}

fn handled(tag: &str) -> Vec<Handled> {
    PINGS.lock().unwrap().get(tag).cloned().unwrap_or_default()
}

fn ping(tag: &str, n: u32) -> Ping {
    Ping {
        tag: tag.to_owned(),
        n,
    }
}

async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[]).unwrap())
        .await
        .unwrap();
    (db, client)
}

fn runtime(db: &TestDatabase, queue: MemoryQueue) -> dawdle::RuntimeHandle {
    let pool = db
        .database()
        .pool(16)
        .expect("a pool without a runtime-specific timeout always builds");
    Runtime::builder()
        .database(db.config().clone())
        .pool(pool)
        .queue(queue)
        .watch()
        .listen()
        .receive_wait(Duration::from_millis(200))
        .watcher(|w| w.linger(Duration::from_millis(50)))
        .build()
        .unwrap()
        .start()
}

#[tokio::test]
async fn a_committed_signal_is_delivered_and_a_rolled_back_one_never() {
    let (db, mut client) = database().await;
    let handle = runtime(&db, MemoryQueue::new());
    let tag = "outbox";

    let tx = client.transaction().await.unwrap();
    let sent = dawdle::signal(&tx, &ping(tag, 1)).await.unwrap();
    tx.commit().await.unwrap();
    let tx = client.transaction().await.unwrap();
    dawdle::signal(&tx, &ping(tag, 2)).await.unwrap();
    tx.rollback().await.unwrap();
    // From SQL, as another language would; after the rolled-back one.
    let from_sql: i64 = client
        .query_one(
            "SELECT dawdle.signal('test.ping', json_build_object('tag', $1::text, 'n', 3))",
            &[&tag],
        )
        .await
        .unwrap()
        .get(0);

    wait_until(
        "both committed signals are handled",
        Duration::from_secs(30),
        || handled(tag).len() >= 2,
    )
    .await;
    // Anything of the rolled-back transaction would have come before the
    // last one: once that is handled, the rolled-back one is never.
    dawdle::testing::wait_until_drained(&client, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got: Vec<(u32, i64)> = handled(tag).iter().map(|h| (h.0, h.1)).collect();
    assert_eq!(got, vec![(1, sent), (3, from_sql)]);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_delayed_signal_comes_at_its_time_not_before() {
    let (db, client) = database().await;
    let handle = runtime(&db, MemoryQueue::new());
    let tag = "three seconds";
    let sent_at = Utc::now();
    let id = SignalBuilder::new(&ping(tag, 1))
        .delay(Duration::from_secs(3))
        .send(&client)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Unless this sleep overran the due time (a loaded machine): the times
    // checked below tell then.
    let looked = Utc::now();
    assert!(
        handled(tag).is_empty() || looked >= sent_at + chrono::Duration::seconds(3),
        "delivered before its time"
    );
    wait_until(
        "the delayed signal is handled",
        Duration::from_secs(30),
        || !handled(tag).is_empty(),
    )
    .await;
    let (n, got_id, deliver_at, at) = handled(tag)[0];
    assert_eq!((n, got_id), (1, id));
    assert!(
        deliver_at >= sent_at + chrono::Duration::milliseconds(2900),
        "{deliver_at} {sent_at}"
    );
    assert!(at >= deliver_at, "handled at {at}, due at {deliver_at}");
    let late = (at - deliver_at).to_std().unwrap();
    assert!(
        late < Duration::from_secs(5),
        "handled {late:?} after its time"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_long_delay_waits_in_postgres_and_can_be_moved_or_cancelled() {
    let (db, client) = database().await;
    let handle = runtime(&db, MemoryQueue::new());
    let tag = "two hours";
    let in_two_hours = Utc::now() + chrono::Duration::hours(2);
    let moved = SignalBuilder::new(&ping(tag, 1))
        .at(in_two_hours)
        .send(&client)
        .await
        .unwrap();
    let cancelled = SignalBuilder::new(&ping(tag, 2))
        .delay(Duration::from_secs(7200))
        .send(&client)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(handled(tag).is_empty());
    let waiting: i64 = client
        .query_one("SELECT count(*) FROM dawdle.delayed", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(waiting, 2);

    assert!(dawdle::signal::cancel(&client, cancelled).await.unwrap());
    assert!(
        !dawdle::signal::cancel(&client, cancelled).await.unwrap(),
        "cancelled twice"
    );
    // The clock jumps two hours, for this signal: its due time is now.
    client
        .execute(
            "UPDATE dawdle.delayed SET deliver_at = now() WHERE id = $1",
            &[&moved],
        )
        .await
        .unwrap();
    wait_until(
        "the moved signal is handled",
        Duration::from_secs(30),
        || !handled(tag).is_empty(),
    )
    .await;
    dawdle::testing::wait_until_drained(&client, Duration::from_secs(10))
        .await
        .unwrap();
    let got: Vec<(u32, i64)> = handled(tag).iter().map(|h| (h.0, h.1)).collect();
    assert_eq!(got, vec![(1, moved)], "the cancelled one never comes");
    assert!(
        !dawdle::signal::cancel(&client, moved).await.unwrap(),
        "released already"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_due_signal_held_by_a_transaction_waits_for_it_without_a_busy_loop() {
    // A cluster of its own: transaction ids are the cluster's, and the
    // other tests of this file, running beside, would take some too.
    let cluster = Cluster::builder().start().await.unwrap();
    let db = TestDatabase::on(cluster.admin()).await.unwrap();
    let mut client = db.connect().await.unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[]).unwrap())
        .await
        .unwrap();
    let handle = runtime(&db, MemoryQueue::new());
    let tag = "held";
    let id = SignalBuilder::new(&ping(tag, 1))
        .delay(Duration::from_millis(300))
        .send(&client)
        .await
        .unwrap();
    // A transaction that locks it (as a cancel or a move of its due time
    // would) past its due time.
    let holder = client.transaction().await.unwrap();
    holder
        .execute(
            "SELECT FROM dawdle.delayed WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .unwrap();
    let other = db.connect().await.unwrap();
    let xmax = |client: tokio_postgres::Client| async move {
        let next: i64 = client
            .query_one(
                "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (client, next)
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (other, before) = xmax(other).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_other, after) = xmax(other).await;
    assert!(handled(tag).is_empty(), "released while locked");
    // Each look at a due signal takes a transaction id: a few looks in
    // 1.5 s (3 here), not a loop (about 950 when the leader looked again
    // at once).
    assert!(
        after - before < 150,
        "{} transaction ids in 1.5 s",
        after - before
    );
    holder.commit().await.unwrap();
    wait_until(
        "the signal is handled once the lock is gone",
        Duration::from_secs(30),
        || !handled(tag).is_empty(),
    )
    .await;
    assert_eq!(handled(tag)[0].1, id);
    handle.shutdown().await.unwrap();
    drop(client);
    drop(db);
    cluster.stop().await;
}

#[tokio::test]
async fn a_signal_that_fell_due_while_no_watcher_ran_comes_at_once_after() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let handle = runtime(&db, queue.clone());
    let tag = "restart";
    let id = SignalBuilder::new(&ping(tag, 1))
        .delay(Duration::from_secs(2))
        .send(&client)
        .await
        .unwrap();
    handle.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(handled(tag).is_empty());

    let restarted = Utc::now();
    let handle = runtime(&db, queue);
    wait_until(
        "the signal is handled after the restart",
        Duration::from_secs(30),
        || !handled(tag).is_empty(),
    )
    .await;
    let (_, got_id, _, at) = handled(tag)[0];
    assert_eq!(got_id, id);
    let late = (at - restarted).to_std().unwrap_or_default();
    assert!(
        late < Duration::from_secs(10),
        "handled {late:?} after the restart"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_signal_without_a_handler_is_dead_lettered_with_its_reason() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let handle = runtime(&db, queue.clone());
    let tag = "unknown";
    client
        .execute("SELECT dawdle.signal('nobody.listens', '{\"x\": 1}')", &[])
        .await
        .unwrap();
    // The watcher and listener go on: a known one after it is handled.
    dawdle::signal(&client, &ping(tag, 1)).await.unwrap();
    wait_until(
        "the known signal is handled",
        Duration::from_secs(30),
        || !handled(tag).is_empty(),
    )
    .await;
    wait_until(
        "the unknown one is dead-lettered",
        Duration::from_secs(30),
        || !queue.dead_letters().is_empty(),
    )
    .await;
    let dead = &queue.dead_letters()[0];
    assert!(
        dead.reason.contains("\"nobody.listens\""),
        "{}",
        dead.reason
    );
    assert!(dead.body.contains(r#""payload":{"x": 1}"#) || dead.body.contains(r#""x""#));
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_signal_larger_than_a_message_travels_by_reference() {
    let (db, client) = database().await;
    let queue = MemoryQueue::builder().max_message_bytes(4096).build();
    let handle = runtime(&db, queue);
    let tag = "x".repeat(20_000);
    let id = dawdle::signal(&client, &ping(&tag, 9)).await.unwrap();
    wait_until(
        "the large signal is handled whole",
        Duration::from_secs(30),
        || !handled(&tag).is_empty(),
    )
    .await;
    assert_eq!(handled(&tag)[0].1, id);
    // Its payload waited in dawdle.payloads, removed once handled.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let parked: i64 = client
            .query_one("SELECT count(*) FROM dawdle.payloads", &[])
            .await
            .unwrap()
            .get(0);
        if parked == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the payload stays parked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_sql_function_names_what_is_wrong() {
    let (_db, client) = database().await;
    let error = client
        .execute("SELECT dawdle.signal('', '{}')", &[])
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("needs a name") || format!("{error:?}").contains("needs a name"),
        "{error:?}"
    );
    let error = client
        .execute("SELECT dawdle.signal('test.ping', NULL)", &[])
        .await
        .unwrap_err();
    assert!(format!("{error:?}").contains("has no payload"), "{error:?}");
    // Without dawdle's SQL, the error says what is missing.
    let bare = TestDb::new().await.unwrap();
    let bare = bare.connect().await.unwrap();
    let error = dawdle::signal(&bare, &ping("bare", 1)).await.unwrap_err();
    assert!(matches!(error, SignalError::Database(_)));
    assert!(
        error
            .to_string()
            .contains("schema \"dawdle\" does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn without_a_database_a_signal_goes_straight_to_the_queue() {
    let queue = MemoryQueue::new();
    let handle = Runtime::builder()
        .queue(queue.clone())
        .listen()
        .receive_wait(Duration::from_millis(200))
        .build()
        .unwrap()
        .start();
    let tag = "no database";
    let first = handle.signal(&ping(tag, 1)).await.unwrap();
    let second = handle.signal(&ping(tag, 2)).await.unwrap();
    assert_ne!(first, second);
    wait_until("both are handled", Duration::from_secs(10), || {
        handled(tag).len() == 2
    })
    .await;
    handle.shutdown().await.unwrap();
    assert_eq!(queue.waiting(), 0);
}

#[tokio::test]
async fn in_direct_mode_handlers_run_before_signal_returns() {
    let queue = MemoryQueue::new();
    let handle = Runtime::builder()
        .queue(queue.clone())
        .listen()
        .signal_directly()
        .build()
        .unwrap()
        .start();
    let tag = "direct";
    handle.signal(&ping(tag, 7)).await.unwrap();
    assert_eq!(
        handled(tag).iter().map(|h| h.0).collect::<Vec<_>>(),
        vec![7]
    );
    let error = handle
        .signal(&Grumble {
            reason: "no coffee".to_owned(),
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no coffee"), "{error}");
    assert_eq!(queue.waiting(), 0, "direct mode sends nothing");
    handle.shutdown().await.unwrap();
}
