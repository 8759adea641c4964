//! What every fidelity test does: set up a database with dawdle's triggers,
//! write rows, then compare the rows decoded from `dawdle.events` with the
//! same rows read by a direct tokio-postgres query.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::fmt::Debug;

use dawdle::sql::Capture;
use dawdle::testing::TestDatabase;
use dawdle::{DecodeError, Table, Watched};
use dawdle_test::{Cluster, TestDb};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::sync::OnceCell;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

pub type TestResult = Result<(), Box<dyn Error>>;

/// Session settings chosen to change every text form dawdle could depend on.
pub const HOSTILE: &str = "SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'postgres_verbose'; \
     SET bytea_output = 'escape'; SET extra_float_digits = 0; SET TimeZone = 'America/St_Johns'";

/// A row type under test: a `Watched` struct that can also be read by a
/// direct query and written with parameters. Implemented by [`row_type!`].
pub trait Fidelity: Watched + Debug + Clone {
    /// Column names, in field order.
    const COLUMNS: &'static [&'static str];

    /// Reads the struct from a direct query whose columns are named like the fields.
    fn from_pg(row: &Row) -> Result<Self, tokio_postgres::Error>;

    /// The fields as query parameters, in field order.
    fn params(&self) -> Vec<Box<dyn ToSql + Sync + '_>>;

    /// The fields whose values are not the [`Same`], described.
    fn diff(&self, other: &Self) -> Vec<String>;
}

/// Declares a row type: the struct with `#[derive(Watched)]`, and [`Fidelity`].
///
/// A field marked `[json]` is read and written by the direct query through
/// `postgres_types::Json` (for maps and serde types tokio-postgres does not
/// read by itself).
macro_rules! row_type {
    (
        $(#[$attr:meta])*
        struct $name:ident {
            $( $(#[$fattr:meta])* $field:ident : $ty:ty $([$via:ident])? ),* $(,)?
        }
    ) => {
        #[derive(Debug, Clone, dawdle::Watched)]
        $(#[$attr])*
        pub struct $name {
            $( $(#[$fattr])* pub $field: $ty ),*
        }

        impl $crate::harness::Fidelity for $name {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn from_pg(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
                Ok($name {
                    $( $field: row_type!(@get row, $field, $ty $(, $via)?) ),*
                })
            }

            fn params(&self) -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync + '_>> {
                vec![$( row_type!(@param self.$field $(, $via)?) ),*]
            }

            fn diff(&self, other: &Self) -> Vec<String> {
                let mut out = Vec::new();
                $(
                    if !$crate::harness::Same::same(&self.$field, &other.$field) {
                        out.push(format!(
                            "{}:\n    event:  {:?}\n    direct: {:?}",
                            stringify!($field), self.$field, other.$field
                        ));
                    }
                )*
                out
            }
        }
    };
    (@get $row:ident, $field:ident, $ty:ty) => {
        $row.try_get::<_, $ty>(stringify!($field))?
    };
    (@get $row:ident, $field:ident, $ty:ty, json) => {
        $row.try_get::<_, postgres_types::Json<$ty>>(stringify!($field))?.0
    };
    (@param $value:expr) => {
        Box::new(&$value)
    };
    (@param $value:expr, json) => {
        Box::new(postgres_types::Json(&$value))
    };
}
pub(crate) use row_type;

/// Equality as the Ecto rule means it: floats bit for bit (so `-0.0` differs
/// from `0.0`) with every NaN equal to every NaN; decimals with their scale;
/// timestamps with their offset.
pub trait Same: Debug {
    fn same(&self, other: &Self) -> bool;
}

macro_rules! same_by_eq {
    ($($ty:ty),* $(,)?) => {$(
        impl Same for $ty {
            fn same(&self, other: &Self) -> bool {
                self == other
            }
        }
    )*};
}

same_by_eq!(
    bool,
    u8,
    i16,
    i32,
    i64,
    String,
    uuid::Uuid,
    chrono::NaiveDate,
    chrono::NaiveTime,
    chrono::NaiveDateTime,
    chrono::DateTime<chrono::Utc>,
    time::Date,
    time::Time,
    time::PrimitiveDateTime,
    dawdle::Interval,
    serde_json::Value,
    serde_json::Map<String, serde_json::Value>,
    HashMap<String, i64>,
    BTreeMap<String, Option<String>>,
    BTreeMap<String, serde_json::Value>,
);

impl Same for f32 {
    fn same(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits() || (self.is_nan() && other.is_nan())
    }
}

impl Same for f64 {
    fn same(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits() || (self.is_nan() && other.is_nan())
    }
}

impl Same for rust_decimal::Decimal {
    fn same(&self, other: &Self) -> bool {
        // Sign, scale and mantissa: `1.0` is not the same as `1.00`.
        self.serialize() == other.serialize()
    }
}

impl Same for chrono::DateTime<chrono::FixedOffset> {
    fn same(&self, other: &Self) -> bool {
        self == other && self.offset() == other.offset()
    }
}

impl Same for time::OffsetDateTime {
    fn same(&self, other: &Self) -> bool {
        self == other && self.offset() == other.offset()
    }
}

impl<T: Same> Same for Option<T> {
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.same(b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl<T: Same> Same for Vec<T> {
    fn same(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a.same(b))
    }
}

/// The capture mode under test: the triggers, or with
/// `DAWDLE_FIDELITY_CAPTURE=wal` capture from the WAL (on a logical
/// cluster of the tests' own, whatever `DATABASE_URL` is).
pub fn capture() -> Capture {
    match std::env::var("DAWDLE_FIDELITY_CAPTURE").as_deref() {
        Ok("wal") => Capture::Wal,
        Ok("triggers") | Err(_) => Capture::Triggers,
        Ok(other) => panic!("DAWDLE_FIDELITY_CAPTURE={other}: say triggers or wal"),
    }
}

/// Forgets the events waiting, in the [`capture`] mode under test: the
/// cursor, or the slot, moves past them (the slot up to the WAL flushed
/// first).
pub fn discard_events() -> String {
    match capture() {
        Capture::Wal => format!(
            "{} SELECT pg_replication_slot_advance(dawdle.slot_name(), pg_current_wal_flush_lsn())",
            dawdle::__private::FLUSH_WAL
        ),
        _ => dawdle_test::DISCARD_EVENTS.to_owned(),
    }
}

/// The logical cluster of capture from the WAL, shared by the tests.
async fn logical_cluster() -> &'static Cluster {
    static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();
    CLUSTER
        .get_or_init(|| async {
            Cluster::builder()
                .logical(true)
                .start()
                .await
                .expect("a logical cluster")
        })
        .await
}

/// A fresh database holding `ddl`, with dawdle's capture on `tables`.
pub struct Db {
    pub client: Client,
    // Dropped after the client: the database goes when the test ends.
    db: Database,
}

enum Database {
    /// On `DATABASE_URL`'s server (or the tests' throwaway one).
    Shared(TestDb),
    /// On the logical cluster.
    Logical(TestDatabase),
}

impl std::ops::Deref for Database {
    type Target = TestDatabase;

    fn deref(&self) -> &TestDatabase {
        match self {
            Database::Shared(db) => db,
            Database::Logical(db) => db,
        }
    }
}

impl Db {
    /// In the [`capture`] mode under test.
    pub async fn new(ddl: &str, tables: &[&'static Table]) -> Result<Db, Box<dyn Error>> {
        Db::with(capture(), ddl, tables).await
    }

    /// With the triggers, whatever the mode under test: for what only the
    /// triggers capture (columns with an `sql` override).
    pub async fn with_triggers(ddl: &str, tables: &[&'static Table]) -> Result<Db, Box<dyn Error>> {
        Db::with(Capture::Triggers, ddl, tables).await
    }

    async fn with(
        capture: Capture,
        ddl: &str,
        tables: &[&'static Table],
    ) -> Result<Db, Box<dyn Error>> {
        let db = match capture {
            Capture::Wal => {
                Database::Logical(TestDatabase::on(logical_cluster().await.admin()).await?)
            }
            _ => Database::Shared(TestDb::new().await?),
        };
        let mut client = db.connect().await?;
        client.batch_execute(ddl).await?;
        let sql = dawdle::sql::up_with(tables, capture)?;
        dawdle::sql::apply(&mut client, &sql).await?;
        Ok(Db { client, db })
    }

    /// Another connection to the same database, e.g. for a writer with other settings.
    pub async fn connect(&self) -> Result<Client, Box<dyn Error>> {
        Ok(self.db.connect().await?)
    }

    /// Inserts `rows` through parameters.
    pub async fn insert<T: Fidelity>(&self, client: &Client, rows: &[T]) -> TestResult {
        let statement = client.prepare(&insert_sql::<T>()).await?;
        for row in rows {
            let params = row.params();
            let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
            client.execute(&statement, &params).await?;
        }
        Ok(())
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn table_sql(table: &Table) -> String {
    format!("{}.{}", quoted(table.schema), quoted(table.name))
}

fn insert_sql<T: Fidelity>() -> String {
    let columns: Vec<String> = T::COLUMNS.iter().map(|c| quoted(c)).collect();
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table_sql(T::TABLE),
        columns.join(", "),
        params.join(", ")
    )
}

/// `SELECT <every column> FROM <table> ORDER BY id`.
pub fn select_all<T: Fidelity>() -> String {
    let columns: Vec<String> = T::COLUMNS.iter().map(|c| quoted(c)).collect();
    format!(
        "SELECT {} FROM {} ORDER BY id",
        columns.join(", "),
        table_sql(T::TABLE)
    )
}

/// Reads rows of `T` with a direct query.
pub async fn direct<T: Fidelity>(client: &Client, select: &str) -> Result<Vec<T>, Box<dyn Error>> {
    let rows = client.query(select, &[]).await?;
    Ok(rows.iter().map(T::from_pg).collect::<Result<_, _>>()?)
}

/// The `old` or `new` JSON of every event of `action` on `T`'s table, in order.
pub async fn captured_json<T: Watched>(
    client: &Client,
    action: &str,
    which: &str,
) -> Result<Vec<serde_json::Value>, Box<dyn Error>> {
    assert!(which == "old" || which == "new");
    let from_wal: bool = client
        .query_one(
            "SELECT EXISTS (SELECT FROM dawdle.captures WHERE wal IS NOT NULL)",
            &[],
        )
        .await?
        .get(0);
    if from_wal {
        // As the watcher builds them from the slot, left in it.
        let mut rows = Vec::new();
        for event in dawdle::__private::peek_wal_events(client).await? {
            let event: serde_json::Value = serde_json::from_str(&event)?;
            if event["schema"] == T::TABLE.schema
                && event["table"] == T::TABLE.name
                && event["action"] == action
            {
                rows.push(event[which].clone());
            }
        }
        return Ok(rows);
    }
    // The watcher builds events in Rust; PostgreSQL's readers are its
    // oracle: every waiting event, built both ways, byte for byte.
    let (built, by_sql) = dawdle::__private::compare_encoders(client).await?;
    assert_eq!(
        by_sql,
        0,
        "{}: of the events waiting, {built} were built by the encoder and {by_sql} left to PostgreSQL",
        T::TABLE.type_name
    );
    let rows = client
        .query(
            &format!(
                "SELECT {which} FROM dawdle.events \
                 WHERE schema_name = $1 AND table_name = $2 AND action = $3 ORDER BY id"
            ),
            &[&T::TABLE.schema, &T::TABLE.name, &action],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, Option<serde_json::Value>>(0).unwrap_or_default())
        .collect())
}

/// Decodes every captured `new` (of inserts) or `old`/`new` of `action`.
pub async fn captured<T: Watched>(
    client: &Client,
    action: &str,
    which: &str,
) -> Result<Vec<Result<T, DecodeError>>, Box<dyn Error>> {
    let json = captured_json::<T>(client, action, which).await?;
    Ok(json.iter().map(T::from_json).collect())
}

/// Panics with every differing field unless `event` and `direct` are the same row.
pub fn assert_same<T: Fidelity>(event: &T, direct: &T, json: &serde_json::Value) {
    let diff = event.diff(direct);
    assert!(
        diff.is_empty(),
        "{} decoded from the event differs from the direct query in:\n  {}\nevent JSON: {json}",
        T::TABLE.type_name,
        diff.join("\n  ")
    );
}

/// The Ecto rule for every inserted row of `T`: each captured `new` decodes,
/// and equals the row `select` (ordered like the inserts) reads directly.
pub async fn assert_faithful<T: Fidelity>(client: &Client, select: &str) -> TestResult {
    let direct = direct::<T>(client, select).await?;
    let json = captured_json::<T>(client, "insert", "new").await?;
    assert_eq!(direct.len(), json.len(), "one insert event per row");
    assert!(!direct.is_empty(), "the test wrote rows");
    for (direct, json) in direct.iter().zip(&json) {
        let event = T::from_json(json).unwrap_or_else(|e| panic!("{e}\nevent JSON: {json}"));
        assert_same(&event, direct, json);
    }
    Ok(())
}

/// Checks the Ecto rule for values `strategy` generates: one database, the
/// writes in a [`HOSTILE`] session, 64 cases.
pub fn property<T: Fidelity>(ddl: &str, strategy: impl Strategy<Value = T>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let db = runtime
        .block_on(Db::new(ddl, &[T::TABLE]))
        .expect("database set up");
    runtime
        .block_on(db.client.batch_execute(HOSTILE))
        .expect("hostile settings");
    // Two transactions: the cursor moves past the DELETE's own events too.
    let reset = format!(
        "DELETE FROM {}; COMMIT; {}",
        table_sql(T::TABLE),
        discard_events()
    );
    let select = select_all::<T>();
    let config = Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |row| {
        runtime.block_on(async {
            let fail = |e: Box<dyn Error>| TestCaseError::fail(e.to_string());
            db.client
                .batch_execute(&reset)
                .await
                .map_err(|e| fail(e.into()))?;
            db.insert(&db.client, std::slice::from_ref(&row))
                .await
                .map_err(fail)?;
            let direct = direct::<T>(&db.client, &select).await.map_err(fail)?;
            let json = captured_json::<T>(&db.client, "insert", "new")
                .await
                .map_err(fail)?;
            let [direct] = direct.as_slice() else {
                return Err(TestCaseError::fail("expected one row"));
            };
            let [json] = json.as_slice() else {
                return Err(TestCaseError::fail("expected one event"));
            };
            let event = T::from_json(json)
                .map_err(|e| TestCaseError::fail(format!("{e}\nevent JSON: {json}")))?;
            let diff = event.diff(direct);
            if diff.is_empty() {
                Ok(())
            } else {
                Err(TestCaseError::fail(format!(
                    "differs in:\n  {}\nevent JSON: {json}",
                    diff.join("\n  ")
                )))
            }
        })
    });
    if let Err(e) = result {
        panic!("{}: {e}", T::TABLE.type_name);
    }
}

/// The `DecodeError` of the only captured insert of `T`, as text.
pub async fn decode_error<T: Watched + Debug>(
    client: &Client,
) -> Result<Vec<String>, Box<dyn Error>> {
    let decoded = captured::<T>(client, "insert", "new").await?;
    Ok(decoded
        .into_iter()
        .map(|r| match r {
            Ok(row) => panic!("expected a decode error, got {row:?}"),
            Err(e) => e.to_string(),
        })
        .collect())
}
