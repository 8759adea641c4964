//! dawdle's own objects in PostgreSQL: their names, and every query the
//! watcher and the listener run on them. The migration that creates them
//! is in `render.rs`; a change to a table changes the queries here.

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

/// The watcher's queries, all on its one session (see `crate::watcher`).
pub(crate) mod watcher {
    /// Reads the oldest events, each already as its wire JSON (built by
    /// PostgreSQL, so the watcher only concatenates text).
    pub(crate) const FETCH: &str = r#"
SELECT e."id",
       json_build_object('id', e."id", 'source', (SELECT "source" FROM "dawdle"."origin"),
                         'schema', e."schema_name", 'table', e."table_name",
                         'action', e."action", 'key', e."row_key", 'captured_at', e."captured_at",
                         'txid', e."txid"::text, 'old', e."old", 'new', e."new")::text,
       e."schema_name" || '.' || e."table_name" || ':' || e."row_key"::text
FROM "dawdle"."events" e
WHERE e."id" >= $2
ORDER BY e."id"
LIMIT $1"#;

    /// The same event without its rows, for events too large for a message.
    pub(crate) const FETCH_REFERENCE: &str = r#"
SELECT json_build_object('id', e."id", 'source', (SELECT "source" FROM "dawdle"."origin"),
                         'schema', e."schema_name", 'table', e."table_name",
                         'action', e."action", 'key', e."row_key", 'captured_at', e."captured_at",
                         'txid', e."txid"::text, 'by_ref', true)::text
FROM "dawdle"."events" e
WHERE e."id" = $1"#;

    /// Removes events the queue accepted.
    pub(crate) const DELETE: &str = r#"DELETE FROM "dawdle"."events" WHERE "id" = ANY($1)"#;

    /// Before an event goes by reference, its rows are copied to
    /// `dawdle.payloads`, so that they are there when the message is received.
    pub(crate) const PARK: &str = r#"
INSERT INTO "dawdle"."payloads" ("id", "old", "new", "expires_at")
SELECT "id", "old", "new", now() + make_interval(secs => $2) FROM "dawdle"."events" WHERE "id" = $1
ON CONFLICT ("id") DO NOTHING"#;

    /// Removes payloads of by-reference events nobody handled in time.
    pub(crate) const EXPIRE_PAYLOADS: &str =
        r#"DELETE FROM "dawdle"."payloads" WHERE "expires_at" < now()"#;

    /// Backlog depth (from the id range: two index probes, where `count(*)`
    /// could take longer than the query timeout on a large backlog) and the
    /// age of the oldest event, from the floor up.
    pub(crate) const BACKLOG: &str = r#"SELECT (SELECT max("id") FROM "dawdle"."events") - o."id" + 1,
                      extract(epoch FROM now() - o."captured_at")::float8
               FROM (SELECT "id", "captured_at" FROM "dawdle"."events" WHERE "id" >= $1
                     ORDER BY "id" LIMIT 1) o"#;

    /// Raises the floor when the checkpoint's writers have all ended: one
    /// statement, one snapshot for the check and the lowest waiting id.
    pub(crate) const RAISE_FLOOR: &str = r#"SELECT CASE WHEN pg_snapshot_xmin(pg_current_snapshot())::text::int8 >= $3::int8
                              THEN (SELECT coalesce(min("id"), $2::int8 + 1) FROM "dawdle"."events"
                                    WHERE "id" >= $1::int8 AND "id" <= $2::int8) END"#;

    /// A transaction id of the watcher's own, for the floor's checkpoint.
    pub(crate) const CHECKPOINT: &str = "SELECT pg_current_xact_id()::text::int8";

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

    /// The cache of the event-id sequence.
    pub(crate) const ID_CACHE: &str = r#"SELECT (SELECT s.seqcache FROM pg_catalog.pg_sequence s
        WHERE s.seqrelid = pg_catalog.pg_get_serial_sequence('"dawdle"."events"', 'id')::regclass)"#;

    /// Arms the doorbell: takes its lock exclusively, without waiting.
    pub(crate) const ARM: &str = "SELECT pg_try_advisory_lock($1, $2)";

    /// Disarms the doorbell.
    pub(crate) const DISARM: &str = "SELECT pg_advisory_unlock($1, $2)";
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
