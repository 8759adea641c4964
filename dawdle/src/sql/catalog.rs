//! dawdle's own objects in PostgreSQL: their names, and every query the
//! watcher and the listener run on them. The migration that creates them
//! is in `render.rs`; a change to a table changes the queries here.

/// dawdle's own schema.
pub const SCHEMA: &str = "dawdle";
/// The view of the events waiting to be sent, in [`SCHEMA`]: one row per
/// captured change, with its rows as JSON, as the watcher reads them.
pub const EVENTS_TABLE: &str = "events";
/// Where rows of events too large for a message wait, in [`SCHEMA`].
pub const PAYLOADS_TABLE: &str = "payloads";
/// The one-row table holding this database's random id, which tells its
/// events apart from other databases' on a shared queue.
pub const ORIGIN_TABLE: &str = "origin";
/// Events the queue refused even by reference, kept with the reason.
pub const HELD_TABLE: &str = "held";
/// The one-row table holding the watcher's position: which events were sent.
pub const CURSOR_TABLE: &str = "cursor";
/// One row per captured table: the function that reads its events, and its
/// event tables.
pub const CAPTURES_TABLE: &str = "captures";
/// Signals waiting for their time to be delivered, in [`SCHEMA`].
pub const DELAYED_TABLE: &str = "delayed";
/// The cursors of backfills, one row per table, in [`SCHEMA`].
pub const BACKFILLS_TABLE: &str = "backfills";
/// The key of the signals' event tables in [`CAPTURES_TABLE`].
pub(crate) const SIGNALS_CAPTURE: &str = "dawdle signals";
/// The sequence of event ids, shared by every captured table.
pub const EVENT_ID_SEQUENCE: &str = "event_id";
/// dawdle 0.1's event table, renamed by the up migration and read to its
/// end, so that an upgrade loses no event still waiting in it.
pub(crate) const LEGACY_TABLE: &str = "events:0.1";
/// Event tables per captured table: a transaction writes to slot
/// `(txid >> SPAN_BITS) % SLOTS`, so that the watcher can empty a slot that
/// no running transaction can write to with one TRUNCATE.
pub(crate) const SLOTS: u64 = 3;
/// A slot takes the events of 2^`SPAN_BITS` consecutive transaction ids.
pub(crate) const SPAN_BITS: u32 = 12;
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

/// The watcher's queries, all on its one session (see `crate::watcher`).
pub(crate) mod watcher {
    /// The watcher's position, at the start of its session.
    pub(crate) const CURSOR: &str =
        r#"SELECT "read"::text, "window"::text, "after" FROM "dawdle"."cursor""#;

    /// A page of a round's window: the first `$4` events after id `$3`
    /// (outside any transaction: the window's bounds are explicit), each
    /// already as its wire JSON (built by PostgreSQL, so the watcher only
    /// concatenates text), in id order, with the snapshot that ends a new
    /// window (when `$2` is NULL).
    pub(crate) const PAGE: &str = r#"
SELECT e."id", e."txid"::text,
       CASE WHEN e."action" = 'signal' THEN
         json_build_object('id', e."id", 'source', (SELECT "source" FROM "dawdle"."origin"),
                           'schema', e."schema_name", 'table', e."table_name",
                           'action', e."action", 'key', e."row_key", 'captured_at', e."captured_at",
                           'txid', e."txid"::text, 'signal', e."signal", 'deliver_at', e."deliver_at",
                           'payload', e."payload")
       ELSE
         json_build_object('id', e."id", 'source', (SELECT "source" FROM "dawdle"."origin"),
                           'schema', e."schema_name", 'table', e."table_name",
                           'action', e."action", 'key', e."row_key", 'captured_at', e."captured_at",
                           'txid', e."txid"::text, 'old', e."old", 'new', e."new")
       END::text,
       e."schema_name" || '.' || e."table_name" || ':' || e."row_key"::text,
       s."upto"::text
FROM (SELECT coalesce($2::text::pg_snapshot, pg_current_snapshot()) AS "upto") s,
     LATERAL "dawdle"."window"($1::text::pg_snapshot, s."upto", $3, true, $4) e
ORDER BY e."id"
LIMIT $4"#;

    /// Saves the watcher's position.
    pub(crate) const SAVE: &str = r#"UPDATE "dawdle"."cursor"
SET "read" = $1::text::pg_snapshot, "window" = $2::text::pg_snapshot, "after" = $3"#;

    /// Starts the transaction that a round needs when it writes (parks
    /// payloads, or sends to a PgQueue in this database).
    pub(crate) const BEGIN: &str = "BEGIN";

    /// Ends a round's transaction, after [`SAVE`].
    pub(crate) const COMMIT: &str = "COMMIT";

    /// Ends a round that changed nothing.
    pub(crate) const ROLLBACK: &str = "ROLLBACK";

    /// Before an event goes by reference, its rows (a signal's payload, as
    /// `new`) are copied to `dawdle.payloads`, so that they are there when
    /// the message is received, until `$3` seconds from now (NULL: until a
    /// listener deletes them). `->` on `json` keeps the text as it is.
    pub(crate) const PARK: &str = r#"
INSERT INTO "dawdle"."payloads" ("id", "old", "new", "expires_at")
SELECT $1, j -> 'old', CASE WHEN j ->> 'action' = 'signal' THEN j -> 'payload' ELSE j -> 'new' END,
       now() + make_interval(secs => $3)
FROM (SELECT $2::text::json AS j) e
ON CONFLICT ("id") DO NOTHING"#;

    /// The same event without its rows (or payload), for events too large
    /// for a message.
    pub(crate) const REFERENCE: &str = r#"
SELECT CASE WHEN j ->> 'action' = 'signal' THEN
  json_build_object('id', j -> 'id', 'source', j -> 'source', 'schema', j -> 'schema',
                    'table', j -> 'table', 'action', j -> 'action', 'key', j -> 'key',
                    'captured_at', j -> 'captured_at', 'txid', j -> 'txid',
                    'signal', j -> 'signal', 'deliver_at', j -> 'deliver_at', 'by_ref', true)
ELSE
  json_build_object('id', j -> 'id', 'source', j -> 'source', 'schema', j -> 'schema',
                    'table', j -> 'table', 'action', j -> 'action', 'key', j -> 'key',
                    'captured_at', j -> 'captured_at', 'txid', j -> 'txid', 'by_ref', true)
END::text
FROM (SELECT $1::text::json AS j) e"#;

    /// Keeps an event that the queue refuses even by reference, with the
    /// message and the reason (a row of its payload stays parked).
    pub(crate) const HOLD: &str = r#"
INSERT INTO "dawdle"."held" ("id", "message", "reason") VALUES ($1, $2, $3)
ON CONFLICT ("id") DO NOTHING"#;

    /// Removes payloads of by-reference events whose message the queue can
    /// no longer deliver (never those without an `expires_at`).
    pub(crate) const EXPIRE_PAYLOADS: &str =
        r#"DELETE FROM "dawdle"."payloads" WHERE "expires_at" < now()"#;

    /// Backlog depth and the age of the oldest waiting event.
    pub(crate) const BACKLOG: &str = r#"SELECT "events", "oldest_age" FROM "dawdle"."backlog"()"#;

    /// The event tables of every captured table, and for dawdle 0.1's event
    /// table the transaction before which all its events were written.
    pub(crate) const EVENT_TABLES: &str =
        r#"SELECT "slots", "until"::text::int8 FROM "dawdle"."captures""#;

    /// Locks event tables for a TRUNCATE, without waiting for writers (a
    /// table still written to is not emptied), and takes a transaction id
    /// after the locks are held.
    pub(crate) fn lock(tables: &[String]) -> String {
        format!(
            "BEGIN; SET LOCAL lock_timeout = '50ms'; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE; \
             SELECT pg_current_xact_id()::text",
            tables.join(", ")
        )
    }

    /// Empties locked event tables and commits.
    pub(crate) fn truncate(tables: &[String]) -> String {
        format!("TRUNCATE {}; COMMIT", tables.join(", "))
    }

    /// Moves the delayed signals that are due into this transaction's event
    /// table (at most `$1`), and says how many, and in how many seconds the
    /// next one is due (NULL: none waits).
    pub(crate) const RELEASE: &str =
        r#"SELECT "released", "next_due" FROM "dawdle"."release_signals"($1)"#;

    /// This database's origin id.
    pub(crate) const SOURCE: &str = r#"SELECT "source"::text FROM "dawdle"."origin""#;

    /// Takes the leader's lock, without waiting.
    pub(crate) const LEAD: &str = "SELECT pg_try_advisory_lock($1)";

    /// Whether this session holds the leader's lock (a bigint key is held
    /// as high 32 bits, low 32 bits, 1).
    pub(crate) const STILL_LEADS: &str = "SELECT EXISTS (SELECT FROM pg_catalog.pg_locks WHERE locktype = 'advisory' \
         AND pid = pg_catalog.pg_backend_pid() AND database = (SELECT oid FROM pg_catalog.pg_database \
         WHERE datname = pg_catalog.current_database()) \
         AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = 1 AND granted)";

    /// The tables below a captured one that lack its triggers (none where
    /// up is older than this check).
    pub(crate) const UNCAPTURED: &str = r#"SELECT CASE WHEN to_regprocedure('"dawdle"."uncaptured"()') IS NULL
        THEN '{}'::text[] ELSE "dawdle"."uncaptured"() END"#;

    /// The cache of the event-id sequence.
    pub(crate) const ID_CACHE: &str = r#"SELECT (SELECT s.seqcache FROM pg_catalog.pg_sequence s
        WHERE s.seqrelid = '"dawdle"."event_id"'::regclass)"#;

    /// Arms the doorbell: takes its lock exclusively, without waiting.
    pub(crate) const ARM: &str = "SELECT pg_try_advisory_lock($1, $2)";

    /// Disarms the doorbell.
    pub(crate) const DISARM: &str = "SELECT pg_advisory_unlock($1, $2)";
}

/// What an application runs to signal, on its own client.
pub(crate) mod signals {
    /// Records a signal: the name, the payload's JSON text, the time to
    /// deliver it at (text, or NULL for now) and a delay in seconds.
    pub(crate) const SIGNAL: &str = r#"SELECT "dawdle"."signal"($1::text, $2::text::json,
    coalesce($3::text::timestamptz, clock_timestamp()) + make_interval(secs => $4::float8))"#;

    /// Cancels a delayed signal by its id.
    pub(crate) const CANCEL: &str = r#"SELECT "dawdle"."cancel_signal"($1::int8)"#;
}

/// The listener's queries, on its pool.
pub(crate) mod listener {
    /// The rows of a by-reference event.
    pub(crate) const PAYLOAD: &str =
        r#"SELECT "old"::text, "new"::text FROM "dawdle"."payloads" WHERE "id" = $1"#;

    /// Removes the rows of handled by-reference events.
    pub(crate) const FORGET_PAYLOADS: &str =
        r#"DELETE FROM "dawdle"."payloads" WHERE "id" = ANY($1)"#;
}
