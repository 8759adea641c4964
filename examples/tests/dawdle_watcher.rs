//! The standalone `dawdle-watcher` binary against a real PostgreSQL and
//! moto's SQS server: a burst forwarded, SIGKILL mid-stream, SIGTERM.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::Duration;

use dawdle::queue::{Queue, SqsQueue};
use dawdle::wire::Envelope;
use dawdle_test::{SqsServer, TestDb};
use tokio::time::Instant;

/// The watcher process, killed if the test fails before it stops it.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(db: &TestDb, server: &SqsServer, queue_url: &str) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_dawdle-watcher"))
        .env("DATABASE_URL", db.url())
        .env("DAWDLE_SQS_QUEUE_URL", queue_url)
        .env("DAWDLE_SQS_ENDPOINT", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("DAWDLE_EVENTS_PER_MESSAGE", "5")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    Process(child)
}

fn signal(process: &Process, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn receive_until(queue: &SqsQueue, ids: &mut BTreeSet<i64>, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
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
            ids.extend(
                Envelope::parse(&m.body)
                    .unwrap()
                    .events
                    .iter()
                    .map(|e| e.id),
            );
        }
        let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
        if !receipts.is_empty() {
            queue.delete(&receipts).await.unwrap();
        }
    }
}

#[tokio::test]
async fn forwards_a_burst_survives_sigkill_and_stops_on_sigterm() {
    let (db, client) = dawdle_examples::example_database().await.unwrap();
    let server = SqsServer::get().await.unwrap();
    let url = server
        .create_queue("standalone", false, None)
        .await
        .unwrap();
    let queue = SqsQueue::new(server.client().await, &url);

    client
        .batch_execute("INSERT INTO users (name) SELECT 'user ' || n FROM generate_series(1, 60) n")
        .await
        .unwrap();
    let mut watcher = start(&db, server, &url);
    let mut ids = BTreeSet::new();
    receive_until(&queue, &mut ids, 10).await;
    signal(&watcher, "-KILL");
    watcher.0.wait().unwrap();

    client
        .batch_execute("UPDATE users SET name = name || '!'")
        .await
        .unwrap();
    let mut watcher = start(&db, server, &url);
    receive_until(&queue, &mut ids, 120).await;
    assert_eq!(
        ids,
        (1..=120).collect(),
        "every event id, duplicates folded"
    );

    signal(&watcher, "-TERM");
    let status = watcher.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let left: i64 = client
        .query_one("SELECT count(*) FROM dawdle.events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[test]
fn refuses_to_start_without_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_dawdle-watcher"))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL is not set"));
}
