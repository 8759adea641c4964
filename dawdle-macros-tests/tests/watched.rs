//! What a derived `Watched` type holds and does at run time.

use dawdle::{Column, Encoding, Events, SessionSettings, Watched};

#[derive(Debug, PartialEq, Watched)]
#[dawdle(table = "Readings", schema = "sensors", events(insert, update))]
struct Reading {
    #[dawdle(primary_key)]
    sensor: uuid::Uuid,
    #[dawdle(primary_key, rename = "taken at")]
    taken_at: chrono::NaiveDateTime,
    value: f64,
    history: Vec<f64>,
    raw: Vec<u8>,
    note: Option<String>,
    #[dawdle(sql = "round($1::numeric, 2)::float8")]
    rounded: Option<f64>,
    #[dawdle(serde)]
    tags: Vec<Tag>,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tag {
    Calibrated,
    Outdoor,
}

#[test]
fn table_describes_the_struct() {
    let table = Reading::TABLE;
    assert_eq!(table.type_name, "watched::Reading");
    assert_eq!((table.schema, table.name), ("sensors", "Readings"));
    assert_eq!(
        table.events,
        Events {
            insert: true,
            update: true,
            delete: false,
            truncate: false,
        }
    );
    assert!(!table.capture_unchanged);

    let column = |name, field, primary_key, encoding| Column {
        name,
        field,
        primary_key,
        sql: None,
        encoding,
        settings: SessionSettings::NONE,
    };
    assert_eq!(
        table.columns,
        [
            column("sensor", "sensor", true, Encoding::Json),
            column("taken at", "taken_at", true, Encoding::Json),
            column("value", "value", false, Encoding::Float),
            Column {
                settings: SessionSettings::EXTRA_FLOAT_DIGITS,
                ..column("history", "history", false, Encoding::TextArray)
            },
            Column {
                settings: SessionSettings::BYTEA_OUTPUT,
                ..column("raw", "raw", false, Encoding::Json)
            },
            column("note", "note", false, Encoding::Json),
            Column {
                sql: Some("round($1::numeric, 2)::float8"),
                settings: SessionSettings::ALL,
                ..column("rounded", "rounded", false, Encoding::Float)
            },
            column("tags", "tags", false, Encoding::Json),
        ]
    );
    let key: Vec<_> = table.primary_key().map(|c| c.name).collect();
    assert_eq!(key, ["sensor", "taken at"]);
}

#[test]
fn registers_with_inventory() {
    let tables = dawdle::registry::tables();
    assert!(tables.contains(&Reading::TABLE));
}

fn row() -> serde_json::Value {
    serde_json::json!({
        "sensor": "67e55044-10b1-426f-9247-bb680e5fe0c8",
        "taken at": "2024-05-01T12:30:00",
        "value": "-0",
        "history": ["1.5", "NaN"],
        "raw": "\\x00ff",
        "note": null,
        "rounded": "2.72",
        "tags": ["outdoor", "calibrated"],
        "not captured": "ignored",
    })
}

#[test]
fn decodes_a_row() {
    let reading = Reading::from_json(&row()).unwrap();
    assert_eq!(
        reading.sensor,
        uuid::Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8)
    );
    assert_eq!(
        reading.taken_at,
        chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
            .unwrap()
            .and_hms_opt(12, 30, 0)
            .unwrap()
    );
    assert!(reading.value == 0.0 && reading.value.is_sign_negative());
    assert!(reading.history[0] == 1.5 && reading.history[1].is_nan() && reading.history.len() == 2);
    assert_eq!(reading.raw, [0x00, 0xff]);
    assert_eq!(reading.note, None);
    assert_eq!(reading.rounded, Some(2.72));
    assert_eq!(reading.tags, [Tag::Outdoor, Tag::Calibrated]);
}

#[test]
fn a_bad_value_names_table_column_and_value() {
    let mut row = row();
    row["value"] = serde_json::json!("warm");
    let message = Reading::from_json(&row).unwrap_err().to_string();
    for part in ["sensors.\"Readings\"", "value", "\"warm\"", "f64"] {
        assert!(message.contains(part), "{part:?} missing from {message:?}");
    }
}

#[test]
fn a_bad_serde_value_names_table_column_and_value() {
    let mut row = row();
    row["tags"] = serde_json::json!(["indoor"]);
    let message = Reading::from_json(&row).unwrap_err().to_string();
    for part in ["sensors.\"Readings\"", "tags", "indoor", "Vec<Tag>"] {
        assert!(message.contains(part), "{part:?} missing from {message:?}");
    }
}

#[test]
fn a_missing_column_is_named() {
    let mut row = row();
    row.as_object_mut().unwrap().remove("taken at");
    let error = Reading::from_json(&row).unwrap_err();
    assert!(error.to_string().contains("taken at"), "{error}");
}
