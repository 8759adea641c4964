//! Arrays of the supported types, with NULL elements, empty arrays and
//! lower bounds other than 1.

use chrono::{DateTime, NaiveDate, Utc};
use dawdle::{Interval, Watched};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{assert_faithful, captured, row_type, select_all, Db, Same, TestResult};

row_type! {
    #[dawdle(table = "arrays")]
    struct Arrays {
        #[dawdle(primary_key)]
        id: i32,
        ints: Vec<Option<i32>>,
        maybe_ints: Option<Vec<i32>>,
        bigs: Vec<i64>,
        texts: Vec<Option<String>>,
        doubles: Vec<Option<f64>>,
        reals: Vec<f32>,
        nums: Vec<Option<Decimal>>,
        uids: Vec<Option<Uuid>>,
        stamps: Vec<Option<DateTime<Utc>>>,
        docs: Vec<Option<Value>>,
        plain_docs: Vec<Value>,
        bools: Vec<Option<bool>>,
        blobs: Vec<Option<Vec<u8>>>,
        dates: Vec<Option<NaiveDate>>,
        intervals: Vec<Option<Interval>>,
    }
}

/// One row per entry; every entry is an SQL expression per column.
const ROWS: &[[&str; 15]] = &[
    [
        "'{1,NULL,3}'",
        "'{-2147483648,2147483647}'",
        "'{-9223372036854775808,9223372036854775807}'",
        r#"'{"NULL",NULL,"","a,b","{x}","quote\"d","back\\slash","😀 𝄞"}'"#,
        "'{NaN,-0,Infinity,-Infinity,NULL,4.9e-324,0.1,1.7976931348623157e308}'",
        "'{NaN,-0,3.4028235e38,1.4e-45,0.1}'",
        "'{1.000,NULL,-0.0000000000000000000000000001,79228162514264337593543950335}'",
        "'{00000000-0000-0000-0000-000000000000,NULL,ffffffff-ffff-ffff-ffff-ffffffffffff}'",
        r#"'{"4714-11-24 00:00:00+00 BC",NULL,"2020-03-01 12:00:00+05:30","1800-01-01 00:00:00"}'"#,
        r#"ARRAY['null'::jsonb, NULL, '{"a": [1, null], "1": ":ok"}', '"s"', '1.50']"#,
        r#"ARRAY['null'::jsonb, '[]', '{}']"#,
        "'{t,NULL,f}'",
        r#"'{"\\x00ff",NULL,"\\x"}'"#,
        r#"'{"4714-11-24 BC",NULL,262142-12-31}'"#,
        r#"'{"1 mon -1 day -00:00:00.000001",NULL,"-178956970 years -8 mons"}'"#,
    ],
    // Empty arrays, and arrays of only NULLs.
    [
        "'{}'",
        "NULL",
        "'{}'",
        "'{NULL}'",
        "'{NULL,NULL}'",
        "'{}'",
        "'{NULL}'",
        "'{}'",
        "'{NULL}'",
        "ARRAY[NULL]::jsonb[]",
        "'{}'",
        "'{}'",
        "'{NULL}'",
        "'{}'",
        "'{NULL}'",
    ],
    // Lower bounds other than 1 are not part of the value.
    [
        "'[0:2]={7,8,9}'",
        "'[-5:-5]={0}'",
        "'[2:2]={1}'",
        "'[3:4]={x,y}'",
        "'[0:0]={NaN}'",
        "'[0:0]={-0}'",
        "'[0:0]={0.0}'",
        "'{}'",
        "'{}'",
        "'{}'",
        "'{}'",
        "'[0:0]={NULL}'",
        "'{}'",
        "'{}'",
        "'{}'",
    ],
];

#[tokio::test]
async fn arrays_with_nulls() -> TestResult {
    let db = Db::new(
        "CREATE TABLE arrays (id int PRIMARY KEY, ints int4[] NOT NULL, maybe_ints int4[], \
         bigs int8[] NOT NULL, texts text[] NOT NULL, doubles float8[] NOT NULL, reals float4[] NOT NULL, \
         nums numeric[] NOT NULL, uids uuid[] NOT NULL, stamps timestamptz[] NOT NULL, \
         docs jsonb[] NOT NULL, plain_docs jsonb[] NOT NULL, bools boolean[] NOT NULL, \
         blobs bytea[] NOT NULL, dates date[] NOT NULL, intervals interval[] NOT NULL)",
        &[Arrays::TABLE],
    )
    .await?;
    db.client
        .batch_execute("SET TimeZone = 'Europe/Amsterdam'")
        .await?;
    for (id, row) in (1..).zip(ROWS) {
        db.client
            .batch_execute(&format!(
                "INSERT INTO arrays VALUES ({id}, {})",
                row.join(", ")
            ))
            .await?;
    }
    assert_faithful::<Arrays>(&db.client, &select_all::<Arrays>()).await
}

row_type! {
    #[dawdle(table = "grids")]
    struct Grids {
        #[dawdle(primary_key)]
        id: i32,
        grid: Vec<Vec<Option<i32>>>,
        words: Vec<Vec<Vec<String>>>,
        floats: Vec<Vec<f64>>,
    }
}

/// tokio-postgres reads only one-dimensional arrays, so there is no direct
/// query to compare with: the decoded value is compared with the literal.
#[tokio::test]
async fn multidimensional_arrays_decode_to_nested_vecs() -> TestResult {
    let db = Db::new(
        "CREATE TABLE grids (id int PRIMARY KEY, grid int4[] NOT NULL, words text[] NOT NULL, \
         floats float8[] NOT NULL)",
        &[Grids::TABLE],
    )
    .await?;
    db.client
        .batch_execute(
            "INSERT INTO grids VALUES (1, '{{1,NULL},{3,4}}', '{{{a,b}},{{\"c d\",\"\"}}}', '{{NaN,-0},{1,2}}')",
        )
        .await?;
    let decoded = captured::<Grids>(&db.client, "insert", "new").await?;
    let [Ok(decoded)] = decoded.as_slice() else {
        panic!("expected one decoded row, got {decoded:?}");
    };
    let expected = Grids {
        id: 1,
        grid: vec![vec![Some(1), None], vec![Some(3), Some(4)]],
        words: vec![
            vec![vec!["a".into(), "b".into()]],
            vec![vec!["c d".into(), String::new()]],
        ],
        floats: vec![vec![f64::NAN, -0.0], vec![1.0, 2.0]],
    };
    assert!(decoded.grid.same(&expected.grid), "{decoded:?}");
    assert!(decoded.words.same(&expected.words), "{decoded:?}");
    assert!(decoded.floats.same(&expected.floats), "{decoded:?}");
    assert_eq!(
        Grids::TABLE.columns[3].encoding,
        dawdle::Encoding::TextArray
    );
    Ok(())
}
