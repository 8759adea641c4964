//! Backfills end to end: every existing row delivered as a snapshot (never
//! as an insert), across a backfill killed and resumed; a row changed
//! during its backfill ends with its latest state last; clear errors.
//! Operators' controls: a paused backfill stops until resumed, a cancelled
//! one stops and says so, a run started later takes a backfill over, and
//! `backfills()` reports the rate and the time left.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dawdle::backfill::{self, Backfill, BackfillError, BackfillState, BackfillStatus, Progress};
use dawdle::queue::MemoryQueue;
use dawdle::{Change, Insert, Runtime, Snapshot, Watched};
use dawdle_test::{until, wait_until, TestDb};
use tokio::sync::watch;
use tokio::time::timeout;

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

/// The backfill of `public.versioned`, as `backfills()` lists it.
async fn status(client: &tokio_postgres::Client) -> BackfillStatus {
    let all = backfill::backfills(client).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().unwrap()
}

/// Snapshot events written so far: all of them, and distinct rows.
async fn snapshots(client: &tokio_postgres::Client) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT row_key::text) FROM dawdle.events WHERE action = 'snapshot'",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// A backfill of `public.versioned` running on a connection of its own, at
/// most `rate` rows per second in batches of 100, whatever the backlog; its
/// latest progress.
async fn spawn_run(
    db: &TestDb,
    rate: f64,
) -> (
    tokio::task::JoinHandle<Result<Progress, BackfillError>>,
    watch::Receiver<Option<Progress>>,
) {
    let runner = db.connect().await.unwrap();
    let (seen, progress) = watch::channel(None::<Progress>);
    let run = tokio::spawn(async move {
        // No watcher runs: the events stay, and must not hold the run.
        Backfill::new("public.versioned")
            .batch(100)
            .max_rate(rate)
            .max_backlog(None)
            .run(&runner, |p| {
                seen.send_replace(Some(p.clone()));
            })
            .await
    });
    (run, progress)
}

/// Rows per second of a run that another call must catch before its last
/// row: 3,000 rows take 10 s.
const SLOW: f64 = 300.0;

/// Waits until the progress seen holds `condition`, for at most 30 s.
async fn progress_until(
    progress: &mut watch::Receiver<Option<Progress>>,
    what: &str,
    condition: impl FnMut(&Progress) -> bool,
) -> Progress {
    let mut condition = condition;
    timeout(
        Duration::from_secs(30),
        progress.wait_for(|p| p.as_ref().is_some_and(&mut condition)),
    )
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"))
    .unwrap()
    .clone()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_backfill_stops_until_resumed_then_sends_every_row_once() {
    const ROWS: i64 = 3_000;
    let (db, client) = database(&format!(
        "{TABLES} INSERT INTO versioned SELECT i, 0 FROM generate_series(1, {ROWS}) i;
         ANALYZE versioned;"
    ))
    .await;
    let (run, mut progress) = spawn_run(&db, 1_500.0).await;
    progress_until(&mut progress, "300 rows are read", |p| p.rows_read >= 300).await;

    assert!(backfill::pause(&client, "public.versioned").await.unwrap());
    // The run sees it before its next batch, and says so.
    let at_pause = progress_until(&mut progress, "the run is paused", |p| p.paused).await;
    let paused = status(&client).await;
    assert_eq!(paused.state(), BackfillState::Paused);
    assert!(paused.is_paused() && !paused.is_finished(), "{paused:?}");
    assert!(paused.paused_at.is_some());
    assert_eq!(paused.rows_read, at_pause.rows_read);
    assert_eq!(paused.eta(), None, "no time left is told while paused");
    assert!(paused.rate().is_some_and(|r| r > 0.0), "{paused:?}");

    // Nothing moves while it is paused: it looks every CONTROL_POLL, so a
    // window of two looks and more must see no batch (an absence, which
    // only a window of time shows).
    tokio::time::sleep(Backfill::CONTROL_POLL * 2 + Duration::from_millis(500)).await;
    let still = status(&client).await;
    assert_eq!(
        (still.rows_read, still.updated_at),
        (paused.rows_read, paused.updated_at)
    );
    assert_eq!(snapshots(&client).await.0, paused.rows_read as i64);
    assert!(!run.is_finished());
    // Pausing twice keeps it paused, since the first time.
    assert!(backfill::pause(&client, "public.versioned").await.unwrap());
    assert_eq!(status(&client).await.paused_at, paused.paused_at);

    assert!(backfill::resume(&client, "public.versioned").await.unwrap());
    let done = timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(done.finished && !done.paused, "{done:?}");
    assert_eq!(done.rows_read, ROWS as u64);
    assert_eq!(snapshots(&client).await, (ROWS, ROWS), "every row once");

    let finished = status(&client).await;
    assert_eq!(finished.state(), BackfillState::Finished);
    assert!(finished.paused_at.is_none() && finished.cancelled_at.is_none());
    assert_eq!(finished.rows_read, ROWS as u64);
    // Measured from the resume: the pause is no part of it.
    assert!(
        finished.rate().is_some_and(|r| r > 0.0 && r < 3_000.0),
        "{finished:?}"
    );
    assert_eq!(finished.eta(), None);
    // ANALYZEd: estimated.
    assert!(
        finished
            .rows_total
            .is_some_and(|t| t.abs_diff(ROWS as u64) < ROWS as u64 / 10),
        "{finished:?}"
    );
    // Nothing is left to pause, resume or cancel, nor is there for a name
    // without a backfill.
    for name in ["public.versioned", "public.nowhere"] {
        assert!(!backfill::pause(&client, name).await.unwrap());
        assert!(!backfill::resume(&client, name).await.unwrap());
        assert!(!backfill::cancel(&client, name).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_backfill_stops_says_so_and_starts_over_when_run_again() {
    const ROWS: i64 = 3_000;
    let (db, client) = database(&format!(
        "{TABLES} INSERT INTO versioned SELECT i, 0 FROM generate_series(1, {ROWS}) i;"
    ))
    .await;
    // Slow enough that the cancel comes before the last row.
    let (run, mut progress) = spawn_run(&db, SLOW).await;
    progress_until(&mut progress, "200 rows are read", |p| p.rows_read >= 200).await;

    assert!(backfill::cancel(&client, "public.versioned").await.unwrap());
    let error = timeout(Duration::from_secs(10), run)
        .await
        .expect("the run stops")
        .unwrap()
        .unwrap_err();
    let BackfillError::Cancelled { table, rows_read } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(table, "public.versioned");
    assert!(
        error
            .to_string()
            .contains(&format!("cancelled after {rows_read} rows")),
        "{error}"
    );
    let cancelled = status(&client).await;
    assert_eq!(cancelled.state(), BackfillState::Cancelled);
    assert!(cancelled.is_cancelled() && cancelled.is_finished() && !cancelled.is_paused());
    assert!(cancelled.finished_at.is_some() && cancelled.cancelled_at.is_some());
    assert_eq!(cancelled.rows_read, *rows_read);
    assert!((200..ROWS as u64).contains(rows_read), "{rows_read}");
    assert_eq!(cancelled.eta(), None);
    // Stopped: no batch after the cancel.
    assert_eq!(snapshots(&client).await.0, *rows_read as i64);
    assert!(!backfill::cancel(&client, "public.versioned").await.unwrap());
    assert!(!backfill::pause(&client, "public.versioned").await.unwrap());

    // Started again, it begins at the first row.
    let mut first = None;
    let again = Backfill::new("public.versioned")
        .batch(1_000)
        .rest(0.0)
        .max_backlog(None)
        .run(&client, |p| {
            first.get_or_insert(p.clone());
        })
        .await
        .unwrap();
    assert_eq!(first.unwrap().rows_read, 0);
    assert_eq!(again.rows_read, ROWS as u64);
    let finished = status(&client).await;
    assert_eq!(finished.state(), BackfillState::Finished);
    assert!(finished.cancelled_at.is_none());
    assert_eq!(snapshots(&client).await, (ROWS + *rows_read as i64, ROWS));

    // A pause outlives its run: a run started on a paused backfill waits
    // too, and is cancelled while it waits.
    let (killed, mut progress) = spawn_run(&db, SLOW).await;
    progress_until(&mut progress, "100 rows are read", |p| p.rows_read >= 100).await;
    assert!(backfill::pause(&client, "public.versioned").await.unwrap());
    progress_until(&mut progress, "the run is paused", |p| p.paused).await;
    killed.abort();
    let _ = killed.await;
    let (run, mut progress) = spawn_run(&db, SLOW).await;
    let waiting = progress_until(&mut progress, "the new run is paused", |p| p.paused).await;
    assert!(waiting.rows_read >= 100);
    assert!(backfill::cancel(&client, "public.versioned").await.unwrap());
    let stopped = timeout(Duration::from_secs(10), run)
        .await
        .expect("the paused run stops")
        .unwrap();
    assert!(
        matches!(stopped, Err(BackfillError::Cancelled { rows_read, .. }) if rows_read == waiting.rows_read),
        "{stopped:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfills_reports_the_rate_and_the_time_left() {
    const ROWS: i64 = 4_000;
    const RATE: f64 = 1_000.0;
    let (db, client) = database(&format!(
        "{TABLES} INSERT INTO versioned SELECT i, 0 FROM generate_series(1, {ROWS}) i;
         ANALYZE versioned;"
    ))
    .await;
    assert!(backfill::backfills(&client).await.unwrap().is_empty());
    let (run, _progress) = spawn_run(&db, RATE).await;
    until("1,500 rows are read", Duration::from_secs(30), || async {
        backfill::backfills(&client)
            .await
            .unwrap()
            .first()
            .is_some_and(|b| b.rows_read >= 1_500)
    })
    .await;
    let running = status(&client).await;
    assert_eq!(running.state(), BackfillState::Running, "{running:?}");
    assert_eq!(running.filter, None);
    assert!(running.updated_at > running.started_at);
    let total = running.rows_total.expect("estimated");
    assert!(total.abs_diff(ROWS as u64) < ROWS as u64 / 10, "{total}");
    // At most RATE rows per second (a batch more than the time between
    // the first and the latest batch, at most).
    let rate = running.rate().expect("a rate");
    assert!(rate > 0.0 && rate < RATE * 1.5, "{rate}");
    let eta = running.eta().expect("a time left").as_secs_f64();
    let expected = total.saturating_sub(running.rows_read) as f64 / rate;
    assert!((eta - expected).abs() < 0.01, "{eta} {expected}");

    let done = timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(done.rate > 0.0 && done.rate < RATE * 1.5, "{done:?}");
    let finished = status(&client).await;
    assert_eq!(finished.state(), BackfillState::Finished);
    assert!(finished.rate().is_some_and(|r| r > 0.0 && r < RATE * 1.5));
    assert_eq!(finished.eta(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_while_another_works_takes_the_backfill_over() {
    const ROWS: i64 = 3_000;
    let (db, client) = database(&format!(
        "{TABLES} INSERT INTO versioned SELECT i, 0 FROM generate_series(1, {ROWS}) i;"
    ))
    .await;
    // Slow enough that the second run comes before its last row.
    let (first, mut progress) = spawn_run(&db, SLOW).await;
    progress_until(&mut progress, "300 rows are read", |p| p.rows_read >= 300).await;

    let second = Backfill::new("public.versioned")
        .batch(500)
        .rest(0.0)
        .max_backlog(None)
        .run(&client, |_| {})
        .await
        .unwrap();
    assert!(second.finished);
    assert_eq!(second.rows_read, ROWS as u64);
    let first = timeout(Duration::from_secs(10), first)
        .await
        .expect("the first run stops")
        .unwrap();
    assert!(
        matches!(&first, Err(BackfillError::TakenOver { table }) if table == "public.versioned"),
        "{first:?}"
    );
    // One cursor, moved by one batch at a time: no row twice, none skipped.
    assert_eq!(snapshots(&client).await, (ROWS, ROWS));
}

#[tokio::test]
async fn the_up_migration_adds_the_new_columns_and_a_rerun_takes_no_lock() {
    let (db, mut client) = database(TABLES).await;
    let columns =
        "'rows_total', 'paused_at', 'cancelled_at', 'resumed_at', 'rows_at_resume', 'run_id'";
    let present = "SELECT count(*) FROM pg_catalog.pg_attribute \
                   WHERE attrelid = 'dawdle.backfills'::regclass AND NOT attisdropped AND attname IN (";
    let present = format!("{present}{columns})");
    // A backfills table of an earlier version, with a backfill in it.
    client
        .batch_execute(
            "ALTER TABLE dawdle.backfills DROP COLUMN rows_total, DROP COLUMN paused_at,
               DROP COLUMN cancelled_at, DROP COLUMN resumed_at, DROP COLUMN rows_at_resume,
               DROP COLUMN run_id;
             INSERT INTO dawdle.backfills (name) VALUES ('public.versioned');",
        )
        .await
        .unwrap();
    let n: i64 = client.query_one(&present, &[]).await.unwrap().get(0);
    assert_eq!(n, 0);
    let up = dawdle::sql::up(&[Member::TABLE, Versioned::TABLE, Loose::TABLE]).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    let n: i64 = client.query_one(&present, &[]).await.unwrap().get(0);
    assert_eq!(n, 6);
    let old = status(&client).await;
    assert_eq!(
        (old.state(), old.rate(), old.eta()),
        (BackfillState::Running, None, None)
    );

    // Run again while a session holds a lock that an ALTER TABLE would
    // wait for: it must not wait.
    let other = db.connect().await.unwrap();
    other
        .batch_execute("BEGIN; LOCK TABLE dawdle.backfills IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL lock_timeout = '200ms'")
        .await
        .unwrap();
    tx.batch_execute(&up).await.unwrap();
    tx.commit().await.unwrap();
    other.batch_execute("ROLLBACK").await.unwrap();
}
