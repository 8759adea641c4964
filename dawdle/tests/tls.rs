//! TLS as libpq's `sslmode` says, against a cluster of the test's own that
//! accepts TLS connections only (`hostssl` lines in `pg_hba.conf`), with a
//! certificate for `localhost` alone, from a CA the test makes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use dawdle::database::{ConnectError, Database, SslMode, TlsErrorKind};
use dawdle::queue::Queue;
use dawdle::testing::TestDatabase;
use dawdle::{Insert, MemoryQueue, Runtime, Watched};
use dawdle_test::Cluster;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::sync::{Notify, OnceCell};
use tokio_postgres::Client;

#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "tls_notes")]
struct Note {
    #[dawdle(primary_key)]
    id: i64,
    body: String,
}

/// Captured from the WAL, over TLS.
#[derive(Debug, Clone, PartialEq, Watched)]
#[dawdle(table = "tls_wal")]
struct WalNote {
    id: i64,
    body: String,
}

static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static NOTE_ARRIVED: Notify = Notify::const_new();

#[dawdle::handler]
async fn note_arrived(event: Insert<Note>) {
    NOTES.lock().unwrap().push(event.new.body);
    NOTE_ARRIVED.notify_one();
}

/// A certificate authority of the test's own.
struct Authority(CertifiedIssuer<'static, KeyPair>);

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Authority(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// A server certificate for `name` alone, and its key, as PEM.
    fn issue(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let certificate = params.signed_by(&key, &*self.0).unwrap();
        (certificate.pem(), key.serialize_pem())
    }
}

/// The cluster, shared by the tests of this file.
struct TlsCluster {
    cluster: Cluster,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing the server has.
    other_ca: PathBuf,
}

impl TlsCluster {
    /// A URL of the `postgres` database at `host` (reached at 127.0.0.1
    /// whatever the name, so that only the name the certificate is checked
    /// against changes).
    fn url(&self, host: &str, sslmode: &str, sslrootcert: Option<&Path>) -> String {
        let mut url = format!(
            "postgres://postgres@{host}:{}/postgres?hostaddr=127.0.0.1&sslmode={sslmode}",
            self.cluster.port()
        );
        if let Some(path) = sslrootcert {
            url.push_str(&format!("&sslrootcert={}", path.display()));
        }
        url
    }
}

async fn cluster() -> &'static TlsCluster {
    static CLUSTER: OnceCell<TlsCluster> = OnceCell::const_new();
    CLUSTER
        .get_or_init(|| async {
            let ca = Authority::new("dawdle test CA");
            let (certificate, key) = ca.issue("localhost");
            let cluster = Cluster::builder()
                .ssl(certificate, key)
                .hba("hostssl all all 127.0.0.1/32 trust\n")
                // Capture from the WAL over TLS too.
                .logical(true)
                .start()
                .await
                .expect("a cluster with TLS starts");
            let write = |name: &str, pem: String| {
                let path = cluster.dir().join(name);
                std::fs::write(&path, pem).unwrap();
                path
            };
            TlsCluster {
                ca: write("ca.pem", ca.0.pem()),
                other_ca: write("other-ca.pem", Authority::new("another CA").0.pem()),
                cluster,
            }
        })
        .await
}

async fn connect(url: &str) -> Result<Client, ConnectError> {
    let (client, connection) = Database::from_url(url).unwrap().connect().await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn connect_error(url: &str) -> ConnectError {
    match connect(url).await {
        Ok(_) => panic!("{url} connected"),
        Err(error) => error,
    }
}

async fn uses_tls(client: &Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

fn assert_mentions(error: &ConnectError, parts: &[&str]) {
    let message = error.to_string();
    for part in parts {
        assert!(message.contains(part), "{part:?} is not in: {message}");
    }
}

#[tokio::test]
async fn verify_full_with_the_right_ca_carries_the_watcher_end_to_end() {
    let tls = cluster().await;
    let server = Database::from_url(&tls.url("localhost", "verify-full", Some(&tls.ca))).unwrap();
    let db = TestDatabase::on(server).await.unwrap();
    let mut client = db.connect().await.unwrap();
    assert!(uses_tls(&client).await);
    client
        .batch_execute("CREATE TABLE tls_notes (id bigint PRIMARY KEY, body text NOT NULL)")
        .await
        .unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[Note::TABLE]).unwrap())
        .await
        .unwrap();
    let handle = Runtime::builder()
        .database(db.database().clone())
        .queue(MemoryQueue::new())
        .watch()
        .listen()
        .build()
        .unwrap()
        .start();
    client
        .batch_execute("INSERT INTO tls_notes VALUES (1, 'sent over TLS')")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if NOTES.lock().unwrap().iter().any(|n| n == "sent over TLS") {
                break;
            }
            NOTE_ARRIVED.notified().await;
        }
    })
    .await
    .expect("the row reached the handler");
    let (watchers, encrypted): (i64, i64) = {
        let row = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE s.ssl)
                 FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                 WHERE a.application_name = 'dawdle-watcher' AND a.datname = current_database()",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((watchers, encrypted), (1, 1));
    handle.shutdown().await.unwrap();

    // Child processes get the same TLS settings through the URL.
    let again = connect(&db.url()).await.unwrap();
    assert!(uses_tls(&again).await);
}

#[tokio::test]
async fn verify_full_with_another_ca_says_the_certificate_is_not_trusted() {
    let tls = cluster().await;
    let error = connect_error(&tls.url("localhost", "verify-full", Some(&tls.other_ca))).await;
    let ConnectError::Tls(tls_error) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(tls_error.kind(), TlsErrorKind::Untrusted, "{error}");
    assert_mentions(
        &error,
        &[
            "not trusted",
            "certificate verify failed: unknown issuer",
            "sslmode=verify-full",
            "\"localhost\"",
            "other-ca.pem",
        ],
    );
}

#[tokio::test]
async fn verify_full_to_a_name_the_certificate_lacks_says_it_does_not_match() {
    let tls = cluster().await;
    let error = connect_error(&tls.url("127.0.0.1", "verify-full", Some(&tls.ca))).await;
    let ConnectError::Tls(tls_error) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(tls_error.kind(), TlsErrorKind::HostNameMismatch, "{error}");
    assert_eq!(tls_error.host(), "127.0.0.1");
    assert_mentions(
        &error,
        &["does not match the host name", "127.0.0.1", "localhost"],
    );
}

#[tokio::test]
async fn verify_ca_does_not_check_the_name() {
    let tls = cluster().await;
    let client = connect(&tls.url("127.0.0.1", "verify-ca", Some(&tls.ca)))
        .await
        .unwrap();
    assert!(uses_tls(&client).await);
}

#[tokio::test]
async fn verify_ca_still_checks_the_chain() {
    let tls = cluster().await;
    let error = connect_error(&tls.url("127.0.0.1", "verify-ca", Some(&tls.other_ca))).await;
    assert!(
        matches!(&error, ConnectError::Tls(e) if e.kind() == TlsErrorKind::Untrusted),
        "{error:?}"
    );
}

#[tokio::test]
async fn require_without_a_root_certificate_encrypts_without_checking() {
    let tls = cluster().await;
    let client = connect(&tls.url("127.0.0.1", "require", None))
        .await
        .unwrap();
    assert!(uses_tls(&client).await);
}

#[tokio::test]
async fn require_with_a_root_certificate_checks_the_chain_as_libpq_does() {
    let tls = cluster().await;
    let error = connect_error(&tls.url("127.0.0.1", "require", Some(&tls.other_ca))).await;
    assert!(
        matches!(&error, ConnectError::Tls(e) if e.kind() == TlsErrorKind::Untrusted),
        "{error:?}"
    );
    assert_mentions(&error, &["sslmode=require"]);
    let client = connect(&tls.url("127.0.0.1", "require", Some(&tls.ca)))
        .await
        .unwrap();
    assert!(uses_tls(&client).await);
}

#[tokio::test]
async fn disable_is_refused_by_the_server_and_the_error_says_tls_is_required() {
    let tls = cluster().await;
    let error = connect_error(&tls.url("localhost", "disable", None)).await;
    assert!(matches!(error, ConnectError::TlsRequired(_)), "{error:?}");
    assert_mentions(
        &error,
        &[
            "the server requires TLS",
            "pg_hba.conf",
            "sslmode=require or stricter",
        ],
    );
}

#[tokio::test]
async fn prefer_uses_tls_when_the_server_offers_it() {
    let tls = cluster().await;
    let client = connect(&tls.url("localhost", "prefer", None))
        .await
        .unwrap();
    assert!(uses_tls(&client).await);
}

#[tokio::test]
async fn allow_turns_to_tls_when_the_server_refuses_plain() {
    let tls = cluster().await;
    let client = connect(&tls.url("localhost", "allow", None)).await.unwrap();
    assert!(uses_tls(&client).await);
}

#[tokio::test]
async fn a_missing_root_certificate_file_is_named() {
    let tls = cluster().await;
    let missing = tls.cluster.dir().join("missing.pem");
    let error = connect_error(&tls.url("localhost", "verify-full", Some(&missing))).await;
    assert!(
        matches!(&error, ConnectError::Tls(e) if e.kind() == TlsErrorKind::RootCertificates),
        "{error:?}"
    );
    assert_mentions(&error, &["cannot read sslrootcert", "missing.pem"]);
}

#[tokio::test]
async fn pools_and_key_value_strings_and_pem_in_code_verify_too() {
    let tls = cluster().await;
    let port = tls.cluster.port();
    let keywords = format!(
        "host=localhost hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres \
         sslmode=verify-full sslrootcert='{}'",
        tls.ca.display()
    );
    let pool = Database::from_url(&keywords).unwrap().pool(2).unwrap();
    assert!(uses_tls(&pool.get().await.unwrap()).await);

    let mut config = tokio_postgres::Config::new();
    config
        .host("localhost")
        .hostaddr("127.0.0.1".parse().unwrap())
        .port(port)
        .user("postgres")
        .dbname("postgres");
    let database = Database::from(config).ssl_mode(SslMode::VerifyFull);
    let ca = std::fs::read(&tls.ca).unwrap();
    let (client, connection) = database
        .clone()
        .root_certificates_pem(ca)
        .connect()
        .await
        .unwrap();
    tokio::spawn(connection);
    assert!(uses_tls(&client).await);
    let other = std::fs::read(&tls.other_ca).unwrap();
    let error = match database.root_certificates_pem(other).connect().await {
        Ok(_) => panic!("connected with the wrong CA"),
        Err(error) => error,
    };
    assert!(
        matches!(&error, ConnectError::Tls(e) if e.kind() == TlsErrorKind::Untrusted),
        "{error:?}"
    );
}

#[tokio::test]
async fn capture_from_the_wal_streams_over_verified_tls() {
    let tls = cluster().await;
    let server = Database::from_url(&tls.url("localhost", "verify-full", Some(&tls.ca))).unwrap();
    let db = TestDatabase::on(server).await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE tls_wal (id bigint PRIMARY KEY, body text NOT NULL)")
        .await
        .unwrap();
    let up = dawdle::sql::up_with(&[WalNote::TABLE], dawdle::sql::Capture::Wal).unwrap();
    dawdle::sql::apply(&mut client, &up).await.unwrap();
    let queue = MemoryQueue::new();
    let watcher = dawdle::Watcher::builder(db.database().clone(), queue.clone())
        .capture(dawdle::sql::Capture::Wal)
        .build()
        .start();
    client
        .batch_execute("INSERT INTO tls_wal VALUES (1, 'from the WAL, over TLS')")
        .await
        .unwrap();
    dawdle::testing::wait_until_drained(&client, Duration::from_secs(30))
        .await
        .unwrap();
    let messages = queue
        .receive(10, Duration::ZERO, Duration::from_secs(60))
        .await
        .unwrap();
    let events: Vec<_> = messages
        .iter()
        .flat_map(|m| dawdle::wire::Envelope::parse(&m.body).unwrap().events)
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].new.as_ref().unwrap()["body"],
        "from the WAL, over TLS"
    );
    let encrypted: bool = client
        .query_one(
            "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)
             WHERE r.application_name = 'dawdle-watcher-wal'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted, "the replication connection uses TLS");
    watcher.shutdown().await.unwrap();
}
