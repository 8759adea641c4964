//! A fresh database per test, dropped afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use percent_encoding::{percent_encode, utf8_percent_encode, NON_ALPHANUMERIC};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};

use super::TestingError;
use crate::Database;

/// An empty database created for one test, dropped when this is dropped.
///
/// When the test panics the database is kept, and named on stderr, so that
/// what the test left behind can be looked at.
///
/// ```no_run
/// # async fn demo() -> Result<(), dawdle::testing::TestingError> {
/// let db = dawdle::testing::TestDatabase::new().await?;
/// let client = db.connect().await?;
/// client.batch_execute("CREATE TABLE users (id bigint PRIMARY KEY)").await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    database: Database,
    /// Where the database was created from, and is dropped from.
    server: Database,
}

impl TestDatabase {
    /// Creates a database on the server `DATABASE_URL` names, connecting as
    /// its user, who must be allowed to `CREATE DATABASE`. Nothing is
    /// started: without `DATABASE_URL` this is
    /// [`TestingError::DatabaseUrlUnset`]. Its `sslmode` and `sslrootcert`
    /// count, as [`Database::from_url`] reads them.
    pub async fn new() -> Result<TestDatabase, TestingError> {
        let url = std::env::var("DATABASE_URL").map_err(|_| TestingError::DatabaseUrlUnset)?;
        let server = Database::from_url(&url).map_err(TestingError::DatabaseUrlInvalid)?;
        TestDatabase::on(server).await
    }

    /// Creates a database on the server `server` (a
    /// [`tokio_postgres::Config`] or a [`Database`]) connects to, as its
    /// user, connecting the same way.
    pub async fn on(server: impl Into<Database>) -> Result<TestDatabase, TestingError> {
        let server = server.into();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // The clock tells apart the databases of test runs whose process
        // ids repeat on a long-lived server.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "dawdle_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        connect(&server)
            .await?
            .batch_execute(&format!(
                "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
            ))
            .await?;
        let mut database = server.clone();
        database.config_mut().dbname(&name);
        Ok(TestDatabase {
            name,
            database,
            server,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where and how to connect to the database, TLS included, e.g. for
    /// [`RuntimeBuilder::database`](crate::RuntimeBuilder::database).
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// tokio-postgres's settings for the database, without the `sslmode`s
    /// and `sslrootcert` only [`TestDatabase::database`] has.
    pub fn config(&self) -> &Config {
        self.database.config()
    }

    /// A `postgres://` URL of the database, for child processes, with its
    /// `sslmode` and `sslrootcert`.
    pub fn url(&self) -> String {
        database_url(&self.database)
    }

    /// A new connection, driven on the current runtime.
    pub async fn connect(&self) -> Result<Client, TestingError> {
        connect(&self.database).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // On stderr rather than through tracing: the test harness shows it
        // with the failed test's output, whether or not a subscriber is set.
        if std::thread::panicking() {
            eprintln!(
                "dawdle::testing: kept database {} of the failed test",
                self.name
            );
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside a runtime that may be single-threaded and cannot
        // be blocked on: a thread with a runtime of its own drops the database.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = connect(&server).await.ok()?;
                // A replication slot of the database (capture from the WAL)
                // keeps it from being dropped: its reader goes, then it.
                let literal = name.replace('\'', "''");
                let _ = client
                    .batch_execute(&format!(
                        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                         WHERE database = '{literal}' AND active_pid IS NOT NULL"
                    ))
                    .await;
                for _ in 0..50 {
                    let dropped = client
                        .batch_execute(&format!(
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                             WHERE database = '{literal}' AND NOT active"
                        ))
                        .await;
                    let left = client
                        .query_one(
                            "SELECT count(*) FROM pg_replication_slots WHERE database = $1",
                            &[&name],
                        )
                        .await
                        .map(|row| row.get::<_, i64>(0))
                        .unwrap_or(0);
                    if dropped.is_ok() && left == 0 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
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

async fn connect(database: &Database) -> Result<Client, TestingError> {
    let (client, connection) = database.connect().await?;
    // Its errors surface on the client's next query.
    tokio::spawn(connection);
    Ok(client)
}

/// `database` as a URL that [`Database::from_url`] reads back as it.
fn database_url(database: &Database) -> String {
    let mut url = url(database.config());
    for (i, (key, value)) in database.ssl_url_parameters().into_iter().enumerate() {
        let separator = if i == 0 { '?' } else { '&' };
        url.push_str(&format!("{separator}{key}={}", encode_os(value)));
    }
    url
}

/// A path, percent-encoded for a URL.
fn encode_os(s: &std::ffi::OsStr) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        percent_encode(s.as_bytes(), NON_ALPHANUMERIC).to_string()
    }
    #[cfg(not(unix))]
    utf8_percent_encode(&s.to_string_lossy(), NON_ALPHANUMERIC).to_string()
}

/// `config` as a URL. Every part is percent-encoded, so that a password
/// with `@`, `/` or `:`, a Unix socket path or an IPv6 address reads back
/// as itself.
fn url(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => utf8_percent_encode(host, NON_ALPHANUMERIC).to_string(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => encode_os(path.as_os_str()),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = utf8_percent_encode(config.get_user().unwrap_or("postgres"), NON_ALPHANUMERIC);
    let password = config
        .get_password()
        .map(|p| format!(":{}", percent_encode(p, NON_ALPHANUMERIC)))
        .unwrap_or_default();
    let dbname = utf8_percent_encode(config.get_dbname().unwrap_or("postgres"), NON_ALPHANUMERIC);
    format!("postgres://{user}{password}@{host}:{port}/{dbname}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(config: &Config) -> Config {
        let url = url(config);
        url.parse()
            .unwrap_or_else(|e| panic!("{url} does not parse: {e}"))
    }

    #[test]
    fn user_password_and_name_with_url_delimiters_survive() {
        let mut config = Config::new();
        config
            .host("db.example.com")
            .port(6543)
            .user("o'neil@corp")
            .password("p@ss/w:rd?#%é ")
            .dbname("dawdle test/1");
        let back = round_trip(&config);
        assert_eq!(back.get_user(), Some("o'neil@corp"));
        assert_eq!(back.get_password(), Some(&b"p@ss/w:rd?#%\xc3\xa9 "[..]));
        assert_eq!(back.get_hosts(), [Host::Tcp("db.example.com".to_owned())]);
        assert_eq!(back.get_ports(), [6543]);
        assert_eq!(back.get_dbname(), Some("dawdle test/1"));
    }

    #[test]
    fn without_a_password_none_is_added() {
        let mut config = Config::new();
        config.host("127.0.0.1").user("postgres").dbname("d");
        let back = round_trip(&config);
        assert_eq!(back.get_password(), None);
        assert_eq!(back.get_hosts(), [Host::Tcp("127.0.0.1".to_owned())]);
        assert_eq!(back.get_ports(), [5432]);
    }

    #[test]
    fn an_ipv6_host_survives() {
        let mut config = Config::new();
        config.host("::1").port(5433).user("postgres").dbname("d");
        let back = round_trip(&config);
        assert_eq!(back.get_hosts(), [Host::Tcp("::1".to_owned())]);
        assert_eq!(back.get_ports(), [5433]);
    }

    #[test]
    fn sslmode_and_sslrootcert_survive() {
        let mut config = Config::new();
        config.host("db.example.com").user("postgres").dbname("d");
        let database = Database::from(config)
            .ssl_mode(crate::database::SslMode::VerifyFull)
            .ssl_root_cert("/etc/my certs/ca&1.pem");
        let url = database_url(&database);
        let back = Database::from_url(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(back.get_ssl_mode(), crate::database::SslMode::VerifyFull);
        assert_eq!(
            back.get_ssl_root_cert(),
            Some(std::path::Path::new("/etc/my certs/ca&1.pem"))
        );
        assert_eq!(back.config().get_dbname(), Some("d"));
        // The default adds nothing.
        let plain = Database::from(back.config().clone()).ssl_mode(Default::default());
        assert!(
            !database_url(&plain).contains('?'),
            "{}",
            database_url(&plain)
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_unix_socket_directory_survives() {
        let mut config = Config::new();
        config
            .host_path("/run/postgresql")
            .user("postgres")
            .dbname("d");
        let back = round_trip(&config);
        assert_eq!(
            back.get_hosts(),
            [Host::Unix("/run/postgresql".into())],
            "{}",
            url(&config)
        );
    }
}
