//! Listener processes sharing one PgQueue (the `pg_listeners` example's
//! `listen` mode): SIGKILLed mid-stream while competing, nothing is lost;
//! on a FIFO queue, each row's changes are handled in order across them.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use dawdle::{PgQueue, Runtime, RuntimeHandle};
use dawdle_test::TestDb;
use tokio::process::{Child, Command};
use uuid::Uuid;

async fn database() -> (TestDb, tokio_postgres::Client) {
    let (db, client) = dawdle_examples::example_database().await.unwrap();
    client
        .batch_execute(dawdle_examples::HANDLED_LOG)
        .await
        .unwrap();
    (db, client)
}

fn watcher(db: &TestDb, fifo: bool) -> RuntimeHandle {
    Runtime::builder()
        .database(db.database().clone())
        .queue(PgQueue::builder(db.database().clone()).fifo(fifo).build())
        .watch()
        .build()
        .unwrap()
        .start()
}

fn listener(db: &TestDb, fifo: bool, delay_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pg_listeners"))
        .arg("listen")
        .env("DATABASE_URL", db.url())
        .env("DAWDLE_PG_FIFO", if fifo { "1" } else { "0" })
        .env("DAWDLE_CONCURRENCY", "4")
        .env("DAWDLE_VISIBILITY_MS", "2000")
        .env("DAWDLE_HANDLER_DELAY_MS", delay_ms.to_string())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Waits until `sql` counts `expected`, for up to two minutes.
async fn wait_for_count(client: &tokio_postgres::Client, sql: &str, expected: i64) {
    let mut last = 0;
    for _ in 0..1200 {
        last = count(client, sql).await;
        if last >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{sql} counted {last} after two minutes; expected {expected}");
}

/// Three listener processes compete for the messages while one after the
/// other is SIGKILLed and restarted: every event is handled, and an event
/// handled twice (killed after its handler, before its delete) is the same
/// event with the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_killed_mid_stream_lose_nothing() {
    let (db, client) = database().await;
    let watching = watcher(&db, false);
    let mut listeners: Vec<Child> = (0..3).map(|_| listener(&db, false, 0)).collect();
    let (batches, per_batch) = (40, 50);
    let mut kills = 0;
    for batch in 0..batches {
        let first = batch * per_batch + 1;
        client
            .execute(
                "INSERT INTO users (name) SELECT 'k' || n FROM generate_series($1::int, $2::int) n",
                &[&first, &(first + per_batch - 1)],
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        if batch % 4 == 3 {
            let victim = &mut listeners[kills % 3];
            victim.kill().await.unwrap(); // SIGKILL
            *victim = listener(&db, false, 0);
            kills += 1;
        }
    }
    let expected = i64::from(batches * per_batch);
    wait_for_count(
        &client,
        "SELECT count(DISTINCT name) FROM handled_log WHERE action = 'insert'",
        expected,
    )
    .await;
    assert_eq!(
        count(&client, "SELECT count(DISTINCT event_id) FROM handled_log").await,
        expected,
        "one event per inserted row"
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM users u WHERE NOT EXISTS
               (SELECT FROM handled_log l WHERE l.user_id = u.id AND l.name = u.name)"
        )
        .await,
        0,
        "every row reached a handler"
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM (SELECT event_id FROM handled_log GROUP BY event_id
               HAVING count(DISTINCT (user_id, name, action)) > 1) d"
        )
        .await,
        0,
        "a duplicate is the same event"
    );
    let handled = count(&client, "SELECT count(*) FROM handled_log").await;
    eprintln!("{kills} kills; {} duplicates", handled - expected);
    for mut child in listeners {
        child.kill().await.unwrap();
    }
    watching.shutdown().await.unwrap();
}

/// Two listener processes on a FIFO PgQueue, each handling up to four rows
/// at once, with handlers of uneven speed: both take part, and each row's
/// 30 updates are handled in the order they were made, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_order_holds_across_two_listener_processes() {
    let (db, client) = database().await;
    let watching = watcher(&db, true);
    // Handlers take up to 20 ms, and a row changes every 5 ms or so: its
    // changes travel in messages of their own, and one taken out of turn,
    // by the other process, would be handled before the one in flight.
    let listeners = [listener(&db, true, 20), listener(&db, true, 20)];
    // Few rows, many versions: neighbouring messages are often of one row.
    let (rows, versions) = (6, 30);
    client
        .execute(
            "INSERT INTO users (name) SELECT 'f' || n || '-v0' FROM generate_series(1, $1::int) n",
            &[&rows],
        )
        .await
        .unwrap();
    for version in 1..=versions {
        client
            .execute(
                "UPDATE users SET name = regexp_replace(name, '-v[0-9]+$', '-v' || $1::int)",
                &[&version],
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let expected = i64::from(rows * (versions + 1));
    wait_for_count(&client, "SELECT count(*) FROM handled_log", expected).await;
    let mut by_row: HashMap<Uuid, Vec<i32>> = HashMap::new();
    for row in client
        .query("SELECT user_id, name FROM handled_log ORDER BY seq", &[])
        .await
        .unwrap()
    {
        let name: String = row.get(1);
        let version = name.rsplit_once("-v").unwrap().1.parse().unwrap();
        by_row.entry(row.get(0)).or_default().push(version);
    }
    assert_eq!(by_row.len(), rows as usize);
    for (id, seen) in &by_row {
        assert_eq!(
            seen,
            &(0..=versions).collect::<Vec<_>>(),
            "row {id}: handled out of order or more than once"
        );
    }
    assert_eq!(
        count(&client, "SELECT count(DISTINCT pid) FROM handled_log").await,
        2,
        "both processes handled changes"
    );
    for mut child in listeners {
        child.kill().await.unwrap();
    }
    watching.shutdown().await.unwrap();
}
