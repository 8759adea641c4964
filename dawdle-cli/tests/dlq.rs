//! `dawdle dlq` against a real PostgreSQL (the database's PgQueue, the
//! default) and moto's SQS server: list, show, redrive and discard, and the
//! failure a real listener recorded, shown end to end.
//!
//! The handler below is global to this test binary; only the end-to-end
//! tests run a listener, each on a queue of its own.

mod common;

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use dawdle::queue::{Failure, OutgoingMessage, PgQueue, Queue, SqsQueue};
use dawdle::{Insert, Runtime};
use dawdle_test::{SqsServer, TestDb};
use serde_json::{json, Value};

use common::{database, dawdle, eventually, run, succeed, Item};

const BODY: &str = r#"{"dawdle":1,"events":[{"id":7,"schema":"public","table":"items","action":"insert","key":[1],"captured_at":"2026-11-27T10:11:12.123456+00:00","txid":"99","old":null,"new":{"id":1,"name":"one"}}]}"#;

/// What the handler below fails with, for item `id`.
fn refusal(id: i64) -> String {
    format!("cannot ship item {id}: the warehouse is closed")
}

/// Fails every time, as a handler whose downstream is down does.
#[dawdle::handler]
async fn refuse_item(event: Insert<Item>) -> Result<(), String> {
    Err(refusal(event.new.id))
}

/// Every body on `queue`, deleted.
async fn drain(queue: &impl Queue) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let messages = queue
            .receive(10, Duration::from_secs(1), Duration::from_secs(60))
            .await
            .unwrap();
        if messages.is_empty() {
            return bodies;
        }
        bodies.extend(messages.iter().map(|m| m.body.clone()));
        let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
        queue.delete(&receipts).await.unwrap();
    }
}

/// `output`'s stderr as text.
fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one entry of `list --json` whose message id is `id`.
fn entry<'a>(entries: &'a Value, id: &str) -> &'a Value {
    entries
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {entries:#}"))
}

#[tokio::test]
async fn lists_shows_redrives_and_discards_sqs_dead_letters() {
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("dlq", false, Some(3)).await.unwrap();
    let dlq_url = format!("{url}-dlq");
    let client = server.client().await;
    let queue = SqsQueue::builder(client.clone(), &url)
        .dead_letter_queue(&dlq_url)
        .build();
    let send_dead = |body: &'static str| {
        let client = client.clone();
        let dlq_url = dlq_url.clone();
        async move {
            client
                .send_message()
                .queue_url(&dlq_url)
                .message_body(body)
                .send()
                .await
                .unwrap()
                .message_id
                .unwrap()
        }
    };

    // One message dead-lettered as a listener does it, one that never was
    // a dawdle message, put there by hand.
    client
        .send_message()
        .queue_url(&url)
        .message_body(BODY)
        .send()
        .await
        .unwrap();
    let received = queue
        .receive(1, Duration::from_secs(1), Duration::from_secs(60))
        .await
        .unwrap();
    let failure = Failure::new(None, "no handler for public.items", false);
    let reason = "could not be handled (once): no handler for public.items";
    assert_eq!(failure.reason(), reason);
    queue.dead_letter(&received[0], &failure).await.unwrap();
    let garbage = send_dead("not json").await;

    let dlq = |args: &[&str]| {
        let mut command = dawdle(Some(server));
        command
            .arg("dlq")
            .args(args)
            .env("DAWDLE_SQS_QUEUE_URL", &url);
        command
    };

    let listed = succeed(&mut dlq(&["list"]));
    println!("{listed}");
    assert_eq!(listed.lines().count(), 3, "a header and two messages");
    let line = listed.lines().find(|l| l.contains("items")).unwrap();
    assert!(line.contains("public.items insert 7"), "{line}");
    assert!(line.contains(reason), "{line}");
    let dawdle_id = line.split_whitespace().next().unwrap().to_owned();
    assert!(listed.contains(&garbage));
    assert!(listed.contains("not a dawdle message"));

    let json: Value = serde_json::from_str(&succeed(&mut dlq(&["list", "--json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2, "{json}");
    let dead = entry(&json, &dawdle_id);
    assert_eq!(
        dead["first_event"],
        json!({"schema": "public", "table": "items", "action": "insert", "id": 7})
    );
    assert_eq!((&dead["events"], &dead["error"]), (&1.into(), &Value::Null));
    assert_eq!(dead["reason"], reason);
    assert_eq!(dead["failure"]["handler"], Value::Null, "{dead:#}");
    assert_eq!(dead["failure"]["error"], "no handler for public.items");
    assert_eq!(dead["failure"]["panicked"], false);
    assert_eq!(dead["failure"]["attempts"], 1);
    assert!(dead["failure"]["first_at"].is_string(), "{dead:#}");
    let other = entry(&json, &garbage);
    assert!(
        other["error"]
            .as_str()
            .unwrap()
            .contains("not a dawdle message"),
        "{other}"
    );
    assert_eq!(other["failure"], Value::Null, "put there by hand");
    assert_eq!(
        other["reason"], "none recorded: not dead-lettered by a dawdle listener",
        "{other}"
    );

    let shown = succeed(&mut dlq(&["show", &dawdle_id]));
    println!("{shown}");
    assert!(
        shown.contains(&format!("reason:        {reason}")),
        "{shown}"
    );
    assert!(shown.contains("handler:       (none could run)"), "{shown}");
    assert!(
        shown.contains("error:         no handler for public.items"),
        "{shown}"
    );
    assert!(shown.contains("panicked:      no"), "{shown}");
    assert!(shown.contains("attempts:      1"), "{shown}");
    assert!(shown.contains("first failed:  20"), "{shown}");
    assert!(shown.contains(r#""name": "one""#), "pretty JSON: {shown}");
    let shown: Value =
        serde_json::from_str(&succeed(&mut dlq(&["show", "--json", &dawdle_id]))).unwrap();
    assert_eq!(shown["message_id"], dawdle_id.as_str());
    assert_eq!(shown["failure"]["error"], "no handler for public.items");
    assert_eq!(
        shown["body"]["events"][0]["new"]["name"], "one",
        "{shown:#}"
    );
    let shown: Value =
        serde_json::from_str(&succeed(&mut dlq(&["show", "--json", &garbage]))).unwrap();
    assert_eq!(
        shown["body"], "not json",
        "a body that is not JSON, as text"
    );
    let (output, _) = run(&mut dlq(&["show", "no-such-id"]));
    assert_eq!(output.status.code(), Some(1));

    let (output, _) = run(&mut dlq(&["redrive"]));
    assert_eq!(output.status.code(), Some(2), "--all or ids");

    succeed(&mut dlq(&["redrive", &garbage]));
    assert_eq!(drain(&queue).await, ["not json"]);
    let listed = succeed(&mut dlq(&["list"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");

    let redriven = succeed(&mut dlq(&["redrive", "--all"]));
    assert!(redriven.contains("redrove 1 messages"), "{redriven}");
    assert_eq!(drain(&queue).await, [BODY]);
    let listed = succeed(&mut dlq(&["list"]));
    assert!(listed.contains("is empty"), "{listed}");
    assert_eq!(succeed(&mut dlq(&["list", "--json"])).trim(), "[]");

    // Discard, by id and --all; with only --dead-letter-queue, which is
    // enough to discard but not to redrive.
    let doomed = send_dead("doomed").await;
    let kept = send_dead("kept").await;
    let by_dlq = |args: &[&str]| {
        let mut command = dawdle(Some(server));
        command
            .arg("dlq")
            .args(args)
            .env("DAWDLE_SQS_DEAD_LETTER_QUEUE", &dlq_url);
        command
    };
    let (output, _) = run(&mut by_dlq(&["redrive", &kept]));
    assert_eq!(output.status.code(), Some(2), "redrive needs --queue-url");
    let discarded = succeed(&mut by_dlq(&["discard", &doomed]));
    assert!(discarded.contains("discarded 1 messages"), "{discarded}");
    let listed = succeed(&mut by_dlq(&["list"]));
    assert!(
        listed.contains(&kept) && !listed.contains(&doomed),
        "{listed}"
    );
    let (output, _) = run(&mut by_dlq(&["discard", "no-such-id"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("not found in"),
        "{}",
        stderr(&output)
    );
    let discarded = succeed(&mut by_dlq(&["discard", "--all"]));
    assert!(discarded.contains("discarded 1 messages"), "{discarded}");
    assert!(succeed(&mut by_dlq(&["list"])).contains("is empty"));
    assert!(drain(&queue).await.is_empty(), "nothing was sent back");
}

/// `dawdle dlq ARGS` on the PgQueue of `db`: no SQS flag, the database from
/// `DATABASE_URL`.
fn pg_dlq(db: &TestDb, args: &[&str]) -> std::process::Command {
    let mut command = dawdle(None);
    command.arg("dlq").args(args).env("DATABASE_URL", db.url());
    command
}

#[tokio::test]
async fn lists_shows_redrives_and_discards_the_databases_pg_queue_dead_letters() {
    let (db, _client) = database().await;
    let queue = PgQueue::builder(db.database().clone()).name("jobs").build();
    queue
        .send(&[
            OutgoingMessage::new(BODY),
            OutgoingMessage::new("not json"),
            OutgoingMessage::new(BODY),
        ])
        .await
        .unwrap();
    let received = queue
        .receive(10, Duration::ZERO, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(received.len(), 3);
    let failure = Failure::new(Some("on_item"), "boom: disk full", false);
    let reason = "handler on_item failed once: boom: disk full";
    for message in &received {
        queue.dead_letter(message, &failure).await.unwrap();
    }
    let stored = queue.dead_letters(0, 10).await.unwrap();
    // As PostgreSQL keeps them: to the microsecond.
    let failed = stored[0].failure.clone().expect("the failure is kept");
    assert_eq!(
        (failed.handler.as_deref(), failed.attempts),
        (Some("on_item"), 1)
    );
    let ids: Vec<String> = stored.iter().map(|dead| dead.id.to_string()).collect();
    let (first, garbage, third) = (&ids[0], &ids[1], &ids[2]);

    // Another queue's name: none of these.
    let empty = succeed(&mut pg_dlq(&db, &["list"]));
    assert_eq!(empty.trim(), r#"PgQueue "default" has no dead letters"#);

    let listed = succeed(&mut pg_dlq(&db, &["list", "--queue", "jobs"]));
    println!("{listed}");
    assert_eq!(listed.lines().count(), 4, "a header and three: {listed}");
    let line = listed
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap();
    assert!(line.contains("public.items insert 7"), "{line}");
    assert!(line.contains(reason), "{line}");
    let line = listed
        .lines()
        .find(|l| l.split_whitespace().next() == Some(garbage))
        .unwrap();
    assert!(line.contains("not a dawdle message"), "{line}");

    let json: Value = serde_json::from_str(&succeed(&mut pg_dlq(
        &db,
        &["list", "--json", "--queue", "jobs"],
    )))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3, "{json:#}");
    let dead = entry(&json, first);
    assert_eq!(dead["receive_count"], 1);
    assert_eq!(dead["reason"], reason);
    assert_eq!(dead["group_id"], Value::Null);
    assert_eq!(dead["events"], 1);
    assert_eq!(dead["first_event"]["table"], "items");
    assert_eq!(dead["failure"]["handler"], "on_item", "{dead:#}");
    assert_eq!(dead["failure"]["error"], "boom: disk full");
    assert_eq!(dead["failure"]["panicked"], false);
    assert_eq!(dead["failure"]["attempts"], 1);
    assert!(entry(&json, garbage)["error"]
        .as_str()
        .unwrap()
        .contains("not a dawdle message"));

    let jobs = |args: &[&str]| {
        let mut command = pg_dlq(&db, args);
        command.env("DAWDLE_QUEUE", "jobs");
        command
    };
    let shown = succeed(&mut jobs(&["show", first]));
    println!("{shown}");
    for line in [
        format!("message id:    {first}"),
        "receive count: 1".to_owned(),
        format!("reason:        {reason}"),
        "handler:       on_item".to_owned(),
        "error:         boom: disk full".to_owned(),
        "panicked:      no".to_owned(),
        "attempts:      1".to_owned(),
        format!("first failed:  {}", failed.first_at.to_rfc3339()),
        format!("last failed:   {}", failed.last_at.to_rfc3339()),
        format!("dead-lettered: {}", stored[0].dead_lettered_at.to_rfc3339()),
        "events:        1".to_owned(),
    ] {
        assert!(shown.lines().any(|l| l == line), "no {line:?}:\n{shown}");
    }
    assert!(shown.contains(r#""name": "one""#), "pretty JSON: {shown}");
    let shown: Value =
        serde_json::from_str(&succeed(&mut jobs(&["show", "--json", first]))).unwrap();
    assert_eq!(shown["message_id"], first.as_str());
    assert_eq!(shown["receive_count"], 1);
    assert_eq!(shown["failure"]["handler"], "on_item");
    assert_eq!(
        shown["body"]["events"][0]["new"]["name"], "one",
        "{shown:#}"
    );

    let (output, _) = run(&mut jobs(&["show", "4242"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(r#"no dead letter 4242 in PgQueue "jobs""#),
        "{}",
        stderr(&output)
    );
    let (output, _) = run(&mut jobs(&["show", "5fd2c6e1-not-a-number"]));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("not the id of a PgQueue dead letter"));
    let (output, _) = run(&mut jobs(&["redrive"]));
    assert_eq!(output.status.code(), Some(2), "--all or ids");

    // Redrive one: back in the queue, as a new message without its failure.
    let redriven = succeed(&mut jobs(&["redrive", first]));
    assert!(
        redriven.contains(r#"redrove 1 dead letters back to PgQueue "jobs""#),
        "{redriven}"
    );
    let depth = queue.depth().await.unwrap();
    assert_eq!((depth.waiting, depth.dead_letters), (1, 2), "{depth:?}");
    let back = queue
        .receive(10, Duration::ZERO, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body, BODY);
    assert_eq!(back[0].failure, None, "a fresh set of attempts");
    queue.delete(&[back[0].receipt.clone()]).await.unwrap();

    // Discard one: gone for good; an id that is not there is named.
    let (output, stdout) = run(&mut jobs(&["discard", garbage, first]));
    assert_eq!(output.status.code(), Some(1), "{first} was redriven");
    assert!(stdout.contains("discarded 1 dead letters"), "{stdout}");
    assert!(
        stderr(&output).contains(&format!(
            r#"no such dead letters in PgQueue "jobs": {first}"#
        )),
        "{}",
        stderr(&output)
    );
    let left: Vec<String> = queue
        .dead_letters(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|dead| dead.id.to_string())
        .collect();
    assert_eq!(left, std::slice::from_ref(third));
    assert_eq!(queue.depth().await.unwrap().waiting, 0, "not sent back");

    let discarded = succeed(&mut jobs(&["discard", "--all"]));
    assert!(
        discarded.contains("discarded 1 dead letters"),
        "{discarded}"
    );
    assert_eq!(queue.depth().await.unwrap().dead_letters, 0);
    assert_eq!(succeed(&mut jobs(&["list", "--json"])).trim(), "[]");
}

/// More dead letters than one page (1000): `list` and `--all` see each.
#[tokio::test]
async fn pages_through_many_pg_queue_dead_letters() {
    let (db, client) = database().await;
    client
        .batch_execute(
            r#"INSERT INTO "dawdle"."queue_dead_letters"
                   ("id", "queue", "body", "receive_count", "reason", "sent_at")
               SELECT n, 'default', 'message ' || n, 5, 'received too often', now()
               FROM generate_series(1, 2345) n"#,
        )
        .await
        .unwrap();
    let json: Value =
        serde_json::from_str(&succeed(&mut pg_dlq(&db, &["list", "--json"]))).unwrap();
    let ids: Vec<i64> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=2345).collect::<Vec<_>>());
    let table = succeed(&mut pg_dlq(&db, &["list"]));
    assert_eq!(table.lines().count(), 2346, "a header and every one");

    let redriven = succeed(&mut pg_dlq(&db, &["redrive", "--all"]));
    assert!(redriven.contains("redrove 2345 dead letters"), "{redriven}");
    let queue = PgQueue::new(db.database().clone());
    let depth = queue.depth().await.unwrap();
    assert_eq!((depth.waiting, depth.dead_letters), (2345, 0));
}

#[test]
fn help_says_the_pg_queue_is_the_default_and_hides_the_database_url() {
    let help = succeed(
        dawdle(None)
            .args(["dlq", "--help"])
            .env("DATABASE_URL", "postgres://u:secret@host/db"),
    );
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("by default those of the PgQueue in the database"),
        "{help}"
    );
    for command in ["list", "show", "redrive", "discard"] {
        let help = succeed(
            dawdle(None)
                .args(["dlq", command, "--help"])
                .env("DATABASE_URL", "postgres://u:secret@host/db"),
        );
        assert!(!help.contains("secret"), "{help}");
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for env in ["DATABASE_URL", "DAWDLE_QUEUE", "DAWDLE_SQS_QUEUE_URL"] {
            assert!(flat.contains(&format!("[env: {env}")), "{command}: {help}");
        }
    }
    let help = succeed(dawdle(None).args(["dlq", "discard", "--help"]));
    assert!(help.contains("[env: DAWDLE_DLQ_DISCARD_ALL"), "{help}");

    let (output, _) = run(dawdle(None).args(["dlq", "list"]));
    assert_eq!(output.status.code(), Some(2), "no database, no SQS queue");
    assert!(
        stderr(&output).contains("--database-url"),
        "{}",
        stderr(&output)
    );
    let (output, _) = run(dawdle(None).args([
        "dlq",
        "list",
        "--queue",
        "jobs",
        "--dead-letter-queue",
        "http://127.0.0.1:1/q",
    ]));
    assert_eq!(output.status.code(), Some(2), "a PgQueue name and SQS");
    let (output, _) = run(dawdle(None)
        .args(["dlq", "list"])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing"));
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}

/// A runtime that watches `db` and listens on `queue` with short retries.
fn runtime(db: &TestDb, queue: impl Queue) -> dawdle::RuntimeHandle {
    Runtime::builder()
        .database(db.database().clone())
        .queue(queue)
        .watch()
        .listen()
        .receive_wait(Duration::from_secs(1))
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
        .watcher(|w| w.linger(Duration::from_millis(50)))
        .build()
        .unwrap()
        .start()
}

/// `show`'s lines of the failure `refuse_item` recorded on its last of two
/// attempts for item `id`.
fn assert_shows_the_refusal(shown: &str, id: i64) {
    let error = format!("error:         {}", refusal(id));
    assert!(shown.lines().any(|l| l == error), "no {error:?}:\n{shown}");
    let handler = shown
        .lines()
        .find(|l| l.starts_with("handler:"))
        .unwrap_or_else(|| panic!("no handler line:\n{shown}"));
    assert!(handler.ends_with("refuse_item"), "{handler}");
    assert!(shown.lines().any(|l| l == "attempts:      2"), "{shown}");
    assert!(shown.lines().any(|l| l == "panicked:      no"), "{shown}");
    assert!(
        shown.contains(&format!("failed 2 times: {}", refusal(id))),
        "the reason: {shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_why_a_real_listener_dead_lettered_a_pg_queue_message() {
    let (db, client) = database().await;
    let queue = PgQueue::builder(db.database().clone())
        .max_receives(Some(2))
        .build();
    let handle = runtime(&db, queue.clone());
    client
        .execute("INSERT INTO items VALUES (41, 'doomed')", &[])
        .await
        .unwrap();
    eventually("the item's message is dead-lettered", || async {
        queue.depth().await.unwrap().dead_letters == 1
    })
    .await;
    handle.shutdown().await.unwrap();

    let dead = queue.dead_letters(0, 10).await.unwrap();
    let id = dead[0].id.to_string();
    let shown = succeed(&mut pg_dlq(&db, &["show", &id]));
    println!("{shown}");
    assert_shows_the_refusal(&shown, 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_why_a_real_listener_dead_lettered_an_sqs_message() {
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server
        .create_queue("dlq-e2e", false, Some(2))
        .await
        .unwrap();
    let dlq_url = format!("{url}-dlq");
    let sqs = server.client().await;
    let handle = runtime(&db, SqsQueue::new(sqs.clone(), &url));
    client
        .execute("INSERT INTO items VALUES (42, 'doomed')", &[])
        .await
        .unwrap();
    eventually("the item's message is dead-lettered", || async {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .is_some_and(|n| n == "1")
    })
    .await;
    handle.shutdown().await.unwrap();

    let dlq = |args: &[&str]| {
        let mut command = dawdle(Some(server));
        command.arg("dlq").args(args).args(["--queue-url", &url]);
        command
    };
    let json: Value = serde_json::from_str(&succeed(&mut dlq(&["list", "--json"]))).unwrap();
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{json:#}");
    assert_eq!(entries[0]["failure"]["error"], refusal(42).as_str());
    let id = entries[0]["message_id"].as_str().unwrap();
    let shown = succeed(&mut dlq(&["show", id]));
    println!("{shown}");
    assert_shows_the_refusal(&shown, 42);
}
