//! A throwaway PostgreSQL cluster from the installed binaries.
//!
//! Binaries are looked up in `DAWDLE_PG_BIN`, `pg_config --bindir`,
//! `/usr/lib/postgresql/*/bin` (the newest) and `PATH`. As root, the
//! cluster runs as the `postgres` user (`initdb` refuses root).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_postgres::config::SslMode;
use tokio_postgres::Config;

use crate::process::{free_port, is_root, quote, shell};
use crate::Error;

/// A PostgreSQL cluster of its own, in a fresh temporary directory. It
/// stops, and its directory goes, on [`Cluster::stop`] or when the process
/// exits, however it exits: a shell wrapper holds the server and waits on a
/// pipe that closes with us.
#[derive(Debug)]
pub struct Cluster {
    admin: Config,
    port: u16,
    dir: PathBuf,
    tls: bool,
    wrapper: Child,
}

/// Settings of a [`Cluster`] to start: [`Cluster::builder`].
#[derive(Debug, Clone, Default)]
pub struct ClusterBuilder {
    durable: bool,
    tls: Option<(String, String)>,
    hba: Option<String>,
    logical: bool,
}

impl ClusterBuilder {
    /// `fsync`, `synchronous_commit` and `full_page_writes` on, as in
    /// production (benchmarks of commit cost); otherwise off (the default),
    /// which is faster for tests.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Turns TLS on (`ssl = on`) with this certificate (chain) and private
    /// key, both PEM. [`Cluster::admin`] and [`Cluster::url`] then connect
    /// with `sslmode=require`.
    pub fn ssl(mut self, certificate_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        self.tls = Some((certificate_pem.into(), key_pem.into()));
        self
    }

    /// `pg_hba.conf`, instead of initdb's (which trusts every local
    /// connection). It must let `postgres` connect to `postgres` from
    /// 127.0.0.1, over TLS if nothing else, for [`Cluster::admin`].
    pub fn hba(mut self, hba: impl Into<String>) -> Self {
        self.hba = Some(hba.into());
        self
    }

    /// `wal_level = logical`, with room for replication slots and WAL
    /// senders, so that a database of the cluster can publish to a
    /// subscription in another (logical replication); otherwise PostgreSQL's
    /// default (`replica`).
    pub fn logical(mut self, logical: bool) -> Self {
        self.logical = logical;
        self
    }

    /// Starts the cluster.
    pub async fn start(self) -> Result<Cluster, Error> {
        let bin = bin_dir()?;
        let as_postgres = is_root();
        let dir = new_dir(as_postgres)?;
        let prepared = match init(&bin, &dir, as_postgres).await {
            Ok(()) => self.configure(&dir, as_postgres),
            Err(e) => Err(e),
        };
        if let Err(e) = prepared {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let port = free_port()?;
        let durability = if self.durable { "on" } else { "off" };
        let q = |p: &Path| quote(&p.display().to_string());
        let ssl = if self.tls.is_some() {
            format!(
                "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                q(&dir.join(CERTIFICATE)),
                q(&dir.join(KEY))
            )
        } else {
            String::new()
        };
        let logical = if self.logical {
            "-c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 \
             -c max_logical_replication_workers=4"
        } else {
            ""
        };
        // The wrapper stops the server and removes the directory when its
        // stdin closes, which happens when this process exits, however it
        // exits. It stops the server that `postmaster.pid` names, which is
        // the one it started unless a test crashed and restarted it
        // ([`Cluster::crash`]), and waits until it is gone (30 s at most).
        let run = format!(
            "{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync={durability} \
             -c synchronous_commit={durability} -c full_page_writes={durability} -c max_connections=300 {ssl} {logical} \
             > {dir}/server.log 2>&1 & read _ignored; \
             kill -INT $(head -n 1 {data}/postmaster.pid 2>/dev/null) 2>/dev/null; \
             n=0; while [ -e {data}/postmaster.pid ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done; \
             wait; rm -rf {dir}",
            postgres = q(&bin.join("postgres")),
            data = q(&dir.join("data")),
            dir = q(&dir),
        );
        let wrapper = shell(&run, as_postgres)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // Out of our process group, so that a Ctrl-C meant for us does
            // not kill the wrapper before it cleans up.
            .process_group(0)
            .spawn()
            .map_err(Error::io("cannot start postgres"))?;
        let mut admin = Config::new();
        admin
            .host("127.0.0.1")
            .port(port)
            .user("postgres")
            .dbname("postgres");
        if self.tls.is_some() {
            admin.ssl_mode(SslMode::Require);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !accepts_queries(&admin).await {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(Error::failed("the throwaway cluster did not start:", log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Cluster {
            admin,
            port,
            dir,
            tls: self.tls.is_some(),
            wrapper,
        })
    }

    /// Writes the key, the certificate and `pg_hba.conf`, for the server's
    /// user: PostgreSQL refuses a key that others may read.
    fn configure(&self, dir: &Path, as_postgres: bool) -> Result<(), Error> {
        let mut files = Vec::new();
        if let Some((certificate, key)) = &self.tls {
            files.push((dir.join(CERTIFICATE), certificate, 0o644));
            files.push((dir.join(KEY), key, 0o600));
        }
        if let Some(hba) = &self.hba {
            files.push((dir.join("data/pg_hba.conf"), hba, 0o600));
        }
        for (path, contents, mode) in files {
            let what = || format!("cannot write {}", path.display());
            std::fs::write(&path, contents).map_err(Error::io(what()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(Error::io(what()))?;
            if as_postgres {
                give_to_postgres(&path)?;
            }
        }
        Ok(())
    }
}

const CERTIFICATE: &str = "server.crt";
const KEY: &str = "server.key";

impl Cluster {
    /// Starts a cluster. `durable`: `fsync`, `synchronous_commit` and
    /// `full_page_writes` on, as in production (benchmarks of commit cost);
    /// otherwise off, which is faster for tests.
    pub async fn start(durable: bool) -> Result<Cluster, Error> {
        Cluster::builder().durable(durable).start().await
    }

    /// Settings of a cluster to start: TLS, `pg_hba.conf`, durability,
    /// logical replication.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// Connection settings of the `postgres` database, as superuser
    /// `postgres` (with `sslmode=require` when the cluster has TLS).
    pub fn admin(&self) -> &Config {
        &self.admin
    }

    /// The URL of the `postgres` database, as superuser `postgres` (with
    /// `sslmode=require` when the cluster has TLS).
    pub fn url(&self) -> String {
        let tls = if self.tls { "?sslmode=require" } else { "" };
        format!("postgres://postgres@127.0.0.1:{}/postgres{tls}", self.port)
    }

    /// The port it listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory, which goes with it: a place for files a test needs
    /// as long as the cluster runs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Crashes the server (`pg_ctl stop -m immediate`: every process
    /// ends at once, nothing is flushed or checkpointed) and starts it
    /// again, which recovers from the WAL; returns once it accepts
    /// queries again.
    pub async fn crash(&self) -> Result<(), Error> {
        let bin = bin_dir()?;
        let data = self.dir.join("data");
        let q = |p: &Path| quote(&p.display().to_string());
        let script = format!(
            "{pg_ctl} -D {data} -m immediate -w restart -l {dir}/server.log >/dev/null 2>&1",
            pg_ctl = q(&bin.join("pg_ctl")),
            data = q(&data),
            dir = q(&self.dir),
        );
        let status = shell(&script, is_root())
            .stdin(Stdio::null())
            .status()
            .map_err(Error::io("cannot run pg_ctl"))?;
        if !status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            return Err(Error::failed("pg_ctl restart failed:", log));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !accepts_queries(&self.admin).await {
            if Instant::now() > deadline {
                return Err(Error::failed("the crashed cluster did not start again", ""));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the cluster and waits until its directory is gone.
    pub async fn stop(mut self) {
        drop(self.wrapper.stdin.take());
        let _ = tokio::task::spawn_blocking(move || self.wrapper.wait()).await;
    }
}

/// The directory of the installed PostgreSQL binaries.
pub(crate) fn bin_dir() -> Result<PathBuf, Error> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("DAWDLE_PG_BIN").map(PathBuf::from) {
        return if has_initdb(&dir) {
            Ok(dir)
        } else {
            Err(Error::NoInitdb(dir))
        };
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
        .ok_or(Error::NoPostgres)
}

/// A fresh temporary directory, the `postgres` user's when `as_postgres`.
fn new_dir(as_postgres: bool) -> Result<PathBuf, Error> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("dawdle-pg-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&dir).map_err(Error::io(format!("cannot create {}", dir.display())))?;
    if as_postgres {
        if let Err(e) = give_to_postgres(&dir) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    }
    Ok(dir)
}

/// `chown postgres:postgres path`.
fn give_to_postgres(path: &Path) -> Result<(), Error> {
    let chown = format!("chown postgres:postgres {}", path.display());
    let out = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .output()
        .map_err(Error::io(&chown))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::failed(format!("{chown} failed:"), stderr));
    }
    Ok(())
}

async fn init(bin: &Path, dir: &Path, as_postgres: bool) -> Result<(), Error> {
    let q = |p: &Path| quote(&p.display().to_string());
    let log = dir.join("initdb.log");
    let script = format!(
        "{} -D {} -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync > {} 2>&1",
        q(&bin.join("initdb")),
        q(&dir.join("data")),
        q(&log)
    );
    let status = tokio::task::spawn_blocking(move || shell(&script, as_postgres).status())
        .await
        .map_err(|e| Error::io("initdb")(e.into()))?
        .map_err(Error::io("cannot run initdb"))?;
    if !status.success() {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(Error::failed("initdb failed:", log));
    }
    Ok(())
}

async fn accepts_queries(admin: &Config) -> bool {
    let Ok((client, connection)) = dawdle::Database::from(admin).connect().await else {
        return false;
    };
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.is_ok()
}
