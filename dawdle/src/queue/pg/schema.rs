//! [`PgQueue`](super::PgQueue)'s tables and its SQL API (functions that
//! send, read, delete, change visibility and dead-letter from plain SQL),
//! as `dawdle::sql`'s up migration creates them and its down migration
//! drops them: a piece of the migrations that this module submits, so that
//! `sql` need not know it.

use crate::sql::SchemaPiece;

inventory::submit! {
    SchemaPiece { name: "PgQueue", order: 0, up, down }
}

/// The channel a send rings on, with the queue's name as the payload.
pub(crate) const DOORBELL_CHANNEL: &str = "dawdle_queue";

/// The tables and the SQL API, after `CREATE SCHEMA "dawdle"`. Safe to
/// run again, and then it takes no lock on the tables.
fn up() -> &'static str {
    r#"
-- PgQueue: messages waiting (visible_at in the past) or in flight (received,
-- hidden until visible_at), of every queue name. receive_count and id make
-- up a message's receipt, which a later receive makes stale.
CREATE TABLE IF NOT EXISTS "dawdle"."queue_messages" (
    "id"            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "queue"         text NOT NULL,
    "body"          text NOT NULL,
    "group_id"      text,    -- FIFO queues: messages of a group go out one at a time, in order
    "dedup_id"      text,    -- FIFO queues: a second message with the same id is not stored
    "receive_count" integer NOT NULL DEFAULT 0,
    "sent_at"       timestamptz NOT NULL DEFAULT now(),
    "visible_at"    timestamptz NOT NULL DEFAULT now(),
    "received_at"   timestamptz -- the first receive
) WITH (
    -- A receive updates only unindexed columns: room on the page keeps
    -- those updates HOT. Rows come and go at a high rate: vacuum after a
    -- fixed number of dead rows, not a fraction of a table that stays small.
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 1000
);
-- Indexes only where missing: CREATE INDEX IF NOT EXISTS would lock the
-- table against writers before finding the index there.
DO $dawdle$
BEGIN
  IF to_regclass('"dawdle"."queue_messages_queue_id"') IS NULL THEN
    CREATE INDEX "queue_messages_queue_id" ON "dawdle"."queue_messages" ("queue", "id");
  END IF;
  IF to_regclass('"dawdle"."queue_messages_group"') IS NULL THEN
    CREATE INDEX "queue_messages_group" ON "dawdle"."queue_messages" ("queue", "group_id")
      WHERE "group_id" IS NOT NULL;
  END IF;
  IF to_regclass('"dawdle"."queue_messages_dedup"') IS NULL THEN
    CREATE UNIQUE INDEX "queue_messages_dedup" ON "dawdle"."queue_messages" ("queue", "dedup_id")
      WHERE "dedup_id" IS NOT NULL;
  END IF;
END
$dawdle$;

-- PgQueue's dead letters: what was sent, why it could not be handled, how
-- often it was received, and when.
CREATE TABLE IF NOT EXISTS "dawdle"."queue_dead_letters" (
    "id"               bigint PRIMARY KEY, -- the message's id in queue_messages
    "queue"            text NOT NULL,
    "body"             text NOT NULL,
    "group_id"         text,
    "receive_count"    integer NOT NULL,
    "reason"           text NOT NULL,
    "sent_at"          timestamptz NOT NULL,
    "received_at"      timestamptz,
    "dead_lettered_at" timestamptz NOT NULL DEFAULT now()
);
DO $dawdle$
BEGIN
  IF to_regclass('"dawdle"."queue_dead_letters_queue_id"') IS NULL THEN
    CREATE INDEX "queue_dead_letters_queue_id" ON "dawdle"."queue_dead_letters" ("queue", "id");
  END IF;
END
$dawdle$;

-- The last failure of a message (PgQueue::retry, the listener's record of a
-- failed handling), kept with it and carried into its dead letter:
-- failure_error is NULL while it never failed.
DO $dawdle$
DECLARE
  "t" text;
BEGIN
  FOREACH "t" IN ARRAY ARRAY['queue_messages', 'queue_dead_letters'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute
                   WHERE attrelid = format('"dawdle".%I', "t")::regclass
                     AND attname = 'failure_error' AND NOT attisdropped) THEN
      EXECUTE format('ALTER TABLE "dawdle".%I
        ADD COLUMN "failure_handler" text,    -- the handler that failed; NULL when none could run
        ADD COLUMN "failure_error" text,      -- its error, or why the message could not be handled
        ADD COLUMN "failure_panicked" boolean,
        ADD COLUMN "failure_attempts" integer, -- how many times handling it failed
        ADD COLUMN "first_failure_at" timestamptz,
        ADD COLUMN "last_failure_at" timestamptz', "t");
    END IF;
  END LOOP;
END
$dawdle$;

-- PgQueue's SQL API: send, read, delete, change visibility and dead-letter
-- with plain SQL, from any language, with the semantics of the Rust
-- PgQueue (and alongside it: both use the same rows and locks).
--
-- Every function is PL/pgSQL so that creating it again reads no table:
-- a re-run of up takes no lock on the queue's tables. They run in the
-- caller's transaction, and commit as it does (PgQueue's own receives,
-- deletes and visibility changes commit with synchronous_commit off;
-- set it in your session for the same saving).
--
-- The receipt of a read message is its (id, receive_count): delete,
-- queue_set_vt and queue_dead_letter act only while the message has not
-- been received again, and return false for a stale receipt.

-- dawdle.queue_send(queue, body, group_id, dedup_id, delay_seconds):
-- stores one message and rings PgQueue's doorbell (NOTIFY "dawdle_queue",
-- the queue's name as the payload, delivered at commit) so that waiting
-- receivers wake at once. Returns the message's id, or NULL when a message
-- of the queue with the same dedup_id is stored already (nothing sent).
-- group_id and dedup_id are for FIFO queues; a standard PgQueue leaves
-- them NULL. delay_seconds hides the message that long after the send;
-- not with a group_id (as on SQS's FIFO queues): a delayed message would
-- hold back its group's earlier messages. PgQueue's max_message_bytes is
-- not checked here.
CREATE OR REPLACE FUNCTION "dawdle"."queue_send"(
    "queue" text,
    "body" text,
    "group_id" text DEFAULT NULL,
    "dedup_id" text DEFAULT NULL,
    "delay_seconds" float8 DEFAULT 0
) RETURNS bigint
LANGUAGE plpgsql AS $dawdle$
#variable_conflict use_column
DECLARE
  "sent" bigint;
BEGIN
  IF queue_send."delay_seconds" > 0 AND queue_send."group_id" IS NOT NULL THEN
    RAISE EXCEPTION 'dawdle.queue_send: a message with a group_id cannot be delayed'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO "dawdle"."queue_messages" ("queue", "body", "group_id", "dedup_id", "visible_at")
  VALUES (queue_send."queue", queue_send."body", queue_send."group_id", queue_send."dedup_id",
          now() + make_interval(secs => greatest(coalesce(queue_send."delay_seconds", 0), 0)))
  ON CONFLICT ("queue", "dedup_id") WHERE "dedup_id" IS NOT NULL DO NOTHING
  RETURNING "id" INTO "sent";
  PERFORM pg_notify('dawdle_queue', queue_send."queue");
  RETURN "sent";
END
$dawdle$;

-- dawdle.queue_read(queue, vt_seconds, max, max_receives, fifo): claims up
-- to max (1 to 10) visible messages, oldest first, hiding each for
-- vt_seconds and raising its receive count; returns them with their
-- receipt (id, receive_count). Returns at once, empty when nothing is
-- visible: poll, or LISTEN "dawdle_queue" for sends. max_receives and fifo
-- are the PgQueue's settings (PgQueueBuilder::max_receives, default 5,
-- NULL for never; ::fifo, default false), and must match them:
-- - a message already received max_receives times moves to
--   dawdle.queue_dead_letters instead of being returned;
-- - standard: FOR UPDATE SKIP LOCKED, so concurrent readers claim
--   different messages;
-- - fifo: reads of the queue take turns (the advisory lock PgQueue's
--   receives take, held to the end of the caller's transaction), and a
--   message is claimed only while no message of its group is in flight,
--   so a group's messages go out one read at a time, in order; group_id is
--   returned only then.
CREATE OR REPLACE FUNCTION "dawdle"."queue_read"(
    "queue" text,
    "vt_seconds" float8,
    "max" integer DEFAULT 1,
    "max_receives" integer DEFAULT 5,
    "fifo" boolean DEFAULT false
) RETURNS TABLE ("id" bigint, "receive_count" integer, "body" text, "group_id" text, "sent_at" timestamptz)
LANGUAGE plpgsql AS $dawdle$
DECLARE
  "batch" integer := least(greatest(coalesce(queue_read."max", 1), 1), 10);
  "receives" integer := greatest(coalesce(queue_read."max_receives", 2147483647), 1);
  "picked" bigint[];
  "buried" bigint;
  "got" bigint;
BEGIN
  IF queue_read."fifo" THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('dawdle.queue:' || queue_read."queue", 0));
  END IF;
  LOOP
    IF queue_read."fifo" THEN
      -- No SKIP LOCKED: skipping a message that a delete or a visibility
      -- change has locked would let the next of its group overtake it.
      "picked" := ARRAY(
        SELECT m."id" FROM "dawdle"."queue_messages" m
        WHERE m."queue" = queue_read."queue" AND m."visible_at" <= now()
          AND (m."group_id" IS NULL OR NOT EXISTS (
              SELECT FROM "dawdle"."queue_messages" b
              WHERE b."queue" = queue_read."queue" AND b."group_id" = m."group_id"
                AND b."visible_at" > now()))
        ORDER BY m."id"
        LIMIT "batch"
        FOR UPDATE OF m);
    ELSE
      "picked" := ARRAY(
        SELECT m."id" FROM "dawdle"."queue_messages" m
        WHERE m."queue" = queue_read."queue" AND m."visible_at" <= now()
        ORDER BY m."id"
        LIMIT "batch"
        FOR UPDATE OF m SKIP LOCKED);
    END IF;
    WITH "dead" AS (
      DELETE FROM "dawdle"."queue_messages" m
      WHERE m."id" = ANY("picked") AND m."receive_count" >= "receives"
      RETURNING m.*
    ), "moved" AS (
      INSERT INTO "dawdle"."queue_dead_letters"
          ("id", "queue", "body", "group_id", "receive_count", "reason", "sent_at", "received_at",
           "failure_handler", "failure_error", "failure_panicked", "failure_attempts",
           "first_failure_at", "last_failure_at")
      SELECT d."id", d."queue", d."body", d."group_id", d."receive_count",
             'received ' || d."receive_count" || ' times without being deleted (max_receives)',
             d."sent_at", d."received_at",
             d."failure_handler", d."failure_error", d."failure_panicked", d."failure_attempts",
             d."first_failure_at", d."last_failure_at"
      FROM "dead" d
      RETURNING 1
    )
    SELECT count(*) INTO "buried" FROM "moved";
    RETURN QUERY
    WITH "received" AS (
      UPDATE "dawdle"."queue_messages" m
      SET "receive_count" = m."receive_count" + 1,
          "visible_at" = now() + make_interval(secs => queue_read."vt_seconds"),
          "received_at" = coalesce(m."received_at", now())
      WHERE m."id" = ANY("picked") AND m."receive_count" < "receives"
      RETURNING m."id", m."receive_count", m."body", m."group_id", m."sent_at"
    )
    SELECT r."id", r."receive_count", r."body",
           CASE WHEN queue_read."fifo" THEN r."group_id" END, r."sent_at"
    FROM "received" r
    ORDER BY r."id";
    GET DIAGNOSTICS "got" = ROW_COUNT;
    -- Messages may wait behind those just dead-lettered.
    EXIT WHEN "got" > 0 OR "buried" = 0;
  END LOOP;
END
$dawdle$;

-- dawdle.queue_delete(queue, id, receive_count): deletes a handled
-- message by its receipt; false when the receipt is stale (the message
-- was received again, or is gone).
CREATE OR REPLACE FUNCTION "dawdle"."queue_delete"(
    "queue" text,
    "id" bigint,
    "receive_count" integer
) RETURNS boolean
LANGUAGE plpgsql AS $dawdle$
BEGIN
  DELETE FROM "dawdle"."queue_messages" m
  WHERE m."queue" = queue_delete."queue" AND m."id" = queue_delete."id"
    AND m."receive_count" = queue_delete."receive_count";
  RETURN FOUND;
END
$dawdle$;

-- dawdle.queue_set_vt(queue, id, receive_count, vt_seconds): hides a
-- received message for vt_seconds from now (0: visible again at once, to
-- hand it back); false when the receipt is stale.
CREATE OR REPLACE FUNCTION "dawdle"."queue_set_vt"(
    "queue" text,
    "id" bigint,
    "receive_count" integer,
    "vt_seconds" float8
) RETURNS boolean
LANGUAGE plpgsql AS $dawdle$
BEGIN
  UPDATE "dawdle"."queue_messages" m
  SET "visible_at" = now() + make_interval(secs => queue_set_vt."vt_seconds")
  WHERE m."queue" = queue_set_vt."queue" AND m."id" = queue_set_vt."id"
    AND m."receive_count" = queue_set_vt."receive_count";
  RETURN FOUND;
END
$dawdle$;

-- dawdle.queue_dead_letter(queue, id, receive_count, reason): moves a
-- received message that cannot be handled to dawdle.queue_dead_letters
-- with the reason (also recorded as its last failure, with no handler,
-- unless it had failed before); false when the receipt is stale. PgQueue::dead_letters,
-- ::redrive and ::discard (and `dawdle dlq`) see it there.
CREATE OR REPLACE FUNCTION "dawdle"."queue_dead_letter"(
    "queue" text,
    "id" bigint,
    "receive_count" integer,
    "reason" text
) RETURNS boolean
LANGUAGE plpgsql AS $dawdle$
BEGIN
  WITH "dead" AS (
    DELETE FROM "dawdle"."queue_messages" m
    WHERE m."queue" = queue_dead_letter."queue" AND m."id" = queue_dead_letter."id"
      AND m."receive_count" = queue_dead_letter."receive_count"
    RETURNING m.*
  )
  INSERT INTO "dawdle"."queue_dead_letters"
      ("id", "queue", "body", "group_id", "receive_count", "reason", "sent_at", "received_at",
       "failure_handler", "failure_error", "failure_panicked", "failure_attempts",
       "first_failure_at", "last_failure_at")
  SELECT d."id", d."queue", d."body", d."group_id", d."receive_count", queue_dead_letter."reason",
         d."sent_at", d."received_at",
         d."failure_handler", coalesce(d."failure_error", queue_dead_letter."reason"),
         coalesce(d."failure_panicked", false), coalesce(d."failure_attempts", 0) + 1,
         coalesce(d."first_failure_at", now()), now()
  FROM "dead" d;
  RETURN FOUND;
END
$dawdle$;
"#
}

/// Drops the SQL API and the tables, before `DROP SCHEMA "dawdle"`.
fn down() -> &'static str {
    r#"DROP FUNCTION IF EXISTS "dawdle"."queue_dead_letter"(text, bigint, integer, text);
DROP FUNCTION IF EXISTS "dawdle"."queue_set_vt"(text, bigint, integer, float8);
DROP FUNCTION IF EXISTS "dawdle"."queue_delete"(text, bigint, integer);
DROP FUNCTION IF EXISTS "dawdle"."queue_read"(text, float8, integer, integer, boolean);
DROP FUNCTION IF EXISTS "dawdle"."queue_send"(text, text, text, text, float8);
DROP TABLE IF EXISTS "dawdle"."queue_dead_letters";
DROP TABLE IF EXISTS "dawdle"."queue_messages";
"#
}
