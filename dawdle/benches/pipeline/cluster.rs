//! The server of the write-cost section: `DATABASE_URL` when set, else a
//! cluster of our own with durable settings.
//!
//! The tests' throwaway cluster (`dawdle_test::TestDb`) runs with
//! `fsync=off` and `synchronous_commit=off`, which hides the commit cost
//! that NOTIFY's cluster-wide lock serializes; here commits wait for their
//! WAL flush, as in production: `dawdle_test::Cluster::start(true)`.

use std::process::Command;

use dawdle::testing::TestDatabase;
use dawdle_test::Cluster;
use tokio_postgres::{Client, Config, NoTls};

use crate::Result;

#[derive(Debug)]
pub struct Server {
    pub admin: Config,
    cluster: Option<Cluster>,
}

/// A connection as the server's admin, for what concerns the whole server.
async fn connect_admin(admin: &Config) -> Result<Client> {
    let (client, connection) = admin.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Version and durability settings of the server `client` is on.
pub async fn describe(client: &Client) -> Result<String> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_setting('fsync'),
                    current_setting('synchronous_commit'), current_setting('full_page_writes'),
                    current_setting('shared_buffers')",
            &[],
        )
        .await?;
    Ok(format!(
        "PostgreSQL {}, fsync={}, synchronous_commit={}, full_page_writes={}, shared_buffers={}",
        row.get::<_, String>(0),
        row.get::<_, String>(1),
        row.get::<_, String>(2),
        row.get::<_, String>(3),
        row.get::<_, String>(4),
    ))
}

impl Server {
    /// `DATABASE_URL`, or a durable cluster of our own.
    pub async fn durable() -> Result<Server> {
        match std::env::var("DATABASE_URL") {
            Ok(url) => Ok(Server {
                admin: url.parse()?,
                cluster: None,
            }),
            Err(_) => {
                // Logical WAL, for capture from the WAL beside the triggers:
                // every variant runs on the same server.
                let cluster = Cluster::builder()
                    .durable(true)
                    .logical(true)
                    .start()
                    .await?;
                Ok(Server {
                    admin: cluster.admin().clone(),
                    cluster: Some(cluster),
                })
            }
        }
    }

    pub async fn describe(&self) -> Result<String> {
        let text = describe(&connect_admin(&self.admin).await?).await?;
        Ok(match self.cluster {
            Some(_) => format!("{text} (a durable cluster of the bench's own)"),
            None => format!("{text} (DATABASE_URL)"),
        })
    }

    /// A fresh, empty database, dropped with the value.
    pub async fn database(&self) -> Result<TestDatabase> {
        Ok(TestDatabase::on(&self.admin).await?)
    }

    /// A quiet server before a measurement: a checkpoint, so that one
    /// variant does not pay for the last one's WAL, and no autovacuum
    /// worker running (after the inserts of the last one), waiting up to
    /// 30 s for them to finish.
    pub async fn checkpoint(&self) -> Result<()> {
        let client = connect_admin(&self.admin).await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let busy: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
                    &[],
                )
                .await?
                .get(0);
            if busy == 0 || std::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        client.batch_execute("CHECKPOINT").await?;
        Ok(())
    }

    /// Whether the server can capture from the WAL (`wal_level = logical`).
    pub async fn logical(&self) -> Result<bool> {
        let level: String = connect_admin(&self.admin)
            .await?
            .query_one("SHOW wal_level", &[])
            .await?
            .get(0);
        Ok(level == "logical")
    }

    /// Stops our cluster (if any) and waits until its directory is gone.
    pub async fn stop(self) {
        if let Some(cluster) = self.cluster {
            cluster.stop().await;
        }
    }
}

fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces (in parentheses).
    Some(
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// (own user + system, reaped children's user + system) CPU seconds of a process.
pub fn process_cpu(pid: &str) -> Option<(f64, f64)> {
    let fields = stat_fields(pid)?;
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let ticks = clock_ticks();
    Some((
        (field(11)? + field(12)?) / ticks,
        (field(13)? + field(14)?) / ticks,
    ))
}

pub fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}
