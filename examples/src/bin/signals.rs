//! A delayed signal and a backfill: `cargo run -p dawdle-examples --bin signals`.
//!
//! Three users exist before dawdle watches them; a backfill sends each as a
//! snapshot (the `Insert` handler is not called for them). A reminder is
//! signalled in the transaction that adds a fourth user, to be delivered two
//! seconds later; another, in a transaction that rolls back, never is.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dawdle::signal::SignalBuilder;
use dawdle::{Insert, Runtime, Signaled, Snapshot};
use dawdle_examples::User;
use serde::{Deserialize, Serialize};

/// Events handled so far, so that the example knows when to stop.
static HANDLED: AtomicUsize = AtomicUsize::new(0);

/// The application's own event.
#[derive(Debug, Serialize, Deserialize, dawdle::Signal)]
#[dawdle(name = "example.reminder")]
struct Reminder {
    user: String,
}

#[dawdle::handler]
async fn existed(event: Snapshot<User>) {
    println!("snapshot: {} was there before dawdle", event.row.name);
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

#[dawdle::handler]
async fn joined(event: Insert<User>) {
    println!("insert:   {} joined", event.new.name);
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

#[dawdle::handler]
async fn remind(reminder: Signaled<Reminder>) {
    let late = chrono::Utc::now().signed_duration_since(reminder.deliver_at);
    let waited = reminder
        .deliver_at
        .signed_duration_since(reminder.meta.captured_at);
    println!(
        "signal:   remind {} (sent {:.0} s before it was due, handled {} ms after)",
        reminder.payload.user,
        waited.num_milliseconds() as f64 / 1000.0,
        late.num_milliseconds()
    );
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let (db, mut client) = dawdle_examples::example_database().await?;
    // Rows written as if before dawdle was installed: in a replica session,
    // where the capture triggers do not fire.
    client
        .batch_execute(
            "SET session_replication_role = replica;
             INSERT INTO users (name) VALUES ('Ada'), ('Grace'), ('Edsger');
             SET session_replication_role = DEFAULT;",
        )
        .await?;

    let handle = Runtime::builder()
        .database(db.config().clone())
        .pool(db.pool())
        .watch()
        .listen()
        .build()?
        .start();

    // A new user, and a reminder for two seconds later: both or neither.
    let tx = client.transaction().await?;
    tx.execute("INSERT INTO users (name) VALUES ('Barbara')", &[])
        .await?;
    SignalBuilder::new(&Reminder {
        user: "Barbara".to_owned(),
    })
    .delay(Duration::from_secs(2))
    .send(&tx)
    .await?;
    tx.commit().await?;
    let tx = client.transaction().await?;
    dawdle::signal(
        &tx,
        &Reminder {
            user: "nobody".to_owned(),
        },
    )
    .await?;
    tx.rollback().await?;

    // The existing rows, as snapshots.
    let done = dawdle::backfill::Backfill::new("public.users")
        .batch(2)
        .run(&client, |p| {
            eprintln!("backfill: {} rows read ({:.0} rows/s)", p.rows_read, p.rate)
        })
        .await?;
    println!("backfill: {} rows of public.users sent", done.rows_read);

    // 4 snapshots (the new user is there too), 1 insert, 1 reminder.
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
