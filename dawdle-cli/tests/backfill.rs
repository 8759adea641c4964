//! `dawdle backfill` against a real PostgreSQL: every row as a snapshot
//! event, a filter, a resumed cursor, and a clear error for a table that
//! is not captured; a running backfill paused, resumed, listed and
//! cancelled from another `dawdle backfill`.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::{database, dawdle, eventually, run, succeed, Process};

#[tokio::test]
async fn sends_every_selected_row_as_a_snapshot() {
    let (db, client) = database().await;
    client
        .batch_execute(
            "INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 50) n;
             -- The inserts are sent; the backfill's snapshots come on top.
             SELECT count(*) FROM dawdle.events;",
        )
        .await
        .unwrap();
    let snapshots = || async {
        client
            .query_one(
                "SELECT count(*), count(DISTINCT row_key::text) FROM dawdle.events WHERE action = 'snapshot'",
                &[],
            )
            .await
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
            .unwrap()
    };

    let out = succeed(
        dawdle(None)
            .args([
                "backfill",
                "public.items",
                "--batch",
                "7",
                "--where",
                "id <= 20",
            ])
            .env("DATABASE_URL", db.url()),
    );
    assert!(out.contains("backfilled public.items: 20 rows"), "{out}");
    assert_eq!(snapshots().await, (20, 20));

    // A finished backfill starts anew: now every row.
    let out = succeed(
        dawdle(None)
            .args(["backfill", "public.items", "--rest", "0"])
            .env("DATABASE_URL", db.url()),
    );
    assert!(out.contains("50 rows"), "{out}");
    assert_eq!(snapshots().await, (70, 50));

    let (output, _) = run(dawdle(None)
        .args(["backfill", "public.nothing"])
        .env("DATABASE_URL", db.url()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"public.nothing\"") && stderr.contains("public.items"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_database_error_is_the_servers_message() {
    // dawdle's SQL was never applied here.
    let db = dawdle_test::TestDb::new().await.unwrap();
    let (output, _) = run(dawdle(None)
        .args(["backfill", "public.items"])
        .env("DATABASE_URL", db.url()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(
            "dawdle: backfill of public.items: ERROR: relation \"dawdle.captures\" does not exist"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("(SQLSTATE 42P01)"), "{stderr}");
    assert!(!stderr.contains("db error"), "{stderr}");
}

/// `dawdle backfill --list --json`, parsed.
fn listed(url: &str) -> Vec<serde_json::Value> {
    let out = succeed(
        dawdle(None)
            .args(["backfill", "--list", "--json"])
            .env("DATABASE_URL", url),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The one backfill's field `key` in `--list --json`.
fn field(url: &str, key: &str) -> serde_json::Value {
    let all = listed(url);
    assert_eq!(all.len(), 1, "{all:?}");
    all[0][key].clone()
}

#[tokio::test]
async fn a_running_backfill_is_listed_paused_resumed_and_cancelled() {
    let (db, client) = database().await;
    client
        .batch_execute("INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 5000) n")
        .await
        .unwrap();
    let url = db.url();

    // Nothing to list, nor to act on.
    assert_eq!(listed(&url), Vec::<serde_json::Value>::new());
    let out = succeed(
        dawdle(None)
            .args(["backfill", "--list"])
            .env("DATABASE_URL", &url),
    );
    assert!(out.contains("no backfills"), "{out}");
    let (output, _) = run(dawdle(None)
        .args(["backfill", "--pause", "public.items"])
        .env("DATABASE_URL", &url));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no unfinished backfill of public.items"),
        "{stderr}"
    );

    // A backfill runs in the background, logging (no terminal: no bar).
    let mut running = Process(
        dawdle(None)
            .args([
                "backfill",
                "public.items",
                "--batch",
                "50",
                "--max-rate",
                "500",
                "--max-backlog",
                "0",
            ])
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // 0 until the process registered its backfill.
    let rows_read = || {
        listed(&url)
            .first()
            .map_or(0, |b| b["rows_read"].as_u64().unwrap())
    };
    eventually("it reads rows", || async { rows_read() >= 100 }).await;
    assert_eq!(field(&url, "state"), "running");

    let out = succeed(
        dawdle(None)
            .args(["backfill", "--pause", "public.items"])
            .env("DATABASE_URL", &url),
    );
    assert!(out.contains("backfill of public.items paused"), "{out}");
    assert_eq!(field(&url, "state"), "paused");
    assert!(field(&url, "paused_at").is_string());
    assert!(field(&url, "eta_seconds").is_null());
    // The run obeys before its next batch (a batch in flight ends first);
    // then nothing moves for two of its looks and more.
    let paused = rows_read();
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    assert_eq!(rows_read(), paused, "a paused backfill read on");
    let table = succeed(
        dawdle(None)
            .args(["backfill", "--list"])
            .env("DATABASE_URL", &url),
    );
    assert!(
        table.starts_with("NAME") && table.contains("public.items") && table.contains("paused"),
        "{table}"
    );

    let out = succeed(
        dawdle(None)
            .args(["backfill", "--resume", "public.items"])
            .env("DATABASE_URL", &url),
    );
    assert!(out.contains("resumed"), "{out}");
    eventually("it reads on", || async { rows_read() > paused }).await;
    assert_eq!(field(&url, "state"), "running");

    let out = succeed(
        dawdle(None)
            .args(["backfill", "--cancel", "public.items"])
            .env("DATABASE_URL", &url),
    );
    assert!(out.contains("cancelled"), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the running backfill did not exit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    running
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    let cancelled_at = field(&url, "rows_read").as_u64().unwrap();
    assert!(
        stdout.contains(&format!(
            "backfill of public.items cancelled after {cancelled_at} rows"
        )),
        "{stdout}"
    );
    assert!(cancelled_at < 5_000, "{cancelled_at}");
    assert!(
        stderr.contains("backfill paused") && stderr.contains("backfill resumed"),
        "{stderr}"
    );
    assert_eq!(field(&url, "state"), "cancelled");
    assert!(field(&url, "finished_at").is_string() && field(&url, "cancelled_at").is_string());
    let (output, _) = run(dawdle(None)
        .args(["backfill", "--cancel", "public.items"])
        .env("DATABASE_URL", &url));
    assert_eq!(output.status.code(), Some(1), "nothing left to cancel");

    // Run again, it starts from the first row.
    let out = succeed(
        dawdle(None)
            .args([
                "backfill",
                "public.items",
                "--rest",
                "0",
                "--max-backlog",
                "0",
            ])
            .env("DATABASE_URL", &url),
    );
    assert!(out.contains("backfilled public.items: 5000 rows"), "{out}");
    assert_eq!(field(&url, "state"), "finished");
    assert!(field(&url, "cancelled_at").is_null());
    assert!(field(&url, "rate_rows_per_second").as_f64().unwrap() > 0.0);
}

#[test]
fn a_table_or_one_action_is_required() {
    for args in [
        &["backfill"][..],
        &["backfill", "--pause", "public.a", "--cancel", "public.a"],
        &["backfill", "public.a", "--list"],
    ] {
        let (output, _) = run(dawdle(None)
            .args(args)
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    }
}
