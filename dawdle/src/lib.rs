//! dawdle captures row changes in PostgreSQL and delivers them as typed Rust
//! values.
//!
//! This release holds the capture half: [`#[derive(Watched)]`](derive@Watched)
//! describes a table by a Rust struct, [`sql`] turns the descriptions into
//! triggers that record every change durably in the same transaction, and
//! [`Watched::from_json`] turns a recorded row back into the struct.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

// Lets the crate's own tests and docs use the derive, which names `::dawdle`.
#[allow(unused_extern_crates)]
extern crate self as dawdle;

pub mod decode;
pub mod queue;
pub mod registry;
pub mod sql;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
mod watched;
pub mod watcher;
pub mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use decode::{Decode, DecodeError, Interval};
#[cfg(feature = "sqs")]
pub use queue::SqsQueue;
pub use queue::{MemoryQueue, Queue};
pub use table::{Action, Column, Encoding, Events, Table};
pub use watched::Watched;
pub use watcher::Watcher;

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
/// - `#[dawdle(events(insert, update, delete))]`: the row events to capture,
///   any non-empty subset; all three by default.
/// - `#[dawdle(capture_unchanged)]`: an UPDATE that changes none of the
///   captured columns still produces an event. By default it does not: a
///   change to an uncaptured column is nobody's business here.
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
/// assert_eq!(table.events, Events { insert: true, update: false, delete: true });
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
