//! `dawdle watch` against a real PostgreSQL and moto's SQS server: a burst
//! forwarded, SIGKILL mid-stream, SIGTERM, to SQS and to the database's
//! PgQueue.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use dawdle::queue::{PgQueue, Queue, SqsQueue};
use dawdle::wire::Envelope;
use dawdle_test::{SqsServer, TestDb};
use tokio::time::Instant;

use common::{database, dawdle, Process};

fn start(db: &TestDb, server: &SqsServer, url: &str) -> Process {
    Process(
        dawdle(Some(server))
            .args(["watch", "--events-per-message", "4", "--linger", "20ms"])
            .env("DATABASE_URL", db.url())
            .env("DAWDLE_SQS_QUEUE_URL", url)
            .env("DAWDLE_BATCH_SIZE", "7")
            .spawn()
            .unwrap(),
    )
}

/// Receives and deletes until `ids` holds `expected` event ids; the most
/// events one message carried.
async fn receive_until(queue: &impl Queue, ids: &mut BTreeSet<i64>, expected: usize) -> usize {
    let mut largest = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.len() < expected {
        assert!(
            Instant::now() < deadline,
            "{} of {expected} events arrived",
            ids.len()
        );
        let messages = queue
            .receive(10, Duration::from_secs(1), Duration::from_secs(60))
            .await
            .unwrap();
        for m in &messages {
            let envelope = Envelope::parse(&m.body).unwrap();
            largest = largest.max(envelope.events.len());
            ids.extend(envelope.events.iter().map(|e| e.id));
        }
        let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
        if !receipts.is_empty() {
            queue.delete(&receipts).await.unwrap();
        }
    }
    largest
}

#[tokio::test]
async fn forwards_rows_survives_sigkill_and_stops_on_sigterm() {
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("watch", false, None).await.unwrap();
    let queue = SqsQueue::new(server.client().await, &url);

    client
        .batch_execute("INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 30) n")
        .await
        .unwrap();
    let watcher = start(&db, server, &url);
    let mut ids = BTreeSet::new();
    let largest = receive_until(&queue, &mut ids, 4).await;
    assert_eq!(largest, 4, "--events-per-message reaches the watcher");
    let mut watcher = watcher;
    watcher.signal("-KILL");
    watcher.0.wait().unwrap();

    client
        .batch_execute("UPDATE items SET name = name || '!'")
        .await
        .unwrap();
    let mut watcher = start(&db, server, &url);
    receive_until(&queue, &mut ids, 60).await;
    assert_eq!(ids, (1..=60).collect(), "every event id, duplicates folded");

    watcher.signal("-TERM");
    let status = watcher.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let left: i64 = client
        .query_one("SELECT count(*) FROM dawdle.events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn forwards_to_the_databases_pg_queue_by_default_and_survives_sigkill() {
    let (db, client) = database().await;
    client
        .batch_execute("INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 30) n")
        .await
        .unwrap();
    // No --queue-url: the PgQueue named `default` in the watched database.
    let start = || {
        Process(
            dawdle(None)
                .args(["watch", "--events-per-message", "4", "--linger", "20ms"])
                .env("DATABASE_URL", db.url())
                .spawn()
                .unwrap(),
        )
    };
    let queue = PgQueue::new(db.database().clone());
    let mut watcher = start();
    let mut ids = BTreeSet::new();
    let largest = receive_until(&queue, &mut ids, 4).await;
    assert_eq!(largest, 4, "--events-per-message reaches the watcher");
    watcher.signal("-KILL");
    watcher.0.wait().unwrap();

    client
        .batch_execute("UPDATE items SET name = name || '!'")
        .await
        .unwrap();
    let mut watcher = start();
    receive_until(&queue, &mut ids, 60).await;
    assert_eq!(ids, (1..=60).collect(), "every event id, duplicates folded");
    watcher.signal("-TERM");
    let status = watcher.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// `--route` fans one table out to two PgQueues and an SQS queue; a
/// route's tables narrow what it takes.
#[tokio::test]
async fn routes_fan_out_to_pg_queues_and_sqs() {
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server
        .create_queue("watch-routes", false, None)
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 20) n")
        .await
        .unwrap();
    let mut watcher = Process(
        dawdle(Some(server))
            .args(["watch", "--linger", "20ms"])
            .args([
                "--route",
                "one=pg:one",
                "--route",
                "two=pg:two;tables=public.items",
            ])
            .args(["--route", &format!("sqs={url};tables=items")])
            .args(["--route", "none=pg:none;tables=public.other"])
            .env("DATABASE_URL", db.url())
            .spawn()
            .unwrap(),
    );
    let queue = |name: &str| PgQueue::builder(db.database().clone()).name(name).build();
    for name in ["one", "two"] {
        let mut ids = BTreeSet::new();
        receive_until(&queue(name), &mut ids, 20).await;
        assert_eq!(ids, (1..=20).collect(), "route {name}");
    }
    let sqs = SqsQueue::builder(server.client().await, &url).build();
    let mut ids = BTreeSet::new();
    receive_until(&sqs, &mut ids, 20).await;
    assert_eq!(ids, (1..=20).collect(), "route sqs");
    let other = queue("none")
        .receive(10, Duration::ZERO, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(other.is_empty(), "a route of another table gets nothing");
    watcher.signal("-TERM");
    assert!(watcher.0.wait().unwrap().success());
}

#[test]
fn exit_codes_tell_usage_from_connection_failures() {
    let (output, _) = common::run(dawdle(None).arg("watch"));
    assert_eq!(output.status.code(), Some(2), "no database: a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--database-url"));

    let (output, _) = common::run(
        dawdle(None)
            .args(["watch", "--queue-url", "http://127.0.0.1:1/q"])
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing"),
    );
    assert_eq!(output.status.code(), Some(3), "no server: cannot connect");
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect to the database"));

    let (output, _) = common::run(
        dawdle(None)
            .args([
                "watch",
                "--queue-url",
                "http://127.0.0.1:1/q",
                "--linger",
                "soon",
            ])
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing"),
    );
    assert_eq!(output.status.code(), Some(2), "a malformed duration");
}

/// `--capture wal`: the watcher reads the database's replication slot; a
/// SIGKILL mid-stream loses nothing (the slot gives again what was not
/// confirmed), and `dawdle status` shows the slot.
#[tokio::test]
async fn captures_from_the_wal_survives_sigkill_and_shows_the_slot() {
    use dawdle::Watched;
    // A cluster with logical WAL of its own: DATABASE_URL's may not have it.
    let cluster = dawdle_test::Cluster::builder()
        .logical(true)
        .start()
        .await
        .unwrap();
    let db = dawdle::testing::TestDatabase::on(cluster.admin())
        .await
        .unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, secret text)",
        )
        .await
        .unwrap();
    let sql = dawdle::sql::up_with(&[common::Item::TABLE], dawdle::sql::Capture::Wal).unwrap();
    dawdle::sql::apply(&mut client, &sql).await.unwrap();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        cluster.port(),
        db.name()
    );
    client
        .batch_execute(
            "INSERT INTO items SELECT n, 'item ' || n, 's' FROM generate_series(1, 30) n",
        )
        .await
        .unwrap();
    let start = || {
        Process(
            dawdle(None)
                .args(["watch", "--capture", "wal", "--events-per-message", "4"])
                .env("DATABASE_URL", &url)
                .spawn()
                .unwrap(),
        )
    };
    let queue = PgQueue::new(db.database().clone());
    let mut watcher = start();
    let mut ids = BTreeSet::new();
    receive_until(&queue, &mut ids, 4).await;
    watcher.signal("-KILL");
    watcher.0.wait().unwrap();
    client
        .batch_execute("UPDATE items SET name = name || '!'")
        .await
        .unwrap();
    let mut watcher = start();
    receive_until(&queue, &mut ids, 60).await;
    assert_eq!(ids.len(), 60, "every change, duplicates folded");
    assert!(ids.iter().all(|&id| id > 1 << 62), "ids from the WAL");
    let status = common::succeed(
        dawdle(None)
            .args(["status", "--json"])
            .env("DATABASE_URL", &url),
    );
    let report: serde_json::Value = serde_json::from_str(&status).unwrap();
    let slot = &report["wal_slot"];
    assert!(
        slot["name"].as_str().unwrap().starts_with("dawdle_"),
        "{report:#}"
    );
    assert_eq!(slot["active"], true, "{report:#}");
    watcher.signal("-TERM");
    let status = watcher.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    drop(client);
    drop(db);
    cluster.stop().await;
}
