//! A real PostgreSQL for tests and examples: a fresh database per test, on
//! `DATABASE_URL` when it is set, else on a throwaway cluster started once
//! per process from the installed PostgreSQL binaries.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dawdle::testing::TestingError> {
//! let db = dawdle::testing::TestDb::new().await?;
//! let client = db.connect().await?;
//! client.batch_execute("CREATE TABLE t (id int PRIMARY KEY)").await?;
//! # Ok(()) }
//! ```
//!
//! The throwaway cluster lives in a fresh temporary directory and is stopped
//! and removed when the process exits, however it exits: a shell wrapper
//! holds the cluster and waits on a pipe that closes with the process.
//! Binaries are looked up in `DAWDLE_PG_BIN`, `pg_config --bindir`,
//! `/usr/lib/postgresql/*/bin` and `PATH`. As root, the cluster runs as the
//! `postgres` user (`initdb` refuses root).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::process::{Child, Command};
use tokio::sync::OnceCell;
use tokio_postgres::{Client, Config, NoTls};

use crate::queue::{
    BoxFuture, OutgoingMessage, Queue, QueueError, Receipt, ReceivedMessage, SendOutcome,
};

/// Starting the server or creating a database failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestingError {
    /// The PostgreSQL server could not be reached or started.
    #[error("PostgreSQL for tests: {0}")]
    Server(String),
    /// A query failed.
    #[error("PostgreSQL for tests: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

fn server_error(message: impl std::fmt::Display) -> TestingError {
    TestingError::Server(message.to_string())
}

/// The server every test database is created on.
#[derive(Debug)]
struct Server {
    admin: Config,
    /// Held for the process's life: the cluster stops when the process exits.
    _cluster: Option<Cluster>,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();

async fn server() -> Result<&'static Server, TestingError> {
    SERVER
        .get_or_try_init(|| async {
            match std::env::var("DATABASE_URL") {
                Ok(url) => {
                    let admin: Config = url
                        .parse()
                        .map_err(|e| server_error(format_args!("DATABASE_URL {url:?}: {e}")))?;
                    Ok(Server {
                        admin,
                        _cluster: None,
                    })
                }
                Err(_) => {
                    let cluster = Cluster::start(false).await?;
                    Ok(Server {
                        admin: cluster.admin().clone(),
                        _cluster: Some(cluster),
                    })
                }
            }
        })
        .await
}

/// A database created for one test, dropped when this is dropped (kept, and
/// named on stderr, when the test is panicking).
#[derive(Debug)]
pub struct TestDb {
    name: String,
    config: Config,
    admin: Config,
}

impl TestDb {
    /// Creates a fresh, empty database.
    pub async fn new() -> Result<TestDb, TestingError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let server = server().await?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "dawdle_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect(&server.admin).await?;
        admin
            .batch_execute(&format!(
                "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
            ))
            .await?;
        let mut config = server.admin.clone();
        config.dbname(&name);
        Ok(TestDb {
            name,
            config,
            admin: server.admin.clone(),
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection settings for the database.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A `postgres://` URL of the database, for child processes.
    pub fn url(&self) -> String {
        let c = &self.config;
        let host = match c.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => {
                format!(
                    "%2F{}",
                    p.display()
                        .to_string()
                        .trim_start_matches('/')
                        .replace('/', "%2F")
                )
            }
            None => "localhost".to_owned(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        let user = c.get_user().unwrap_or("postgres");
        let password = c
            .get_password()
            .map(|p| format!(":{}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        format!("postgres://{user}{password}@{host}:{port}/{}", self.name)
    }

    /// `pg_dump --schema-only` of the database, without pg_dump's random
    /// `\restrict` key lines, so that two dumps of the same schema compare
    /// equal. Uses the `pg_dump` on `PATH`.
    pub fn dump_schema(&self) -> Result<String, TestingError> {
        let out = std::process::Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", "--dbname", &self.url()])
            .output()
            .map_err(|e| server_error(format_args!("cannot run pg_dump: {e}")))?;
        if !out.status.success() {
            return Err(server_error(String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// A new connection, driven on the current runtime.
    pub async fn connect(&self) -> Result<Client, TestingError> {
        connect(&self.config).await
    }

    /// A deadpool pool on the database.
    pub fn pool(&self) -> deadpool_postgres::Pool {
        let manager = deadpool_postgres::Manager::new(self.config.clone(), NoTls);
        deadpool_postgres::Pool::builder(manager)
            .max_size(16)
            .build()
            .expect("a pool without a runtime-specific timeout always builds")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "dawdle::testing: kept database {} of the failed test",
                self.name
            );
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside a runtime that may be single-threaded: use a thread
        // with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = connect(&admin).await.ok()?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("dawdle::testing: could not drop database {}", self.name);
        }
    }
}

async fn connect(config: &Config) -> Result<Client, TestingError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // Errors surface on the client's next query.
        let _ = connection.await;
    });
    Ok(client)
}

fn bin_dir() -> Result<PathBuf, TestingError> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("DAWDLE_PG_BIN").map(PathBuf::from) {
        return if has_initdb(&dir) {
            Ok(dir)
        } else {
            Err(server_error(format_args!(
                "DAWDLE_PG_BIN={} has no initdb",
                dir.display()
            )))
        };
    }
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
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
            server_error(
                "DATABASE_URL is unset and no PostgreSQL binaries (initdb) were found; \
                 install PostgreSQL or set DATABASE_URL or DAWDLE_PG_BIN",
            )
        })
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, TestingError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(server_error)?;
    Ok(listener.local_addr().map_err(server_error)?.port())
}

/// A blocking `sh -c`, wrapped in `runuser -u postgres` when we are root.
fn shell(script: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }
}

/// A throwaway PostgreSQL cluster of its own, from the installed binaries, in
/// a fresh temporary directory. It stops, and its directory goes, on
/// [`Cluster::stop`] or when the process exits, however it exits: a shell
/// wrapper holds the server and waits on a pipe that closes with us.
#[derive(Debug)]
pub struct Cluster {
    admin: Config,
    wrapper: Child,
}

impl Cluster {
    /// Starts a cluster. `durable`: `fsync`, `synchronous_commit` and
    /// `full_page_writes` on, as in production (benchmarks of commit cost);
    /// otherwise off, which is faster for tests.
    pub async fn start(durable: bool) -> Result<Cluster, TestingError> {
        start_cluster(durable).await
    }

    /// Connection settings of the `postgres` database, as superuser `postgres`.
    pub fn admin(&self) -> &Config {
        &self.admin
    }

    /// Stops the cluster and waits until its directory is gone.
    pub async fn stop(mut self) {
        drop(self.wrapper.stdin.take());
        let _ = tokio::task::spawn_blocking(move || self.wrapper.wait()).await;
    }
}

async fn start_cluster(durable: bool) -> Result<Cluster, TestingError> {
    let bin = bin_dir()?;
    let as_postgres = is_root();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("dawdle-pg-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&dir)
        .map_err(|e| server_error(format_args!("cannot create {}: {e}", dir.display())))?;
    if as_postgres {
        let status = std::process::Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(server_error)?;
        if !status.success() {
            return Err(server_error(format_args!(
                "chown postgres {} failed",
                dir.display()
            )));
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
    let status = tokio::task::spawn_blocking(move || shell(&init, as_postgres).status())
        .await
        .map_err(server_error)?
        .map_err(server_error)?;
    if !status.success() {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        return Err(server_error(format_args!("initdb failed:\n{log}")));
    }
    let port = free_port()?;
    // The wrapper stops the server and removes the directory when its stdin
    // closes, which happens when this process exits, however it exits.
    let durability = if durable { "on" } else { "off" };
    let run = format!(
        "{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync={durability} \
         -c synchronous_commit={durability} -c full_page_writes={durability} -c max_connections=300 \
         > {dir}/server.log 2>&1 & pid=$!; read _ignored; kill -INT $pid; wait $pid; rm -rf {dir}",
        postgres = q(&bin.join("postgres")),
        data = q(&data),
        dir = q(&dir),
    );
    let wrapper = shell(&run, as_postgres)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(server_error)?;
    let mut admin = Config::new();
    admin
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match connect(&admin).await {
            Ok(client) if client.simple_query("SELECT 1").await.is_ok() => break,
            _ if Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(server_error(format_args!(
                    "the throwaway cluster did not start:\n{log}"
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(Cluster { admin, wrapper })
}

#[cfg(feature = "sqs")]
/// `DAWDLE_MOTO_SERVER`, else the venv `scripts/test` makes, else `PATH`.
fn moto_server() -> String {
    if let Ok(path) = std::env::var("DAWDLE_MOTO_SERVER") {
        return path;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/moto-venv/bin/moto_server");
    if venv.is_file() {
        return venv.display().to_string();
    }
    "moto_server".to_owned()
}

#[cfg(feature = "sqs")]
/// An SQS-compatible server for tests: moto's `moto_server`, started once
/// per process on a free loopback port and stopped when the process exits.
///
/// `moto_server` is looked up in `DAWDLE_MOTO_SERVER`, then in
/// `target/moto-venv` (where `scripts/test` installs it from PyPI), then `PATH`.
#[derive(Debug)]
pub struct SqsServer {
    endpoint: String,
    /// moto's own process, for [`SqsServer::pause`].
    pid: u32,
    _server: Child,
}

#[cfg(feature = "sqs")]
static SQS_SERVER: OnceCell<SqsServer> = OnceCell::const_new();

#[cfg(feature = "sqs")]
impl SqsServer {
    /// The shared server, started on first use.
    pub async fn get() -> Result<&'static SqsServer, TestingError> {
        SQS_SERVER.get_or_try_init(Self::start).await
    }

    /// Starts a server of its own on `port` (0: a free one), for tests that
    /// stop and restart it; it stops when dropped.
    pub async fn start_on(port: u16) -> Result<SqsServer, TestingError> {
        let port = if port == 0 { free_port()? } else { port };
        let binary = moto_server();
        let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        // Same trick as the cluster: the server goes when our stdin pipe
        // closes (resumed first, should it be paused).
        let script = format!(
            "{} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; echo $pid; read _ignored; \
             kill -CONT $pid; kill $pid",
            q(&binary)
        );
        let mut child = shell(&script, false)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(server_error)?;
        let mut pid = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(
                child.stdout.take().ok_or_else(|| server_error("no pipe"))?,
            ),
            &mut pid,
        )
        .map_err(server_error)?;
        let pid = pid
            .trim()
            .parse()
            .map_err(|e| server_error(format_args!("moto's pid {pid:?}: {e}")))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err(server_error(format_args!(
                    "{binary} did not start on port {port}; install moto (pip install 'moto[server]') \
                     or set DAWDLE_MOTO_SERVER, as scripts/test does"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(SqsServer {
            endpoint,
            pid,
            _server: child,
        })
    }

    /// Freezes the server (SIGSTOP), as a hung endpoint: connections are
    /// still accepted, but no request is answered until [`SqsServer::resume`].
    /// Only for a server of one's own ([`SqsServer::start_on`]): other tests
    /// share [`SqsServer::get`]'s.
    pub fn pause(&self) -> Result<(), TestingError> {
        self.signal("-STOP")
    }

    /// Lets a paused server answer again (SIGCONT).
    pub fn resume(&self) -> Result<(), TestingError> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<(), TestingError> {
        let status = Command::new("kill")
            .args([signal, &self.pid.to_string()])
            .status()
            .map_err(server_error)?;
        if status.success() {
            Ok(())
        } else {
            Err(server_error(format_args!(
                "kill {signal} {} failed",
                self.pid
            )))
        }
    }

    async fn start() -> Result<SqsServer, TestingError> {
        Self::start_on(0).await
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:4566`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client for `endpoint` with dummy credentials.
    pub async fn client_for(endpoint: &str) -> aws_sdk_sqs::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .load()
            .await;
        aws_sdk_sqs::Client::new(&config)
    }

    /// A client for this server.
    pub async fn client(&self) -> aws_sdk_sqs::Client {
        Self::client_for(&self.endpoint).await
    }

    /// Creates a queue with a unique name (FIFO when `fifo`), with a
    /// dead-letter queue after `max_receives`, and returns its URL.
    pub async fn create_queue(
        &self,
        prefix: &str,
        fifo: bool,
        max_receives: Option<u32>,
    ) -> Result<String, TestingError> {
        use aws_sdk_sqs::types::QueueAttributeName;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let client = self.client().await;
        let suffix = if fifo { ".fifo" } else { "" };
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let create = |name: String| {
            let mut request = client.create_queue().queue_name(name);
            if fifo {
                request = request.attributes(QueueAttributeName::FifoQueue, "true");
            }
            request
        };
        let url = create(format!("{name}{suffix}"))
            .send()
            .await
            .map_err(|e| server_error(aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url
            .ok_or_else(|| server_error("CreateQueue returned no URL"))?;
        if let Some(max) = max_receives {
            let dlq = create(format!("{name}-dlq{suffix}"))
                .send()
                .await
                .map_err(|e| server_error(aws_sdk_sqs::error::DisplayErrorContext(e)))?
                .queue_url
                .ok_or_else(|| server_error("CreateQueue returned no URL"))?;
            let arn = client
                .get_queue_attributes()
                .queue_url(&dlq)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| server_error(aws_sdk_sqs::error::DisplayErrorContext(e)))?
                .attributes
                .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
                .ok_or_else(|| server_error("no QueueArn"))?;
            client
                .set_queue_attributes()
                .queue_url(&url)
                .attributes(
                    QueueAttributeName::RedrivePolicy,
                    format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"{max}"}}"#),
                )
                .send()
                .await
                .map_err(|e| server_error(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
        Ok(url)
    }
}

/// A [`Queue`] that counts the calls made to the queue it
/// wraps (on SQS, each is one request), and can make every delete call slow.
///
/// ```
/// # async fn demo() {
/// use dawdle::testing::CountingQueue;
/// let queue = CountingQueue::new(dawdle::MemoryQueue::new());
/// let calls = queue.calls();
/// // ... run a Runtime on `queue.clone()` ...
/// assert_eq!(calls.deletes(), 0);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CountingQueue<Q> {
    inner: Q,
    calls: Arc<QueueCalls>,
    delete_delay: Duration,
}

/// What a [`CountingQueue`] counted so far.
#[derive(Debug, Default)]
pub struct QueueCalls {
    sends: AtomicU64,
    receives: AtomicU64,
    deletes: AtomicU64,
    deleted: AtomicU64,
}

impl QueueCalls {
    /// Send calls (SendMessageBatch on SQS).
    pub fn sends(&self) -> u64 {
        self.sends.load(Ordering::SeqCst)
    }

    /// Receive calls (ReceiveMessage on SQS).
    pub fn receives(&self) -> u64 {
        self.receives.load(Ordering::SeqCst)
    }

    /// Delete calls (DeleteMessageBatch on SQS).
    pub fn deletes(&self) -> u64 {
        self.deletes.load(Ordering::SeqCst)
    }

    /// Receipts those delete calls carried.
    pub fn deleted(&self) -> u64 {
        self.deleted.load(Ordering::SeqCst)
    }
}

impl<Q: Queue> CountingQueue<Q> {
    /// Counts the calls made to `inner`.
    pub fn new(inner: Q) -> CountingQueue<Q> {
        CountingQueue {
            inner,
            calls: Arc::default(),
            delete_delay: Duration::ZERO,
        }
    }

    /// Makes every delete call wait `delay` first, as a slow queue would.
    pub fn delete_delay(mut self, delay: Duration) -> CountingQueue<Q> {
        self.delete_delay = delay;
        self
    }

    /// The counts, shared with every clone of this queue.
    pub fn calls(&self) -> Arc<QueueCalls> {
        self.calls.clone()
    }
}

impl<Q: Queue> Queue for CountingQueue<Q> {
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }

    fn is_fifo(&self) -> bool {
        self.inner.is_fifo()
    }

    fn send<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        self.calls.sends.fetch_add(1, Ordering::SeqCst);
        self.inner.send(messages)
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, QueueError>> {
        self.calls.receives.fetch_add(1, Ordering::SeqCst);
        self.inner.receive(max, wait, visibility)
    }

    fn delete<'a>(&'a self, receipts: &'a [Receipt]) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delete_delay).await;
            self.calls.deletes.fetch_add(1, Ordering::SeqCst);
            self.calls
                .deleted
                .fetch_add(receipts.len() as u64, Ordering::SeqCst);
            self.inner.delete(receipts).await
        })
    }

    fn change_visibility<'a>(
        &'a self,
        receipt: &'a Receipt,
        visibility: Duration,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.change_visibility(receipt, visibility)
    }

    fn dead_letter<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.dead_letter(message, reason)
    }
}
