//! The whole pipeline in one process: `cargo run -p dawdle-examples --bin quickstart`.
//!
//! A real PostgreSQL (`DATABASE_URL`, in a database of its own that is
//! dropped afterwards, or a throwaway cluster from the installed binaries),
//! dawdle's triggers, the watcher and the listener on the default queue (a
//! `PgQueue` in the same database: durable, no other service to run), and
//! four handlers that print what they receive.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dawdle::{Change, Delete, Insert, Runtime, Update};
use dawdle_examples::{Order, User};

/// Events handled so far, so that the example knows when to stop.
static HANDLED: AtomicUsize = AtomicUsize::new(0);

#[dawdle::handler]
async fn welcome(event: Insert<User>) -> Result<(), std::io::Error> {
    println!(
        "welcome:  {} joined (event {})",
        event.new.name, event.meta.id
    );
    HANDLED.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[dawdle::handler]
async fn renamed(event: Update<User>) {
    println!(
        "renamed:  {:?} -> {:?}, settings {}",
        event.old.name, event.new.name, event.new.settings
    );
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

#[dawdle::handler]
async fn farewell(event: Delete<User>) {
    println!(
        "farewell: {} left (event {})",
        event.old.name, event.meta.id
    );
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

#[dawdle::handler]
async fn audit(event: Change<Order>) -> anyhow_like::Result {
    match &event {
        Change::Insert(e) => println!(
            "audit:    order {} placed, {} {:?}",
            e.new.id, e.new.total, e.new.status
        ),
        Change::Update(e) => println!(
            "audit:    order {} {:?} -> {:?}",
            e.new.id, e.old.status, e.new.status
        ),
        Change::Delete(e) => println!("audit:    order {} deleted", e.old.id),
        Change::Snapshot(e) => println!("audit:    order {} existed before", e.row.id),
    }
    HANDLED.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Any displayable error works as a handler's error type.
mod anyhow_like {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // dawdle logs through `tracing`; RUST_LOG=dawdle=debug shows every batch.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let (db, client) = dawdle_examples::example_database().await?;

    let runtime = Runtime::builder()
        .database(db.config().clone())
        .pool(db.pool())
        // No .queue(..): a PgQueue on the database, in dawdle.queue_messages.
        .watch()
        .listen()
        .build()?;
    let handle = runtime.start();

    client
        .batch_execute(
            "INSERT INTO users (name) VALUES ('Ada'), ('Grace');
             UPDATE users SET name = 'Ada Lovelace', settings = '{\"theme\": \"dark\"}' WHERE name = 'Ada';
             UPDATE users SET password = 'hunter2';  -- not a watched column: no event
             INSERT INTO shop.orders (user_id, total) SELECT id, 12.50 FROM users WHERE name = 'Grace';
             UPDATE shop.orders SET status = 'paid';
             DELETE FROM users WHERE name = 'Ada Lovelace';",
        )
        .await?;

    // 2 inserts, 1 rename and 1 delete of users; 1 insert and 1 update of an order.
    let expected = 6;
    tokio::time::timeout(Duration::from_secs(30), async {
        while HANDLED.load(Ordering::SeqCst) < expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .map_err(|_| "the handlers did not receive every event within 30 s")?;

    handle.shutdown().await?;
    println!("handled {expected} events; shut down cleanly");
    Ok(())
}
