//! SQS misbehaving: a server that stops answering (SIGSTOP) for longer than
//! the timeouts, a queue whose `MaximumMessageSize` is below what dawdle
//! packs, and messages that can never be handled on a queue without a
//! dead-letter URL. Every event id written arrives, the watcher keeps (or
//! hands over) the leadership, and nothing is retried in a tight loop.
//!
//! Handlers are global (inventory), and tests run concurrently: each test
//! writes rows tagged with its own name and looks only at what those got.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use dawdle::queue::{Failure, OutgoingMessage, Queue, Retention, SqsQueue};
use dawdle::watcher::Watcher;
use dawdle::{Insert, Runtime, Watched};
use dawdle_test::{CountingQueue, SqsServer, TestDb};
use tokio::time::{timeout, Instant};

/// Short timeouts, so that a frozen server makes calls fail within seconds.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "parcels", events(insert))]
struct Parcel {
    id: String,
    /// The test that wrote the row.
    test: String,
    body: String,
}

/// One call of the handler.
#[derive(Debug, Clone)]
struct Arrival {
    event: i64,
    row: String,
    body_bytes: usize,
}

/// What the handler saw, by test.
static SEEN: Mutex<BTreeMap<String, Vec<Arrival>>> = Mutex::new(BTreeMap::new());

#[dawdle::handler]
async fn on_parcel(event: Insert<Parcel>) {
    SEEN.lock()
        .unwrap()
        .entry(event.new.test.clone())
        .or_default()
        .push(Arrival {
            event: event.meta.id,
            row: event.new.id,
            body_bytes: event.new.body.len(),
        });
}

fn seen(test: &str) -> Vec<Arrival> {
    SEEN.lock().unwrap().get(test).cloned().unwrap_or_default()
}

/// Distinct event ids a test's rows arrived with (duplicates allowed).
fn events_seen(test: &str) -> usize {
    seen(test)
        .into_iter()
        .map(|a| a.event)
        .collect::<BTreeSet<_>>()
        .len()
}

/// Every row of `ids` arrived, each under one event id, and nothing else did.
fn assert_arrived(test: &str, ids: std::ops::Range<u32>) {
    let rows: BTreeSet<String> = seen(test).into_iter().map(|a| a.row).collect();
    let expected: BTreeSet<String> = ids.clone().map(|i| i.to_string()).collect();
    assert_eq!(rows, expected, "every row arrived");
    assert_eq!(events_seen(test), ids.len(), "one event id per row");
}

async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE parcels (id text PRIMARY KEY, test text NOT NULL, body text NOT NULL)",
        )
        .await
        .unwrap();
    let up = dawdle::sql::up(&[Parcel::TABLE]).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    (db, client)
}

/// Rows `ids` of `test`, with bodies of `body` bytes, in one transaction.
async fn insert(
    client: &tokio_postgres::Client,
    test: &str,
    ids: std::ops::Range<u32>,
    body: usize,
) {
    let values: Vec<String> = ids
        .map(|i| format!("('{i}', '{test}', repeat('x', {body}))"))
        .collect();
    client
        .batch_execute(&format!("INSERT INTO parcels VALUES {}", values.join(",")))
        .await
        .unwrap();
}

/// Events still in `dawdle.events`.
async fn events_left(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM dawdle.events", &[])
        .await
        .unwrap()
        .get(0)
}

/// Waits until `n` events are left in `dawdle.events`: the watcher removes
/// them once the queue took them, which may be after a handler saw them.
async fn until_events_left(client: &tokio_postgres::Client, n: i64) {
    timeout(Duration::from_secs(60), async {
        while events_left(client).await != n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {n} events are left"));
}

async fn eventually(what: &str, done: impl FnMut() -> bool) {
    dawdle_test::wait_until(what, Duration::from_secs(60), done).await
}

/// The queue at `url`, with the short timeouts.
async fn sqs(server: &SqsServer, url: &str) -> SqsQueue {
    SqsQueue::builder(server.client().await, url)
        .operation_timeout(OPERATION_TIMEOUT)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// Sets the queue's `MaximumMessageSize`, below the 1 MiB dawdle packs for.
async fn limit_message_size(server: &SqsServer, url: &str, bytes: usize) {
    server
        .client()
        .await
        .set_queue_attributes()
        .queue_url(url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
            bytes.to_string(),
        )
        .send()
        .await
        .unwrap();
}

fn message(body: &str) -> OutgoingMessage {
    OutgoingMessage {
        body: body.to_owned(),
        group_id: None,
        dedup_id: None,
        failure: None,
        delay: std::time::Duration::ZERO,
    }
}

fn runtime(db: &TestDb, queue: impl Queue) -> dawdle::RuntimeBuilder {
    Runtime::builder()
        .database(db.config().clone())
        .pool(db.pool())
        .queue(queue)
        .listen()
        .receive_wait(Duration::from_secs(1))
        // Messages a frozen server hands to receives nobody waits for any
        // more come back soon.
        .visibility_timeout(Duration::from_secs(5))
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
}

fn watcher(db: &TestDb, queue: impl Queue) -> dawdle::watcher::WatcherHandle {
    Watcher::builder(db.config().clone(), queue)
        .standby_retry(Duration::from_millis(200))
        .linger(Duration::from_millis(50))
        .build()
        .start()
}

#[tokio::test]
async fn every_call_to_a_frozen_server_times_out() {
    let server = SqsServer::start_on(0).await.unwrap();
    let url = server
        .create_queue("frozen-calls", false, None)
        .await
        .unwrap();
    let dlq = server
        .create_queue("frozen-dlq", false, None)
        .await
        .unwrap();
    let queue = SqsQueue::builder(server.client().await, &url)
        .dead_letter_queue(&dlq)
        .operation_timeout(OPERATION_TIMEOUT)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .build();
    queue.send(&[message("one")]).await.unwrap();
    let received = queue
        .receive(1, Duration::from_secs(5), Duration::from_secs(30))
        .await
        .unwrap();
    let m = &received[0];

    server.pause().unwrap();
    let wait = Duration::from_secs(1);
    let two = [message("two")];
    let frozen = Failure::new(None, "frozen", false);
    let started = Instant::now();
    let (send, receive, delete, visibility, dead_letter) = tokio::join!(
        queue.send(&two),
        queue.receive(1, wait, Duration::from_secs(30)),
        queue.delete(std::slice::from_ref(&m.receipt)),
        queue.change_visibility(&m.receipt, Duration::ZERO),
        queue.dead_letter(m, &frozen),
    );
    let took = started.elapsed();
    server.resume().unwrap();

    let results = [
        ("send", send.map(drop)),
        ("receive", receive.map(drop)),
        ("delete", delete),
        ("change_visibility", visibility),
        ("dead_letter", dead_letter),
    ];
    for (call, result) in results {
        let error = result.expect_err(call);
        assert!(error.is_transient(), "{call}: {error}");
        assert!(error.to_string().contains("timed out"), "{call}: {error}");
    }
    // The long poll's wait on top of the operation timeout, and some slack
    // for a loaded machine.
    assert!(
        took >= OPERATION_TIMEOUT && took < wait + OPERATION_TIMEOUT + Duration::from_secs(5),
        "took {took:?}"
    );
}

#[tokio::test]
async fn watcher_and_listener_ride_out_a_frozen_server() {
    const TEST: &str = "frozen";
    let (db, client) = database().await;
    let server = SqsServer::start_on(0).await.unwrap();
    let url = server.create_queue("frozen", false, None).await.unwrap();
    let queue = CountingQueue::new(sqs(&server, &url).await);
    let calls = queue.calls();
    let handle = runtime(&db, queue)
        .watch()
        .watcher(|w| w.linger(Duration::from_millis(50)))
        .build()
        .unwrap()
        .start();
    let stats = handle.watcher_stats().unwrap();
    insert(&client, TEST, 0..50, 10).await;
    eventually("the first rows arrived", || events_seen(TEST) == 50).await;
    until_events_left(&client, 0).await;

    server.pause().unwrap();
    let frozen = Instant::now();
    let (sends, receives) = (calls.sends(), calls.receives());
    insert(&client, TEST, 50..100, 10).await;
    // Frozen for three operation timeouts, in which three sends and a
    // receive gave up rather than waiting for ever.
    eventually("calls to the frozen server timed out", || {
        calls.sends() >= sends + 4
            && calls.receives() >= receives + 2
            && frozen.elapsed() >= OPERATION_TIMEOUT * 3
    })
    .await;
    assert!(stats.is_leading(), "the leader kept the lead");
    assert_eq!(
        events_left(&client).await,
        50,
        "events wait in PostgreSQL while the queue does not answer"
    );

    server.resume().unwrap();
    eventually("every event arrived", || events_seen(TEST) == 100).await;
    assert_arrived(TEST, 0..100);
    assert!(stats.is_leading(), "the leader still leads");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_standby_takes_over_from_a_leader_whose_send_hangs() {
    const TEST: &str = "handover";
    let (db, client) = database().await;
    let server = SqsServer::start_on(0).await.unwrap();
    let url = server.create_queue("handover", false, None).await.unwrap();
    let listener = runtime(&db, sqs(&server, &url).await)
        .build()
        .unwrap()
        .start();
    let (a_queue, b_queue) = (
        CountingQueue::new(sqs(&server, &url).await),
        CountingQueue::new(sqs(&server, &url).await),
    );
    let (a_calls, b_calls) = (a_queue.calls(), b_queue.calls());
    let a = watcher(&db, a_queue);
    let b = watcher(&db, b_queue);
    eventually("one leads", || {
        a.stats().is_leading() || b.stats().is_leading()
    })
    .await;
    let ((leader, leader_calls), (standby, standby_calls)) = if a.stats().is_leading() {
        ((a, a_calls), (b, b_calls))
    } else {
        ((b, b_calls), (a, a_calls))
    };

    server.pause().unwrap();
    let sends = leader_calls.sends();
    insert(&client, TEST, 0..20, 10).await;
    eventually("the leader sends to the frozen server", || {
        leader_calls.sends() > sends
    })
    .await;
    assert_eq!(standby_calls.sends(), 0, "the standby sent nothing");
    // Stopping waits for the round in flight: its send gives up at the
    // operation timeout instead of holding the lock for ever.
    timeout(OPERATION_TIMEOUT * 5, leader.shutdown())
        .await
        .expect("the hung send held up the leader's shutdown")
        .unwrap();
    eventually("the standby leads", || standby.stats().is_leading()).await;

    server.resume().unwrap();
    // The leader's abandoned request may still be served once the server
    // answers again: duplicates, which at-least-once allows.
    eventually("the standby sent every event", || {
        standby.stats().events_sent() >= 20
    })
    .await;
    eventually("every event arrived", || events_seen(TEST) == 20).await;
    assert_arrived(TEST, 0..20);
    standby.shutdown().await.unwrap();
    listener.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_dead_letter_url_a_dead_letter_goes_to_the_redrive_policys_queue_with_its_failure(
) {
    let server = SqsServer::get().await.unwrap();
    let url = server
        .create_queue("redrive", false, Some(3))
        .await
        .unwrap();
    let queue = SqsQueue::new(server.client().await, &url);
    let dead_letters = SqsQueue::new(server.client().await, format!("{url}-dlq"));
    assert_eq!(
        queue.max_receives().await.unwrap(),
        Some(3),
        "read from the redrive policy"
    );
    queue.send(&[message("cannot be handled")]).await.unwrap();
    let received = queue
        .receive(1, Duration::from_secs(5), Duration::from_secs(30))
        .await
        .unwrap();
    let failure = Failure::new(Some("on_item"), "boom: the disk is full", false);
    queue.dead_letter(&received[0], &failure).await.unwrap();

    // At once, in the queue the redrive policy names, with the failure.
    let moved = dead_letters
        .receive(10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(moved.len(), 1, "moved at once");
    assert_eq!(moved[0].body, "cannot be handled");
    assert_eq!(moved[0].failure.as_ref(), Some(&failure));
    let again = queue
        .receive(10, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(again.is_empty(), "gone from the queue");

    // A queue with nowhere to move it hides it instead, for the redrive
    // policy it may get later.
    let lonely = server.create_queue("lonely", false, None).await.unwrap();
    let lonely = SqsQueue::new(server.client().await, &lonely);
    assert_eq!(lonely.max_receives().await.unwrap(), None);
    lonely.send(&[message("nowhere to go")]).await.unwrap();
    let received = lonely
        .receive(1, Duration::from_secs(5), Duration::from_secs(30))
        .await
        .unwrap();
    lonely.dead_letter(&received[0], &failure).await.unwrap();
    let again = lonely
        .receive(10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(again.is_empty(), "hidden, not received straight back");
}

#[tokio::test]
async fn a_queue_with_a_small_maximum_message_size_gets_every_event_by_reference() {
    const TEST: &str = "small";
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("small", false, None).await.unwrap();
    limit_message_size(server, &url, 1024).await;
    // Told nothing of the limit: it reads it from the queue.
    let queue = CountingQueue::new(sqs(server, &url).await);
    let calls = queue.calls();
    insert(&client, TEST, 0..10, 2000).await;
    insert(&client, TEST, 10..20, 10).await;
    let handle = runtime(&db, queue).watch().build().unwrap().start();

    eventually("every event arrived", || events_seen(TEST) == 20).await;
    assert_arrived(TEST, 0..20);
    for Arrival {
        row, body_bytes, ..
    } in seen(TEST)
    {
        let expected = if row.parse::<u32>().unwrap() < 10 {
            2000
        } else {
            10
        };
        assert_eq!(body_bytes, expected, "row {row} arrived whole");
    }
    // By reference, four events fit in one call of 1 KiB.
    let sends = calls.sends();
    assert!(sends <= 10, "{sends} send calls for 20 events");
    handle.shutdown().await.unwrap();
}

/// Sets the queue's `MessageRetentionPeriod`.
async fn retain(server: &SqsServer, url: &str, retention: Duration) {
    server
        .client()
        .await
        .set_queue_attributes()
        .queue_url(url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod,
            retention.as_secs().to_string(),
        )
        .send()
        .await
        .unwrap();
}

/// The URL of the dead-letter queue that `create_queue` made for `url`.
async fn dead_letter_queue_of(server: &SqsServer, url: &str) -> String {
    let client = server.client().await;
    let name = format!("{}-dlq", url.rsplit('/').next().unwrap());
    client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// Issue 19: the rows of a by-reference event wait as long as SQS may
/// still deliver its message: the queue's retention period, then its
/// dead-letter queue's, not the shorter `payload_retention`.
#[tokio::test]
async fn by_reference_payloads_wait_for_the_queues_retention_and_its_dead_letter_queues() {
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server
        .create_queue("retained", false, Some(3))
        .await
        .unwrap();
    let dlq = dead_letter_queue_of(server, &url).await;
    retain(server, &url, 2 * DAY).await;
    retain(server, &dlq, 10 * DAY).await;
    limit_message_size(server, &url, 1024).await;
    let queue = sqs(server, &url).await;
    assert_eq!(
        queue.retention().await.unwrap(),
        Retention::AtMost(12 * DAY),
        "its own retention, then its redrive policy's dead-letter queue's"
    );
    // The listener's dead-letter queue counts too, when it keeps longer.
    let other = server
        .create_queue("retained-other", false, None)
        .await
        .unwrap();
    retain(server, &other, 14 * DAY).await;
    let listeners = SqsQueue::builder(server.client().await, &url)
        .dead_letter_queue(&other)
        .build();
    assert_eq!(
        listeners.retention().await.unwrap(),
        Retention::AtMost(16 * DAY)
    );

    let watcher = Watcher::builder(db.config().clone(), queue)
        .payload_retention(Duration::from_secs(1))
        .build()
        .start();
    insert(&client, "retained", 0..1, 2000).await;
    until_events_left(&client, 0).await;
    let left: f64 = client
        .query_one(
            r#"SELECT extract(epoch FROM "expires_at" - now())::float8 FROM "dawdle"."payloads""#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    watcher.shutdown().await.unwrap();
    let expected = (12 * DAY).as_secs_f64();
    assert!(
        left > expected - 60.0 && left <= expected,
        "the payload expires in {left} s, not in 12 days"
    );
}

#[tokio::test]
async fn a_call_refused_for_its_size_is_not_retried_as_it_was() {
    const TEST: &str = "lowered";
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("lowered", false, None).await.unwrap();
    let queue = CountingQueue::new(sqs(server, &url).await);
    let calls = queue.calls();
    let handle = runtime(&db, queue)
        .watch()
        .watcher(|w| w.max_events_per_message(1))
        .build()
        .unwrap()
        .start();
    insert(&client, TEST, 0..5, 10).await;
    eventually("the first events arrived", || events_seen(TEST) == 5).await;

    // Lowered after the queue's limit was read: the next call, ten messages
    // packed for 1 MiB, is refused as a whole.
    limit_message_size(server, &url, 1024).await;
    let sends = calls.sends();
    client
        .batch_execute(
            "INSERT INTO parcels SELECT i::text, 'lowered', repeat('x', CASE i % 2 WHEN 1 THEN 2000 ELSE 10 END)
             FROM generate_series(5, 14) i",
        )
        .await
        .unwrap();
    eventually("every event arrived", || events_seen(TEST) == 15).await;
    assert_arrived(TEST, 0..15);
    for Arrival {
        row, body_bytes, ..
    } in seen(TEST)
    {
        let row: u32 = row.parse().unwrap();
        let expected = if row >= 5 && row % 2 == 1 { 2000 } else { 10 };
        assert_eq!(body_bytes, expected, "row {row} arrived whole");
    }
    // The refused call, then the large events by reference.
    let sends = calls.sends() - sends;
    assert!(sends <= 5, "{sends} send calls for 10 events");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_event_refused_even_by_reference_is_held_with_its_reason_and_the_others_go() {
    const TEST: &str = "refused";
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("refused", false, None).await.unwrap();
    limit_message_size(server, &url, 1024).await;
    let queue = CountingQueue::new(sqs(server, &url).await);
    let calls = queue.calls();
    let handle = runtime(&db, queue).watch().build().unwrap().start();

    // Its key alone makes even its by-reference form larger than 1 KiB.
    client
        .execute(
            "INSERT INTO parcels VALUES (repeat('k', 1500), $1, 'x')",
            &[&TEST],
        )
        .await
        .unwrap();
    // Whole, then by reference; then it is held, and not sent again.
    let held = || async {
        client
            .query_opt(r#"SELECT "reason", "message" FROM "dawdle"."held""#, &[])
            .await
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let row = loop {
        if let Some(row) = held().await {
            break row;
        }
        assert!(Instant::now() < deadline, "the event was never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (reason, message): (String, String) = (row.get(0), row.get(1));
    assert!(reason.contains("refused"), "{reason}");
    assert!(message.contains(r#""by_ref" : true"#), "{message}");
    let sends = calls.sends();
    assert!(sends <= 3, "{sends} sends");

    // The others go, and nothing waits.
    insert(&client, TEST, 0..5, 10).await;
    eventually("the other events arrived", || events_seen(TEST) == 5).await;
    assert_arrived(TEST, 0..5);
    until_events_left(&client, 0).await;
    handle.shutdown().await.unwrap();
}
