//! End to end: rows written in PostgreSQL reach `#[dawdle::handler]`
//! functions as typed values, through MemoryQueue, PgQueue and moto's SQS, with
//! failures, panics, slow handlers, invalid messages and shutdowns.
//!
//! Handlers are global (inventory), and tests run concurrently: each test
//! writes rows with keys of its own and looks only at what those keys got.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use dawdle::queue::{MemoryQueue, OutgoingMessage, PgQueue, Queue, SqsQueue};
use dawdle::{Change, Delete, Insert, Runtime, Update, Watched};
use dawdle_test::{CountingQueue, SqsServer, TestDb};
use rust_decimal::Decimal;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "accounts")]
struct Account {
    id: Uuid,
    name: String,
    balance: Decimal,
    tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "jobs", events(insert))]
struct Job {
    id: Uuid,
    behavior: String,
}

/// The visibility timeout of the tests of slow handlers: extended every
/// half of it, a message has 1.5 s to spare at each step.
const VISIBILITY: Duration = Duration::from_secs(3);
/// How long a slow job takes: twice [`VISIBILITY`], so that a message
/// whose visibility was not extended comes back while its job still runs.
const SLOW: Duration = Duration::from_secs(6);

/// What the handlers saw, by row key.
static SEEN: Mutex<Vec<(&'static str, Uuid, Vec<Account>)>> = Mutex::new(Vec::new());
static JOB_CALLS: Mutex<Option<HashMap<Uuid, u32>>> = Mutex::new(None);

fn seen(key: Uuid) -> Vec<(&'static str, Vec<Account>)> {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|(_, k, _)| *k == key)
        .map(|(h, _, rows)| (*h, rows.clone()))
        .collect()
}

fn job_calls(key: Uuid) -> u32 {
    JOB_CALLS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&key).copied())
        .unwrap_or(0)
}

#[dawdle::handler]
async fn on_insert(event: Insert<Account>) -> Result<(), std::convert::Infallible> {
    SEEN.lock()
        .unwrap()
        .push(("insert", event.new.id, vec![event.new]));
    Ok(())
}

#[dawdle::handler]
async fn on_update(event: Update<Account>) {
    SEEN.lock()
        .unwrap()
        .push(("update", event.new.id, vec![event.old, event.new]));
}

#[dawdle::handler]
async fn on_delete(event: Delete<Account>) -> Result<(), String> {
    SEEN.lock()
        .unwrap()
        .push(("delete", event.old.id, vec![event.old]));
    Ok(())
}

#[dawdle::handler(name = "tests::audit")]
async fn audit(event: Change<Account>) -> Result<(), String> {
    let id = event.new().or(event.old()).map(|a| a.id).expect("a row");
    let rows = event
        .old()
        .into_iter()
        .chain(event.new())
        .cloned()
        .collect();
    SEEN.lock().unwrap().push(("change", id, rows));
    Ok(())
}

#[dawdle::handler]
async fn run_job(event: Insert<Job>) -> Result<(), String> {
    let calls = {
        let mut map = JOB_CALLS.lock().unwrap();
        let count = map
            .get_or_insert_with(HashMap::new)
            .entry(event.new.id)
            .or_default();
        *count += 1;
        *count
    };
    match event.new.behavior.as_str() {
        "fail-twice" if calls <= 2 => Err(format!("failure {calls}")),
        "always-fail" => Err("always".to_owned()),
        "panic" => panic!("job {} panicked", event.new.id),
        "slow" => {
            tokio::time::sleep(SLOW).await;
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE accounts (id uuid PRIMARY KEY, name text NOT NULL, balance numeric NOT NULL,
                                    tags text[] NOT NULL DEFAULT '{}', secret text);
             CREATE TABLE jobs (id uuid PRIMARY KEY, behavior text NOT NULL);",
        )
        .await
        .unwrap();
    let up = dawdle::sql::up(&[Account::TABLE, Job::TABLE]).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    (db, client)
}

fn runtime(db: &TestDb, queue: impl Queue) -> dawdle::RuntimeBuilder {
    Runtime::builder()
        .database(db.config().clone())
        .pool(db.pool())
        .queue(queue)
        .watch()
        .listen()
        .receive_wait(Duration::from_secs(1))
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
        .watcher(|w| w.linger(Duration::from_millis(50)))
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

async fn account(client: &tokio_postgres::Client, id: Uuid) -> Account {
    let row = client
        .query_one(
            "SELECT id, name, balance, tags FROM accounts WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    Account {
        id: row.get(0),
        name: row.get(1),
        balance: row.get(2),
        tags: row.get(3),
    }
}

/// Insert, update, delete one account; every handler sees what a direct
/// query returned at each step.
async fn round_trip(queue: impl Queue) {
    let (db, client) = database().await;
    let handle = runtime(&db, queue).build().unwrap().start();
    check_round_trip(&client).await;
    handle.shutdown().await.unwrap();
}

/// The writes and checks of [`round_trip`], on a runtime that runs.
async fn check_round_trip(client: &tokio_postgres::Client) {
    let id = Uuid::new_v4();
    client
        .execute(
            "INSERT INTO accounts (id, name, balance, tags) VALUES ($1, 'ada', 12.345678901234567890, '{a,\"b c\"}')",
            &[&id],
        )
        .await
        .unwrap();
    let inserted = account(client, id).await;
    client
        .execute(
            "UPDATE accounts SET secret = 'not watched' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE accounts SET name = 'Ada', tags = '{}' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let updated = account(client, id).await;
    client
        .execute("DELETE FROM accounts WHERE id = $1", &[&id])
        .await
        .unwrap();

    eventually("every handler saw every event", || seen(id).len() == 6).await;
    let mut got = seen(id);
    got.sort_by_key(|(h, rows)| (*h, rows.len()));
    assert_eq!(
        got,
        vec![
            ("change", vec![inserted.clone()]),
            ("change", vec![updated.clone()]),
            ("change", vec![inserted.clone(), updated.clone()]),
            ("delete", vec![updated.clone()]),
            ("insert", vec![inserted.clone()]),
            ("update", vec![inserted, updated]),
        ]
    );
}

#[tokio::test]
async fn memory_queue_end_to_end() {
    round_trip(MemoryQueue::new()).await;
}

#[tokio::test]
async fn pg_queue_end_to_end() {
    let (db, client) = database().await;
    let queue = PgQueue::builder(db.database().clone()).build();
    let handle = runtime(&db, queue).build().unwrap().start();
    check_round_trip(&client).await;
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn pg_queue_fifo_end_to_end() {
    let (db, client) = database().await;
    let queue = PgQueue::builder(db.database().clone()).fifo(true).build();
    let handle = runtime(&db, queue).build().unwrap().start();
    check_round_trip(&client).await;
    handle.shutdown().await.unwrap();
}

/// With a database and no queue, the runtime uses a PgQueue on that
/// database: what one runtime's watcher sends waits in
/// `dawdle.queue_messages` until a listener in another runtime handles it.
#[tokio::test]
async fn without_a_queue_the_runtime_uses_a_pg_queue_on_its_database() {
    let (db, client) = database().await;
    let base = || {
        Runtime::builder()
            .database(db.database().clone())
            .receive_wait(Duration::from_secs(1))
    };
    let watching = base().watch().build().unwrap().start();
    let id = Uuid::new_v4();
    client
        .execute(
            "INSERT INTO accounts (id, name, balance) VALUES ($1, 'durable', 1)",
            &[&id],
        )
        .await
        .unwrap();
    let queued = || async {
        client
            .query_one("SELECT count(*) FROM dawdle.queue_messages", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    for _ in 0..600 {
        if queued().await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        queued().await,
        1,
        "the event waits in dawdle.queue_messages"
    );
    watching.shutdown().await.unwrap();
    assert!(seen(id).is_empty());

    let listening = base().listen().build().unwrap().start();
    eventually("every handler saw the insert", || seen(id).len() == 2).await;
    listening.shutdown().await.unwrap();
    assert_eq!(queued().await, 0, "handled and deleted");
}

#[tokio::test]
async fn sqs_standard_end_to_end() {
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("e2e", false, Some(3)).await.unwrap();
    round_trip(SqsQueue::new(server.client().await, url)).await;
}

#[tokio::test]
async fn sqs_fifo_end_to_end() {
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("e2e", true, Some(3)).await.unwrap();
    round_trip(SqsQueue::new(server.client().await, url)).await;
}

async fn job(client: &tokio_postgres::Client, behavior: &str) -> Uuid {
    let id = Uuid::new_v4();
    client
        .execute("INSERT INTO jobs VALUES ($1, $2)", &[&id, &behavior])
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn failures_are_retried_then_dead_lettered_and_panics_are_contained() {
    let (db, client) = database().await;
    let queue = MemoryQueue::builder().max_receives(Some(3)).build();
    let handle = runtime(&db, queue.clone()).build().unwrap().start();

    let flaky = job(&client, "fail-twice").await;
    let doomed = job(&client, "always-fail").await;
    let panicky = job(&client, "panic").await;
    eventually("the flaky job succeeded", || job_calls(flaky) == 3).await;
    // Packed into one message with the flaky job, a failing job is split
    // off into a message of its own once the flaky one succeeds, and then
    // spends that message's receives: at least 3 calls in all.
    let dead_jobs =
        || -> Vec<String> { queue.dead_letters().into_iter().map(|d| d.body).collect() };
    eventually("both failing jobs are dead-lettered", || {
        let dead = dead_jobs();
        [doomed, panicky]
            .iter()
            .all(|id| dead.iter().any(|body| body.contains(&id.to_string())))
    })
    .await;
    assert!(job_calls(doomed) >= 3, "{}", job_calls(doomed));
    assert!(job_calls(panicky) >= 3, "the listener survived the panics");
    assert!(
        dead_jobs()
            .iter()
            .all(|body| !body.contains(&flaky.to_string())),
        "the flaky job, which succeeded, is not in the dead-letter queue"
    );
    // The listener still works after all that.
    let fine = job(&client, "fine").await;
    eventually("a later job ran", || job_calls(fine) == 1).await;
    eventually("the queue is empty", || {
        queue.waiting() + queue.in_flight() == 0
    })
    .await;
    assert_eq!(
        job_calls(flaky),
        3,
        "deleted once it succeeded: no further call"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slow_handler_keeps_its_message() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let handle = runtime(&db, queue.clone())
        .visibility_timeout(VISIBILITY)
        .build()
        .unwrap()
        .start();
    let slow = job(&client, "slow").await;
    eventually("the slow job finished", || {
        queue.waiting() + queue.in_flight() == 0 && job_calls(slow) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        job_calls(slow),
        1,
        "its visibility was extended: called once"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_messages_are_dead_lettered_and_others_still_handled() {
    // Two receives: an event of a table no type describes (a newer
    // program's, say) is handed back once, then dead-lettered.
    let queue = MemoryQueue::builder().max_receives(Some(2)).build();
    let handle = Runtime::builder()
        .queue(queue.clone())
        .listen()
        .receive_wait(Duration::from_millis(200))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(50))
        .build()
        .unwrap()
        .start();
    let good = Uuid::new_v4();
    let event = |table: &str, new: serde_json::Value| {
        serde_json::json!({
            "id": 1, "schema": "public", "table": table, "action": "insert", "key": [good],
            "captured_at": "2026-11-27T00:00:00+00:00", "txid": "1", "old": null, "new": new,
        })
        .to_string()
    };
    let row = serde_json::json!({"id": good, "name": "ok", "balance": "1.5", "tags": []});
    let bodies = [
        "not json at all".to_owned(),
        r#"{"dawdle":2,"events":[]}"#.to_owned(),
        format!(
            r#"{{"dawdle":1,"events":[{}]}}"#,
            event("nowhere", row.clone())
        ),
        format!(
            r#"{{"dawdle":1,"events":[{}]}}"#,
            event(
                "accounts",
                serde_json::json!({"id": good, "name": "x", "balance": "abc", "tags": []})
            )
        ),
        format!(r#"{{"dawdle":1,"events":[{}]}}"#, event("accounts", row)),
    ];
    let messages: Vec<_> = bodies
        .iter()
        .map(|body| OutgoingMessage {
            body: body.clone(),
            group_id: None,
            dedup_id: None,
            failure: None,
            delay: std::time::Duration::ZERO,
        })
        .collect();
    queue.send(&messages).await.unwrap();
    eventually("four dead letters", || queue.dead_letters().len() == 4).await;
    eventually("the good one handled", || seen(good).len() == 2).await;

    // One bad event does not take its message-mates to the dead-letter queue.
    let mate = Uuid::new_v4();
    let mixed = format!(
        r#"{{"dawdle":1,"events":[{},{}]}}"#,
        event("nowhere", serde_json::json!({})),
        event(
            "accounts",
            serde_json::json!({"id": mate, "name": "m", "balance": "2", "tags": []})
        )
    );
    queue
        .send(&[OutgoingMessage {
            body: mixed,
            group_id: None,
            dedup_id: None,
            failure: None,
            delay: std::time::Duration::ZERO,
        }])
        .await
        .unwrap();
    eventually("the good event of a mixed message handled", || {
        seen(mate).len() == 2
    })
    .await;
    eventually("its bad event dead-lettered alone", || {
        queue.dead_letters().len() == 5
    })
    .await;
    let dead = queue.dead_letters();
    let alone = dead
        .iter()
        .find(|d| d.body.contains("nowhere") && d.body.contains(r#""new":{}"#))
        .expect("the mixed message's bad event, on its own");
    assert!(!alone.body.contains(&mate.to_string()), "{}", alone.body);
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    let expect = [
        "not a dawdle message",
        "unknown dawdle message version 2",
        "public.nowhere, which no Watched type",
        "cannot decode public.accounts.balance",
    ];
    for expected in expect {
        assert!(
            reasons.iter().any(|reason| reason.contains(expected)),
            "{reasons:?} should mention {expected:?}"
        );
    }
    // Handed back before it was dead-lettered: two attempts, no handler.
    let unknown = dead
        .iter()
        .find(|d| d.reason.contains("which no Watched type"))
        .unwrap();
    let failure = unknown.failure.as_ref().expect("the failure is kept");
    assert_eq!((failure.attempts, failure.handler.as_deref()), (2, None));
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_leaves_unfinished_messages_on_the_queue() {
    let (db, client) = database().await;
    let queue = MemoryQueue::new();
    let handle = runtime(&db, queue.clone())
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap()
        .start();
    let slow = job(&client, "slow").await;
    eventually("the slow job started", || job_calls(slow) == 1).await;
    handle.shutdown().await.unwrap();
    assert_eq!(
        queue.waiting() + queue.in_flight(),
        1,
        "not deleted: it was not handled"
    );

    // A graceful shutdown with time to spare lets it finish and deletes it.
    let handle = runtime(&db, queue.clone())
        .visibility_timeout(VISIBILITY)
        .build()
        .unwrap()
        .start();
    eventually("the job runs again", || job_calls(slow) == 2).await;
    handle.shutdown().await.unwrap();
    assert_eq!(queue.waiting() + queue.in_flight(), 0);
}

#[test]
fn build_refuses_what_cannot_run() {
    let err = Runtime::builder()
        .queue(MemoryQueue::new())
        .build()
        .unwrap_err();
    assert!(matches!(err, dawdle::BuildError::NothingToRun), "{err:?}");
    let err = Runtime::builder().listen().build().unwrap_err();
    assert!(matches!(err, dawdle::BuildError::NoQueue), "{err:?}");
    let err = Runtime::builder()
        .queue(MemoryQueue::new())
        .watch()
        .build()
        .unwrap_err();
    assert!(matches!(err, dawdle::BuildError::NoDatabase), "{err:?}");
}

#[tokio::test]
async fn a_row_larger_than_a_message_reaches_its_handler_whole() {
    let (db, client) = database().await;
    let queue = MemoryQueue::builder().max_message_bytes(64 * 1024).build();
    let handle = runtime(&db, queue.clone()).build().unwrap().start();
    let id = Uuid::new_v4();
    let name = "é".repeat(1024 * 1024); // 2 MiB of UTF-8
    client
        .execute(
            "INSERT INTO accounts (id, name, balance) VALUES ($1, $2, 1)",
            &[&id, &name],
        )
        .await
        .unwrap();
    eventually("the handlers saw the big row", || seen(id).len() == 2).await;
    for (_, rows) in seen(id) {
        assert_eq!(rows[0].name, name, "whole");
    }
    // Removed once handled (right after the message is deleted).
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let left: i64 = client
                .query_one("SELECT count(*) FROM dawdle.payloads", &[])
                .await
                .unwrap()
                .get(0);
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the payload is removed once handled");
    handle.shutdown().await.unwrap();
}

/// A message of one insert event into `accounts` per key.
fn inserts(keys: &[Uuid]) -> OutgoingMessage {
    let events: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            serde_json::json!({
                "id": i + 1, "schema": "public", "table": "accounts", "action": "insert",
                "key": [key], "captured_at": "2026-11-27T00:00:00+00:00", "txid": "1",
                "old": null,
                "new": {"id": key, "name": "batch", "balance": "1", "tags": []},
            })
            .to_string()
        })
        .collect();
    OutgoingMessage {
        body: format!(r#"{{"dawdle":1,"events":[{}]}}"#, events.join(",")),
        group_id: None,
        dedup_id: None,
        failure: None,
        delay: std::time::Duration::ZERO,
    }
}

fn listen_to(queue: impl Queue) -> dawdle::RuntimeBuilder {
    Runtime::builder()
        .queue(queue)
        .listen()
        .receive_wait(Duration::from_millis(200))
}

#[tokio::test]
async fn handled_messages_are_deleted_in_batches() {
    let queue = MemoryQueue::new();
    let counting = CountingQueue::new(queue.clone());
    // Waiting before the listener starts, so that receives return ten at once.
    let messages: u64 = 30;
    let keys: Vec<Vec<Uuid>> = (0..messages)
        .map(|_| (0..3).map(|_| Uuid::new_v4()).collect())
        .collect();
    for chunk in keys.chunks(10) {
        let outgoing: Vec<OutgoingMessage> = chunk.iter().map(|k| inserts(k)).collect();
        let outcome = queue.send(&outgoing).await.unwrap();
        assert!(outcome.failed.is_empty());
    }
    let handle = listen_to(counting.clone()).build().unwrap().start();
    let every_key = || keys.iter().flatten();
    eventually("every event handled and every message deleted", || {
        every_key().all(|key| seen(*key).len() == 2) && queue.waiting() + queue.in_flight() == 0
    })
    .await;
    handle.shutdown().await.unwrap();
    for key in every_key() {
        let mut handlers: Vec<&str> = seen(*key).into_iter().map(|(h, _)| h).collect();
        handlers.sort_unstable();
        assert_eq!(
            handlers,
            ["change", "insert"],
            "each handler once per event"
        );
    }
    assert_eq!(counting.calls().deleted(), messages, "each deleted once");
    let calls = counting.calls().deletes();
    // Ten per call at best; a receive that returns fewer makes a smaller batch.
    assert!(
        calls <= messages / 3,
        "{calls} delete calls for {messages} messages: not batched"
    );
}

#[tokio::test]
async fn a_hurried_shutdown_still_deletes_the_messages_it_handled() {
    let queue = MemoryQueue::new();
    let counting = CountingQueue::new(queue.clone()).delete_delay(Duration::from_millis(300));
    let handle = listen_to(counting.clone())
        .shutdown_timeout(Duration::from_millis(50))
        .build()
        .unwrap()
        .start();
    let key = Uuid::new_v4();
    queue.send(&[inserts(&[key])]).await.unwrap();
    eventually("its handlers ran", || seen(key).len() == 2).await;
    // Its delete takes longer than the shutdown timeout.
    handle.shutdown().await.unwrap();
    assert_eq!(
        queue.waiting() + queue.in_flight(),
        0,
        "deleted, not handed back to be handled again"
    );
    assert_eq!(counting.calls().deleted(), 1);
}
