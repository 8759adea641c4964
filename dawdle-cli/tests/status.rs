//! `dawdle status` against a real PostgreSQL and moto's SQS server.

mod common;

use aws_sdk_sqs::Client;
use dawdle_test::SqsServer;
use serde_json::Value;

use common::{database, dawdle, eventually, succeed, Process};

async fn send(client: &Client, url: &str, body: &str) {
    client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .message_group_id("g")
        .message_deduplication_id(body)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn reports_the_backlog_the_leader_and_the_queues() {
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("status", true, Some(3)).await.unwrap();
    let sqs = server.client().await;
    let dlq = url.replace(".fifo", "-dlq.fifo");
    send(&sqs, &url, "one").await;
    send(&sqs, &url, "two").await;
    send(&sqs, &dlq, "dead").await;

    client
        .batch_execute("INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 12) n")
        .await
        .unwrap();
    // A watcher that leads but cannot send: told the FIFO queue is a
    // standard one, it sends without a group id, which SQS refuses, so the
    // events wait in PostgreSQL while it holds the leader lock.
    let _watcher = Process(
        dawdle(Some(server))
            .args(["watch", "--fifo", "false", "--queue-url", &url])
            .env("DATABASE_URL", db.url())
            .env("RUST_LOG", "error")
            .spawn()
            .unwrap(),
    );

    let status = |json: bool| {
        let mut command = dawdle(Some(server));
        command
            .arg("status")
            .env("DATABASE_URL", db.url())
            .env("DAWDLE_SQS_QUEUE_URL", &url);
        if json {
            command.arg("--json");
        }
        succeed(&mut command)
    };
    eventually("a leader", || async {
        !serde_json::from_str::<Value>(&status(true)).unwrap()["leader"].is_null()
    })
    .await;

    let report: Value = serde_json::from_str(&status(true)).unwrap();
    assert_eq!(report["backlog"]["events"], 12, "{report:#}");
    assert!(
        report["backlog"]["oldest_event_age_seconds"]
            .as_f64()
            .unwrap()
            >= 0.0
    );
    assert_eq!(report["capture"]["uncaptured"], serde_json::json!([]));
    assert_eq!(report["capture"]["event_trigger"], true);
    assert_eq!(report["leader"]["application_name"], "dawdle-watcher");
    assert!(report["leader"]["pid"].as_i64().unwrap() > 0);
    let since = report["leader"]["backend_start"].as_str().unwrap();
    assert!(
        since.starts_with("20") && since.contains('T'),
        "RFC 3339: {since}"
    );
    assert!(report["leader"]["connected_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(report["signals"]["delayed"], 0);
    assert!(report["signals"]["next_due_in_seconds"].is_null());
    assert_eq!(report["payloads"]["pending"], 0);
    assert_eq!(report["queue"]["url"], url.as_str());
    assert_eq!(report["queue"]["visible"], 2);
    assert_eq!(report["queue"]["in_flight"], 0);
    assert_eq!(report["queue"]["dead_letters"], 1, "{report:#}");
    assert!(
        report["queue"]["oldest_age_seconds"].is_null(),
        "SQS cannot tell"
    );
    assert_eq!(report["dead_letter_queue"]["url"], dlq.as_str());
    assert_eq!(report["dead_letter_queue"]["visible"], 1);

    let table = status(false);
    println!("{table}");
    assert!(table.contains("12 events"), "{table}");
    assert!(
        table.contains(&format!(
            "queue              {url}: 2 visible, 0 in flight, 0 delayed, 1 dead letters"
        )),
        "{table}"
    );
    assert!(table.contains("dawdle-watcher"), "{table}");
    assert!(
        table.contains("capture            whole; new partitions and children get the triggers"),
        "{table}"
    );
}

#[tokio::test]
async fn says_what_is_not_available() {
    let (db, client) = database().await;
    // No PgQueue tables either (a database from before PgQueue).
    client
        .batch_execute("DROP TABLE dawdle.queue_messages, dawdle.queue_dead_letters CASCADE")
        .await
        .unwrap();
    let table = succeed(dawdle(None).arg("status").env("DATABASE_URL", db.url()));
    assert!(table.contains("backlog            none"), "{table}");
    assert!(
        table.contains("no watcher holds the leader lock"),
        "{table}"
    );
    assert!(
        table.contains("not available (no --queue-url given, and no PgQueue tables)"),
        "{table}"
    );

    let report: Value = serde_json::from_str(&succeed(
        dawdle(None)
            .args(["status", "--json"])
            .env("DATABASE_URL", db.url()),
    ))
    .unwrap();
    assert_eq!(report["backlog"]["events"], 0);
    assert!(report["backlog"]["oldest_event_age_seconds"].is_null());
    assert!(report["leader"].is_null());
    assert!(report["queue"].is_null());
    assert!(report["dead_letter_queue"].is_null());
}

#[tokio::test]
async fn shows_the_databases_pg_queue_and_its_dead_letters_by_default() {
    let (db, client) = database().await;
    // Two messages; one received and dead-lettered, as a listener would.
    // Then one received and in flight, one delayed, and one waiting.
    client
        .batch_execute(
            "SELECT dawdle.queue_send('default', 'one'), dawdle.queue_send('default', 'two');
             SELECT dawdle.queue_dead_letter('default', id, receive_count, 'handler failed')
             FROM dawdle.queue_read('default', 30, 1);
             SELECT dawdle.queue_send('default', 'three'),
                    dawdle.queue_send('default', 'later', delay_seconds => 600);
             SELECT FROM dawdle.queue_read('default', 600, 1);",
        )
        .await
        .unwrap();
    let table = succeed(dawdle(None).arg("status").env("DATABASE_URL", db.url()));
    println!("{table}");
    let queue = table.lines().find(|l| l.starts_with("queue ")).unwrap();
    assert!(
        queue.starts_with(
            "queue              PgQueue \"default\": 1 visible, 1 in flight, 1 delayed, the oldest sent "
        ),
        "{table}"
    );
    assert!(queue.ends_with(" ago, 1 dead letters"), "{table}");
    assert!(
        table.contains("dead-letter queue  PgQueue \"default\": 1 visible"),
        "{table}"
    );
    let report: Value = serde_json::from_str(&succeed(
        dawdle(None)
            .args(["status", "--json"])
            .env("DATABASE_URL", db.url()),
    ))
    .unwrap();
    assert_eq!(report["queue"]["name"], "default", "{report:#}");
    assert!(report["queue"]["url"].is_null(), "{report:#}");
    assert_eq!(report["queue"]["visible"], 1);
    assert_eq!(report["queue"]["in_flight"], 1);
    assert_eq!(report["queue"]["delayed"], 1);
    assert_eq!(report["queue"]["dead_letters"], 1);
    let age = report["queue"]["oldest_age_seconds"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&age), "{report:#}");
    assert_eq!(report["dead_letter_queue"]["visible"], 1);

    // Another name: another queue, empty.
    let report: Value = serde_json::from_str(&succeed(
        dawdle(None)
            .args(["status", "--json", "--queue", "other"])
            .env("DATABASE_URL", db.url()),
    ))
    .unwrap();
    assert_eq!(report["queue"]["visible"], 0, "{report:#}");
    assert_eq!(report["queue"]["oldest_age_seconds"], 0.0, "holds none");
    assert_eq!(report["queue"]["dead_letters"], 0);
    assert_eq!(report["dead_letter_queue"]["visible"], 0);
}
