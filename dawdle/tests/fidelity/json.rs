//! json and jsonb as `serde_json::Value`, maps, and a typed struct through serde.

use std::collections::{BTreeMap, HashMap};

use dawdle::Watched;
use serde_json::{Map, Value};

use crate::harness::{assert_faithful, row_type, select_all, Db, Same, TestResult};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    theme: String,
    #[serde(rename = "fontSize")]
    font_size: u8,
    tags: Vec<String>,
    extra: Option<Value>,
}

impl Same for Settings {
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

row_type! {
    #[dawdle(table = "documents")]
    struct Documents {
        #[dawdle(primary_key)]
        id: i32,
        doc: Value,
        raw: Value,
        maybe_doc: Option<Value>,
        maybe_raw: Option<Value>,
        object: Map<String, Value> [json],
        counts: HashMap<String, i64> [json],
        labels: BTreeMap<String, Option<String>> [json],
        loose: BTreeMap<String, Value> [json],
        #[dawdle(serde)]
        settings: Settings [json],
    }
}

/// Documents that are values of both json and jsonb.
const DOCUMENTS: &[&str] = &[
    // Keys that look like atoms, numbers, booleans and null stay strings.
    r#"{"ok": 1, ":ok": 2, "1": 3, "-1.5": 4, "nil": null, "true": false, "null": "null", "": [], "😀": {"nested": {"deeper": [1, {"x": "y"}]}}}"#,
    "null",
    r#""just a string""#,
    "42",
    "true",
    "[]",
    "{}",
    "[1, -1, 1.5, 1e100, 12345678901234567890, -9223372036854775808, 123456789012345678901234567890, 0.1, 1.0, -0.0, 1e-7, 0.30000000000000004]",
    r#""\u00e9 \n \" \\ \/ \u0001 😀 \ud83d\ude00""#,
    r#"[null, [null], {"a": null}]"#,
];

#[tokio::test]
async fn json_and_jsonb_values_maps_and_typed_structs() -> TestResult {
    let db = Db::new(
        "CREATE TABLE documents (id int PRIMARY KEY, doc jsonb NOT NULL, raw json NOT NULL, \
         maybe_doc jsonb, maybe_raw json, object jsonb NOT NULL, counts jsonb NOT NULL, \
         labels jsonb NOT NULL, loose jsonb NOT NULL, settings jsonb NOT NULL)",
        &[Documents::TABLE],
    )
    .await?;
    let objects = [r#"{}"#, r#"{"a": 1, "1": [true], ":b": {"c": null}}"#];
    let counts = [r#"{}"#, r#"{"x": 9223372036854775807, "-1": -1, "0": 0}"#];
    let labels = [r#"{"k": null, "v": "w"}"#, r#"{"": ""}"#];
    let settings = [
        r#"{"theme": "dark", "fontSize": 12, "tags": [], "extra": null}"#,
        r#"{"theme": "ünïcode 😀", "fontSize": 255, "tags": ["a", "b"], "extra": {"1": [1.5]}}"#,
    ];
    // json keeps the text as written: spacing, key order, duplicate keys.
    let raws = [
        r#"{"b": 1, "a": 2, "a": 3}"#,
        "  [1,2 ,  3]  ",
        r#"{"z":{"y":{"x":[]}}}"#,
    ];
    for (i, doc) in DOCUMENTS.iter().enumerate() {
        let id = i as i32 + 1;
        // SQL NULL, JSON null and a document take turns in the nullable columns.
        let maybe = match i % 3 {
            0 => None,
            1 => Some("null"),
            _ => Some(*doc),
        };
        db.client
            .execute(
                "INSERT INTO documents VALUES ($1, $2::text::jsonb, $3::text::json, $4::text::jsonb, \
                 $5::text::json, $6::text::jsonb, $7::text::jsonb, $8::text::jsonb, $8::text::jsonb, \
                 $9::text::jsonb)",
                &[
                    &id,
                    doc,
                    &if i % 2 == 0 { *doc } else { raws[i % raws.len()] },
                    &maybe,
                    &maybe,
                    &objects[i % 2],
                    &counts[i % 2],
                    &labels[i % 2],
                    &settings[i % 2],
                ],
            )
            .await?;
    }
    assert_faithful::<Documents>(&db.client, &select_all::<Documents>()).await
}
