//! Every query [`PgQueue`](super::PgQueue) runs. `$1` is always the queue's name.

/// A FROM item that makes the statement's transaction commit without
/// waiting for its WAL to reach disk. For receives, deletes and visibility
/// changes only, never sends: what a crash of PostgreSQL can take back of
/// those is a receive (the message comes back sooner) or a delete (the
/// message is handled again), both within at-least-once; it saves the
/// writers a WAL flush per call.
macro_rules! async_commit {
    () => {
        r#"(SELECT pg_catalog.set_config('synchronous_commit', 'off', true)) AS "async""#
    };
}

/// The rest of a receive, after the `picked` CTE: received messages
/// (`dead` false), then the ids of those dead-lettered (`dead` true).
macro_rules! claim {
    () => {
        concat!(
            r#", "dead" AS (
    DELETE FROM "dawdle"."queue_messages" m USING "picked" p
    WHERE m."id" = p."id" AND m."receive_count" >= $4
    RETURNING m.*
), "buried" AS (
    INSERT INTO "dawdle"."queue_dead_letters"
        ("id", "queue", "body", "group_id", "receive_count", "reason", "sent_at", "received_at",
         "#,
            failure_columns!(),
            r#")
    SELECT "id", "queue", "body", "group_id", "receive_count",
           'received ' || "receive_count" || ' times without being deleted (max_receives)',
           "sent_at", "received_at", "#,
            failure_columns!(),
            r#"
    FROM "dead"
    RETURNING "id"
), "received" AS (
    UPDATE "dawdle"."queue_messages" m
    SET "receive_count" = m."receive_count" + 1,
        "visible_at" = now() + make_interval(secs => $3),
        "received_at" = coalesce(m."received_at", now())
    FROM "picked" p
    WHERE m."id" = p."id" AND m."receive_count" < $4
    RETURNING m."id", m."body", m."receive_count", m."group_id", "#,
            failure_columns!("m."),
            r#"
)
SELECT "id", "body", "receive_count", "group_id", false AS "dead", "#,
            failure_values!(),
            r#"
FROM "received"
UNION ALL
SELECT "id", NULL, 0, NULL, true, NULL, NULL, NULL, NULL, NULL, NULL FROM "buried"
ORDER BY 1"#
        )
    };
}

/// A message's last failure as [`super::failure_at`] reads it: its columns,
/// times as microseconds since 1970.
macro_rules! failure_values {
    () => {
        concat!(
            r#""failure_handler", "failure_error", "failure_panicked", "failure_attempts", "#,
            r#"(extract(epoch FROM "first_failure_at") * 1e6)::int8, "#,
            r#"(extract(epoch FROM "last_failure_at") * 1e6)::int8"#
        )
    };
}

/// The columns of a message's last failure (prefixed with a table alias).
macro_rules! failure_columns {
    () => {
        failure_columns!("")
    };
    ($t:literal) => {
        concat!(
            $t,
            r#""failure_handler", "#,
            $t,
            r#""failure_error", "#,
            $t,
            r#""failure_panicked", "#,
            $t,
            r#""failure_attempts", "#,
            $t,
            r#""first_failure_at", "#,
            $t,
            r#""last_failure_at""#
        )
    };
}

/// [`SEND`] for a batch in which some messages carry an earlier failure
/// (`$5`, each message's [`Failure`](crate::Failure) as JSON, or NULL) or
/// a delay (`$6`, seconds).
pub(super) const SEND_FAILED: &str = concat!(
    r#"
WITH "sent" AS (
    INSERT INTO "dawdle"."queue_messages" ("queue", "body", "group_id", "dedup_id", "visible_at", "#,
    failure_columns!(),
    r#")
    SELECT $1, u."body", u."group_id", u."dedup_id", now() + make_interval(secs => u."delay"),
           f->>'handler', f->>'error', (f->>'panicked')::boolean, (f->>'attempts')::integer,
           (f->>'first_at')::timestamptz, (f->>'last_at')::timestamptz
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[])
         WITH ORDINALITY AS u("body", "group_id", "dedup_id", "failure", "delay", "n"),
         LATERAL (SELECT u."failure"::jsonb AS f) AS "parsed"
    ORDER BY u."n"
    ON CONFLICT ("queue", "dedup_id") WHERE "dedup_id" IS NOT NULL DO NOTHING
    RETURNING 1
)
SELECT count(*), pg_notify('dawdle_queue', $1) FROM "sent""#
);

/// Stores a batch in one statement, in the order given, and rings the
/// doorbell (delivered at commit). On FIFO queues a message whose
/// deduplication id is already stored is not stored again.
pub(super) const SEND: &str = r#"
WITH "sent" AS (
    INSERT INTO "dawdle"."queue_messages" ("queue", "body", "group_id", "dedup_id")
    SELECT $1, u."body", u."group_id", u."dedup_id"
    FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u("body", "group_id", "dedup_id", "n")
    ORDER BY u."n"
    ON CONFLICT ("queue", "dedup_id") WHERE "dedup_id" IS NOT NULL DO NOTHING
    RETURNING 1
)
SELECT count(*), pg_notify('dawdle_queue', $1) FROM "sent""#;

/// Claims up to `$2` visible messages for `$3` seconds: each is hidden and
/// its receive count raised, except those already received `$4` times,
/// which move to the dead-letter table instead. SKIP LOCKED: receivers of
/// other processes claim other messages rather than wait.
pub(super) const RECEIVE: &str = concat!(
    r#"
WITH "picked" AS (
    SELECT m."id" FROM "dawdle"."queue_messages" m, "#,
    async_commit!(),
    r#"
    WHERE m."queue" = $1 AND m."visible_at" <= now()
    ORDER BY m."id"
    LIMIT $2
    FOR UPDATE OF m SKIP LOCKED
)"#,
    claim!()
);

/// [`RECEIVE`] for FIFO queues, run under the queue's advisory lock
/// ([`FIFO_LOCK`]): a message is taken only when no message of its group
/// is in flight (hidden and not deleted), and in id order, so that one
/// receive takes a prefix of each group. No SKIP LOCKED: skipping a
/// message that a delete or a visibility change has locked would let the
/// next of its group overtake it.
pub(super) const RECEIVE_FIFO: &str = concat!(
    r#"
WITH "picked" AS (
    SELECT m."id" FROM "dawdle"."queue_messages" m, "#,
    async_commit!(),
    r#"
    WHERE m."queue" = $1 AND m."visible_at" <= now()
      AND (m."group_id" IS NULL OR NOT EXISTS (
          SELECT FROM "dawdle"."queue_messages" b
          WHERE b."queue" = $1 AND b."group_id" = m."group_id" AND b."visible_at" > now()))
    ORDER BY m."id"
    LIMIT $2
    FOR UPDATE OF m
)"#,
    claim!()
);

/// Serializes the receives of one FIFO queue, for the length of their
/// transaction: two receivers could otherwise each take part of a group.
pub(super) const FIFO_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('dawdle.queue:' || $1, 0))";

/// Deletes messages by receipt (`$2` ids, `$3` receive counts); returns
/// the ids deleted.
pub(super) const DELETE: &str = concat!(
    r#"
DELETE FROM "dawdle"."queue_messages" m
USING unnest($2::bigint[], $3::int4[]) AS r("id", "receive_count"), "#,
    async_commit!(),
    r#"
WHERE m."queue" = $1 AND m."id" = r."id" AND m."receive_count" = r."receive_count"
RETURNING m."id""#
);

/// Hides a message (`$2` id, `$3` receive count) for `$4` seconds from now.
pub(super) const CHANGE_VISIBILITY: &str = concat!(
    r#"
UPDATE "dawdle"."queue_messages"
SET "visible_at" = now() + make_interval(secs => $4)
FROM "#,
    async_commit!(),
    r#"
WHERE "queue" = $1 AND "id" = $2 AND "receive_count" = $3"#
);

/// Hides a message (`$2` id, `$3` receive count) for `$4` seconds from now,
/// with its last failure (`$5` to `$10`).
pub(super) const RETRY: &str = concat!(
    r#"
UPDATE "dawdle"."queue_messages"
SET "visible_at" = now() + make_interval(secs => $4),
    ("#,
    failure_columns!(),
    r#") = ($5, $6, $7, $8, to_timestamp($9::int8 / 1e6), to_timestamp($10::int8 / 1e6))
FROM "#,
    async_commit!(),
    r#"
WHERE "queue" = $1 AND "id" = $2 AND "receive_count" = $3"#
);

/// Moves a message (`$2` id, `$3` receive count) to the dead-letter table
/// with the reason `$4` and its last failure (`$5` to `$10`).
pub(super) const DEAD_LETTER: &str = concat!(
    r#"
WITH "dead" AS (
    DELETE FROM "dawdle"."queue_messages"
    WHERE "queue" = $1 AND "id" = $2 AND "receive_count" = $3
    RETURNING *
)
INSERT INTO "dawdle"."queue_dead_letters"
    ("id", "queue", "body", "group_id", "receive_count", "reason", "sent_at", "received_at", "#,
    failure_columns!(),
    r#")
SELECT "id", "queue", "body", "group_id", "receive_count", $4, "sent_at", "received_at",
       $5, $6, $7, $8, to_timestamp($9::int8 / 1e6), to_timestamp($10::int8 / 1e6)
FROM "dead""#
);

/// Dead letters from id `$2` on, oldest first, at most `$3`.
pub(super) const DEAD_LETTERS: &str = concat!(
    r#"
SELECT "id", "body", "group_id", "receive_count", "reason",
       (extract(epoch FROM "sent_at") * 1e6)::int8,
       (extract(epoch FROM "received_at") * 1e6)::int8,
       (extract(epoch FROM "dead_lettered_at") * 1e6)::int8, "#,
    failure_values!(),
    r#"
FROM "dawdle"."queue_dead_letters"
WHERE "queue" = $1 AND "id" >= $2
ORDER BY "id"
LIMIT $3"#
);

/// Moves dead letters (`$2` ids) back to the queue as new messages, never
/// received and without their failure (a fresh set of attempts); returns
/// the ids moved, in order. (A data-modifying CTE runs in full whether or
/// not the query reads it.)
pub(super) const REDRIVE: &str = r#"
WITH "back" AS (
    DELETE FROM "dawdle"."queue_dead_letters"
    WHERE "queue" = $1 AND "id" = ANY($2)
    RETURNING "id", "body", "group_id"
), "sent" AS (
    INSERT INTO "dawdle"."queue_messages" ("queue", "body", "group_id")
    SELECT $1, "body", "group_id" FROM "back" ORDER BY "id"
    RETURNING 1
)
SELECT array(SELECT "id" FROM "back" ORDER BY "id"), pg_notify('dawdle_queue', $1)"#;

/// Deletes dead letters (`$2` ids); returns their ids and bodies.
pub(super) const DISCARD: &str = r#"
DELETE FROM "dawdle"."queue_dead_letters"
WHERE "queue" = $1 AND "id" = ANY($2)
RETURNING "id", "body""#;

/// The ids of dead letters after id `$2`, in order, at most `$3`.
pub(super) const DEAD_LETTER_IDS: &str = r#"
SELECT "id" FROM "dawdle"."queue_dead_letters"
WHERE "queue" = $1 AND "id" > $2
ORDER BY "id"
LIMIT $3"#;

/// Messages waiting; in flight (received, hidden); delayed (hidden, never
/// received: sent with a delay); the age in seconds of the oldest message
/// (0 for none); and the dead letters.
pub(super) const COUNTS: &str = r#"
SELECT count(*) FILTER (WHERE "visible_at" <= now()),
       count(*) FILTER (WHERE "visible_at" > now() AND "receive_count" > 0),
       count(*) FILTER (WHERE "visible_at" > now() AND "receive_count" = 0),
       coalesce(extract(epoch FROM now() - min("sent_at")), 0)::float8,
       (SELECT count(*) FROM "dawdle"."queue_dead_letters" WHERE "queue" = $1)
FROM "dawdle"."queue_messages" WHERE "queue" = $1"#;

/// The database's origin id, which tells databases apart.
pub(super) const SOURCE: &str = r#"SELECT "source"::text FROM "dawdle"."origin""#;
