//! What the tests of the `dawdle` command share: a database with a watched
//! table, moto, and the command itself.

#![allow(dead_code)] // each test file uses its own part

use std::process::{Child, Command, Output};
use std::time::Duration;

use dawdle::Watched;
use dawdle_test::{SqsServer, TestDb};
use tokio::time::Instant;

/// The table the tests write to.
#[derive(Debug, Watched)]
#[dawdle(table = "items")]
pub struct Item {
    #[dawdle(primary_key)]
    pub id: i64,
    pub name: String,
}

/// A fresh database with `items` watched, and a connection to it.
pub async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();
    let sql = dawdle::sql::up(&[Item::TABLE]).unwrap();
    dawdle::sql::apply(&mut client, &sql).await.unwrap();
    (db, client)
}

/// The `dawdle` command, pointed at `server` with dummy credentials, with
/// none of the caller's `DAWDLE_*` settings.
pub fn dawdle(server: Option<&SqsServer>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dawdle"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DAWDLE_") {
            command.env_remove(name);
        }
    }
    command
        .env_remove("DATABASE_URL")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn");
    if let Some(server) = server {
        command.env("DAWDLE_SQS_ENDPOINT", server.endpoint());
    }
    command
}

/// Runs `command` to its end; stdout as text.
pub fn run(command: &mut Command) -> (Output, String) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

/// Runs `command`, which must succeed; its stdout.
pub fn succeed(command: &mut Command) -> String {
    let (output, stdout) = run(command);
    assert!(
        output.status.success(),
        "{command:?}: {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A running `dawdle watch`, killed if the test fails before it stops it.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Waits until `check` holds, for at most a minute.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
