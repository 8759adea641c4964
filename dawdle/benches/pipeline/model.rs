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

/// Diagnosis only: dawdle's capture as it was before the write-cost work:
/// all five `SET` clauses on the trigger function, the doorbell read from a
/// flag in a table on every row, and a CHECK constraint on `action`. Same
/// events.
pub fn previous_design() -> String {
    let sql = without_doorbell(dawdle_up());
    let mut out = String::new();
    for line in sql.lines() {
        if line.trim_start() == "RETURN NULL;" {
            out.push_str(
                "  PERFORM pg_notify('dawdle_events', NULL) FROM \"dawdle\".\"doorbell_flag\" WHERE \"armed\";\n",
            );
        }
        out.push_str(line);
        out.push('\n');
        if line == "LANGUAGE plpgsql" {
            for (_, name, value) in dawdle::SessionSettings::EACH {
                out.push_str(&format!("SET \"{name}\" TO {value}\n"));
            }
        }
    }
    out.push_str(
        "CREATE TABLE \"dawdle\".\"doorbell_flag\" (\"armed\" boolean NOT NULL);\n\
         INSERT INTO \"dawdle\".\"doorbell_flag\" VALUES (false);\n\
         ALTER TABLE \"dawdle\".\"events\" ADD CHECK (\"action\" IN ('insert', 'update', 'delete'));\n",
    );
    out
}

/// Diagnosis only: dawdle's capture of inserts with a statement-level
/// trigger over the transition table instead of a row-level one, to
/// measure what the per-row trigger machinery costs. Same events.
pub fn dawdle_statement_trigger_up() -> String {
    let mut sql = dawdle_up();
    sql.push_str(&
        r#"
DROP TRIGGER IF EXISTS "dawdle_insert" ON "public"."orders";
CREATE OR REPLACE FUNCTION "dawdle"."capture_rows:public.orders"() RETURNS trigger
LANGUAGE plpgsql
AS $dawdle$
BEGIN
  INSERT INTO "dawdle"."events" ("schema_name", "table_name", "action", "row_key", "old", "new")
  SELECT 'public', 'orders', 'insert', json_build_array(n."id"), NULL,
         json_build_object('id', n."id", 'customer_id', n."customer_id", 'status', n."status",
                           'quantity', n."quantity", 'price', n."price"::text,
                           'weight', CASE WHEN pg_catalog.current_setting('extra_float_digits')::int4 > 0 OR n."weight" = 0 OR n."weight" IN ('Infinity', '-Infinity', 'NaN') THEN n."weight"::text ELSE pg_catalog.btrim(pg_catalog.to_char(n."weight", '9.9999999999999999EEEE')) END,
                           'paid', n."paid", 'reference', n."reference", 'note', n."note", 'tags', n."tags",
                           'created_at', n."created_at", 'attributes', n."attributes")
  FROM new_rows n;
  IF NOT pg_try_advisory_xact_lock_shared(DOORBELL_CLASS, DOORBELL_OBJECT) THEN
    PERFORM pg_notify('dawdle_events', NULL);
  END IF;
  RETURN NULL;
END
$dawdle$;
CREATE TRIGGER "dawdle_insert" AFTER INSERT ON "public"."orders"
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION "dawdle"."capture_rows:public.orders"();
"#
        .replace("DOORBELL_CLASS", &dawdle::sql::DOORBELL_LOCK.0.to_string())
        .replace("DOORBELL_OBJECT", &dawdle::sql::DOORBELL_LOCK.1.to_string()),
    );
    sql
}
