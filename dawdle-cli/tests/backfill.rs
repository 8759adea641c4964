//! `dawdle backfill` against a real PostgreSQL: every row as a snapshot
//! event, a filter, a resumed cursor, and a clear error for a table that
//! is not captured.

mod common;

use common::{database, dawdle, run, succeed};

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
