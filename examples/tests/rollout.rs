//! A rolling deploy: an older listener process (the `pg_listeners`
//! example, which has no type for the table `rollout_items`) meets events
//! of a table that only the newer program (this test) describes. It hands
//! them back, recording why, rather than dead-lettering them; the newer
//! listener, once started, handles every one, and nothing is dead-lettered.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use dawdle::{Insert, PgQueue, Runtime, Watched};
use tokio::process::Command;

/// A table only this program has a type for.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "rollout_items", events(insert))]
struct RolloutItem {
    id: i64,
    name: String,
}

static HANDLED: Mutex<Option<HashSet<i64>>> = Mutex::new(None);

fn handled() -> usize {
    HANDLED.lock().unwrap().as_ref().map_or(0, HashSet::len)
}

#[dawdle::handler]
async fn on_rollout_item(event: Insert<RolloutItem>) -> Result<(), std::convert::Infallible> {
    HANDLED
        .lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert(event.new.id);
    Ok(())
}

const ITEMS: i64 = 30;

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn an_older_listener_leaves_events_it_has_no_type_for_to_a_newer_one() {
    let db = dawdle_test::TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(include_str!("../schema.sql"))
        .await
        .unwrap();
    client
        .batch_execute("CREATE TABLE rollout_items (id bigint PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
    // This program's tables: the example's, and rollout_items.
    dawdle::sql::apply(&mut client, &dawdle::sql::up_registered().unwrap())
        .await
        .unwrap();
    let queue = || {
        PgQueue::builder(db.database().clone())
            .fifo(false)
            .max_receives(Some(50))
            .build()
    };

    // The older program's listener, alone at first.
    let mut older = Command::new(env!("CARGO_BIN_EXE_pg_listeners"))
        .arg("listen")
        .env("DATABASE_URL", db.url())
        .env("DAWDLE_PG_FIFO", "0")
        .env("DAWDLE_PG_MAX_RECEIVES", "50")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let watcher = Runtime::builder()
        .database(db.database().clone())
        .queue(queue())
        .watch()
        .build()
        .unwrap()
        .start();
    client
        .execute(
            "INSERT INTO rollout_items SELECT n, 'item ' || n FROM generate_series(1, $1::int8) n",
            &[&ITEMS],
        )
        .await
        .unwrap();

    // Every message went back with the reason, none to the dead letters.
    let failed = r#"SELECT count(*) FROM dawdle.queue_messages
                    WHERE failure_error LIKE '%rollout_items, which no Watched type%'
                      AND failure_handler IS NULL AND failure_attempts >= 1"#;
    let messages = r#"SELECT count(*) FROM dawdle.queue_messages"#;
    let mut waited = 0;
    loop {
        let (failed, messages) = (count(&client, failed).await, count(&client, messages).await);
        if messages > 0 && failed == messages {
            break;
        }
        waited += 1;
        assert!(
            waited < 600,
            "the older listener did not hand every message back: {failed} of {messages}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(&client, "SELECT count(*) FROM dawdle.queue_dead_letters").await,
        0
    );
    assert_eq!(handled(), 0);

    // The newer listener starts beside it and takes them all.
    let newer = Runtime::builder()
        .database(db.database().clone())
        .queue(queue())
        .listen()
        .receive_wait(Duration::from_millis(500))
        .build()
        .unwrap()
        .start();
    tokio::time::timeout(Duration::from_secs(90), async {
        while handled() < ITEMS as usize {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the newer listener handled {} of {ITEMS}", handled()));
    assert_eq!(
        count(&client, "SELECT count(*) FROM dawdle.queue_dead_letters").await,
        0
    );

    newer.shutdown().await.unwrap();
    watcher.shutdown().await.unwrap();
    older.kill().await.unwrap();
}
