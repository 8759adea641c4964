//! A fresh database per test: `dawdle::testing::TestDatabase` on
//! `DATABASE_URL`, or on a throwaway cluster when it is unset.

use std::ops::Deref;

use dawdle::testing::TestDatabase;
use tokio::sync::OnceCell;

use crate::{cluster, Cluster, Error};

/// Started on the first test database of a process that has no
/// `DATABASE_URL`, and held until the process exits.
static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();

/// A database created for one test, dropped when this is dropped (kept, and
/// named on stderr, when the test is panicking). Everything
/// [`TestDatabase`] offers, and a pool and a schema dump.
#[derive(Debug)]
pub struct TestDb {
    db: TestDatabase,
}

impl TestDb {
    /// Creates a fresh, empty database on `DATABASE_URL`, else on a
    /// throwaway cluster started once per process.
    pub async fn new() -> Result<TestDb, Error> {
        let db = if std::env::var_os("DATABASE_URL").is_some() {
            TestDatabase::new().await?
        } else {
            // Logical WAL, so that capture from the WAL can be tried on it too.
            let cluster = CLUSTER
                .get_or_try_init(|| Cluster::builder().logical(true).start())
                .await?;
            TestDatabase::on(cluster.admin()).await?
        };
        Ok(TestDb { db })
    }

    /// A deadpool pool on the database.
    pub fn pool(&self) -> deadpool_postgres::Pool {
        self.database()
            .pool(16)
            .expect("a pool without a runtime-specific timeout always builds")
    }

    /// `pg_dump --schema-only` of the database, without pg_dump's random
    /// `\restrict` key lines, so that two dumps of the same schema compare
    /// equal. The `pg_dump` is the one of the binaries a throwaway cluster
    /// would come from (see [`Cluster`]), of the same version as the
    /// cluster; without those, the one on `PATH`.
    pub fn dump_schema(&self) -> Result<String, Error> {
        let pg_dump = cluster::bin_dir()
            .map(|dir| dir.join("pg_dump"))
            .ok()
            .filter(|path| path.is_file())
            .unwrap_or_else(|| "pg_dump".into());
        let out = std::process::Command::new(&pg_dump)
            .args(["--schema-only", "--no-owner", "--dbname", &self.url()])
            .output()
            .map_err(Error::io(format!("cannot run {}", pg_dump.display())))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(Error::failed("pg_dump failed:", stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

impl Deref for TestDb {
    type Target = TestDatabase;

    fn deref(&self) -> &TestDatabase {
        &self.db
    }
}
