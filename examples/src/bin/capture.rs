//! Captures changes to the example tables and decodes them back into the
//! models: `cargo run -p dawdle-examples --bin capture`.
//!
//! Uses `DATABASE_URL` when set (in a fresh database it creates and drops),
//! else a throwaway PostgreSQL cluster started from the installed binaries.

use dawdle::Watched;
use dawdle_examples::{Order, User};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The database lives as long as `_db`; it is dropped at the end.
    let (_db, client) = dawdle_examples::example_database().await?;
    println!(
        "installed capture for {} tables",
        dawdle::registry::tables().len()
    );

    client
        .batch_execute(
            "INSERT INTO users (name, location) VALUES ('Ada', point(51.5, -0.12));
             UPDATE users SET password = 'hunter2';              -- no watched column: no event
             UPDATE users SET settings = '{\"theme\": \"dark\"}';
             INSERT INTO shop.orders (user_id, total) SELECT id, 12.50 FROM users;
             UPDATE shop.orders SET status = 'paid';
             DELETE FROM shop.orders;                            -- deletes are not captured for orders
             DELETE FROM users;",
        )
        .await?;

    let rows = client
        .query(
            "SELECT id, schema_name, table_name, action, old, new FROM dawdle.events ORDER BY id",
            &[],
        )
        .await?;
    for row in rows {
        let (id, schema, table, action): (i64, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let old: Option<serde_json::Value> = row.get(4);
        let new: Option<serde_json::Value> = row.get(5);
        println!("event {id}: {action} on {schema}.{table}");
        for (label, json) in [("old", old), ("new", new)] {
            let Some(json) = json else { continue };
            match table.as_str() {
                "users" => println!("  {label}: {:?}", User::from_json(&json)?),
                _ => println!("  {label}: {:?}", Order::from_json(&json)?),
            }
        }
    }
    Ok(())
}
