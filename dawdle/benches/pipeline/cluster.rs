//! The server of the write-cost section: `DATABASE_URL` when set, else a
//! cluster of our own with durable settings.
//!
//! `dawdle::testing`'s throwaway cluster runs with `fsync=off` and
//! `synchronous_commit=off`, which hides the commit cost that NOTIFY's
//! cluster-wide lock serializes; here commits wait for their WAL flush, as
//! in production. Started the way `dawdle::testing` starts its own (initdb
//! as `postgres` when we are root, in a fresh temporary directory, stopped
//! and removed when our stdin pipe to the wrapper closes).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, Config, NoTls};

use crate::Result;

#[derive(Debug)]
pub struct Server {
    pub admin: Config,
    cluster: Option<Child>,
}

/// A database created for one measurement.
#[derive(Debug)]
pub struct Db {
    name: String,
    pub config: Config,
    admin: Config,
}

impl Db {
    pub async fn connect(&self) -> Result<Client> {
        connect(&self.config).await
    }

    /// Drops the database (forcibly: nothing of it is needed any more).
    pub async fn drop(self) -> Result<()> {
        let admin = connect(&self.admin).await?;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

pub async fn connect(config: &Config) -> Result<Client> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
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
            Err(_) => start_cluster().await,
        }
    }

    pub async fn describe(&self) -> Result<String> {
        let client = connect(&self.admin).await?;
        let text = describe(&client).await?;
        Ok(match self.cluster {
            Some(_) => format!("{text} (a durable cluster of the bench's own)"),
            None => format!("{text} (DATABASE_URL)"),
        })
    }

    /// A fresh, empty database.
    pub async fn database(&self) -> Result<Db> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "dawdle_bench_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect(&self.admin).await?;
        admin
            .batch_execute(&format!(
                "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
            ))
            .await?;
        let mut config = self.admin.clone();
        config.dbname(&name);
        Ok(Db {
            name,
            config,
            admin: self.admin.clone(),
        })
    }

    /// A checkpoint, so that one variant does not pay for the last one's WAL.
    pub async fn checkpoint(&self) -> Result<()> {
        let admin = connect(&self.admin).await?;
        admin.batch_execute("CHECKPOINT").await?;
        Ok(())
    }

    /// Stops our cluster (if any) and waits until its directory is gone.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.cluster.take() {
            drop(child.stdin.take());
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
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

fn bin_dir() -> Result<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("DAWDLE_PG_BIN").map(PathBuf::from) {
        if has_initdb(&dir) {
            return Ok(dir);
        }
        return Err(format!("DAWDLE_PG_BIN={} has no initdb", dir.display()).into());
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has_initdb(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| has_initdb(dir))
        .ok_or_else(|| {
            "DATABASE_URL is unset and no PostgreSQL binaries (initdb) were found; \
             install PostgreSQL or set DATABASE_URL or DAWDLE_PG_BIN"
                .into()
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn shell(script: &str, as_postgres: bool) -> Command {
    let mut c = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]);
        c.arg("sh");
        c
    } else {
        Command::new("sh")
    };
    c.args(["-c", script]);
    c
}

async fn start_cluster() -> Result<Server> {
    let bin = bin_dir()?;
    let as_postgres = is_root();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("dawdle-bench-pg-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if as_postgres {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .status()?;
        if !status.success() {
            return Err(format!("chown postgres {} failed", dir.display()).into());
        }
    }
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let data = dir.join("data");
    let log = dir.join("initdb.log");
    let init = format!(
        "{} -D {} -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync > {} 2>&1",
        q(&bin.join("initdb")),
        q(&data),
        q(&log)
    );
    let status = tokio::task::spawn_blocking(move || shell(&init, as_postgres).status()).await??;
    if !status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!("initdb failed:\n{text}").into());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // Durable: every commit waits for its WAL flush. The wrapper stops the
    // server and removes the directory when its stdin closes (in `stop`, or
    // when this process exits, however it exits).
    let run = format!(
        "{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=on \
         -c synchronous_commit=on -c full_page_writes=on -c max_connections=100 \
         > {dir}/server.log 2>&1 & pid=$!; read _ignored; kill -INT $pid; wait $pid; rm -rf {dir}",
        postgres = q(&bin.join("postgres")),
        data = q(&data),
        dir = q(&dir),
    );
    let child = shell(&run, as_postgres)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let mut admin = Config::new();
    admin
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres");
    let server = Server {
        admin,
        cluster: Some(child),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match connect(&server.admin).await {
            Ok(client) if client.simple_query("SELECT 1").await.is_ok() => break,
            _ if Instant::now() > deadline => {
                let text = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                server.stop().await;
                return Err(format!("the durable cluster did not start:\n{text}").into());
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(server)
}
