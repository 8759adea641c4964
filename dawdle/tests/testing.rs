//! The test harness itself: a fresh database per test.

use dawdle::testing::TestDb;

#[tokio::test]
async fn each_test_database_is_fresh_and_dropped() {
    let db = TestDb::new().await.unwrap();
    let client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE t (id int)")
        .await
        .unwrap();
    let other = TestDb::new().await.unwrap();
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
