//! The table every section uses: 12 columns of the common types.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

/// A row of `orders`, as dawdle captures and decodes it.
#[derive(Debug, Clone, PartialEq, dawdle::Watched)]
#[dawdle(table = "orders")]
pub struct Order {
    pub id: i64,
    pub customer_id: i64,
    pub status: String,
    pub quantity: i32,
    pub price: Decimal,
    pub weight: f64,
    pub paid: bool,
    pub reference: Uuid,
    pub note: Option<String>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub attributes: serde_json::Value,
}

pub const CREATE_TABLE: &str = "
CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status      text NOT NULL,
    quantity    integer NOT NULL,
    price       numeric(12, 2) NOT NULL,
    weight      double precision NOT NULL,
    paid        boolean NOT NULL,
    reference   uuid NOT NULL,
    note        text,
    tags        text[] NOT NULL,
    created_at  timestamptz NOT NULL,
    attributes  jsonb NOT NULL
)";

/// The values of every column but `id` and `customer_id`, after `$1` (id).
const VALUES: &str = "'new', 3, 19.99, 1.25, false, gen_random_uuid(), 'leave at the door', \
     ARRAY['gift', 'express'], now(), '{\"source\": \"bench\", \"priority\": 2}'";

/// One row: `$1` is the id.
pub fn insert_one() -> String {
    format!("INSERT INTO orders VALUES ($1::bigint, $1::bigint % 1000, {VALUES})")
}

/// `$2` rows in one statement, ids from `$1` on.
pub fn insert_many() -> String {
    format!(
        "INSERT INTO orders SELECT g, g % 1000, {VALUES} \
         FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) g"
    )
}

/// dawdle's capture of `orders`: the events table and the triggers.
pub fn dawdle_up() -> String {
    use dawdle::Watched;
    dawdle::sql::up(&[Order::TABLE]).expect("the bench's table is valid")
}

/// dawdle's capture of `orders` from the WAL.
pub fn dawdle_up_wal() -> String {
    use dawdle::Watched;
    dawdle::sql::up_with(&[Order::TABLE], dawdle::sql::Capture::Wal)
        .expect("the bench's table is valid")
}

/// DawdleDB's capture of `orders`, as `create_watcher_events_table()` and
/// `update_notify("orders", [:insert, :update, :delete])` generate it: an
/// event row with the whole row's JSON and a `pg_notify` per row.
pub fn dawdle_db_up() -> String {
    let mut sql = String::from(
        r#"CREATE TABLE "watcher_events" (
  "id" bigserial,
  "payload" text NOT NULL,
  "created_at" timestamp(0) NOT NULL,
  PRIMARY KEY ("id"));
"#,
    );
    for (action, rows) in [
        ("insert", "      ,'new', to_jsonb(NEW)\n"),
        (
            "update",
            "      ,'old', to_jsonb(OLD)\n      ,'new', to_jsonb(NEW)\n",
        ),
        ("delete", "      ,'old', to_jsonb(OLD)\n"),
    ] {
        let upper = action.to_uppercase();
        sql.push_str(&format!(
            r#"
CREATE OR REPLACE FUNCTION notify_orders_{action}()
RETURNS trigger AS $$
DECLARE
  event_id bigint;
BEGIN
  INSERT INTO watcher_events (payload, created_at) VALUES (
    json_build_object(
      'table', TG_TABLE_NAME
      ,'action', '{action}'
{rows}    )::text,
    now()
  )
  RETURNING id INTO event_id;
  PERFORM pg_notify(
    'dawdle_db_watcher_notify',
    json_build_object(
      'table', TG_TABLE_NAME,
      'action', '{action}',
      'id', event_id
    )::text
  );
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS notify_orders_{action} ON orders;

CREATE TRIGGER notify_orders_{action}
AFTER {upper}
ON orders
FOR EACH ROW
EXECUTE PROCEDURE notify_orders_{action}();
"#
        ));
    }
    sql
}

/// The channel DawdleDB's triggers notify on.
pub const DAWDLE_DB_CHANNEL: &str = "dawdle_db_watcher_notify";

/// Diagnosis only: dawdle's capture without the doorbell check (the
/// `pg_try_advisory_xact_lock_shared` test and its `pg_notify`).
pub fn dawdle_without_doorbell() -> String {
    without_doorbell(dawdle_up())
}

fn without_doorbell(sql: String) -> String {
    let mut out = String::new();
    let mut skip = 0;
    for line in sql.lines() {
        if line
            .trim_start()
            .starts_with("IF NOT pg_try_advisory_xact_lock_shared")
        {
            skip = 3;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(out.len() < sql.len(), "the doorbell check was not found");
    out
}

/// dawdle 0.1's capture of `orders`, for `--diagnose`: its shared objects as
/// 0.1 generated them (the fixture the upgrade test applies), and the row
/// trigger 0.1 generated for this table's inserts: an event row per row,
/// with the row's JSON built in the writer's transaction.
pub fn design_0_1() -> String {
    let fixture = include_str!("../../tests/fixtures/up_0_1.sql");
    let shared = &fixture[..fixture
        .find("-- public.users")
        .expect("the 0.1 fixture's first table")];
    let mut sql = shared.to_owned();
    sql.push_str(
        &r#"
CREATE OR REPLACE FUNCTION "dawdle"."capture:public.orders"() RETURNS trigger
LANGUAGE plpgsql
AS $dawdle$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO "dawdle"."events" ("schema_name", "table_name", "action", "row_key", "old", "new")
    VALUES ('public', 'orders', 'insert', json_build_array(NEW."id"),
      NULL,
      json_build_object('id', NEW."id", 'customer_id', NEW."customer_id", 'status', NEW."status",
                        'quantity', NEW."quantity", 'price', NEW."price"::text,
                        'weight', CASE WHEN pg_catalog.current_setting('extra_float_digits')::int4 > 0 OR NEW."weight" = 0 OR NEW."weight" IN ('Infinity', '-Infinity', 'NaN') THEN NEW."weight"::text ELSE pg_catalog.btrim(pg_catalog.to_char(NEW."weight", '9.9999999999999999EEEE')) END,
                        'paid', NEW."paid", 'reference', NEW."reference", 'note', NEW."note", 'tags', NEW."tags",
                        'created_at', NEW."created_at", 'attributes', NEW."attributes"));
  END IF;
  IF NOT pg_try_advisory_xact_lock_shared(DOORBELL_CLASS, DOORBELL_OBJECT) THEN
    PERFORM pg_notify('dawdle_events', NULL);
  END IF;
  RETURN NULL;
END
$dawdle$;
CREATE TRIGGER "dawdle_insert" AFTER INSERT ON "public"."orders"
FOR EACH ROW EXECUTE FUNCTION "dawdle"."capture:public.orders"();
"#
        .replace("DOORBELL_CLASS", &dawdle::sql::DOORBELL_LOCK.0.to_string())
        .replace("DOORBELL_OBJECT", &dawdle::sql::DOORBELL_LOCK.1.to_string()),
    );
    sql
}

/// dawdle 0.1's watcher queries: its events, oldest first, each as its wire
/// JSON, from a floor up; and the delete of those a queue accepted.
pub const FETCH_0_1: &str = r#"
SELECT e."id",
       json_build_object('id', e."id", 'source', (SELECT "source" FROM "dawdle"."origin"),
                         'schema', e."schema_name", 'table', e."table_name",
                         'action', e."action", 'key', e."row_key", 'captured_at', e."captured_at",
                         'txid', e."txid"::text, 'old', e."old", 'new', e."new")::text
FROM "dawdle"."events" e
WHERE e."id" >= $2
ORDER BY e."id"
LIMIT $1"#;

/// See [`FETCH_0_1`].
pub const DELETE_0_1: &str = r#"DELETE FROM "dawdle"."events" WHERE "id" = ANY($1)"#;
