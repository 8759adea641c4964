//! UPDATE and DELETE: `old` and `new` decode as faithfully as an insert's `new`.

use chrono::{DateTime, Utc};
use dawdle::Watched;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::harness::{assert_same, captured_json, direct, row_type, select_all, Db, TestResult};

row_type! {
    #[dawdle(table = "accounts")]
    struct Accounts {
        #[dawdle(primary_key)]
        id: i32,
        name: String,
        balance: Decimal,
        ratio: f64,
        note: Option<String>,
        settings: Option<Value>,
        tags: Vec<Option<String>>,
        seen_at: Option<DateTime<Utc>>,
    }
}

#[tokio::test]
async fn update_old_and_new_and_delete_old() -> TestResult {
    let db = Db::new(
        "CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, balance numeric NOT NULL, \
         ratio float8 NOT NULL, note text, settings jsonb, tags text[] NOT NULL, seen_at timestamptz, \
         secret text)",
        &[Accounts::TABLE],
    )
    .await?;
    db.client
        .batch_execute(
            r#"SET TimeZone = 'Asia/Kolkata';
               INSERT INTO accounts VALUES
               (1, 'ann', 10.50, 0.1, NULL, '{"theme": "dark"}', '{a,NULL}', '2020-01-01 00:00:00', 'hidden 1'),
               (2, 'bob', 0, -0, 'x', 'null', '{}', NULL, 'hidden 2')"#,
        )
        .await?;
    let select = select_all::<Accounts>();
    let before = direct::<Accounts>(&db.client, &select).await?;
    db.client
        .batch_execute(
            r#"UPDATE accounts SET name = 'änn', balance = -0.000000000000000000000000001, ratio = 'NaN',
                   note = '', settings = NULL, tags = '{NULL,"b c"}', seen_at = '1800-01-01 00:00:00'
               WHERE id = 1;
               UPDATE accounts SET secret = 'changed' WHERE id = 2;"#,
        )
        .await?;
    let after = direct::<Accounts>(&db.client, &select).await?;
    db.client.batch_execute("DELETE FROM accounts").await?;

    let decode = |json: &Value| Accounts::from_json(json).unwrap_or_else(|e| panic!("{e}\n{json}"));
    let (old, new) = (
        captured_json::<Accounts>(&db.client, "update", "old").await?,
        captured_json::<Accounts>(&db.client, "update", "new").await?,
    );
    // Row 2 changed only a column the struct does not name: no event.
    assert_eq!((old.len(), new.len()), (1, 1), "one update event: {new:?}");
    assert_same(&decode(&old[0]), &before[0], &old[0]);
    assert_same(&decode(&new[0]), &after[0], &new[0]);

    let (old, new) = (
        captured_json::<Accounts>(&db.client, "delete", "old").await?,
        captured_json::<Accounts>(&db.client, "delete", "new").await?,
    );
    assert_eq!(old.len(), 2);
    assert!(
        new.iter().all(Value::is_null),
        "a delete has no new row: {new:?}"
    );
    for json in &old {
        let event = decode(json);
        let direct = after
            .iter()
            .find(|row| row.id == event.id)
            .expect("a deleted row");
        assert_same(&event, direct, json);
    }

    let leaked: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM dawdle.events WHERE concat(old, new) LIKE '%hidden%'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(
        leaked, 0,
        "a column the struct does not name never leaves the database"
    );
    Ok(())
}
