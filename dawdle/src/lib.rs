//! dawdle captures row changes in PostgreSQL and delivers them, as typed
//! Rust values, to handler functions — in one process or across many,
//! through PostgreSQL itself or Amazon SQS.
//!
//! # Getting started
//!
//! 1. Describe a table with a struct. Only the columns it names are captured.
//!
//!    ```
//!    use dawdle::Watched;
//!
//!    #[derive(Debug, Clone, PartialEq, Watched)]
//!    #[dawdle(table = "users")]                 // schema "public" by default
//!    pub struct User {
//!        #[dawdle(primary_key)]
//!        pub id: uuid::Uuid,
//!        pub name: String,
//!        pub settings: serde_json::Value,      // jsonb: object keys stay strings
//!        pub inserted_at: chrono::NaiveDateTime,
//!    }
//!    ```
//!
//! 2. Install the triggers: a three-line `dawdle-sql` bin in your crate
//!    prints the migration for every `Watched` type ([`sql::cli`]), or apply
//!    it from code:
//!
//!    ```no_run
//!    # async fn demo(client: &mut tokio_postgres::Client) -> Result<(), dawdle::sql::SqlError> {
//!    dawdle::sql::apply(client, &dawdle::sql::up_registered()?).await?;
//!    # Ok(()) }
//!    ```
//!
//! 3. Write handlers. The argument's type chooses what they receive:
//!    [`Insert`], [`Update`], [`Delete`] or [`Change`] of a `Watched` type.
//!
//!    ```
//!    # use dawdle::Watched;
//!    # #[derive(Debug, Clone, Watched)]
//!    # #[dawdle(table = "users")]
//!    # pub struct User { pub id: i64, pub name: String }
//!    use dawdle::{Insert, Update};
//!
//!    #[dawdle::handler]
//!    async fn welcome(event: Insert<User>) -> Result<(), std::io::Error> {
//!        println!("welcome, {} (event {})", event.new.name, event.meta.id);
//!        Ok(())
//!    }
//!
//!    #[dawdle::handler]
//!    async fn renamed(event: Update<User>) {
//!        println!("{} is now {}", event.old.name, event.new.name);
//!    }
//!    ```
//!
//! 4. Run the watcher (moves events from PostgreSQL to the queue; one active
//!    per database) and the listener (calls the handlers), here or in
//!    separate processes:
//!
//!    ```no_run
//!    # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//!    // A URL or "host=... user=...", with sslmode and sslrootcert for TLS
//!    let database = dawdle::Database::from_url(&std::env::var("DATABASE_URL")?)?;
//!    let runtime = dawdle::Runtime::builder()
//!        .database(database)                      // or a tokio_postgres::Config
//!        // No .queue(..): a PgQueue on the same database. Or
//!        // .queue(dawdle::SqsQueue::new(client, url)), .queue(dawdle::MemoryQueue::new())
//!        .watch()
//!        .listen()
//!        .build()?;
//!    let handle = runtime.start();
//!    // ...
//!    handle.shutdown().await?;                    // nothing lost, nothing half-handled
//!    # Ok(()) }
//!    ```
//!
//!    The runtime finds the handlers and `Watched` types linked into the
//!    program: a bin whose handlers live in its package's library needs
//!    `use my_app as _;`, or [`RuntimeBuilder::build`] fails with
//!    [`BuildError::NoHandlers`]. The README's "Five minutes with dawdle"
//!    is the whole program, with its dependencies and its table.
//!
//! # Guarantees
//!
//! - Every change is recorded by the transaction that makes it, and counts
//!   as sent only once the queue accepted it. Handlers run at least once per
//!   event; a redelivery carries the same [`Meta::id`], the idempotency key.
//! - On FIFO queues, within a row (its message group), the first handling of
//!   change k+1 starts only after change k was handled successfully.
//! - A decoded row equals what a direct tokio-postgres query of the same row
//!   returns, field for field (see [`decode`] for the types).
//! - A hung query or send cannot hold the watcher's leadership: each has a
//!   timeout, and a send is fenced on the leader's lock.
//! - [`RuntimeHandle::shutdown`] loses nothing; what a crash costs depends
//!   on the queue: nothing with [`PgQueue`] or [`SqsQueue`], what it held
//!   with [`MemoryQueue`].
//! - Writers do not pay a NOTIFY under load (see [`watcher`]).
//! - Messages are versioned JSON, readable from any language ([`wire`]).
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Lets the crate's own tests and docs use the derive, which names `::dawdle`.
#[allow(unused_extern_crates)]
extern crate self as dawdle;

pub mod backfill;
mod backoff;
#[cfg(feature = "console")]
pub mod console;
pub mod database;
pub mod decode;
pub mod event;
mod fnv;
pub mod handler;
mod listener;
pub mod observability;
pub mod queue;
pub mod registry;
mod runtime;
pub mod signal;
pub mod sql;
pub mod status;
mod sync;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
mod wal;
mod watched;
pub mod watcher;
pub mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use database::Database;
pub use decode::{Decode, DecodeError, Interval};
pub use event::{Change, Delete, Insert, Meta, Signaled, Snapshot, Truncate, Update};
#[cfg(feature = "sqs")]
pub use queue::SqsQueue;
pub use queue::{MemoryQueue, PgQueue, Queue};
pub use runtime::{BuildError, Runtime, RuntimeBuilder, RuntimeHandle};
pub use signal::{signal, Signal};
pub use table::{Action, Column, Encoding, Events, SessionSettings, Table};
pub use watched::Watched;
pub use watcher::Watcher;

// The README's Rust blocks, compiled as doctests (`cargo test --doc`) so that
// its first steps keep working as written; blocks that cannot stand alone
// are marked `ignore`. Not public API: it exists only under rustdoc's test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Derives [`Watched`](trait@Watched) for a struct whose fields are the
/// captured columns of one table.
///
/// ```
/// use dawdle::Watched;
///
/// #[derive(Debug, PartialEq, Watched)]
/// #[dawdle(table = "users")]
/// pub struct User {
///     pub id: uuid::Uuid,
///     pub name: String,
///     pub settings: serde_json::Value,
///     pub inserted_at: chrono::NaiveDateTime,
/// }
///
/// let user = User::from_json(&serde_json::json!({
///     "id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
///     "name": "Ada",
///     "settings": { "theme": "dark" },
///     "inserted_at": "2024-05-01T12:30:00",
/// }))?;
/// assert_eq!(user.name, "Ada");
/// assert_eq!(User::TABLE.primary_key().next().unwrap().name, "id");
/// # Ok::<(), dawdle::DecodeError>(())
/// ```
///
/// The derive emits the capture description, [`Watched::TABLE`], the decoder,
/// [`Watched::decode`], and registers the type so that [`registry::tables`]
/// and [`sql`] find it without a hand-kept list. Only the struct's fields
/// leave the database: other columns of the table are not captured.
///
/// Each field's type decodes with its [`Decode`] implementation, or with its
/// `serde::Deserialize` when marked `#[dawdle(serde)]`; a type with neither is
/// a compile error on the field's type. `Option<T>` holds a nullable column.
///
/// # Struct attributes
///
/// - `#[dawdle(table = "name")]` (required): the table, case-sensitive and
///   taken as written: `table = "Order Items"` needs no quotes of its own.
/// - `#[dawdle(schema = "name")]`: the table's schema; `public` by default.
/// - `#[dawdle(events(insert, update, delete, truncate))]`: the events to
///   capture, any non-empty subset; all four by default. A `truncate` is one
///   event for the table (see [`Truncate`]).
/// - `#[dawdle(capture_unchanged)]`: an UPDATE that changes none of the
///   captured columns still produces an event. By default it does not: a
///   change to an uncaptured column is nobody's business here.
/// - `#[dawdle(capture_replica)]`: the triggers fire in sessions with
///   `session_replication_role = replica` too (`ENABLE ALWAYS`): on a
///   logical-replication subscriber, and under `pg_restore
///   --disable-triggers`. Like any trigger, they do not by default.
/// - `#[dawdle(crate = "path")]`: the path to this crate in the generated
///   code, for crates that re-export dawdle under another name;
///   `::dawdle` by default.
///
/// Names are at most 63 bytes, PostgreSQL's limit.
///
/// ```
/// // dawdle under another name, as in a crate that re-exports it.
/// use ::dawdle as db;
/// use db::{Events, Watched};
///
/// #[derive(Watched)]
/// #[dawdle(crate = "db")]
/// #[dawdle(schema = "audit", table = "Log Entries", events(insert, delete))]
/// #[dawdle(capture_unchanged)]
/// struct LogEntry {
///     id: i64,
///     message: String,
/// }
///
/// let table = LogEntry::TABLE;
/// assert_eq!((table.schema, table.name), ("audit", "Log Entries"));
/// assert_eq!(table.events, Events { insert: true, update: false, delete: true, truncate: false });
/// assert!(table.capture_unchanged);
/// ```
///
/// # Field attributes
///
/// - `#[dawdle(primary_key)]`: the field is (part of) the primary key; mark
///   every field of a composite key. Without it anywhere, a field named `id`
///   is the key, and a struct with neither does not compile.
/// - `#[dawdle(rename = "column")]`: the column's name, when it is not the
///   field's name. Each column can be captured by one field only.
/// - `#[dawdle(sql = "expression")]`: captures the value of an SQL expression
///   instead of the column itself, with `$1` standing for the column; for
///   types dawdle cannot read directly, such as PostGIS geometries.
/// - `#[dawdle(serde)]`: decodes the field with its `serde::Deserialize`
///   from the column's JSON, instead of with [`Decode`]: for typed `jsonb`, and
///   for Rust enums that stand for PostgreSQL enums.
///
/// ```
/// use dawdle::Watched;
///
/// /// `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`
/// #[derive(Debug, PartialEq, serde::Deserialize)]
/// #[serde(rename_all = "lowercase")]
/// enum Mood { Sad, Ok, Happy }
///
/// #[derive(Watched)]
/// #[dawdle(table = "check_ins")]
/// struct CheckIn {
///     #[dawdle(primary_key)]
///     user_id: i64,
///     #[dawdle(primary_key, rename = "day")]
///     date: chrono::NaiveDate,
///     #[dawdle(serde)]
///     mood: Mood,
///     #[dawdle(sql = "ST_AsGeoJSON($1)")]
///     location: Option<String>,
/// }
///
/// let key: Vec<_> = CheckIn::TABLE.primary_key().map(|c| c.name).collect();
/// assert_eq!(key, ["user_id", "day"]);
///
/// let check_in = CheckIn::from_json(&serde_json::json!({
///     "user_id": 7,
///     "day": "2024-05-01",
///     "mood": "happy",
///     "location": null,
/// }))?;
/// assert_eq!(check_in.mood, Mood::Happy);
/// # Ok::<(), dawdle::DecodeError>(())
/// ```
#[cfg(feature = "derive")]
pub use dawdle_derive::Watched;

/// Derives [`Signal`](trait@Signal) for an application event type, which
/// must also implement serde's `Serialize` and `Deserialize` (derive them
/// beside it).
///
/// - `#[dawdle(name = "billing.invoice_due")]`: the wire name, which
///   chooses the handlers. Without it, the type's path
///   (`my_app::billing::InvoiceDue`), which changes when the type moves:
///   name every signal that outlives a refactoring.
/// - `#[dawdle(crate = "...")]`: the path to this crate, when it is
///   re-exported under another name.
///
/// Two types with one name make [`RuntimeBuilder::build`] fail, listing
/// both. A generic type cannot be a signal.
///
/// ```
/// #[derive(Debug, serde::Serialize, serde::Deserialize, dawdle::Signal)]
/// #[dawdle(name = "billing.invoice_due")]
/// pub struct InvoiceDue {
///     pub invoice: i64,
/// }
///
/// assert_eq!(<InvoiceDue as dawdle::Signal>::NAME, "billing.invoice_due");
/// ```
#[cfg(feature = "derive")]
pub use dawdle_derive::Signal;

/// Registers an `async fn` as a handler: the listener calls it with every
/// event of the kind its argument names.
///
/// ```
/// use dawdle::{Change, Insert, Update, Watched};
///
/// #[derive(Debug, Clone, Watched)]
/// #[dawdle(table = "users")]
/// pub struct User {
///     pub id: i64,
///     pub name: String,
/// }
///
/// #[dawdle::handler]
/// async fn welcome(event: Insert<User>) -> Result<(), std::io::Error> {
///     println!("welcome, {} (event {})", event.new.name, event.meta.id);
///     Ok(())
/// }
///
/// #[dawdle::handler]
/// async fn renamed(event: Update<User>) {
///     if event.old.name != event.new.name {
///         println!("{} is now {}", event.old.name, event.new.name);
///     }
/// }
///
/// #[dawdle::handler(name = "audit")]
/// async fn audit(event: Change<User>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     println!("{} of a user", event.meta().action);
///     Ok(())
/// }
/// ```
///
/// # The signature
///
/// The function takes one argument, the event, whose type chooses what the
/// handler receives, for a [`Watched`](trait@Watched) type `T`:
///
/// | Argument            | Receives                                         |
/// |---------------------|--------------------------------------------------|
/// | [`Insert<T>`]       | each insert into `T`'s table: the row as `new`   |
/// | [`Update<T>`]       | each update: the row as `old` and as `new`       |
/// | [`Delete<T>`]       | each delete: the row as `old`                    |
/// | [`Snapshot<T>`]     | each row a [`backfill`] reads: as `row`          |
/// | [`Change<T>`]       | all four, as an enum                             |
/// | [`Truncate<T>`]     | each `TRUNCATE` of the table: no rows            |
///
/// or, for a [`Signal`](trait@Signal) type `T`, [`Signaled<T>`]: each
/// signal of `T`'s name, its value as `payload`.
///
/// Each carries its [`Meta`]: the event's id, schema, table, action and
/// capture time. Any pattern can bind it: `Insert { new, meta }: Insert<User>`.
///
/// The function returns `()`, or `Result<(), E>` for any
/// `E: Display + Send + 'static`: `String`, `anyhow::Error`,
/// `Box<dyn Error + Send + Sync>`, your own error type. An `Err` is logged
/// with its `Display` ([`handler::HandlerError`]) and the event is delivered
/// again later, as after a panic.
///
/// The future must be `Send`, as the listener may poll it on any thread: do
/// not hold an `Rc` or a `std::sync::MutexGuard` across an `.await`. A
/// handler is a free `async fn`: not a method, not generic, not `unsafe`.
///
/// A wrong signature is a compile error on the token at fault:
///
/// ```compile_fail,E0277
/// # use dawdle::Watched;
/// # #[derive(Watched)]
/// # #[dawdle(table = "users")]
/// # pub struct User { pub id: i64 }
/// #[dawdle::handler]
/// async fn welcome(user: User) {} // error: the trait bound `User: EventArg` is not satisfied
/// ```
///
/// Events are delivered at least once: a handler may see an event again
/// (after a crash, or when another handler of the same event failed), with
/// the same [`Meta::id`]. Use it to make handlers idempotent.
///
/// # Options
///
/// - `name = "..."`: the handler's name, in logs and errors. By default it is
///   the module path and the function name (`my_app::users::welcome`); give
///   a name of your own to keep it stable when the function moves. Names are
///   unique within a program: building the runtime fails on duplicates, and
///   lists them all.
/// - `crate = "path"`: the path to this crate in the generated code, for
///   crates that re-export dawdle under another name; `::dawdle` by default.
///
/// ```
/// // dawdle under another name, as in a crate that re-exports it.
/// use ::dawdle as db;
/// # use db::Watched;
/// # #[derive(Watched)]
/// # #[dawdle(crate = "db", table = "users")]
/// # pub struct User { pub id: i64 }
///
/// #[db::handler(crate = "db", name = "users.welcome")]
/// async fn welcome(event: db::Insert<User>) {}
/// ```
///
/// # What it generates
///
/// The function stays exactly as written: call it from your tests like any
/// `async fn`. Beside it, the macro registers the handler, so that the
/// listener finds every handler linked into the program without a list to
/// keep ([`handler::handlers`] lists them).
///
/// ```
/// # use dawdle::{Action, Insert, Meta, Watched};
/// # #[derive(Watched)]
/// # #[dawdle(table = "users")]
/// # pub struct User { pub id: i64, pub name: String }
/// #[dawdle::handler]
/// async fn welcome(event: Insert<User>) -> Result<(), String> {
///     if event.new.name.is_empty() {
///         return Err(format!("user {} has no name", event.new.id));
///     }
///     Ok(())
/// }
///
/// let event = Insert {
///     new: User { id: 1, name: String::new() },
///     meta: Meta {
///         id: 42,
///         source: None,
///         schema: "public".to_owned(),
///         table: "users".to_owned(),
///         action: Action::Insert,
///         captured_at: chrono::Utc::now().fixed_offset(),
///         txid: "1".to_owned(),
///     },
/// };
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// assert_eq!(runtime.block_on(welcome(event)), Err("user 1 has no name".to_owned()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(feature = "derive")]
pub use dawdle_derive::handler;
