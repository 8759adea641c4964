//! A JSON Schema of the messages for a set of tables: what a reader in
//! another language needs to know about each column's spelling, which
//! depends on the Rust type that describes it (a float as a string, a json
//! column as its text or as the value itself).

use serde_json::{json, Map, Value};

use crate::table::{Action, Column, Encoding, Table};

/// The JSON Schema (draft 2020-12) of a message whose events come from
/// `tables`: one definition per table, and per table one for its rows.
/// `dawdle-sql schema` prints it for every `Watched` type of a program.
///
/// Each column's schema says how the value is spelled, in
/// `x-dawdle-encoding` and in its description: `json` (PostgreSQL's
/// `to_json` of the value), `text` (a string holding PostgreSQL's text
/// output), `text-array` (arrays, of any depth, of such strings and
/// `null`s), `float` (a string holding the float's exact text, with `NaN`
/// and `±Infinity`), `instant` (an ISO 8601 timestamp with a UTC offset).
pub fn json_schema(tables: &[&Table]) -> Value {
    let mut defs = Map::new();
    let mut events = vec![json!({ "$ref": "#/$defs/dawdle.signal" })];
    defs.insert("dawdle.signal".to_owned(), signal());
    for table in tables {
        let name = format!("{}.{}", table.schema, table.name);
        defs.insert(format!("{name}.row"), row(table));
        defs.insert(name.clone(), event(table, &name));
        events.push(json!({ "$ref": format!("#/$defs/{}", pointer(&name)) }));
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "dawdle message",
        "description": "One queue message: an envelope of events, in capture order. \
                        Readers ignore members they do not know.",
        "type": "object",
        "required": ["dawdle", "events"],
        "properties": {
            "dawdle": { "const": crate::wire::VERSION, "description": "The format version." },
            "events": { "type": "array", "minItems": 1, "items": { "oneOf": events } },
        },
        "$defs": defs,
    })
}

/// A JSON Pointer segment: `~` and `/` escaped.
fn pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn event(table: &Table, name: &str) -> Value {
    let row = json!({ "$ref": format!("#/$defs/{}.row", pointer(name)) });
    // Snapshots come from a backfill, which every captured table has.
    let actions: Vec<&str> = Action::CAPTURED
        .into_iter()
        .filter(|a| table.events.contains(*a))
        .chain([Action::Snapshot])
        .map(Action::as_str)
        .collect();
    let key: Vec<Value> = table.primary_key().map(column).collect();
    json!({
        "title": format!("an event of {name} ({})", table.type_name),
        "type": "object",
        "required": ["id", "schema", "table", "action", "key", "captured_at", "txid"],
        "properties": {
            "id": {
                "type": "integer",
                "description": "The event's id, the same on every redelivery; with `source`, the idempotency key."
            },
            "source": {
                "type": "string",
                "format": "uuid",
                "description": "The source database's origin id (`dawdle.origin`)."
            },
            "schema": { "const": table.schema },
            "table": { "const": table.name },
            "action": { "enum": actions },
            "key": {
                "type": "array",
                "description": "The primary key, in key column order (after the change, on an update; `[]` for a truncate). A timestamptz key column is spelled in UTC, without an offset.",
                "anyOf": [
                    { "prefixItems": key, "minItems": key.len(), "maxItems": key.len() },
                    { "maxItems": 0 },
                ],
            },
            "captured_at": {
                "type": "string",
                "format": "date-time",
                "description": "When the trigger ran: ISO 8601 with a UTC offset; trailing zeros of the fraction are dropped."
            },
            "txid": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "The PostgreSQL transaction id, in decimal: events with the same txid were committed together."
            },
            "old": { "anyOf": [row, { "type": "null" }], "description": "The row before: updates and deletes." },
            "new": { "anyOf": [row, { "type": "null" }], "description": "The row after: inserts, updates and snapshots." },
            "by_ref": {
                "type": "boolean",
                "description": "The rows wait in dawdle.payloads of the source database, under `id`; `old` and `new` are absent."
            },
            "route": {
                "type": "string",
                "description": "With by_ref, when the event went to several routes: this copy's route, whose claim on the rows in dawdle.payloads its reader removes."
            },
        },
    })
}

/// A signal event: the same for every program (its payload is the
/// application's JSON).
fn signal() -> Value {
    json!({
        "title": "a signal: an application's own event",
        "type": "object",
        "required": ["id", "schema", "table", "action", "key", "captured_at", "txid", "signal", "deliver_at"],
        "properties": {
            "id": { "type": "integer", "description": "The signal's id (returned when it was sent); with `source`, the idempotency key." },
            "source": { "type": "string", "description": "The source database's origin id, or the sending process's random id." },
            "schema": { "const": crate::sql::catalog::SCHEMA },
            "table": { "const": "signals" },
            "action": { "const": "signal" },
            "key": { "type": "array", "prefixItems": [{ "type": "integer" }], "minItems": 1, "maxItems": 1 },
            "captured_at": { "type": "string", "format": "date-time", "description": "When it was sent." },
            "txid": { "type": "string", "pattern": "^[0-9]+$", "description": "The transaction that sent it, or released it when it was delayed." },
            "signal": { "type": "string", "description": "Its name, which chooses the handlers." },
            "deliver_at": { "type": "string", "format": "date-time", "description": "When it was to be delivered." },
            "payload": { "description": "The JSON the sender gave; absent when by_ref." },
            "by_ref": { "type": "boolean", "description": "The payload waits in dawdle.payloads of the source database, under `id`, as `new`." },
            "route": { "type": "string", "description": "With by_ref, when the signal went to several routes: this copy's route, whose claim on the payload its reader removes." },
        },
    })
}

fn row(table: &Table) -> Value {
    let properties: Map<String, Value> = table
        .columns
        .iter()
        .map(|c| (c.name.to_owned(), column(c)))
        .collect();
    let required: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    json!({
        "title": format!("a row of {}.{}: the captured columns only", table.schema, table.name),
        "type": "object",
        "required": required,
        "properties": properties,
    })
}

/// A column's value, as its encoding spells it; `null` for SQL NULL.
fn column(column: &Column) -> Value {
    let (encoding, value, description) = match column.encoding {
        Encoding::Json => (
            "json",
            json!({}),
            "PostgreSQL's to_json form of the value: numbers, booleans and strings as such, \
             json and jsonb as the JSON itself, arrays as arrays",
        ),
        Encoding::Text => (
            "text",
            json!({ "type": "string" }),
            "a string holding PostgreSQL's text output of the value (numeric digits, \
             or a json value's text)",
        ),
        Encoding::TextArray => (
            "text-array",
            json!({ "type": "array", "items": { "$comment": "strings, nulls or nested arrays" } }),
            "an array, of any depth, of strings holding PostgreSQL's text output of each element, \
             and nulls",
        ),
        Encoding::Float => (
            "float",
            json!({ "type": "string" }),
            "a string holding the float's exact text: shortest round-trip digits or 17 \
             significant digits, NaN, Infinity, -Infinity, -0",
        ),
        Encoding::Instant => (
            "instant",
            json!({ "type": "string", "format": "date-time" }),
            "an ISO 8601 timestamp with the UTC offset of the writer's session",
        ),
    };
    json!({
        "description": description,
        "x-dawdle-encoding": encoding,
        "anyOf": [value, { "type": "null" }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Events, SessionSettings};

    const fn col(name: &'static str, primary_key: bool, encoding: Encoding) -> Column {
        Column {
            name,
            field: name,
            primary_key,
            sql: None,
            encoding,
            settings: SessionSettings::NONE,
        }
    }

    static TABLE: Table = Table {
        type_name: "app::Reading",
        schema: "sensors",
        name: "read/ings",
        columns: &[
            col("id", true, Encoding::Json),
            col("value", false, Encoding::Float),
            col("at", false, Encoding::Instant),
        ],
        events: Events::ROWS,
        capture_unchanged: false,
        capture_replica: false,
    };

    #[test]
    fn describes_each_column_by_its_encoding() {
        let schema = json_schema(&[&TABLE]);
        assert_eq!(schema["properties"]["dawdle"]["const"], 1);
        assert_eq!(
            schema["properties"]["events"]["items"]["oneOf"][1]["$ref"],
            "#/$defs/sensors.read~1ings"
        );
        assert_eq!(
            schema["$defs"]["dawdle.signal"]["properties"]["action"]["const"],
            "signal"
        );
        let event = &schema["$defs"]["sensors.read/ings"];
        assert_eq!(
            event["properties"]["action"]["enum"],
            json!(["insert", "update", "delete", "snapshot"])
        );
        assert_eq!(event["properties"]["table"]["const"], "read/ings");
        let row = &schema["$defs"]["sensors.read/ings.row"];
        assert_eq!(row["properties"]["value"]["x-dawdle-encoding"], "float");
        assert_eq!(row["properties"]["value"]["anyOf"][0]["type"], "string");
        assert_eq!(row["properties"]["at"]["anyOf"][0]["format"], "date-time");
        assert_eq!(row["required"], json!(["id", "value", "at"]));
        let key = &event["properties"]["key"]["anyOf"][0];
        assert_eq!(key["minItems"], 1);
    }
}
