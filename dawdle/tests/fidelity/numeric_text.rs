//! Numerics of any length and scale, written as SQL text, against
//! rust_decimal's own `FromSql`: where a direct query reads a value (rounding
//! what `Decimal` cannot hold to 28 decimal places), its insert, update and
//! delete events decode to the same value at the same scale; where the
//! direct query fails (NaN, infinities, more than `Decimal::MAX`), the events
//! are refused, with an error naming the column.

use dawdle::{DecodeError, Watched};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::harness::{captured_json, row_type, Db, HOSTILE};

row_type! {
    #[dawdle(table = "numeric_text", capture_unchanged)]
    struct NumericText {
        #[dawdle(primary_key)]
        id: i32,
        num: Decimal,
    }
}

/// PostgreSQL numeric input: up to 40 digits on each side of the point,
/// signs, leading and trailing zeros, values at and past `Decimal`'s limits,
/// and the special values.
fn numeric_text() -> impl Strategy<Value = String> {
    let whole = prop_oneof![
        "[0-9]{1,40}",
        "0{1,3}",
        "[1-9]0{0,39}",
        "[0-9]{1,4}0{0,36}",
        "[0-9]{27,30}",
    ];
    let fraction = prop_oneof![
        Just(String::new()),
        "\\.[0-9]{1,40}",
        "\\.[0-9]{0,8}0{1,32}",
        "\\.0{20,36}[0-9]{1,4}",
        "\\.[0-9]{24,33}",
        "\\.[0-9]{27}[4-6][0-9]{0,4}",
    ];
    let finite = ("-?", whole, fraction).prop_map(|(sign, w, f)| format!("{sign}{w}{f}"));
    prop_oneof![
        10 => finite,
        // Decimal::MAX (79228162514264337593543950335) and its neighbours.
        2 => "-?7922816251426433759354395033[0-9](\\.[0-9]{1,12})?",
        1 => prop_oneof![Just("NaN"), Just("Infinity"), Just("-Infinity")].prop_map(str::to_owned),
    ]
}

/// What a direct query of the row reads, or why it cannot.
type Direct = Result<Decimal, String>;

/// The event's row against the direct query: the same value, scale and
/// text, or both refused.
fn agree(what: &str, text: &str, direct: &Direct, json: &Value) -> Result<(), TestCaseError> {
    let event = NumericText::from_json(json).map(|row| row.num);
    let fail = |why: String| {
        Err(TestCaseError::fail(format!(
            "{text:?}, {what}: {why}\nevent JSON: {json}"
        )))
    };
    match (direct, event) {
        (Ok(direct), Ok(event)) => {
            if event == *direct
                && event.scale() == direct.scale()
                && event.to_string() == direct.to_string()
                && event.serialize() == direct.serialize()
            {
                Ok(())
            } else {
                fail(format!(
                    "the event decodes to {event} (scale {}), a direct query reads {direct} (scale {})",
                    event.scale(),
                    direct.scale()
                ))
            }
        }
        (Err(_), Err(DecodeError::Value { column: "num", .. })) => Ok(()),
        (Ok(direct), Err(e)) => fail(format!(
            "a direct query reads {direct}, the event is refused: {e}"
        )),
        (Err(direct), Ok(event)) => fail(format!(
            "a direct query fails ({direct}), the event decodes to {event}"
        )),
        (Err(_), Err(e)) => fail(format!("refused without naming the column: {e}")),
    }
}

#[test]
fn numerics_decode_as_a_direct_query_reads_them() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let db = runtime
        .block_on(Db::new(
            "CREATE TABLE numeric_text (id int PRIMARY KEY, num numeric NOT NULL)",
            &[NumericText::TABLE],
        ))
        .expect("database set up");
    runtime
        .block_on(db.client.batch_execute(HOSTILE))
        .expect("hostile settings");
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&(numeric_text(), numeric_text()), |(first, second)| {
        runtime.block_on(async {
            let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
            let client = &db.client;
            // rust_decimal's FromSql panics on some values of 10^32 and more
            // (NaN and the infinities sort above them too), far past
            // Decimal::MAX: those are not read.
            let read = || async {
                let row = client
                    .query_one("SELECT num, abs(num) >= 1e32 FROM numeric_text", &[])
                    .await
                    .map_err(|e| fail(&e))?;
                Ok::<Direct, TestCaseError>(if row.get(1) {
                    Err("10^32 or more, NaN or infinite".to_owned())
                } else {
                    row.try_get::<_, Decimal>(0).map_err(|e| e.to_string())
                })
            };
            client
                .batch_execute(&format!(
                    "DELETE FROM numeric_text; COMMIT; {}",
                    crate::harness::discard_events()
                ))
                .await
                .map_err(|e| fail(&e))?;
            client
                .execute(
                    "INSERT INTO numeric_text VALUES (1, $1::text::numeric)",
                    &[&first],
                )
                .await
                .map_err(|e| fail(&e))?;
            let before = read().await?;
            client
                .execute(
                    "UPDATE numeric_text SET num = $1::text::numeric",
                    &[&second],
                )
                .await
                .map_err(|e| fail(&e))?;
            let after = read().await?;
            client
                .execute("DELETE FROM numeric_text", &[])
                .await
                .map_err(|e| fail(&e))?;
            let one = |json: Vec<Value>| -> Result<Value, TestCaseError> {
                match <[Value; 1]>::try_from(json) {
                    Ok([json]) => Ok(json),
                    Err(json) => Err(TestCaseError::fail(format!(
                        "expected one event, found {}",
                        json.len()
                    ))),
                }
            };
            let captured = |action: &'static str, which: &'static str| async move {
                one(captured_json::<NumericText>(client, action, which)
                    .await
                    .map_err(|e| fail(&e))?)
            };
            agree(
                "insert, new",
                &first,
                &before,
                &captured("insert", "new").await?,
            )?;
            agree(
                "update, old",
                &first,
                &before,
                &captured("update", "old").await?,
            )?;
            agree(
                "update, new",
                &second,
                &after,
                &captured("update", "new").await?,
            )?;
            agree(
                "delete, old",
                &second,
                &after,
                &captured("delete", "old").await?,
            )
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
