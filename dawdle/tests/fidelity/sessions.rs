//! What a row decodes to does not depend on the settings of the session
//! that wrote it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use dawdle::{Interval, Watched};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{
    assert_faithful, captured_json, row_type, select_all, Db, TestResult, HOSTILE,
};

row_type! {
    #[dawdle(table = "everything")]
    struct Everything {
        #[dawdle(primary_key)]
        id: i32,
        double: f64,
        real: f32,
        num: Decimal,
        flag: bool,
        text: String,
        bytes: Vec<u8>,
        uid: Uuid,
        d: NaiveDate,
        t: NaiveTime,
        ts: NaiveDateTime,
        tstz: DateTime<Utc>,
        iv: Interval,
        doc: Value,
        doubles: Vec<Option<f64>>,
        stamps: Vec<Option<DateTime<Utc>>>,
        intervals: Vec<Option<Interval>>,
        dates: Vec<Option<NaiveDate>>,
        blobs: Vec<Option<Vec<u8>>>,
    }
}

const DDL: &str = "CREATE TABLE everything (id int PRIMARY KEY, double float8 NOT NULL, \
    real float4 NOT NULL, num numeric NOT NULL, flag boolean NOT NULL, text text NOT NULL, \
    bytes bytea NOT NULL, uid uuid NOT NULL, d date NOT NULL, t time NOT NULL, ts timestamp NOT NULL, \
    tstz timestamptz NOT NULL, iv interval NOT NULL, doc jsonb NOT NULL, doubles float8[] NOT NULL, \
    stamps timestamptz[] NOT NULL, intervals interval[] NOT NULL, dates date[] NOT NULL, \
    blobs bytea[] NOT NULL)";

/// Values whose text form every one of [`HOSTILE`]'s settings changes,
/// written so that they parse to the same value in any session.
const VALUES: &str = r#"0.1, 0.1, 3.14159265358979323846264338, true, 'a\b', '\x00ff5c27',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '0044-03-15 BC', '13:14:15.161718',
    '2001-02-03 04:05:06.789012', '2001-02-03 04:05:06.789012+00', '-1 year -2 mons +3 days -04:05:06.5',
    '{"when": "2001-02-03", "n": 0.1}', '{0.1,-0,NULL,1e-310}',
    '{"2001-02-03 04:05:06+00",NULL,"0044-03-15 12:00:00+00 BC"}', '{"1 day -00:00:01",NULL}',
    '{2001-02-13,NULL}', '{"\\x00ff",NULL}'"#;

#[tokio::test]
async fn hostile_session_settings_change_nothing() -> TestResult {
    let db = Db::new(DDL, &[Everything::TABLE]).await?;
    let hostile = db.connect().await?;
    hostile.batch_execute(HOSTILE).await?;
    let utc = db.connect().await?;
    utc.batch_execute("SET TimeZone = 'UTC'").await?;
    let kolkata = db.connect().await?;
    kolkata
        .batch_execute("SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'German'; SET IntervalStyle = 'sql_standard'")
        .await?;
    // The same row written as SQL text from three sessions...
    for (id, client) in [(1, &utc), (2, &hostile), (3, &kolkata)] {
        client
            .batch_execute(&format!("INSERT INTO everything VALUES ({id}, {VALUES})"))
            .await?;
    }
    // ...and written through parameters from the hostile session.
    let params = crate::harness::direct::<Everything>(&utc, &select_all::<Everything>()).await?;
    let mut copy = params[0].clone();
    copy.id = 4;
    db.insert(&hostile, &[copy]).await?;

    // The captured JSON is the same whichever session wrote the row, but for
    // spellings of the same value that spare writers a SET clause per row:
    // a timestamptz in the writer's UTC offset, and a float in 17 digits
    // where the session's extra_float_digits would round. Every row still
    // decodes to what a direct query returns (below).
    let json = captured_json::<Everything>(&db.client, "insert", "new").await?;
    let without_id = |v: &Value| {
        let mut v = v.clone();
        let object = v.as_object_mut().expect("an object");
        for spelled_by_session in ["id", "tstz", "stamps", "double", "real"] {
            object.remove(spelled_by_session);
        }
        v
    };
    for other in &json[1..] {
        assert_eq!(without_id(&json[0]), without_id(other));
    }
    assert_faithful::<Everything>(&db.client, &select_all::<Everything>()).await
}
