//! PgQueue's SQL API (`dawdle.queue_send`, `queue_read`, `queue_delete`,
//! `queue_set_vt`, `queue_dead_letter`) on a real PostgreSQL: a consumer
//! that is nothing but `psql`, messages crossing between SQL and the Rust
//! `PgQueue` both ways, and the Rust queue's semantics kept: stale
//! receipts, visibility timeouts, max receives, FIFO groups, the doorbell,
//! and an up that re-runs without locking the queue's tables.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dawdle::queue::{OutgoingMessage, PgQueue, Queue};
use dawdle_test::{eventually, TestDb};
use tokio::time::Instant;

async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    let up = dawdle::sql::up(&[]).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    (db, client)
}

fn queue(db: &TestDb) -> dawdle::queue::PgQueueBuilder {
    PgQueue::builder(db.database().clone()).poll_interval(Duration::from_millis(50))
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

/// A message as `dawdle.queue_read` returns it.
#[derive(Debug, Clone, PartialEq)]
struct Read {
    id: i64,
    receive_count: i32,
    body: String,
    group_id: Option<String>,
}

async fn send(client: &tokio_postgres::Client, queue: &str, body: &str) -> i64 {
    client
        .query_one("SELECT dawdle.queue_send($1, $2)", &[&queue, &body])
        .await
        .unwrap()
        .get(0)
}

async fn send_grouped(
    client: &tokio_postgres::Client,
    queue: &str,
    body: &str,
    group: &str,
) -> Option<i64> {
    client
        .query_one(
            "SELECT dawdle.queue_send($1, $2, group_id => $3)",
            &[&queue, &body, &group],
        )
        .await
        .unwrap()
        .get(0)
}

/// `dawdle.queue_read` with `max_receives` and `fifo` as given.
async fn read(
    client: &tokio_postgres::Client,
    queue: &str,
    vt_seconds: f64,
    max: i32,
    max_receives: Option<i32>,
    fifo: bool,
) -> Vec<Read> {
    client
        .query(
            "SELECT id, receive_count, body, group_id \
             FROM dawdle.queue_read($1, $2, $3, max_receives => $4, fifo => $5)",
            &[&queue, &vt_seconds, &max, &max_receives, &fifo],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| Read {
            id: row.get(0),
            receive_count: row.get(1),
            body: row.get(2),
            group_id: row.get(3),
        })
        .collect()
}

async fn standard(client: &tokio_postgres::Client, vt_seconds: f64, max: i32) -> Vec<Read> {
    read(client, "default", vt_seconds, max, Some(5), false).await
}

/// Calls `function` (`queue_delete`, `queue_set_vt`, `queue_dead_letter`)
/// with the receipt of `message` and `extra` arguments.
async fn by_receipt(
    client: &tokio_postgres::Client,
    function: &str,
    message: &Read,
    extra: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> bool {
    let placeholders: String = (0..extra.len()).map(|i| format!(", ${}", i + 4)).collect();
    let sql = format!("SELECT dawdle.{function}($1, $2, $3{placeholders})");
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        vec![&"default", &message.id, &message.receive_count];
    params.extend_from_slice(extra);
    client.query_one(&sql, &params).await.unwrap().get(0)
}

fn bodies(messages: &[Read]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

/// The `psql` of the installed PostgreSQL, looked up as dawdle-test's
/// cluster looks up its binaries: `DAWDLE_PG_BIN`, `pg_config --bindir`,
/// `/usr/lib/postgresql/*/bin` (the newest), then `PATH`.
fn psql() -> Option<PathBuf> {
    let psql_in = |dir: &Path| Some(dir.join("psql")).filter(|path| path.is_file());
    if let Some(dir) = std::env::var_os("DAWDLE_PG_BIN") {
        return psql_in(Path::new(&dir));
    }
    let bindir = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if let Some(path) = bindir.as_deref().and_then(psql_in) {
        return Some(path);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort();
    if let Some(path) = versions.iter().rev().find_map(|(_, dir)| psql_in(dir)) {
        return Some(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find_map(|dir| psql_in(&dir))
}

#[tokio::test]
async fn a_psql_script_consumes_what_pg_queue_sent() {
    let Some(psql) = psql() else {
        eprintln!(
            "skipped: no psql binary (looked in DAWDLE_PG_BIN, pg_config --bindir, \
             /usr/lib/postgresql/*/bin and PATH)"
        );
        return;
    };
    let (db, _client) = database().await;
    let queue = queue(&db).build();
    queue
        .send(&[message("hello from Rust", None)])
        .await
        .unwrap();

    let script = r"
\set ON_ERROR_STOP on
SELECT id, receive_count, body FROM dawdle.queue_read('default', 30) \gset
\echo received :body
SELECT dawdle.queue_delete('default', :id, :receive_count) AS deleted \gset
\echo deleted :deleted
";
    let url = db.url();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", psql.display()));
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql failed: {stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["received hello from Rust", "deleted t"],
        "stderr: {stderr}"
    );
    assert_eq!(queue.depth().await.unwrap(), Default::default());
}

#[tokio::test]
async fn sql_and_pg_queue_exchange_messages_both_ways() {
    let (db, client) = database().await;
    let queue = queue(&db).build();

    // SQL to Rust.
    let id = send(&client, "default", "from SQL").await;
    let got = queue
        .receive(10, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "from SQL");
    assert_eq!(got[0].message_id, id.to_string());
    assert_eq!(got[0].receive_count, 1);
    assert!(got[0].group_id.is_none());
    queue.delete(&[got[0].receipt.clone()]).await.unwrap();

    // Rust to SQL, and the receipt is the Rust receipt's.
    queue
        .send(&[message("from Rust 1", None), message("from Rust 2", None)])
        .await
        .unwrap();
    let read = standard(&client, 30.0, 10).await;
    assert_eq!(bodies(&read), ["from Rust 1", "from Rust 2"]);
    assert!(read.iter().all(|m| m.receive_count == 1));
    let depth = queue.depth().await.unwrap();
    assert_eq!((depth.waiting, depth.in_flight), (0, 2));
    for message in &read {
        assert!(by_receipt(&client, "queue_delete", message, &[]).await);
    }
    assert_eq!(queue.depth().await.unwrap(), Default::default());

    // Queues of other names are apart.
    send(&client, "other", "elsewhere").await;
    assert!(standard(&client, 30.0, 10).await.is_empty());
    let other = PgQueue::builder(db.database().clone())
        .name("other")
        .build();
    let got = other
        .receive(1, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got[0].body, "elsewhere");
}

#[tokio::test]
async fn a_sql_send_rings_the_doorbell_of_a_waiting_pg_queue() {
    let (db, client) = database().await;
    // Polls too rarely to matter: only the doorbell can end the wait soon.
    let queue = PgQueue::builder(db.database().clone())
        .poll_interval(Duration::from_secs(60))
        .build();
    let receiving = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let got = queue
                .receive(1, Duration::from_secs(20), Duration::from_secs(30))
                .await
                .unwrap();
            (got, started.elapsed())
        })
    };
    let listening = format!(
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = '{}' \
         AND application_name = 'dawdle-queue-doorbell' AND query ILIKE 'LISTEN%')",
        db.name()
    );
    eventually("the doorbell listens", Duration::from_secs(5), || async {
        let row = client.query_one(&listening, &[]).await.unwrap();
        row.get::<_, bool>(0).then_some(())
    })
    .await;
    send(&client, "default", "ding").await;
    let (got, waited) = receiving.await.unwrap();
    assert_eq!(got[0].body, "ding");
    assert!(waited < Duration::from_secs(10), "woke after {waited:?}");
}

#[tokio::test]
async fn a_stale_receipt_fails_and_a_fresh_one_works_once() {
    let (_db, client) = database().await;
    send(&client, "default", "a").await;
    // A visibility timeout of 0: visible again at once, received again.
    let first = standard(&client, 0.0, 1).await;
    let second = standard(&client, 30.0, 1).await;
    assert_eq!(first[0].id, second[0].id);
    assert_eq!((first[0].receive_count, second[0].receive_count), (1, 2));

    assert!(!by_receipt(&client, "queue_delete", &first[0], &[]).await);
    assert!(!by_receipt(&client, "queue_set_vt", &first[0], &[&0.0f64]).await);
    assert!(!by_receipt(&client, "queue_dead_letter", &first[0], &[&"old"]).await);
    assert!(
        standard(&client, 30.0, 1).await.is_empty(),
        "still hidden: the stale calls changed nothing"
    );
    assert!(by_receipt(&client, "queue_delete", &second[0], &[]).await);
    assert!(
        !by_receipt(&client, "queue_delete", &second[0], &[]).await,
        "deleted already"
    );
}

#[tokio::test]
async fn the_visibility_timeout_hides_then_shows_a_message_and_set_vt_moves_it() {
    let (db, client) = database().await;
    send(&client, "default", "a").await;
    let started = Instant::now();
    let first = standard(&client, 2.0, 1).await;
    assert!(standard(&client, 30.0, 1).await.is_empty(), "hidden");
    let again = eventually(
        "the message shows again",
        Duration::from_secs(30),
        || async { Some(standard(&client, 30.0, 1).await).filter(|got| !got.is_empty()) },
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert_eq!((again[0].id, again[0].receive_count), (first[0].id, 2));

    // Handed back at once, then hidden for long.
    assert!(by_receipt(&client, "queue_set_vt", &again[0], &[&0.0f64]).await);
    let third = standard(&client, 0.0, 1).await;
    assert_eq!(third[0].receive_count, 3);
    assert!(by_receipt(&client, "queue_set_vt", &third[0], &[&30.0f64]).await);
    assert!(standard(&client, 30.0, 1).await.is_empty());
    let depth = queue(&db).build().depth().await.unwrap();
    assert_eq!((depth.waiting, depth.in_flight), (0, 1));

    // A delayed send is hidden from the start.
    client
        .execute(
            "SELECT dawdle.queue_send('default', 'later', delay_seconds => 30)",
            &[],
        )
        .await
        .unwrap();
    assert!(standard(&client, 30.0, 1).await.is_empty());
}

#[tokio::test]
async fn max_receives_dead_letters_and_reads_go_on_behind() {
    let (db, client) = database().await;
    send(&client, "default", "poison").await;
    send(&client, "default", "fine").await;
    let read2 = |vt| read(&client, "default", vt, 1, Some(2), false);
    assert_eq!(read2(0.0).await[0].receive_count, 1);
    assert_eq!(read2(0.0).await[0].receive_count, 2);
    // Received twice already: dead-lettered, and the read returns the
    // message behind it instead of nothing.
    let got = read2(30.0).await;
    assert_eq!(bodies(&got), ["fine"]);

    let queue = queue(&db).max_receives(Some(2)).build();
    let dead = queue.dead_letters(0, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].receive_count, 2);
    assert_eq!(
        dead[0].reason,
        "received 2 times without being deleted (max_receives)"
    );

    // Dead-lettered by hand, redriven by Rust, read by SQL again.
    assert!(by_receipt(&client, "queue_dead_letter", &got[0], &[&"cannot parse"]).await);
    let dead = queue.dead_letters(0, 10).await.unwrap();
    assert_eq!(dead[1].body, "fine");
    assert_eq!(dead[1].reason, "cannot parse");
    assert_eq!(queue.redrive(&[dead[1].id]).await.unwrap(), 1);
    let back = read2(30.0).await;
    assert_eq!((back[0].body.as_str(), back[0].receive_count), ("fine", 1));

    // NULL: never dead-lettered.
    let id = send(&client, "default", "forever").await;
    for count in 1..=7 {
        let got = read(&client, "default", 0.0, 10, None, false).await;
        assert!(got.iter().any(|m| m.id == id && m.receive_count == count));
    }
}

#[tokio::test]
async fn a_fifo_group_goes_out_one_message_at_a_time_in_order() {
    let (db, client) = database().await;
    let fifo = |max| read(&client, "default", 30.0, max, Some(5), true);
    send_grouped(&client, "default", "g1-a", "g1").await;
    send_grouped(&client, "default", "g1-b", "g1").await;
    send_grouped(&client, "default", "g2-a", "g2").await;

    let first = fifo(1).await;
    assert_eq!(bodies(&first), ["g1-a"]);
    assert_eq!(first[0].group_id.as_deref(), Some("g1"));
    // g1-a is in flight: g1-b waits, for SQL readers and the Rust queue.
    let queue = queue(&db).fifo(true).build();
    let rust = queue
        .receive(10, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        rust.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["g2-a"]
    );
    assert!(fifo(10).await.is_empty());

    assert!(by_receipt(&client, "queue_delete", &first[0], &[]).await);
    let next = fifo(10).await;
    assert_eq!(bodies(&next), ["g1-b"]);

    // A duplicate of a stored dedup id is not stored; a grouped message
    // cannot be delayed.
    assert_eq!(
        standard(&client, 0.0, 1).await,
        Vec::<Read>::new(),
        "all in flight"
    );
    let dedup = "SELECT dawdle.queue_send('default', 'once', 'g3', dedup_id => 'x')";
    let first: Option<i64> = client.query_one(dedup, &[]).await.unwrap().get(0);
    let second: Option<i64> = client.query_one(dedup, &[]).await.unwrap().get(0);
    assert!(first.is_some());
    assert_eq!(second, None);
    let delayed = client
        .execute(
            "SELECT dawdle.queue_send('default', 'x', 'g4', delay_seconds => 5)",
            &[],
        )
        .await
        .unwrap_err();
    let delayed = delayed.as_db_error().map(|e| e.message()).unwrap_or("");
    assert!(delayed.contains("cannot be delayed"), "{delayed}");
}

#[tokio::test]
async fn up_runs_again_without_locking_the_queue_tables_and_down_drops_the_functions() {
    let (_db, mut client) = database().await;
    let up = dawdle::sql::up(&[]).unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(&up).await.unwrap();
    let locked: Vec<String> = tx
        .query(
            "SELECT c.relname::text FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE l.pid = pg_backend_pid() AND c.relnamespace = 'dawdle'::regnamespace \
               AND c.relname LIKE 'queue\\_%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(locked, Vec::<String>::new());
    tx.commit().await.unwrap();

    let functions = "SELECT count(*) FROM pg_proc WHERE proname LIKE 'queue\\_%' \
                     AND pronamespace::regnamespace::text = 'dawdle'";
    let count = |row: tokio_postgres::Row| row.get::<_, i64>(0);
    assert_eq!(count(client.query_one(functions, &[]).await.unwrap()), 5);
    let down = dawdle::sql::down(&[]).unwrap();
    dawdle::sql::apply(&mut client, &down).await.unwrap();
    let left = "SELECT count(*) FROM pg_proc WHERE proname IN \
                ('queue_send', 'queue_read', 'queue_delete', 'queue_set_vt', 'queue_dead_letter')";
    assert_eq!(count(client.query_one(left, &[]).await.unwrap()), 0);
}
