//! Two listener processes sharing one PgQueue:
//! `cargo run -p dawdle-examples --bin pg_listeners`.
//!
//! Without arguments it runs the demo: a fresh example database (as the
//! quickstart makes it), the watcher in this process, and two `listen`
//! child processes that claim messages from the same `PgQueue`, each
//! message by one of them at a time. Every handled event is printed and
//! logged in the table `handled_log`, so that the demo can show which
//! process handled what.
//!
//! `pg_listeners listen` runs one listener on its own, configured by
//! `DATABASE_URL`, and, for dawdle's own tests, `DAWDLE_PG_FIFO=0` (a
//! standard queue rather than a FIFO one), `DAWDLE_PG_MAX_RECEIVES` (the
//! PgQueue's `max_receives`, default 5), `DAWDLE_CONCURRENCY`,
//! `DAWDLE_VISIBILITY_MS` and `DAWDLE_HANDLER_DELAY_MS` (handlers take up
//! to that long, so that a change handled out of turn would show).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use dawdle::{Change, Database, PgQueue, Runtime};
use dawdle_examples::User;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The pool the handler logs through.
static LOG: OnceLock<deadpool_postgres::Pool> = OnceLock::new();

#[dawdle::handler]
async fn log_change(event: Change<User>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let user = event
        .new()
        .or(event.old())
        .ok_or("an event without a row")?;
    let meta = event.meta();
    let action = format!("{:?}", meta.action).to_lowercase();
    let delay = env_or("DAWDLE_HANDLER_DELAY_MS", 0u64);
    if delay > 0 {
        let millis = (meta.id as u64).wrapping_mul(7919) % (delay + 1);
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
    let pool = LOG.get().ok_or("the log's pool is not set")?;
    pool.get()
        .await?
        .execute(
            "INSERT INTO handled_log (event_id, user_id, name, action, pid) VALUES ($1, $2, $3, $4, $5)",
            &[&meta.id, &user.id, &user.name, &action, &(std::process::id() as i32)],
        )
        .await?;
    // The demo reads these lines.
    println!("handled event {} ({action} of {})", meta.id, user.name);
    Ok(())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The queue both sides use: the same database, the same name. FIFO, so
/// that each row's changes are handled in order, whichever process takes
/// them.
fn queue(database: &Database) -> PgQueue {
    PgQueue::builder(database.clone())
        .fifo(std::env::var("DAWDLE_PG_FIFO").map_or(true, |v| v != "0"))
        .max_receives(Some(env_or("DAWDLE_PG_MAX_RECEIVES", 5)))
        .build()
}

/// One listener process: handles until SIGINT or SIGTERM.
async fn listen() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set")?;
    let database = Database::from_url(&url)?;
    let _ = LOG.set(database.pool(4)?);
    let handle = Runtime::builder()
        .database(database.clone())
        .queue(queue(&database))
        .listen()
        .concurrency(env_or("DAWDLE_CONCURRENCY", 16))
        .visibility_timeout(Duration::from_millis(env_or(
            "DAWDLE_VISIBILITY_MS",
            30_000,
        )))
        .retry_backoff(Duration::from_millis(100), Duration::from_secs(2))
        .receive_wait(Duration::from_secs(1))
        .build()?
        .start();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    handle.shutdown().await?;
    Ok(())
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let (db, client) = dawdle_examples::example_database().await?;
    client.batch_execute(dawdle_examples::HANDLED_LOG).await?;

    // The watcher, here: it moves captured changes into the PgQueue.
    let watcher = Runtime::builder()
        .database(db.database().clone())
        .queue(queue(db.database()))
        .watch()
        .build()?
        .start();
    let spawn = || {
        tokio::process::Command::new(std::env::current_exe().expect("own path"))
            .arg("listen")
            .env("DATABASE_URL", db.url())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
    };
    let mut listeners = [spawn()?, spawn()?];
    let (lines, mut received) = tokio::sync::mpsc::unbounded_channel();
    for (i, listener) in listeners.iter_mut().enumerate() {
        let mut out = BufReader::new(listener.stdout.take().ok_or("no stdout")?).lines();
        let lines = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let _ = lines.send((i + 1, line));
            }
        });
    }

    client
        .batch_execute(
            "INSERT INTO users (name) SELECT 'user ' || n FROM generate_series(1, 20) n;
             UPDATE users SET name = name || '!';
             DELETE FROM users WHERE name IN ('user 3!', 'user 7!');",
        )
        .await?;
    let expected = 20 + 20 + 2;
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut handled = 0;
        while let Some((listener, line)) = received.recv().await {
            println!("listener {listener}: {line}");
            handled += 1;
            if handled == expected {
                break;
            }
        }
    })
    .await
    .map_err(|_| "the listeners did not report every event within 60 s")?;

    for listener in listeners {
        if let Some(pid) = listener.id() {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        listener.wait_with_output().await?;
    }
    watcher.shutdown().await?;
    let mut by_process = BTreeMap::new();
    for row in client
        .query("SELECT pid, count(*) FROM handled_log GROUP BY pid", &[])
        .await?
    {
        by_process.insert(row.get::<_, i32>(0), row.get::<_, i64>(1));
    }
    let shares: Vec<String> = by_process.values().map(|n| n.to_string()).collect();
    println!(
        "{expected} events went through one PgQueue to {} listener processes ({} each)",
        by_process.len(),
        shares.join(" and ")
    );
    Ok(())
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
    match std::env::args().nth(1).as_deref() {
        None => demo().await,
        Some("listen") => listen().await,
        Some(other) => Err(format!("unknown mode {other:?}; expected listen").into()),
    }
}
