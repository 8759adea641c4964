//! The crate-internal hand-off API, on a real PostgreSQL.

use std::time::Duration;

use dawdle_test::TestDb;

use super::*;

async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    let up = crate::sql::up(&[]).unwrap();
    crate::sql::apply(&mut client, &up).await.unwrap();
    (db, client)
}

fn queue(db: &TestDb) -> PgQueue {
    PgQueue::builder(db.config().clone()).build()
}

fn messages(bodies: &[&str]) -> Vec<OutgoingMessage> {
    bodies
        .iter()
        .map(|body| OutgoingMessage {
            body: (*body).to_owned(),
            group_id: None,
            dedup_id: None,
            failure: None,
            delay: std::time::Duration::ZERO,
        })
        .collect()
}

#[tokio::test]
async fn send_in_commits_and_rolls_back_with_the_callers_transaction() {
    let (db, mut client) = database().await;
    let queue = queue(&db);
    let tx = client.transaction().await.unwrap();
    let outcome = queue.send_in_tx(&tx, &messages(&["gone"])).await.unwrap();
    assert_eq!(outcome.accepted, [0]);
    tx.rollback().await.unwrap();
    let tx = client.transaction().await.unwrap();
    queue.send_in_tx(&tx, &messages(&["a", "b"])).await.unwrap();
    let before = queue
        .receive(10, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(before.is_empty(), "not visible before the commit");
    tx.commit().await.unwrap();
    let got = queue
        .receive(10, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["a", "b"]);
}

#[tokio::test]
async fn lives_in_tells_its_own_database_from_another() {
    let (db, client) = database().await;
    let (_other_db, other) = database().await;
    let queue = queue(&db);
    assert!(queue.lives_in_db(&client).await.unwrap());
    assert!(!queue.lives_in_db(&other).await.unwrap());
    let shared: std::sync::Arc<dyn Queue> = std::sync::Arc::new(queue);
    assert!(shared.transactional().is_some());
    let memory: std::sync::Arc<dyn Queue> = std::sync::Arc::new(crate::MemoryQueue::new());
    assert!(memory.transactional().is_none());
}
