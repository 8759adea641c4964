//! [`Database`]: where and how to connect. tokio-postgres's connection
//! settings, and TLS (rustls) as libpq's `sslmode` understands it. Every
//! connection dawdle makes goes through it: the watcher's, the listener's
//! pool, `dawdle-sql apply` and `dawdle::testing`.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let database = dawdle::Database::from_url(
//!     "postgres://app:s3cr%40t@db.example.com/app?sslmode=verify-full&sslrootcert=/etc/ssl/rds.pem",
//! )?;
//! let runtime = dawdle::Runtime::builder()
//!     .database(database)
//!     .queue(dawdle::MemoryQueue::new())
//!     .watch()
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! # What each `sslmode` checks
//!
//! | `sslmode` | TLS | certificate chain | host name |
//! |---|---|---|---|
//! | `disable` | never | – | – |
//! | `allow` | only when the server refuses the connection without it | not checked | not checked |
//! | `prefer` (the default) | when the server offers it; plain otherwise | not checked | not checked |
//! | `require` | always | checked only when `sslrootcert` is given | not checked |
//! | `verify-ca` | always | checked | not checked |
//! | `verify-full` | always | checked | checked |
//!
//! The chain is checked against `sslrootcert`: a file of PEM root
//! certificates, read at each connection (so that a replaced file counts),
//! or `system` for the platform's roots. Without `sslrootcert`,
//! `verify-ca` and `verify-full` trust the platform's roots; unlike libpq,
//! dawdle reads no `~/.postgresql/root.crt` it was not pointed at.
//! As in libpq, `require` with an `sslrootcert` checks the chain like
//! `verify-ca`; `sslrootcert=system` without an `sslmode` means
//! `verify-full`, and with a weaker one is refused.
//!
//! `allow`, `prefer` and `require` without `sslrootcert` protect against
//! eavesdroppers, not against an impostor: use `verify-full` when the
//! network between you and the database is not yours. Connections over a
//! Unix socket never use TLS, whatever the mode, as with libpq.
//!
//! Client certificates (`sslcert`, `sslkey`) are not supported.

mod display;
mod parse;
mod tls;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Socket};

pub use display::DisplayPgError;
use tls::{MakeTls, Roots};
pub use tls::{TlsError, TlsErrorKind, TlsStream};

/// The connection future of a [`Database::connect`]: it performs the
/// communication with the server and must be polled (spawned) for the
/// [`Client`] to make progress, as with [`tokio_postgres::connect`].
pub type Connection = tokio_postgres::Connection<Socket, TlsStream>;

/// libpq's `sslmode`: whether to use TLS, and what to check of the
/// server's certificate. See the [module docs](self) for what each checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS, unchecked, when the server refuses plain.
    Allow,
    /// TLS, unchecked, when the server offers it; plain otherwise.
    #[default]
    Prefer,
    /// Always TLS. The chain is checked only against an `sslrootcert` given.
    Require,
    /// Always TLS, with a certificate chain that leads to a trusted root.
    VerifyCa,
    /// As [`VerifyCa`](SslMode::VerifyCa), and the certificate names the
    /// host connected to.
    VerifyFull,
}

impl SslMode {
    /// The mode as libpq spells it: `verify-full`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres does of it: the checks are rustls's, behind it.
    fn negotiation(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Negotiation;
        match self {
            SslMode::Disable | SslMode::Allow => Negotiation::Disable,
            SslMode::Prefer => Negotiation::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Negotiation::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<SslMode, ParseError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(ParseError::SslMode(other.to_owned())),
        })
    }
}

/// Where and how to connect: tokio-postgres's [`Config`], and TLS as
/// libpq's `sslmode` and `sslrootcert` say (see the [module docs](self)).
///
/// From a URL or a `key=value` string with [`Database::from_url`], or from
/// a [`Config`] (whose own `sslmode`, `disable`, `prefer` or `require`,
/// carries over) with `.into()`:
///
/// ```no_run
/// # fn demo(config: tokio_postgres::Config) {
/// use dawdle::database::{Database, SslMode};
///
/// let database = Database::from(config)
///     .ssl_mode(SslMode::VerifyFull)
///     .ssl_root_cert("/etc/ssl/rds-global-bundle.pem");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Database {
    config: Config,
    mode: SslMode,
    roots: Roots,
}

impl Database {
    /// Reads a `postgres://` URL or a `key=value` connection string, as
    /// tokio-postgres does, with all of libpq's `sslmode`s (`disable`,
    /// `allow`, `prefer`, `require`, `verify-ca`, `verify-full`) and
    /// `sslrootcert` (a PEM file, or `system`) besides.
    ///
    /// ```
    /// use dawdle::database::{Database, SslMode};
    ///
    /// let database = Database::from_url(
    ///     "postgres://app:p%40ss@db.example.com:5432/app?sslmode=verify-full&sslrootcert=/etc/ca.pem",
    /// )?;
    /// assert_eq!(database.get_ssl_mode(), SslMode::VerifyFull);
    /// assert_eq!(database.config().get_password(), Some(&b"p@ss"[..]));
    ///
    /// let database = Database::from_url("host=localhost user=app sslmode=verify-ca")?;
    /// assert_eq!(database.get_ssl_mode(), SslMode::VerifyCa);
    /// # Ok::<(), dawdle::database::ParseError>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Database, ParseError> {
        let split = parse::split(url);
        let config: Config = split.rest.parse().map_err(ParseError::Postgres)?;
        let roots = match split.sslrootcert.as_deref() {
            None | Some("") => Roots::Unset,
            Some("system") => Roots::Platform,
            Some(path) => Roots::File(PathBuf::from(path)),
        };
        let mode = match split.sslmode {
            Some(mode) => mode.parse()?,
            // libpq's default when the platform's roots are asked for.
            None if matches!(roots, Roots::Platform) => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if matches!(roots, Roots::Platform) && mode != SslMode::VerifyFull {
            // Any public CA vouches for names it verified, not for a
            // particular server: without the name check, any certificate
            // a public CA issued to anyone would pass.
            return Err(ParseError::WeakSslModeWithSystemRoots(mode));
        }
        Ok(Database::from(config).ssl_mode(mode).with_roots(roots))
    }

    /// Sets the `sslmode`.
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.mode = mode;
        self.config.ssl_mode(mode.negotiation());
        self
    }

    /// Sets `sslrootcert`: a file of PEM root certificates that the
    /// server's chain must lead to, read at each connection, or `system`
    /// for the platform's roots.
    pub fn ssl_root_cert(self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let roots = if path == Path::new("system") {
            Roots::Platform
        } else {
            Roots::File(path.to_owned())
        };
        self.with_roots(roots)
    }

    /// Sets the root certificates that the server's chain must lead to, as
    /// PEM (one or more `BEGIN CERTIFICATE` blocks): `sslrootcert` without
    /// a file.
    pub fn root_certificates_pem(self, pem: impl Into<Vec<u8>>) -> Self {
        self.with_roots(Roots::Pem(Arc::from(pem.into())))
    }

    fn with_roots(mut self, roots: Roots) -> Self {
        self.roots = roots;
        self
    }

    /// The `sslmode`.
    pub fn get_ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// The `sslrootcert` file, or `system` for the platform's roots; `None`
    /// when none was given or the roots were given as PEM.
    pub fn get_ssl_root_cert(&self) -> Option<&Path> {
        match &self.roots {
            Roots::Platform => Some(Path::new("system")),
            Roots::File(path) => Some(path),
            Roots::Unset | Roots::Pem(_) => None,
        }
    }

    /// For the WAL reader's replication connection, which does its own
    /// TLS: the root certificates as a file (`None`: the TLS library's
    /// own roots, for `system` or none given); refused when they were
    /// given in code.
    pub(crate) fn root_file_for_replication(&self) -> Result<Option<PathBuf>, String> {
        match &self.roots {
            Roots::Unset | Roots::Platform => Ok(None),
            Roots::File(path) => Ok(Some(path.clone())),
            Roots::Pem(_) => Err(
                "root certificates given in code (root_certificates_pem) are not \
                 used by the replication connection of capture from the WAL: give them as a file \
                 (sslrootcert)"
                    .to_owned(),
            ),
        }
    }

    /// tokio-postgres's settings. Its `sslmode` is the closest of its own:
    /// `verify-ca` and `verify-full` are `require` there, as the checks
    /// happen in dawdle's TLS connector.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// For dawdle's own settings (the watcher's keepalives): an `sslmode`
    /// set here would not count, [`Database::ssl_mode`]'s does.
    pub(crate) fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Opens a connection. The [`Connection`] must be polled (spawned) for
    /// the [`Client`] to work:
    ///
    /// ```no_run
    /// # async fn demo(database: dawdle::Database) -> Result<(), Box<dyn std::error::Error>> {
    /// let (client, connection) = database.connect().await?;
    /// tokio::spawn(connection);
    /// client.batch_execute("SELECT 1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self) -> Result<(Client, Connection), ConnectError> {
        self.connect_postgres().await.map_err(ConnectError::new)
    }

    /// [`Database::connect`] with tokio-postgres's error, which a
    /// [`deadpool_postgres::Manager`] needs.
    async fn connect_postgres(&self) -> Result<(Client, Connection), tokio_postgres::Error> {
        let tls = MakeTls::new(self.mode, self.roots.clone());
        let mut config = self.config.clone();
        if over_unix_sockets_only(&config) {
            // libpq never asks for TLS on a Unix socket, and servers refuse it there.
            config.ssl_mode(SslMode::Disable.negotiation());
            return config.connect(tls).await;
        }
        config.ssl_mode(self.mode.negotiation());
        match config.connect(tls.clone()).await {
            Err(error) if self.mode == SslMode::Allow && refused_without_tls(&error) => {
                config.ssl_mode(SslMode::Require.negotiation());
                config.connect(tls).await
            }
            result => result,
        }
    }

    /// A connection pool whose connections are made as [`Database::connect`]
    /// makes them, with TLS as the `sslmode` says.
    pub fn pool(
        &self,
        max_size: usize,
    ) -> Result<deadpool_postgres::Pool, deadpool_postgres::BuildError> {
        let manager = deadpool_postgres::Manager::from_connect(
            self.config.clone(),
            PoolConnect(self.clone()),
            deadpool_postgres::ManagerConfig::default(),
        );
        deadpool_postgres::Pool::builder(manager)
            .max_size(max_size)
            .build()
    }

    /// `sslmode` and `sslrootcert` as URL query parameters, for a URL that
    /// [`Database::from_url`] reads back as this; none for the defaults.
    #[cfg(feature = "testing")]
    pub(crate) fn ssl_url_parameters(&self) -> Vec<(&'static str, &std::ffi::OsStr)> {
        let mut parameters = Vec::new();
        if self.mode != SslMode::Prefer {
            parameters.push(("sslmode", self.mode.as_str().as_ref()));
        }
        if let Some(path) = self.get_ssl_root_cert() {
            parameters.push(("sslrootcert", path.as_os_str()));
        }
        parameters
    }
}

impl From<Config> for Database {
    /// Settings of tokio-postgres, with its `sslmode` (`disable`, `prefer`
    /// or `require`) and no `sslrootcert`.
    fn from(config: Config) -> Database {
        use tokio_postgres::config::SslMode as Negotiation;
        let mode = match config.get_ssl_mode() {
            Negotiation::Disable => SslMode::Disable,
            Negotiation::Prefer => SslMode::Prefer,
            // Whatever tokio-postgres adds, never fall back to plain text.
            _ => SslMode::Require,
        };
        Database {
            config,
            mode,
            roots: Roots::Unset,
        }
    }
}

impl From<&Config> for Database {
    fn from(config: &Config) -> Database {
        Database::from(config.clone())
    }
}

impl FromStr for Database {
    type Err = ParseError;

    /// [`Database::from_url`].
    fn from_str(s: &str) -> Result<Database, ParseError> {
        Database::from_url(s)
    }
}

fn over_unix_sockets_only(config: &Config) -> bool {
    let hosts = config.get_hosts();
    !hosts.is_empty()
        && config.get_hostaddrs().is_empty()
        && hosts.iter().all(|host| !matches!(host, Host::Tcp(_)))
}

/// Whether the server refused a connection for being plain: its
/// `pg_hba.conf` has `hostssl` entries only, for this client.
fn refused_without_tls(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|error| {
        error.code() == &SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            // "SSL off" before PostgreSQL 14.
            && (error.message().contains("no encryption") || error.message().contains("SSL off"))
    })
}

/// The pool's connections, made as [`Database::connect`] makes them.
struct PoolConnect(Database);

impl deadpool_postgres::Connect for PoolConnect {
    fn connect(
        &self,
        _config: &Config,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<(Client, JoinHandle<()>), tokio_postgres::Error>>
                + Send
                + '_,
        >,
    > {
        Box::pin(async move {
            let (client, connection) = self.0.connect_postgres().await.inspect_err(|error| {
                // What callers of the pool see of it names only its kind.
                tracing::warn!(error = %DisplayPgError::new(error), "cannot open a pooled database connection");
            })?;
            let driver = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(error = %DisplayPgError::new(&error), "pooled database connection failed");
                }
            });
            Ok((client, driver))
        })
    }
}

/// Why a connection string cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// tokio-postgres refused it (what remains once `sslmode` and
    /// `sslrootcert` are taken out). Shown as [`DisplayPgError`] shows it,
    /// so not also a [`source`](std::error::Error::source).
    #[error("{}", DisplayPgError::new(.0))]
    Postgres(tokio_postgres::Error),
    /// `sslmode` is none of libpq's.
    #[error(
        "invalid sslmode {0:?}; expected disable, allow, prefer, require, verify-ca or verify-full"
    )]
    SslMode(String),
    /// `sslrootcert=system` with an `sslmode` that does not check the host
    /// name, which libpq refuses too.
    #[error("weak sslmode \"{0}\" may not be used with sslrootcert=system (use \"verify-full\")")]
    WeakSslModeWithSystemRoots(SslMode),
}

/// Why [`Database::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// TLS could not be set up, or the server's certificate was refused:
    /// [`TlsError::kind`] says which.
    #[error(transparent)]
    Tls(TlsError),
    /// The server refused a connection without TLS (its `pg_hba.conf` has
    /// only `hostssl` entries for this client). The message has the
    /// server's, so the error is not also a
    /// [`source`](std::error::Error::source).
    #[error(
        "the server requires TLS ({}); use sslmode=require or stricter",
        .0.as_db_error().map_or("", |error| error.message())
    )]
    TlsRequired(tokio_postgres::Error),
    /// Any other failure: the server is unreachable, refused the login,
    /// ... Shown as [`DisplayPgError`] shows it, so not also a
    /// [`source`](std::error::Error::source).
    #[error("{}", DisplayPgError::new(.0))]
    Postgres(tokio_postgres::Error),
}

impl ConnectError {
    fn new(error: tokio_postgres::Error) -> ConnectError {
        if refused_without_tls(&error) {
            return ConnectError::TlsRequired(error);
        }
        let tls = std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<TlsError>())
            .cloned();
        match tls {
            Some(tls) => ConnectError::Tls(tls),
            None => ConnectError::Postgres(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_every_sslmode_and_keep_the_rest() {
        let database = Database::from_url(
            "postgres://app:p%40ss%2Fw%3Ard%3F@db.example.com:6543/app?sslmode=verify-full\
             &application_name=me&sslrootcert=/etc/ssl/ca.pem",
        )
        .unwrap();
        assert_eq!(database.get_ssl_mode(), SslMode::VerifyFull);
        assert_eq!(
            database.get_ssl_root_cert(),
            Some(Path::new("/etc/ssl/ca.pem"))
        );
        let config = database.config();
        assert_eq!(config.get_password(), Some(&b"p@ss/w:rd?"[..]));
        assert_eq!(config.get_application_name(), Some("me"));
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let url = format!("postgresql://h/d?sslmode={mode}");
            assert_eq!(Database::from_url(&url).unwrap().get_ssl_mode(), mode);
        }
        assert_eq!(
            "postgres://h/d".parse::<Database>().unwrap().get_ssl_mode(),
            SslMode::Prefer
        );
    }

    #[test]
    fn key_value_strings_take_every_sslmode_too() {
        let database = Database::from_url(
            r"host=db user=app password='it\'s a secret' sslmode=verify-ca sslrootcert='/my certs/ca.pem'",
        )
        .unwrap();
        assert_eq!(database.get_ssl_mode(), SslMode::VerifyCa);
        assert_eq!(
            database.get_ssl_root_cert(),
            Some(Path::new("/my certs/ca.pem"))
        );
        assert_eq!(
            database.config().get_password(),
            Some(&b"it's a secret"[..])
        );
    }

    #[test]
    fn system_roots_mean_verify_full_and_refuse_weaker_modes() {
        let database = Database::from_url("postgres://h/d?sslrootcert=system").unwrap();
        assert_eq!(database.get_ssl_mode(), SslMode::VerifyFull);
        assert_eq!(database.get_ssl_root_cert(), Some(Path::new("system")));
        let error =
            Database::from_url("postgres://h/d?sslrootcert=system&sslmode=require").unwrap_err();
        assert!(
            matches!(
                error,
                ParseError::WeakSslModeWithSystemRoots(SslMode::Require)
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("verify-full"), "{error}");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let error = Database::from_url("postgres://h/d?sslmode=verify").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid sslmode \"verify\"; expected disable, allow, prefer, require, verify-ca or \
             verify-full"
        );
        let error = Database::from_url("postgres://h/d?sslcert=/c.pem").unwrap_err();
        assert!(matches!(error, ParseError::Postgres(_)), "{error:?}");
        assert!(error.to_string().contains("sslcert"), "{error}");
    }

    #[test]
    fn a_tokio_postgres_config_keeps_its_sslmode() {
        use tokio_postgres::config::SslMode as Negotiation;
        for (theirs, ours) in [
            (Negotiation::Disable, SslMode::Disable),
            (Negotiation::Prefer, SslMode::Prefer),
            (Negotiation::Require, SslMode::Require),
        ] {
            let mut config = Config::new();
            config.ssl_mode(theirs);
            assert_eq!(Database::from(&config).get_ssl_mode(), ours);
        }
        let database = Database::from(Config::new())
            .ssl_mode(SslMode::VerifyFull)
            .root_certificates_pem(b"-----BEGIN CERTIFICATE-----".to_vec());
        assert_eq!(database.get_ssl_mode(), SslMode::VerifyFull);
        assert_eq!(database.get_ssl_root_cert(), None);
        // The PEM's length shows, not its bytes.
        assert!(format!("{database:?}").contains("Pem(27 bytes)"));
    }

    #[test]
    fn only_unix_sockets_go_without_tls() {
        let mut config = Config::new();
        config.host_path("/run/postgresql");
        assert!(over_unix_sockets_only(&config));
        config.host("db");
        assert!(!over_unix_sockets_only(&config));
        assert!(!over_unix_sockets_only(&Config::new()));
    }
}
