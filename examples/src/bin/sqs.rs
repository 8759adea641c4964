//! The watcher and the listener as two processes, through SQS:
//! `cargo run -p dawdle-examples --bin sqs`.
//!
//! Without arguments it runs the demo: it uses `DAWDLE_SQS_ENDPOINT` (or
//! starts moto's SQS server, as the tests do), creates a queue, starts
//! `sqs watch` and `sqs listen` as child processes, writes rows, and waits
//! for the listener to report every event. The two modes also run on
//! their own, configured by `DATABASE_URL`, `DAWDLE_SQS_QUEUE_URL` and
//! `DAWDLE_SQS_ENDPOINT`.

use std::process::{Command, Stdio};
use std::time::Duration;

use dawdle::{Change, Runtime, SqsQueue};
use dawdle_examples::User;
use dawdle_test::SqsServer;
use tokio::io::{AsyncBufReadExt, BufReader};

#[dawdle::handler]
async fn print_change(event: Change<User>) {
    let name = event.new().or(event.old()).map_or("?", |u| u.name.as_str());
    // The demo counts these lines.
    println!(
        "handled event {} ({:?} of {name})",
        event.meta().id,
        event.meta().action
    );
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

async fn side(watch: bool) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("DAWDLE_SQS_ENDPOINT").ok();
    let client = SqsQueue::client_from_env(endpoint.as_deref()).await;
    let queue = SqsQueue::new(client, env("DAWDLE_SQS_QUEUE_URL")?);
    let database = dawdle::Database::from_url(&env("DATABASE_URL")?)?;
    let builder = Runtime::builder().database(database).queue(queue);
    let builder = if watch {
        builder.watch()
    } else {
        builder.listen().receive_wait(Duration::from_secs(1))
    };
    let handle = builder.build()?.start();
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await?;
    Ok(())
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let (db, client) = dawdle_examples::example_database().await?;
    let endpoint = match std::env::var("DAWDLE_SQS_ENDPOINT") {
        Ok(endpoint) => endpoint,
        Err(_) => SqsServer::get().await?.endpoint().to_owned(),
    };
    let sqs = SqsServer::client_for(&endpoint).await;
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("dawdle-demo-{}", std::process::id()))
        .send()
        .await?
        .queue_url
        .ok_or("no queue URL")?;
    println!("queue: {queue_url}");

    let spawn = |mode: &str| {
        tokio::process::Command::new(std::env::current_exe().expect("own path"))
            .arg(mode)
            .env("DATABASE_URL", db.url())
            .env("DAWDLE_SQS_QUEUE_URL", &queue_url)
            .env("DAWDLE_SQS_ENDPOINT", &endpoint)
            .env(
                "AWS_ACCESS_KEY_ID",
                std::env::var("AWS_ACCESS_KEY_ID").unwrap_or("test".into()),
            )
            .env(
                "AWS_SECRET_ACCESS_KEY",
                std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or("test".into()),
            )
            .env(
                "AWS_REGION",
                std::env::var("AWS_REGION").unwrap_or("us-east-1".into()),
            )
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
    };
    let watcher = spawn("watch")?;
    let mut listener = spawn("listen")?;
    let mut lines = BufReader::new(listener.stdout.take().ok_or("no stdout")?).lines();

    client
        .batch_execute(
            "INSERT INTO users (name) VALUES ('Ada'), ('Grace'), ('Edsger');
             UPDATE users SET name = name || '!';
             DELETE FROM users WHERE name = 'Edsger!';",
        )
        .await?;
    let expected = 7;
    let mut handled = 0;
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            println!("listener: {line}");
            handled += 1;
            if handled == expected {
                break;
            }
        }
    })
    .await
    .map_err(|_| "the listener did not report every event within 60 s")?;
    for child in [watcher, listener] {
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        child.wait_with_output().await?;
    }
    println!("{expected} events went through SQS from one process to another");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        None => demo().await,
        Some("watch") => side(true).await,
        Some("listen") => side(false).await,
        Some(other) => Err(format!("unknown mode {other:?}; expected watch or listen").into()),
    }
}
