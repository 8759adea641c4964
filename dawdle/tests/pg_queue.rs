//! PgQueue on a real PostgreSQL: batches, visibility and receive counts,
//! stale receipts, dead letters with their reason, FIFO groups under
//! competing receivers, the doorbell, a database that goes away, and a
//! malformed message among good ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dawdle::queue::{Failure, OutgoingMessage, PgQueue, Queue, QueueError, ReceivedMessage};
use dawdle::{Insert, Runtime, Watched};
use dawdle_test::{until, wait_until, TestDb};

async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL)")
        .await
        .unwrap();
    let up = dawdle::sql::up(&[Note::TABLE]).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    (db, client)
}

fn message(body: &str, group: Option<&str>) -> OutgoingMessage {
    OutgoingMessage {
        body: body.to_owned(),
        group_id: group.map(str::to_owned),
        dedup_id: None,
        failure: None,
        delay: std::time::Duration::ZERO,
    }
}

fn bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

const LONG: Duration = Duration::from_secs(30);

fn queue(db: &TestDb) -> dawdle::queue::PgQueueBuilder {
    PgQueue::builder(db.database().clone()).poll_interval(Duration::from_millis(50))
}

#[tokio::test]
async fn sends_a_batch_in_order_and_deletes_by_receipt() {
    let (db, _client) = database().await;
    let queue = queue(&db).build();
    let outcome = queue
        .send(&[message("a", None), message("b", None), message("c", None)])
        .await
        .unwrap();
    assert_eq!(outcome.accepted, [0, 1, 2]);
    let got = queue.receive(10, Duration::ZERO, LONG).await.unwrap();
    assert_eq!(bodies(&got), ["a", "b", "c"]);
    assert!(got.iter().all(|m| m.receive_count == 1));
    assert!(got.iter().all(|m| m.group_id.is_none()));
    let depth = queue.depth().await.unwrap();
    assert_eq!((depth.waiting, depth.in_flight), (0, 3));
    let receipts: Vec<_> = got.iter().map(|m| m.receipt.clone()).collect();
    queue.delete(&receipts).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), Default::default());
}

#[tokio::test]
async fn redelivers_after_the_visibility_timeout_and_old_receipts_go_stale() {
    let (db, _client) = database().await;
    let queue = queue(&db).build();
    queue.send(&[message("a", None)]).await.unwrap();
    let first = queue
        .receive(10, Duration::ZERO, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(first[0].receive_count, 1);
    assert!(
        queue
            .receive(10, Duration::ZERO, LONG)
            .await
            .unwrap()
            .is_empty(),
        "hidden while in flight"
    );
    let second = queue.receive(10, LONG, LONG).await.unwrap();
    assert_eq!(bodies(&second), ["a"]);
    assert_eq!(second[0].receive_count, 2);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_ne!(second[0].receipt, first[0].receipt);

    let stale = |result: Result<(), QueueError>| matches!(result, Err(QueueError::StaleReceipt(_)));
    assert!(stale(queue.delete(&[first[0].receipt.clone()]).await));
    assert!(stale(
        queue
            .change_visibility(&first[0].receipt, Duration::ZERO)
            .await
    ));
    let old = Failure::new(None, "old", false);
    assert!(stale(queue.dead_letter(&first[0], &old).await));
    assert!(stale(queue.retry(&first[0], Duration::ZERO, &old).await));
    queue.delete(&[second[0].receipt.clone()]).await.unwrap();
    assert!(
        stale(queue.delete(&[second[0].receipt.clone()]).await),
        "deleted already"
    );
}

#[tokio::test]
async fn change_visibility_hides_and_hands_back() {
    let (db, _client) = database().await;
    let queue = queue(&db).build();
    queue.send(&[message("a", None)]).await.unwrap();
    let got = queue
        .receive(1, Duration::ZERO, Duration::from_millis(200))
        .await
        .unwrap();
    queue
        .change_visibility(&got[0].receipt, LONG)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        queue
            .receive(1, Duration::ZERO, LONG)
            .await
            .unwrap()
            .is_empty(),
        "extended past its first timeout"
    );
    queue
        .change_visibility(&got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = queue.receive(1, Duration::ZERO, LONG).await.unwrap();
    assert_eq!((bodies(&again), again[0].receive_count), (vec!["a"], 2));
}

#[tokio::test]
async fn dead_letters_after_max_receives_with_the_reason() {
    let (db, _client) = database().await;
    let queue = queue(&db).max_receives(Some(2)).build();
    queue.send(&[message("poison", None)]).await.unwrap();
    for count in 1..=2 {
        let got = queue
            .receive(1, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got[0].receive_count, count);
    }
    assert!(queue
        .receive(1, Duration::ZERO, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
    let dead = queue.dead_letters(0, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let letter = &dead[0];
    assert_eq!((letter.body.as_str(), letter.receive_count), ("poison", 2));
    assert!(letter.reason.contains("max_receives"), "{}", letter.reason);
    let received_at = letter.received_at.expect("it was received");
    assert!(letter.sent_at <= received_at && received_at <= letter.dead_lettered_at);
    let depth = queue.depth().await.unwrap();
    assert_eq!(
        (depth.waiting, depth.in_flight, depth.dead_letters),
        (0, 0, 1)
    );
}

#[tokio::test]
async fn dead_letter_keeps_the_failure_and_redrive_sends_it_again() {
    let (db, client) = database().await;
    let queue = queue(&db).build();
    queue
        .send(&[message("bad", None), message("good", None)])
        .await
        .unwrap();
    let got = queue.receive(10, Duration::ZERO, LONG).await.unwrap();
    // A retry keeps the failure with the message, for its next receive.
    let first = Failure::new(Some("on_item"), "boom: the disk is full", false);
    queue.retry(&got[0], Duration::ZERO, &first).await.unwrap();
    let again = queue.receive(1, Duration::ZERO, LONG).await.unwrap();
    assert_eq!(
        (bodies(&again), again[0].failure.as_ref()),
        (vec!["bad"], Some(&first))
    );
    let last = Failure::new(Some("on_item"), "bang", true).following(again[0].failure.as_ref(), 2);
    queue.dead_letter(&again[0], &last).await.unwrap();

    let dead = queue.dead_letters(0, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].body.as_str(),
            dead[0].reason.as_str(),
            dead[0].receive_count
        ),
        (
            "bad",
            "handler on_item failed 2 times, last by panicking: bang",
            2
        )
    );
    let failure = dead[0].failure.as_ref().expect("kept");
    assert_eq!(
        (
            failure.attempts,
            failure.first_at,
            failure.panicked,
            failure.error.as_str()
        ),
        (2, first.first_at, true, "bang")
    );
    // In columns, for SQL.
    let row = client
        .query_one(
            "SELECT reason, failure_handler, failure_error, failure_attempts
             FROM dawdle.queue_dead_letters WHERE id = $1",
            &[&dead[0].id],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, i32>(3)
        ),
        (last.reason(), "on_item".to_owned(), "bang".to_owned(), 2)
    );

    // Redriven, it starts afresh: never received, no failure.
    assert_eq!(queue.redrive(&[dead[0].id]).await.unwrap(), 1);
    assert!(queue.dead_letters(0, 10).await.unwrap().is_empty());
    let back = queue.receive(10, Duration::ZERO, LONG).await.unwrap();
    let back: Vec<_> = back.into_iter().filter(|m| m.body == "bad").collect();
    assert_eq!((back[0].receive_count, back[0].failure.as_ref()), (1, None));
}

#[tokio::test]
async fn a_message_sent_with_a_failure_and_a_delay_keeps_the_one_and_waits_the_other() {
    let (db, _client) = database().await;
    let queue = queue(&db).max_receives(Some(1)).build();
    let failure = Failure::new(None, "no type for public.items", false);
    queue
        .send(&[OutgoingMessage {
            failure: Some(failure.clone()),
            delay: Duration::from_secs(3),
            ..message("later", None)
        }])
        .await
        .unwrap();
    assert!(
        queue
            .receive(1, Duration::ZERO, LONG)
            .await
            .unwrap()
            .is_empty(),
        "delayed"
    );
    let got = queue.receive(1, LONG, LONG).await.unwrap();
    assert_eq!(
        (bodies(&got), got[0].failure.as_ref()),
        (vec!["later"], Some(&failure))
    );
    // Past max_receives, the queue dead-letters it itself, failure and all.
    queue
        .change_visibility(&got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    assert!(queue
        .receive(1, Duration::ZERO, LONG)
        .await
        .unwrap()
        .is_empty());
    let dead = queue.dead_letters(0, 10).await.unwrap();
    assert_eq!(dead[0].failure.as_ref(), Some(&failure));
    assert!(
        dead[0].reason.contains("max_receives"),
        "{}",
        dead[0].reason
    );
}

#[tokio::test]
async fn refuses_what_it_cannot_store_and_stores_the_rest() {
    let (db, _client) = database().await;
    let queue = queue(&db).max_message_bytes(10).build();
    let outcome = queue
        .send(&[
            message("ok", None),
            message("far too long for it", None),
            message("nul\0", None),
            message("fine", None),
        ])
        .await
        .unwrap();
    assert_eq!(outcome.accepted, [0, 3]);
    let failed: Vec<usize> = outcome.failed.iter().map(|(i, _)| *i).collect();
    assert_eq!(failed, [1, 2]);
    assert!(outcome
        .failed
        .iter()
        .all(|(_, e)| matches!(e, QueueError::Refused(_))));
    let got = queue.receive(10, Duration::ZERO, LONG).await.unwrap();
    assert_eq!(bodies(&got), ["ok", "fine"]);
}

#[tokio::test]
async fn queues_of_different_names_share_only_the_tables() {
    let (db, _client) = database().await;
    let a = queue(&db).name("a").build();
    let b = queue(&db).name("b").build();
    a.send(&[message("for a", None)]).await.unwrap();
    assert!(b
        .receive(10, Duration::ZERO, LONG)
        .await
        .unwrap()
        .is_empty());
    let got = a.receive(10, Duration::ZERO, LONG).await.unwrap();
    assert!(matches!(
        b.delete(&[got[0].receipt.clone()]).await,
        Err(QueueError::StaleReceipt(_))
    ));
    a.delete(&[got[0].receipt.clone()]).await.unwrap();
}

/// A receive waiting with a poll interval far beyond the test's patience
/// returns as soon as another instance (another pool, no shared memory)
/// sends: the doorbell rang.
#[tokio::test]
async fn a_long_poll_wakes_on_the_doorbell() {
    let (db, _client) = database().await;
    let waiting = PgQueue::builder(db.database().clone())
        .poll_interval(Duration::from_secs(600))
        .build();
    // Starts the doorbell, and lets it LISTEN before the send.
    assert!(waiting
        .receive(1, Duration::from_millis(500), LONG)
        .await
        .unwrap()
        .is_empty());
    let receiver = tokio::spawn(async move {
        waiting
            .receive(10, Duration::from_secs(120), LONG)
            .await
            .map(|got| got.len())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sender = PgQueue::from_pool(db.pool()).build();
    sender.send(&[message("ding", None)]).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), receiver)
        .await
        .expect("woken by the doorbell, not the poll")
        .unwrap()
        .unwrap();
    assert_eq!(got, 1);
}

#[tokio::test]
async fn fifo_holds_a_group_while_in_flight_and_hands_out_its_prefix_in_order() {
    let (db, _client) = database().await;
    let queue = queue(&db).fifo(true).build();
    queue
        .send(&[
            message("a1", Some("a")),
            message("a2", Some("a")),
            message("b1", Some("b")),
            message("a3", Some("a")),
        ])
        .await
        .unwrap();
    let receive = |max| queue.receive(max, Duration::ZERO, LONG);
    let got = receive(2).await.unwrap();
    assert_eq!(bodies(&got), ["a1", "a2"]);
    assert_eq!(got[0].group_id.as_deref(), Some("a"));
    // Group a is in flight: only b comes, though a3 waits.
    assert_eq!(bodies(&receive(10).await.unwrap()), ["b1"]);
    queue.delete(&[got[0].receipt.clone()]).await.unwrap();
    assert!(
        receive(10).await.unwrap().is_empty(),
        "a2 is still in flight"
    );
    queue
        .change_visibility(&got[1].receipt, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(bodies(&receive(10).await.unwrap()), ["a2", "a3"]);
}

#[tokio::test]
async fn fifo_stores_a_deduplication_id_once() {
    let (db, _client) = database().await;
    let queue = queue(&db).fifo(true).build();
    let with_dedup = |body: &str| OutgoingMessage {
        dedup_id: Some("same".to_owned()),
        ..message(body, Some("g"))
    };
    assert_eq!(queue.send(&[with_dedup("x")]).await.unwrap().accepted, [0]);
    assert_eq!(queue.send(&[with_dedup("y")]).await.unwrap().accepted, [0]);
    assert_eq!(
        bodies(&queue.receive(10, Duration::ZERO, LONG).await.unwrap()),
        ["x"]
    );
}

/// Four receivers on two pools race for 30 groups of 8 messages each,
/// taking their time over each message: every group is handled in order,
/// one message at a time, each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifo_order_holds_across_competing_receivers() {
    let (db, _client) = database().await;
    let queues = [
        PgQueue::builder(db.database().clone()).fifo(true).build(),
        PgQueue::from_pool(db.pool()).fifo(true).build(),
    ];
    let (groups, per_group) = (30, 8);
    let mut all = Vec::new();
    // Group after group: neighbouring messages are of one group, which
    // receivers claiming by id would split between them.
    for group in 0..groups {
        for seq in 0..per_group {
            all.push(message(
                &format!("{group}:{seq}"),
                Some(&format!("g{group}")),
            ));
        }
    }
    for call in all.chunks(10) {
        assert!(queues[0].send(call).await.unwrap().failed.is_empty());
    }
    let log: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
    let busy: Arc<Mutex<HashMap<u32, bool>>> = Arc::default();
    let mut receivers = Vec::new();
    for i in 0..4 {
        let queue = queues[i % 2].clone();
        let (log, busy) = (log.clone(), busy.clone());
        receivers.push(tokio::spawn(async move {
            loop {
                if log.lock().unwrap().len() == groups * per_group {
                    return;
                }
                let got = queue
                    .receive(3, Duration::from_millis(100), LONG)
                    .await
                    .unwrap();
                for m in got {
                    let (group, seq) = m.body.split_once(':').unwrap();
                    let (group, seq): (u32, u32) = (group.parse().unwrap(), seq.parse().unwrap());
                    assert!(
                        !busy.lock().unwrap().insert(group, true).unwrap_or(false),
                        "group {group} handed to two receivers at once"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    log.lock().unwrap().push((group, seq));
                    busy.lock().unwrap().insert(group, false);
                    queue
                        .delete(std::slice::from_ref(&m.receipt))
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for receiver in receivers {
        tokio::time::timeout(Duration::from_secs(120), receiver)
            .await
            .expect("all handled")
            .unwrap();
    }
    let log = log.lock().unwrap();
    for group in 0..groups as u32 {
        let seqs: Vec<u32> = log
            .iter()
            .filter(|(g, _)| *g == group)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(
            seqs,
            (0..per_group as u32).collect::<Vec<_>>(),
            "group {group}"
        );
    }
}

/// The database goes away (connections terminated, new ones refused):
/// calls fail as `Unavailable`, and work again once it is back.
#[tokio::test]
async fn unavailable_while_the_database_is_away_and_working_once_back() {
    let (db, _client) = database().await;
    let queue = queue(&db).call_timeout(Duration::from_secs(3)).build();
    queue.send(&[message("before", None)]).await.unwrap();
    let admin = {
        let mut config = db.config().clone();
        config.dbname("postgres");
        let (admin, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        admin
    };
    let name = db.name();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .await
        .unwrap();
    let mut errors = Vec::new();
    for _ in 0..3 {
        match queue.send(&[message("while away", None)]).await {
            Err(error) => errors.push(error),
            Ok(_) => panic!("sent to a database that is away"),
        }
    }
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, QueueError::Unavailable(_)) && e.is_transient()),
        "{errors:?}"
    );
    admin
        .batch_execute(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    queue.send(&[message("after", None)]).await.unwrap();
    let got = queue.receive(10, Duration::ZERO, LONG).await.unwrap();
    assert_eq!(bodies(&got), ["before", "after"]);
}

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "notes", events(insert))]
struct Note {
    id: i64,
    body: String,
}

static NOTES: Mutex<Vec<i64>> = Mutex::new(Vec::new());

/// Each note's body length, as handled.
static NOTE_BODIES: Mutex<Vec<(i64, usize)>> = Mutex::new(Vec::new());

#[dawdle::handler]
async fn note(event: Insert<Note>) {
    NOTES.lock().unwrap().push(event.new.id);
    NOTE_BODIES
        .lock()
        .unwrap()
        .push((event.new.id, event.new.body.len()));
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Issue 19: a by-reference event whose message waits in a PgQueue longer
/// than `payload_retention`, past the watcher's removal of expired
/// payloads, still arrives whole; its rows go once it is handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_by_reference_event_that_waits_past_payload_retention_arrives_whole() {
    let (db, client) = database().await;
    let queue = queue(&db).max_message_bytes(1024).build();
    let watcher = dawdle::Watcher::builder(db.config().clone(), queue.clone())
        .payload_retention(Duration::from_secs(1))
        .build()
        .start();
    client
        .execute("INSERT INTO notes VALUES (3001, repeat('x', 5000))", &[])
        .await
        .unwrap();
    until("its message is in the queue", LONG, || async {
        queue.depth().await.unwrap().waiting == 1
    })
    .await;
    // The message waits longer than payload_retention...
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // ...and the watcher removes expired payloads meanwhile: once this one
    // is gone, every payload past its expires_at went with it.
    client
        .batch_execute(
            r#"INSERT INTO "dawdle"."payloads" ("id", "old", "new", "expires_at")
               VALUES (-1, NULL, '{}', now() - interval '1 second')"#,
        )
        .await
        .unwrap();
    until("the watcher removed expired payloads", LONG, || async {
        count(
            &client,
            r#"SELECT count(*) FROM "dawdle"."payloads" WHERE "id" = -1"#,
        )
        .await
            == 0
    })
    .await;
    watcher.shutdown().await.unwrap();

    let listener = Runtime::builder()
        .database(db.database().clone())
        .queue(queue.clone())
        .listen()
        .receive_wait(Duration::from_secs(1))
        .build()
        .unwrap()
        .start();
    let handled = || NOTE_BODIES.lock().unwrap().contains(&(3001, 5000));
    until("the note was handled or dead-lettered", LONG, || async {
        handled() || queue.depth().await.unwrap().dead_letters > 0
    })
    .await;
    let dead = queue.dead_letters(0, 10).await.unwrap();
    assert!(handled(), "dead-lettered instead: {dead:?}");
    until("its payload was removed", LONG, || async {
        count(&client, r#"SELECT count(*) FROM "dawdle"."payloads""#).await == 0
    })
    .await;
    listener.shutdown().await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), Default::default());
}

/// A by-reference event's rows wait as long as its dead letter, which can
/// be redriven, and go when it is discarded; those of another source
/// database's event of the same id stay.
#[tokio::test]
async fn discarding_a_dead_letter_removes_its_payloads() {
    let (db, client) = database().await;
    let queue = queue(&db).build();
    let origin: String = client
        .query_one(r#"SELECT "source"::text FROM "dawdle"."origin""#, &[])
        .await
        .unwrap()
        .get(0);
    client
        .batch_execute(
            r#"INSERT INTO "dawdle"."payloads" ("id", "old", "new", "expires_at")
               VALUES (7, NULL, '{"id": 7, "body": "x"}', NULL),
                      (8, NULL, '{"id": 8, "body": "y"}', NULL)"#,
        )
        .await
        .unwrap();
    let by_ref = |id: i64, source: &str| {
        format!(
            r#"{{"dawdle": 1, "events": [{{"id": {id}, "source": "{source}", "schema": "public",
                "table": "notes", "action": "insert", "key": [{id}],
                "captured_at": "2026-01-01T00:00:00+00:00", "txid": "1", "by_ref": true}}]}}"#
        )
    };
    let elsewhere = "00000000-0000-4000-8000-000000000000";
    queue
        .send(&[
            message(&by_ref(7, &origin), None),
            message(&by_ref(8, elsewhere), None),
            message("not json at all", None),
        ])
        .await
        .unwrap();
    for got in queue.receive(10, Duration::ZERO, LONG).await.unwrap() {
        let failure = Failure::new(None, "cannot be handled", false);
        queue.dead_letter(&got, &failure).await.unwrap();
    }
    let payloads = || count(&client, r#"SELECT count(*) FROM "dawdle"."payloads""#);
    assert_eq!(payloads().await, 2, "dead letters keep their payloads");

    let ids: Vec<i64> = queue
        .dead_letters(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(queue.discard(&ids).await.unwrap(), 3);
    assert_eq!(queue.depth().await.unwrap(), Default::default());
    let left: Vec<i64> = client
        .query(r#"SELECT "id" FROM "dawdle"."payloads""#, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, [8], "another database's event keeps its rows here");
}

/// Through the runtime on its default queue: a message inserted by hand
/// that is not a dawdle message is dead-lettered with its reason, and the
/// rows written around it reach their handler.
#[tokio::test]
async fn a_malformed_message_is_dead_lettered_and_the_rest_flows() {
    let (db, client) = database().await;
    let handle = Runtime::builder()
        .database(db.database().clone())
        .watch()
        .listen()
        .receive_wait(Duration::from_secs(1))
        .build()
        .unwrap()
        .start();
    client
        .batch_execute(
            "INSERT INTO notes VALUES (1001, 'before');
             INSERT INTO dawdle.queue_messages (queue, body) VALUES ('default', 'not json at all');
             INSERT INTO notes VALUES (1002, 'after');",
        )
        .await
        .unwrap();
    let queue = PgQueue::from_pool(db.pool()).build();
    let mut dead = Vec::new();
    for _ in 0..600 {
        dead = queue.dead_letters(0, 10).await.unwrap();
        let notes = NOTES.lock().unwrap().clone();
        if !dead.is_empty() && notes.contains(&1001) && notes.contains(&1002) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until("both notes were handled", Duration::from_secs(1), || {
        let notes = NOTES.lock().unwrap();
        notes.contains(&1001) && notes.contains(&1002)
    })
    .await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].body, "not json at all");
    assert!(
        dead[0].reason.contains("not a dawdle message"),
        "{}",
        dead[0].reason
    );
    assert_eq!(
        dead[0].receive_count, 1,
        "dead-lettered at its first receive"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn in_its_own_database_the_watcher_sends_and_moves_its_cursor_in_one_transaction() {
    let (db, client) = database().await;
    // Every round's transaction fails at its end, where the cursor moves:
    // a crash between "sent" and "saved".
    client
        .batch_execute(
            "CREATE FUNCTION public.no_save() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'the watcher dies before its cursor moves'; END $$;
             CREATE TRIGGER no_save BEFORE UPDATE ON dawdle.cursor
             FOR EACH ROW EXECUTE FUNCTION public.no_save();
             INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 20) g;",
        )
        .await
        .unwrap();
    let queue = queue(&db).build();
    let watcher = dawdle::Watcher::builder(db.config().clone(), queue.clone())
        .standby_retry(Duration::from_millis(100))
        .build()
        .start();
    wait_until("the watcher sent twice", LONG, || {
        watcher.stats().events_sent() >= 40
    })
    .await;
    let stored: i64 = client
        .query_one("SELECT count(*) FROM dawdle.queue_messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "sends that were not saved were undone with them");

    client
        .batch_execute("DROP TRIGGER no_save ON dawdle.cursor")
        .await
        .unwrap();
    let mut ids = Vec::new();
    while ids.len() < 20 {
        let got = queue.receive(10, LONG, LONG).await.unwrap();
        for m in &got {
            let envelope = dawdle::wire::Envelope::parse(&m.body).unwrap();
            ids.extend(envelope.events.iter().map(|e| e.id));
        }
        let receipts: Vec<_> = got.into_iter().map(|m| m.receipt).collect();
        queue.delete(&receipts).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        queue
            .receive(10, Duration::ZERO, LONG)
            .await
            .unwrap()
            .is_empty(),
        "nothing came twice"
    );
    ids.sort_unstable();
    assert_eq!(ids, (1..=20).collect::<Vec<i64>>());
    watcher.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_source_databases_feed_a_queue_in_a_third() {
    // Not the watchers' own database: sends are ordinary calls, at least once.
    let (source_a, client_a) = database().await;
    let (source_b, client_b) = database().await;
    let (queue_db, _queue_client) = database().await;
    let queue = queue(&queue_db).build();
    let watchers: Vec<_> = [&source_a, &source_b]
        .into_iter()
        .map(|db| {
            dawdle::Watcher::builder(db.config().clone(), queue.clone())
                .build()
                .start()
        })
        .collect();
    for (client, first) in [(&client_a, 1), (&client_b, 101)] {
        client
            .batch_execute(&format!(
                "INSERT INTO notes SELECT g, 'note' FROM generate_series({first}, {}) g",
                first + 9
            ))
            .await
            .unwrap();
    }
    let mut rows = Vec::new();
    while rows.len() < 20 {
        let got = queue.receive(10, LONG, LONG).await.unwrap();
        for m in &got {
            let envelope = dawdle::wire::Envelope::parse(&m.body).unwrap();
            for event in envelope.events {
                rows.push(event.new.as_ref().unwrap()["id"].as_i64().unwrap());
            }
        }
        let receipts: Vec<_> = got.into_iter().map(|m| m.receipt).collect();
        queue.delete(&receipts).await.unwrap();
    }
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows, (1..=10).chain(101..=110).collect::<Vec<i64>>());
    for watcher in watchers {
        watcher.shutdown().await.unwrap();
    }
}
