//! [`PgQueue`](super::PgQueue)'s tables, as `dawdle::sql`'s up migration
//! creates them and its down migration drops them: a piece of the
//! migrations that this module submits, so that `sql` need not know it.

use crate::sql::SchemaPiece;

inventory::submit! {
    SchemaPiece { name: "PgQueue", order: 0, up, down }
}

/// The channel a send rings on, with the queue's name as the payload.
pub(crate) const DOORBELL_CHANNEL: &str = "dawdle_queue";

/// The tables, after `CREATE SCHEMA "dawdle"`. Safe to run again.
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
CREATE INDEX IF NOT EXISTS "queue_messages_queue_id" ON "dawdle"."queue_messages" ("queue", "id");
CREATE INDEX IF NOT EXISTS "queue_messages_group" ON "dawdle"."queue_messages" ("queue", "group_id")
    WHERE "group_id" IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS "queue_messages_dedup" ON "dawdle"."queue_messages" ("queue", "dedup_id")
    WHERE "dedup_id" IS NOT NULL;

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
CREATE INDEX IF NOT EXISTS "queue_dead_letters_queue_id" ON "dawdle"."queue_dead_letters" ("queue", "id");
"#
}

/// Drops the tables, before `DROP SCHEMA "dawdle"`.
fn down() -> &'static str {
    "DROP TABLE IF EXISTS \"dawdle\".\"queue_dead_letters\";\n\
     DROP TABLE IF EXISTS \"dawdle\".\"queue_messages\";\n"
}
