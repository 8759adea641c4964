//! `dawdle::testing`, the helpers users get for their own tests.
//!
//! `DATABASE_URL` belongs to the whole process, so the tests that need it
//! set or unset run again in a child process of their own.

use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use dawdle::testing::{wait_until_drained, MetaBuilder, TestDatabase, TestingError};
use dawdle::{Action, Insert, MemoryQueue, Meta, Watched, Watcher};
use dawdle_test::TestDb;

/// Set in the child process a test runs in.
const CHILD: &str = "DAWDLE_TESTING_CHILD";

/// Runs the test `name` of this binary again in a child process, with
/// `DATABASE_URL` set to `database_url` or unset, and fails if it fails.
fn in_child(name: &str, database_url: Option<&str>) {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.args([name, "--exact", "--nocapture"]).env(CHILD, "1");
    match database_url {
        Some(url) => child.env("DATABASE_URL", url),
        None => child.env_remove("DATABASE_URL"),
    };
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in a child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

#[tokio::test]
async fn a_test_database_is_fresh_and_dropped_afterwards() {
    if !is_child() {
        // Any database of a server will do as DATABASE_URL.
        let server = TestDb::new().await.unwrap();
        return in_child(
            "a_test_database_is_fresh_and_dropped_afterwards",
            Some(&server.url()),
        );
    }
    let db = TestDatabase::new().await.unwrap();
    let client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    let other = TestDatabase::new().await.unwrap();
    assert_ne!(db.name(), other.name());
    let tables: i64 = other
        .connect()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM pg_tables WHERE tablename = 't'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
    let name = other.name().to_owned();
    drop(other);
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the dropped test database is gone");
}

#[tokio::test]
async fn without_database_url_the_error_names_it() {
    if !is_child() {
        return in_child("without_database_url_the_error_names_it", None);
    }
    let error = TestDatabase::new().await.unwrap_err();
    assert!(matches!(error, TestingError::DatabaseUrlUnset), "{error:?}");
    assert!(error.to_string().contains("DATABASE_URL"), "{error}");
}

#[tokio::test]
async fn an_invalid_database_url_is_an_error_naming_it() {
    if !is_child() {
        return in_child(
            "an_invalid_database_url_is_an_error_naming_it",
            Some("postgres://localhost:not-a-port/x"),
        );
    }
    let error = TestDatabase::new().await.unwrap_err();
    assert!(
        matches!(error, TestingError::DatabaseUrlInvalid(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains("DATABASE_URL"), "{error}");
}

#[tokio::test]
async fn url_reaches_the_same_database() {
    let db = TestDb::new().await.unwrap();
    let (client, conn) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, db.name());
}

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(schema = "shop", table = "orders")]
struct Order {
    id: i64,
    total: i64,
}

#[dawdle::handler]
async fn refuse_negative_totals(event: Insert<Order>) -> Result<(), String> {
    if event.new.total < 0 {
        return Err(format!(
            "event {} of {}.{}: order {} has a negative total",
            event.meta.id, event.meta.schema, event.meta.table, event.new.id
        ));
    }
    Ok(())
}

#[test]
fn built_metadata_names_the_table_and_defaults_the_rest() {
    let first = MetaBuilder::new::<Order>(Action::Insert).build();
    let second = MetaBuilder::new::<Order>(Action::Insert).build();
    assert_ne!(first.id, second.id, "ids are not shared by accident");
    assert_eq!(first.schema, "shop");
    assert_eq!(first.table, "orders");
    assert_eq!(first.action, Action::Insert);
    assert_eq!(first.txid, first.id.to_string());

    let id_only = MetaBuilder::new::<Order>(Action::Delete).id(5).build();
    assert_eq!(id_only.txid, "5", "the transaction id follows the id set");

    let at: DateTime<FixedOffset> = "2024-05-01T12:00:00+02:00".parse().unwrap();
    let set = MetaBuilder::new::<Order>(Action::Update)
        .txid("900")
        .id(42)
        .source("0b3c6d0e-5a8f-4f27-9c57-3f0d2f3c6a11")
        .captured_at(at)
        .build();
    assert_eq!(
        set,
        Meta {
            id: 42,
            source: Some("0b3c6d0e-5a8f-4f27-9c57-3f0d2f3c6a11".to_owned()),
            schema: "shop".to_owned(),
            table: "orders".to_owned(),
            action: Action::Update,
            captured_at: at,
            txid: "900".to_owned(),
        }
    );
}

#[tokio::test]
async fn handlers_can_be_called_with_built_events() {
    let event = |total| Insert {
        new: Order { id: 3, total },
        meta: MetaBuilder::new::<Order>(Action::Insert).id(7).build(),
    };
    assert_eq!(refuse_negative_totals(event(10)).await, Ok(()));
    assert_eq!(
        refuse_negative_totals(event(-1)).await,
        Err("event 7 of shop.orders: order 3 has a negative total".to_owned())
    );
}

/// `Order`'s table, with dawdle's triggers on it.
async fn orders(db: &TestDb) -> tokio_postgres::Client {
    let mut client = db.connect().await.unwrap();
    let table = "CREATE SCHEMA shop; \
                 CREATE TABLE shop.orders (id bigint PRIMARY KEY, total bigint NOT NULL)";
    client.batch_execute(table).await.unwrap();
    let up = dawdle::sql::up(&[Order::TABLE]).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    client
}

#[tokio::test]
async fn waits_until_the_watcher_has_drained_the_events() {
    let db = TestDb::new().await.unwrap();
    let client = orders(&db).await;
    let fifty = "INSERT INTO shop.orders SELECT i, i FROM generate_series(1, 50) i";
    client.batch_execute(fifty).await.unwrap();

    let timeout = Duration::from_millis(200);
    match wait_until_drained(&client, timeout).await {
        Err(TestingError::NotDrained { left, timeout: t }) => {
            assert_eq!((left, t), (50, timeout), "no watcher runs yet");
        }
        other => panic!("drained without a watcher: {other:?}"),
    }

    let queue = MemoryQueue::new();
    let handle = Watcher::builder(db.config().clone(), queue.clone())
        .build()
        .start();
    wait_until_drained(&client, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(queue.waiting() > 0, "the events went to the queue");
    handle.shutdown().await.unwrap();
}
