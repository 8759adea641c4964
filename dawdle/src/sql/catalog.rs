//! dawdle's own objects in PostgreSQL: their names (and, later, the queries
//! the watcher and listener run on them).

/// dawdle's own schema.
pub const SCHEMA: &str = "dawdle";
/// The durable event table, in [`SCHEMA`].
pub const EVENTS_TABLE: &str = "events";
/// Where rows of events too large for a message wait, in [`SCHEMA`].
pub const PAYLOADS_TABLE: &str = "payloads";
/// The one-row table holding this database's random id, which tells its
/// events apart from other databases' on a shared queue.
pub const ORIGIN_TABLE: &str = "origin";
/// The channel the doorbell rings on.
pub const DOORBELL_CHANNEL: &str = "dawdle_events";
/// The doorbell: the advisory lock key (two `int4`s: `dawd`, `bell` in
/// ASCII) that a sleeping watcher holds in exclusive mode. A capture trigger
/// tries to take it in shared mode for its transaction: it fails only while
/// the watcher sleeps, and only then does the writer notify. See
/// [`crate::watcher`].
pub const DOORBELL_LOCK: (i32, i32) = (0x6461_7764, 0x6265_6c6c);

/// Dollar quote around trigger bodies; column overrides may not contain it.
pub(crate) const BODY_QUOTE: &str = "$dawdle$";
