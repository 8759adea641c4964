//! dawdle's own objects in PostgreSQL: their names, and every query the
//! watcher, the listener, the backfill and `dawdle::status` run on them. The migration that creates them
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
/// Events the watcher read, per minute, table and action, for the last
/// day: what the console draws.
pub const ACTIVITY_TABLE: &str = "activity";
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

/// The advisory lock key of the active watcher: `dawdle` in ASCII. The
/// watcher takes it (`pg_try_advisory_lock(bigint)`, see [`crate::watcher`]);
/// advisory locks are per database, so there is one leader per database.
pub(crate) const LEADER_LOCK: i64 = 0x6461_7764_6c65;

/// Dollar quote around trigger bodies; column overrides may not contain it.
pub(crate) const BODY_QUOTE: &str = "$dawdle$";

/// The watcher's queries, all on its one session (see `crate::watcher`).
pub(crate) mod watcher {
    /// The watcher's position, at the start of its session.
    pub(crate) const CURSOR: &str =
        r#"SELECT "read"::text, "window"::text, "after" FROM "dawdle"."cursor""#;

    /// The wire JSON of an event of the window `e`, built by PostgreSQL:
    /// a signal's, or a row's from the reader's JSON.
    macro_rules! event_json {
        () => {
            r#"CASE WHEN e."action" = 'signal' THEN
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
       END::text"#
        };
    }

    /// The FIFO group of an event of the window `e`: `schema.table:key`.
    macro_rules! event_group {
        () => {
            r#"e."schema_name" || '.' || e."table_name" || ':' || e."row_key"::text"#
        };
    }

    /// The bounds of a page of the window function `$window`.
    macro_rules! page_of {
        ($window:literal) => {
            concat!(
                r##"
FROM (SELECT n."snapshot" AS "upto", n."snapshot"::text AS "upto_text"
      FROM (SELECT coalesce($2::text::pg_snapshot, pg_current_snapshot()) AS "snapshot") n
      OFFSET 0) s,
     LATERAL "dawdle".""##,
                $window,
                r#""($1::text::pg_snapshot, s."upto", $3, true, $4) e
ORDER BY e."id"
LIMIT $4"#
            )
        };
    }

    /// A page of a round's window: the first `$4` events after id `$3`
    /// (outside any transaction: the window's bounds are explicit), each
    /// as its wire JSON built by PostgreSQL, in id order, with the snapshot
    /// that ends a new window (when `$2` is NULL). The watcher reads
    /// [`PAGE_TEXT`]; this builds what its encoder could not.
    pub(crate) const PAGE: &str = concat!(
        r#"
SELECT e."id", e."txid"::text,
       "#,
        event_json!(),
        ",\n       ",
        event_group!(),
        r#",
       s."upto_text", e."schema_name"::text, e."table_name"::text, e."signal"::text,
       e."action"::text"#,
        page_of!("window")
    );

    /// [`PAGE`], with the rows' captured columns as record text where a
    /// text reader read them (`shape` not NULL), which the watcher builds
    /// into events itself: the event JSON and the FIFO group are then
    /// NULL. Columns 0 to 8 are [`PAGE`]'s; then the capture time, the old
    /// and the new row's text, the shape, and the origin (read with the
    /// page: a copied database may take a new one while the watcher runs).
    pub(crate) const PAGE_TEXT: &str = concat!(
        r#"
SELECT e."id", e."txid"::text,
       CASE WHEN e."shape" IS NULL THEN "#,
        event_json!(),
        r#" END,
       CASE WHEN e."shape" IS NULL THEN "#,
        event_group!(),
        r#" END,
       s."upto_text", e."schema_name"::text, e."table_name"::text, e."signal"::text,
       e."action"::text, e."captured_at", e."old_text", e."new_text", e."shape",
       (SELECT "source"::text FROM "dawdle"."origin")"#,
        page_of!("window_text")
    );

    /// What the watcher needs to build the events of a table's text
    /// reader (`$1`: its key in the registry): the `encode` spec, the
    /// shape of the rows read now, and the event tables' column types.
    pub(crate) const ENCODE_SPEC: &str = r#"
SELECT k."encode", hashtext(k."encode" || ';' || t."types"), t."types"
FROM "dawdle"."captures" k,
     LATERAL (SELECT "dawdle"."stored_types"(k."slots"[1]::regclass,
               ARRAY(SELECT jsonb_array_elements_text(k."encode"::jsonb->'stored'))) AS "types") t
WHERE k."name" = $1 AND k."encode" IS NOT NULL"#;

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

    /// [`PARK`] for an event sent to several routes (`$4`): parked again,
    /// it gains the routes it lacks (which needs UPDATE on the table, so a
    /// watcher of one route does without it).
    pub(crate) const PARK_ROUTED: &str = r#"
INSERT INTO "dawdle"."payloads" ("id", "old", "new", "expires_at", "routes")
SELECT $1, j -> 'old', CASE WHEN j ->> 'action' = 'signal' THEN j -> 'payload' ELSE j -> 'new' END,
       now() + make_interval(secs => $3), $4::text[]
FROM (SELECT $2::text::json AS j) e
ON CONFLICT ("id") DO UPDATE
SET "routes" = ARRAY(SELECT DISTINCT r FROM unnest("payloads"."routes" || EXCLUDED."routes") r)
WHERE "payloads"."routes" IS NOT NULL"#;

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

    /// Keeps an event that the queue of route `$4` refuses even by
    /// reference, with the message and the reason (a row of its payload
    /// stays parked).
    pub(crate) const HOLD: &str = r#"
INSERT INTO "dawdle"."held" ("id", "route", "message", "reason") VALUES ($1, $4, $2, $3)
ON CONFLICT ("id", "route") DO NOTHING"#;

    /// Removes payloads of by-reference events whose message the queue can
    /// no longer deliver (never those without an `expires_at`).
    pub(crate) const EXPIRE_PAYLOADS: &str =
        r#"DELETE FROM "dawdle"."payloads" WHERE "expires_at" < now()"#;

    /// Adds events read (`$1` schemas, `$2` tables, `$3` actions, `$4`
    /// counts) to this minute's activity, and forgets what is older than a
    /// day.
    pub(crate) const ACTIVITY: &str = r#"
WITH "old" AS (DELETE FROM "dawdle"."activity" WHERE "minute" < now() - interval '1 day')
INSERT INTO "dawdle"."activity" AS a ("minute", "schema_name", "table_name", "action", "events")
SELECT date_trunc('minute', now()), s, t, x, n
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS u(s, t, x, n)
ON CONFLICT ("minute", "schema_name", "table_name", "action")
DO UPDATE SET "events" = a."events" + EXCLUDED."events""#;

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

/// What a backfill runs, on the client it is given, and what operators'
/// tools run to list, pause, resume and cancel backfills (see
/// `crate::backfill`). It waits for the watcher's backlog with
/// [`watcher::BACKLOG`].
pub(crate) mod backfill {
    /// For the capture named `$1` (`schema.table`): its snapshot function
    /// and its table, both quoted and qualified (NULL, NULL when no capture
    /// of that name can be backfilled), and the names of those that can.
    pub(crate) const CAPTURE: &str = r#"
SELECT (SELECT "snapshot" FROM "dawdle"."captures" WHERE "name" = $1),
       (SELECT "target" FROM "dawdle"."captures" WHERE "name" = $1),
       (SELECT string_agg("name", ', ' ORDER BY "name") FROM "dawdle"."captures"
        WHERE "snapshot" IS NOT NULL)"#;

    /// Registers the backfill of `$1` with filter `$2` (NULL: every row),
    /// from the first row when none is registered, the last one finished
    /// (or cancelled, which finishes it), or `$3` (restart) holds; returns
    /// the filter and rows read of the backfill to run, which is the
    /// unfinished one otherwise (paused or not).
    pub(crate) const START: &str = r#"
WITH fresh AS (
  INSERT INTO "dawdle"."backfills" ("name", "filter") VALUES ($1, $2)
  ON CONFLICT ("name") DO UPDATE SET "filter" = EXCLUDED."filter", "after" = NULL, "rows_read" = 0,
    "started_at" = now(), "updated_at" = now(), "finished_at" = NULL, "rows_total" = NULL,
    "paused_at" = NULL, "cancelled_at" = NULL, "resumed_at" = NULL, "rows_at_resume" = 0
  WHERE $3 OR "backfills"."finished_at" IS NOT NULL
  RETURNING "filter", "rows_read")
SELECT * FROM fresh
UNION ALL
SELECT "filter", "rows_read" FROM "dawdle"."backfills" WHERE "name" = $1 AND NOT EXISTS (SELECT FROM fresh)"#;

    /// The rows of `target` (a quoted table name) for which `filter`, the
    /// user's SQL condition, holds.
    pub(crate) fn count(target: &str, filter: &str) -> String {
        format!("SELECT count(*) FROM {target} WHERE ({filter})")
    }

    /// The planner's estimate of the rows of table `$1` (a quoted name):
    /// -1 when it was never analyzed.
    pub(crate) const ESTIMATE: &str =
        "SELECT reltuples::int8 FROM pg_catalog.pg_class WHERE oid = $1::text::regclass";

    /// Reads the next batch of at most `$1` rows with `function`, the
    /// table's snapshot function (quoted): the rows read, and whether the
    /// last row was read.
    pub(crate) fn batch(function: &str) -> String {
        format!(r#"SELECT "read", "finished" FROM {function}($1)"#)
    }

    /// Run `$3` (a random uuid, as text) of the unfinished backfill `$1`
    /// begins, and takes it over from any other: `$2` is its total
    /// (counted or estimated; NULL when unknown), and its rate is measured
    /// from now, from the rows read so far.
    pub(crate) const RUN: &str = r#"
UPDATE "dawdle"."backfills" SET "rows_total" = $2, "resumed_at" = now(), "rows_at_resume" = "rows_read",
  "run_id" = $3::text::uuid
WHERE "name" = $1 AND "finished_at" IS NULL"#;

    /// What run `$2` of backfill `$1` obeys between batches: whether the
    /// backfill is paused, whether it was cancelled, whether another run
    /// took it over, and its rows read. No row: it is gone.
    pub(crate) const CONTROL: &str = r#"
SELECT "paused_at" IS NOT NULL, "cancelled_at" IS NOT NULL, "run_id" IS DISTINCT FROM $2::text::uuid, "rows_read"
FROM "dawdle"."backfills" WHERE "name" = $1"#;

    /// Every backfill, by name, with what its rate is measured from.
    pub(crate) const LIST: &str = r#"
SELECT "name", "filter", "rows_read", "rows_total", "started_at", "updated_at", "finished_at",
       "paused_at", "cancelled_at", "resumed_at", "rows_at_resume"
FROM "dawdle"."backfills" ORDER BY "name""#;

    /// Pauses the unfinished backfill `$1` (a paused one stays paused since
    /// it was); a row when there is one. Waits for a batch in flight: the
    /// runner sees the pause before its next batch.
    pub(crate) const PAUSE: &str = r#"
UPDATE "dawdle"."backfills" SET "paused_at" = coalesce("paused_at", now())
WHERE "name" = $1 AND "finished_at" IS NULL
RETURNING true"#;

    /// Resumes the unfinished backfill `$1`: its rate is measured anew from
    /// now (a pause is no part of it); a row when there is one, paused or
    /// not.
    pub(crate) const RESUME: &str = r#"
UPDATE "dawdle"."backfills" SET "paused_at" = NULL,
  "resumed_at" = CASE WHEN "paused_at" IS NULL THEN "resumed_at" ELSE now() END,
  "rows_at_resume" = CASE WHEN "paused_at" IS NULL THEN "rows_at_resume" ELSE "rows_read" END
WHERE "name" = $1 AND "finished_at" IS NULL
RETURNING true"#;

    /// Cancels the unfinished backfill `$1`: it is finished, at once, and
    /// marked cancelled, so that even a runner that does not look (an
    /// older one) reads no further batch, and a backfill started again
    /// begins at the first row; a row when there was one.
    pub(crate) const CANCEL: &str = r#"
UPDATE "dawdle"."backfills" SET "cancelled_at" = now(), "finished_at" = now(), "paused_at" = NULL
WHERE "name" = $1 AND "finished_at" IS NULL
RETURNING true"#;
}

/// The listener's queries, on its pool.
pub(crate) mod listener {
    /// The rows of a by-reference event.
    pub(crate) const PAYLOAD: &str =
        r#"SELECT "old"::text, "new"::text FROM "dawdle"."payloads" WHERE "id" = $1"#;

    /// Removes the claims of routes on the rows of handled by-reference
    /// events (`$1` ids, `$2` their routes): run before
    /// [`FORGET_PAYLOADS`], as a statement of its own, so that of two
    /// listeners that remove their claims at once, the later one sees the
    /// other's and deletes the row.
    pub(crate) const FORGET_CLAIMS: &str = r#"
UPDATE "dawdle"."payloads" p
SET "routes" = ARRAY(SELECT unnest(p."routes") EXCEPT SELECT unnest(c."routes"))
FROM (SELECT "id", array_agg("route") AS "routes"
      FROM unnest($1::bigint[], $2::text[]) AS c("id", "route")
      WHERE "route" IS NOT NULL GROUP BY "id") c
WHERE p."id" = c."id" AND p."routes" && c."routes""#;

    /// Removes the rows of handled by-reference events that no route's
    /// listener still needs.
    pub(crate) const FORGET_PAYLOADS: &str = r#"
DELETE FROM "dawdle"."payloads"
WHERE "id" = ANY($1) AND ("routes" IS NULL OR "routes" = '{}')"#;
}

/// What `dawdle::status` reads for operators' tools (`dawdle status`);
/// the backlog is [`watcher::BACKLOG`], as the watcher measures it.
pub(crate) mod status {
    /// The replication slot of capture from the WAL: name, active,
    /// wal_status, retained and unconfirmed WAL in bytes.
    pub(crate) const WAL_SLOT: &str = r#"
SELECT s."slot_name"::text, s."active", s."wal_status",
       (pg_current_wal_lsn() - s."restart_lsn")::int8,
       (pg_current_wal_lsn() - s."confirmed_flush_lsn")::int8
FROM pg_catalog.pg_replication_slots s
WHERE s."slot_name" = (SELECT 'dawdle_' || d."oid" FROM pg_catalog.pg_database d
                       WHERE d."datname" = current_database())"#;

    /// The session holding the watcher's leader lock in this database (a
    /// bigint key `$1 << 32 | $2` is held as classid `$1`, objid `$2`,
    /// objsubid 1): its pid, application name, client address (NULL for a
    /// Unix socket), when it connected (microseconds since 1970) and how
    /// long ago (seconds).
    pub(crate) const LEADER: &str = r#"
SELECT a."pid", coalesce(a."application_name", ''), host(a."client_addr"),
       (extract(epoch FROM a."backend_start") * 1e6)::int8,
       extract(epoch FROM now() - a."backend_start")::float8
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a."pid" = l."pid"
WHERE l."locktype" = 'advisory' AND l."granted"
  AND l."database" = (SELECT "oid" FROM pg_catalog.pg_database
                      WHERE "datname" = pg_catalog.current_database())
  AND l."classid"::text::int8 = $1 AND l."objid"::text::int8 = $2 AND l."objsubid" = 1
LIMIT 1"#;

    /// The rows of by-reference events waiting in `dawdle.payloads`, and
    /// how many of them expired.
    pub(crate) const PAYLOADS: &str = r#"
SELECT count(*), count(*) FILTER (WHERE "expires_at" < now())
FROM "dawdle"."payloads""#;

    /// The signals waiting in `dawdle.delayed` for their time, and in how
    /// many seconds the earliest is due (negative: overdue; NULL: none).
    pub(crate) const DELAYED_SIGNALS: &str = r#"
SELECT count(*), extract(epoch FROM min("deliver_at") - now())::float8
FROM "dawdle"."delayed""#;
}

/// What the console (`dawdle::console`) reads beyond [`status`].
#[cfg(feature = "console")]
pub(crate) mod console {
    /// The database's name.
    pub(crate) const DATABASE: &str = "SELECT current_database()::text";

    /// Watchers connected but not leading: `dawdle-watcher` sessions other
    /// than the leader's (`$1`, or none).
    pub(crate) const STANDBYS: &str = r#"
SELECT pid, host(client_addr), backend_start
FROM pg_catalog.pg_stat_activity
WHERE application_name = 'dawdle-watcher' AND datname = current_database()
  AND pid <> coalesce($1, 0)
ORDER BY backend_start"#;

    /// Events read per minute over the last hour, oldest first (minutes
    /// without events are missing).
    pub(crate) const PER_MINUTE: &str = r#"
SELECT "minute", sum("events")::int8
FROM "dawdle"."activity"
WHERE "minute" >= date_trunc('minute', now()) - interval '59 minutes'
GROUP BY "minute" ORDER BY "minute""#;

    /// The current minute, in the database's clock.
    pub(crate) const NOW_MINUTE: &str = "SELECT date_trunc('minute', now())";

    /// Events read in the last hour per table and action.
    pub(crate) const PER_TABLE: &str = r#"
SELECT "schema_name", "table_name", "action", sum("events")::int8
FROM "dawdle"."activity"
WHERE "minute" >= date_trunc('minute', now()) - interval '59 minutes'
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"#;

    /// The PgQueues of the database: those with messages or dead letters.
    /// Each table is skipped through by its `(queue, id)` index, one probe
    /// per queue, however many messages wait.
    pub(crate) const PG_QUEUES: &str = r#"
WITH RECURSIVE
  m("queue") AS (SELECT min("queue") FROM "dawdle"."queue_messages"
                 UNION ALL
                 SELECT (SELECT min(q."queue") FROM "dawdle"."queue_messages" q WHERE q."queue" > m."queue")
                 FROM m WHERE m."queue" IS NOT NULL),
  d("queue") AS (SELECT min("queue") FROM "dawdle"."queue_dead_letters"
                 UNION ALL
                 SELECT (SELECT min(q."queue") FROM "dawdle"."queue_dead_letters" q WHERE q."queue" > d."queue")
                 FROM d WHERE d."queue" IS NOT NULL)
SELECT "queue" FROM m WHERE "queue" IS NOT NULL
UNION SELECT "queue" FROM d WHERE "queue" IS NOT NULL
ORDER BY 1"#;

    /// A page of delayed signals by due time, after (`$1` due, `$2` id).
    pub(crate) const DELAYED: &str = r#"
SELECT "id", "name", "payload"::text, "deliver_at"
FROM "dawdle"."delayed"
WHERE ("deliver_at", "id") > (coalesce($1, '-infinity'::timestamptz), coalesce($2, -9223372036854775808))
ORDER BY "deliver_at", "id"
LIMIT $3"#;

    /// Cancels a delayed signal.
    pub(crate) const CANCEL_SIGNAL: &str = r#"SELECT "dawdle"."cancel_signal"($1)"#;
}

#[cfg(test)]
mod tests {
    use super::watcher::{PAGE, PAGE_TEXT};

    #[test]
    fn pages_read_their_window_functions() {
        // Pasted together from pieces: each names its function whole.
        assert!(PAGE.contains(
            r#"LATERAL "dawdle"."window"($1::text::pg_snapshot, s."upto", $3, true, $4) e"#
        ));
        assert!(PAGE_TEXT.contains(
            r#"LATERAL "dawdle"."window_text"($1::text::pg_snapshot, s."upto", $3, true, $4) e"#
        ));
        assert!(PAGE.starts_with(
            "\nSELECT e.\"id\", e.\"txid\"::text,\n       CASE WHEN e.\"action\" = 'signal'"
        ));
        assert!(PAGE_TEXT
            .contains("CASE WHEN e.\"shape\" IS NULL THEN CASE WHEN e.\"action\" = 'signal'"));
    }
}
