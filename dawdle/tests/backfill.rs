//! Backfills end to end: every existing row delivered as a snapshot (never
//! as an insert), across a backfill killed and resumed; a row changed
//! during its backfill ends with its latest state last; clear errors.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dawdle::backfill::{Backfill, BackfillError};
use dawdle::queue::MemoryQueue;
use dawdle::{Change, Insert, Runtime, Snapshot, Watched};
use dawdle_test::{wait_until, TestDb};

/// 100,000 rows that were there before dawdle.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "members")]
struct Member {
    id: i64,
    name: String,
}

/// Rows changed while they are backfilled.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "versioned")]
struct Versioned {
    id: i64,
    version: i32,
}

/// A struct whose key is not the table's: no unique index on `tag`.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "loose")]
struct Loose {
    #[dawdle(primary_key)]
    tag: String,
    n: i32,
}

static MEMBER_INSERTS: AtomicU64 = AtomicU64::new(0);
/// How many times each member's snapshot was handled (one test only
/// writes members).
static MEMBER_SNAPSHOTS: Mutex<Option<HashMap<i64, u32>>> = Mutex::new(None);
/// Per database, per row: the versions handled, in order.
static VERSIONS: Mutex<BTreeMap<String, HashMap<i64, Vec<i32>>>> = Mutex::new(BTreeMap::new());

#[dawdle::handler]
async fn welcome(_: Insert<Member>) {
    MEMBER_INSERTS.fetch_add(1, Ordering::Relaxed);
}

#[dawdle::handler]
async fn member_snapshot(event: Snapshot<Member>) {
    assert_eq!(event.meta.action, dawdle::Action::Snapshot);
    assert_eq!(event.row.name, format!("member {}", event.row.id));
    *MEMBER_SNAPSHOTS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(event.row.id)
        .or_default() += 1;
}

#[dawdle::handler]
async fn versioned(event: Change<Versioned>) {
    let Some(row) = event.new() else { return };
    VERSIONS
        .lock()
        .unwrap()
        .entry(row_db(&event))
        .or_default()
        .entry(row.id)
        .or_default()
        .push(row.version);
}

/// The database an event came from, by its source.
fn row_db<T>(event: &Change<T>) -> String {
    event.meta().source.clone().unwrap_or_default()
}

async fn database(setup: &str) -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client.batch_execute(setup).await.unwrap();
    let up = dawdle::sql::up(&[Member::TABLE, Versioned::TABLE, Loose::TABLE]).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    (db, client)
}

fn runtime(db: &TestDb, queue: MemoryQueue) -> dawdle::RuntimeHandle {
    Runtime::builder()
        .database(db.config().clone())
        .pool(db.pool())
        .queue(queue)
        .watch()
        .listen()
        .concurrency(32)
        .receive_wait(Duration::from_millis(200))
        .build()
        .unwrap()
        .start()
}

const TABLES: &str = "CREATE TABLE members (id bigint PRIMARY KEY, name text NOT NULL);
                      CREATE TABLE versioned (id bigint PRIMARY KEY, version int NOT NULL);
                      CREATE TABLE loose (id bigint PRIMARY KEY, tag text NOT NULL, n int NOT NULL);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_killed_and_resumed_delivers_every_row_as_a_snapshot() {
    const ROWS: i64 = 100_000;
    let (db, client) = database(&format!(
        "{TABLES} INSERT INTO members SELECT i, 'member ' || i FROM generate_series(1, {ROWS}) i;"
    ))
    .await;
    let handle = runtime(&db, MemoryQueue::new());
    let inserts_before = MEMBER_INSERTS.load(Ordering::Relaxed);

    // The first run, killed (its connection dropped mid-batch) past 30,000 rows.
    let killed = db.connect().await.unwrap();
    let (seen, mut progress) = tokio::sync::watch::channel(0u64);
    let run = tokio::spawn(async move {
        Backfill::new("public.members")
            .batch(2_000)
            .rest(0.0)
            .run(&killed, |p| {
                let _ = seen.send(p.rows_read);
            })
            .await
    });
    progress.wait_for(|rows| *rows >= 30_000).await.unwrap();
    run.abort();
    let _ = run.await;
    let (read, finished): (i64, Option<chrono::DateTime<chrono::Utc>>) = {
        let row = client
            .query_one(
                "SELECT rows_read, finished_at FROM dawdle.backfills WHERE name = 'public.members'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(
        (30_000..ROWS).contains(&read) && finished.is_none(),
        "{read} {finished:?}"
    );

    // Another filter is refused while it is unfinished; the same one resumes.
    let other = Backfill::new("public.members")
        .filter("id > 5")
        .run(&client, |_| {})
        .await;
    assert!(
        matches!(other, Err(BackfillError::Unfinished { .. })),
        "{other:?}"
    );
    let mut first = None;
    let done = Backfill::new("public.members")
        .batch(5_000)
        .rest(0.0)
        .run(&client, |p| {
            first.get_or_insert(p.clone());
        })
        .await
        .unwrap();
    let first = first.unwrap();
    assert_eq!(first.rows_read, read as u64, "resumes where it stopped");
    // Estimated from the statistics: unknown until the table is analyzed.
    assert!(
        first
            .total
            .is_none_or(|t| t.abs_diff(ROWS as u64) < ROWS as u64 / 10),
        "{first:?}"
    );
    assert!(done.finished);
    assert_eq!(done.rows_read, ROWS as u64);

    wait_until("every row is handled", Duration::from_secs(240), || {
        MEMBER_SNAPSHOTS
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, HashMap::len) as i64
            == ROWS
    })
    .await;
    assert_eq!(
        MEMBER_INSERTS.load(Ordering::Relaxed),
        inserts_before,
        "no Insert handler for a snapshot"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_changed_during_its_backfill_ends_with_its_latest_state_last() {
    const ROWS: i64 = 2_000;
    let (db, client) = database(&format!(
        "{TABLES} INSERT INTO versioned SELECT i, 0 FROM generate_series(1, {ROWS}) i;"
    ))
    .await;
    let source: String = client
        .query_one("SELECT source::text FROM dawdle.origin", &[])
        .await
        .unwrap()
        .get(0);
    let queue = MemoryQueue::builder().fifo(true).build();
    let handle = runtime(&db, queue);

    // Writers bump versions of random rows while the backfill walks them.
    let writer = db.connect().await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut updates = 0u32;
            while !stop.load(Ordering::Relaxed) {
                writer
                    .execute(
                        "UPDATE versioned SET version = version + 1
                         WHERE id IN (SELECT (random() * $1::int8)::int8 + 1 FROM generate_series(1, 20))",
                        &[&(ROWS - 1)],
                    )
                    .await
                    .unwrap();
                updates += 1;
            }
            updates
        })
    };
    let done = Backfill::new("public.versioned")
        .batch(100)
        .rest(0.5)
        .run(&client, |_| {})
        .await
        .unwrap();
    assert!(done.finished && done.rows_read == ROWS as u64);
    stop.store(true, Ordering::Relaxed);
    assert!(writing.await.unwrap() > 0);

    let finals: HashMap<i64, i32> = client
        .query("SELECT id, version FROM versioned", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    wait_until(
        "every row's last state is handled",
        Duration::from_secs(120),
        || {
            let versions = VERSIONS.lock().unwrap();
            let Some(seen) = versions.get(&source) else {
                return false;
            };
            finals
                .iter()
                .all(|(id, version)| seen.get(id).and_then(|v| v.last()) == Some(version))
        },
    )
    .await;
    let versions = VERSIONS.lock().unwrap()[&source].clone();
    for (id, seen) in &versions {
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "row {id}: a snapshot overtook a later change: {seen:?}"
        );
    }
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_backfill_names_what_is_wrong_and_a_filter_selects_rows() {
    let (db, client) = database(&format!(
        "{TABLES} INSERT INTO versioned SELECT i, i % 3 FROM generate_series(1, 30) i;"
    ))
    .await;
    let error = Backfill::new("public.nowhere")
        .run(&client, |_| {})
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("\"public.nowhere\"")
            && message.contains("public.loose, public.members, public.versioned"),
        "{message}"
    );
    // A key that is not one (not unique) would skip rows: refused.
    client
        .batch_execute("INSERT INTO loose VALUES (1, 'a', 1), (2, 'a', 2)")
        .await
        .unwrap();
    let error = Backfill::new("public.loose")
        .run(&client, |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("key columns (tag) must be NOT NULL and unique"),
        "{error}"
    );
    let done = Backfill::new("public.versioned")
        .filter("version = 0")
        .batch(4)
        .rest(0.0)
        .run(&client, |_| {})
        .await
        .unwrap();
    assert_eq!((done.rows_read, done.total), (10, Some(10)));
    let snapshots: i64 = client
        .query_one(
            "SELECT count(*) FROM dawdle.events WHERE action = 'snapshot'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(snapshots, 10);
    // A finished backfill starts anew when run again.
    let again = dawdle::backfill::backfill(&client, "public.versioned")
        .await
        .unwrap();
    assert_eq!(again.rows_read, 30);
    drop(db);
}
