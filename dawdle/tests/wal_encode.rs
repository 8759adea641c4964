//! The WAL encoder against PostgreSQL as the oracle: for generated values of
//! every type dawdle reads (arrays, composites, domains and enums of them),
//! the JSON the encoder builds from the value's text output equals, byte
//! for byte, what the readers' expressions give (`to_json(v)`,
//! `to_json(v::text)`, `to_json(v::text[])`, the key's
//! `json_build_array(v)` and `json_build_array(v AT TIME ZONE 'UTC')`), in a
//! session with the readers' settings.

use std::time::Instant;

use dawdle::__private::wal_encode::TypeCatalog;
use dawdle::{Encoding, SessionSettings};
use dawdle_test::TestDb;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use tokio_postgres::Client;

const DDL: &str = r#"
CREATE TYPE mood AS ENUM ('happy', 'sad "quoted"', 'with,comma', 'spa ce', 'NULL', 'back\slash', 'é{}');
CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
CREATE DOMAIN dtext AS text;
CREATE DOMAIN ints AS int4[];
CREATE DOMAIN stamp AS timestamptz;
CREATE TYPE inner_t AS (x int4, "we""ird, key" text, ts timestamptz, b bool, "é" float4);
CREATE TYPE outer_t AS (id int8, dropme int4, "in" inner_t, tags text[], n numeric, j jsonb,
                        d posint, m mood, f float8, stamps timestamptz[], c char(4));
ALTER TYPE outer_t DROP ATTRIBUTE dropme;
CREATE TYPE empty_t AS ();
"#;

/// The readers' settings, as they fix them.
fn settings() -> String {
    SessionSettings::EACH
        .iter()
        .map(|(_, name, value)| format!("SET {name} TO {value};"))
        .collect()
}

/// A generated value: an SQL expression of a definite type.
#[derive(Debug, Clone)]
struct Case {
    sql: String,
    /// An array: `to_json(v::text[])` applies.
    array: bool,
    /// A timestamptz: `Encoding::Instant` applies.
    instant: bool,
}

fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn typed(text: &str, ty: &str) -> String {
    format!("{}::{ty}", lit(text))
}

/// Text PostgreSQL accepts (no NUL), heavy in what needs quoting or escaping.
fn text() -> BoxedStrategy<String> {
    const AWKWARD: &[char] = &[
        '\u{1}', '\u{8}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1f}', '\u{7f}', ' ', '"', '\\',
        '\'', '{', '}', ',', ';', '(', ')', '[', ']', ':', '=', 'N', 'U', 'L', 'é', '€', '😀',
        '\u{2028}', '\u{fffd}', '/',
    ];
    let c = prop_oneof![3 => proptest::sample::select(AWKWARD), 1 => any::<char>()];
    prop_oneof![
        6 => vec(c, 0..12).prop_map(|cs| cs.into_iter().filter(|&c| c != '\0').collect()),
        1 => Just(String::new()),
        1 => Just("NULL".to_owned()),
        1 => Just("null".to_owned()),
        1 => "[ -~]{0,12}",
    ]
    .boxed()
}

fn float_text(v: f64, nan: bool) -> String {
    if nan {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        format!("{v:e}")
    }
}

fn f32_literal(v: f32) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        format!("{v:e}")
    }
}

fn float4s() -> BoxedStrategy<String> {
    prop_oneof![
        any::<u32>().prop_map(f32::from_bits),
        any::<f32>(),
        Just(-0.0f32),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        (-1000i32..1000).prop_map(|i| i as f32 / 8.0),
    ]
    .prop_map(|v| typed(&f32_literal(v), "float4"))
    .boxed()
}

fn float8s() -> BoxedStrategy<String> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        any::<f64>(),
        any::<f32>().prop_map(f64::from),
        Just(-0.0f64),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        (-1000i32..1000).prop_map(|i| f64::from(i) / 8.0),
    ]
    .prop_map(|v| typed(&float_text(v, v.is_nan()), "float8"))
    .boxed()
}

fn numerics() -> BoxedStrategy<String> {
    prop_oneof![
        Just("NaN".to_owned()),
        Just("Infinity".to_owned()),
        Just("-Infinity".to_owned()),
        Just("-0.000".to_owned()),
        (any::<bool>(), "[0-9]{1,40}", option::of("[0-9]{0,30}")).prop_map(
            |(neg, int, frac)| format!(
                "{}{int}{}",
                if neg { "-" } else { "" },
                frac.map(|f| format!(".{f}")).unwrap_or_default()
            )
        ),
        (1u32..300).prop_map(|e| format!("1e{e}")),
        (1u32..200).prop_map(|e| format!("-1.5e-{e}")),
    ]
    .prop_map(|v| typed(&v, "numeric"))
    .boxed()
}

/// `(bc, year, month, day)` within PostgreSQL's timestamp range.
fn ymd(max_year: i32) -> impl Strategy<Value = String> {
    (
        prop_oneof![8 => Just(false), 1 => Just(true)],
        prop_oneof![8 => 1..=9999i32, 1 => 1..=max_year],
        1..=12u32,
        1..=28u32,
    )
        .prop_map(|(bc, year, month, day)| {
            let year = if bc { year.min(4712) } else { year };
            format!(
                "{year:04}-{month:02}-{day:02}{}",
                if bc { " BC" } else { "" }
            )
        })
}

fn hms() -> impl Strategy<Value = String> {
    (0..24u32, 0..60u32, 0..60u32, 0..=6usize, any::<u32>()).prop_map(|(h, m, s, digits, frac)| {
        let frac = format!("{:06}", frac % 1_000_000);
        if digits == 0 {
            format!("{h:02}:{m:02}:{s:02}")
        } else {
            format!("{h:02}:{m:02}:{s:02}.{}", &frac[..digits])
        }
    })
}

fn dates() -> BoxedStrategy<String> {
    prop_oneof![
        8 => ymd(5_874_896),
        1 => Just("infinity".to_owned()),
        1 => Just("-infinity".to_owned()),
    ]
    .prop_map(|v| typed(&v, "date"))
    .boxed()
}

/// `2020-01-02 03:04:05.6 BC`: the era goes after the time.
fn date_time(max_year: i32) -> impl Strategy<Value = String> {
    (ymd(max_year), hms()).prop_map(|(date, time)| match date.strip_suffix(" BC") {
        Some(date) => format!("{date} {time} BC"),
        None => format!("{date} {time}"),
    })
}

fn timestamps() -> BoxedStrategy<String> {
    prop_oneof![
        8 => date_time(294_275),
        1 => Just("infinity".to_owned()),
        1 => Just("-infinity".to_owned()),
    ]
    .prop_map(|v| typed(&v, "timestamp"))
    .boxed()
}

fn timestamptz_text() -> impl Strategy<Value = String> {
    const ZONES: &[&str] = &[
        "+00",
        "Z",
        "+05:45",
        "-03:30",
        "+14",
        "-12:00:15",
        "+00:00:01",
        " America/St_Johns",
        " Asia/Kathmandu",
        " Europe/Paris",
        " UTC",
        "",
    ];
    prop_oneof![
        8 => (date_time(294_275), proptest::sample::select(ZONES)).prop_map(|(dt, zone)| {
            match dt.strip_suffix(" BC") {
                Some(dt) => format!("{dt}{zone} BC"),
                None => format!("{dt}{zone}"),
            }
        }),
        1 => Just("infinity".to_owned()),
        1 => Just("-infinity".to_owned()),
    ]
}

fn timestamptzs() -> BoxedStrategy<String> {
    timestamptz_text()
        .prop_map(|v| typed(&v, "timestamptz"))
        .boxed()
}

fn times() -> BoxedStrategy<String> {
    prop_oneof![8 => hms(), 1 => Just("24:00:00".to_owned())]
        .prop_map(|v| typed(&v, "time"))
        .boxed()
}

fn intervals() -> BoxedStrategy<String> {
    (
        -100i32..100,
        -30i32..30,
        -1000i32..1000,
        -100i32..100,
        -100i32..100,
        -100_000_000i64..100_000_000,
    )
        .prop_map(|(y, mo, d, h, mi, us)| {
            format!(
                "make_interval({y}, {mo}, 0, {d}, {h}, {mi}, {}::float8)",
                us as f64 / 1e6
            )
        })
        .boxed()
}

fn json_values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            btree_map(text(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => json_values().prop_map(|v| v.to_string()),
        2 => json_values().prop_map(|v| serde_json::to_string_pretty(&v).expect("json")),
        1 => json_values().prop_map(|v| format!(" \t{v}\n ")),
        // Huge, and deep.
        1 => (0..5000usize).prop_map(|n| Value::from((0..n as i64).collect::<Vec<_>>()).to_string()),
        1 => (1..200usize).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
    ]
    .boxed()
}

fn jsons() -> BoxedStrategy<String> {
    json_text().prop_map(|v| typed(&v, "json")).boxed()
}

fn jsonbs() -> BoxedStrategy<String> {
    json_text().prop_map(|v| typed(&v, "jsonb")).boxed()
}

fn bytea() -> BoxedStrategy<String> {
    vec(any::<u8>(), 0..24)
        .prop_map(|bytes| {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("'\\x{hex}'::bytea")
        })
        .boxed()
}

fn uuids() -> BoxedStrategy<String> {
    any::<u128>()
        .prop_map(|u| typed(&uuid::Uuid::from_u128(u).to_string(), "uuid"))
        .boxed()
}

fn inets() -> BoxedStrategy<String> {
    prop_oneof![
        (any::<u32>(), option::of(0..=32u8)).prop_map(|(a, bits)| {
            let a = std::net::Ipv4Addr::from(a);
            match bits {
                Some(bits) => format!("{a}/{bits}"),
                None => a.to_string(),
            }
        }),
        (any::<u128>(), option::of(0..=128u8)).prop_map(|(a, bits)| {
            let a = std::net::Ipv6Addr::from(a);
            match bits {
                Some(bits) => format!("{a}/{bits}"),
                None => a.to_string(),
            }
        }),
    ]
    .prop_map(|v| typed(&v, "inet"))
    .boxed()
}

fn cidrs() -> BoxedStrategy<String> {
    inets().prop_map(|v| format!("network({v})")).boxed()
}

fn moods() -> BoxedStrategy<String> {
    proptest::sample::select(
        &[
            "happy",
            "sad \"quoted\"",
            "with,comma",
            "spa ce",
            "NULL",
            "back\\slash",
            "é{}",
        ][..],
    )
    .prop_map(|v| typed(v, "mood"))
    .boxed()
}

fn boxes() -> BoxedStrategy<String> {
    (
        -100i32..100,
        -100i32..100,
        -100i32..100,
        -100i32..100,
        0..4i32,
    )
        .prop_map(|(a, b, c, d, e)| typed(&format!("(({a},{b}),({c}.{e},{d}))"), "box"))
        .boxed()
}

fn points() -> BoxedStrategy<String> {
    (
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        -5i32..5,
    )
        .prop_map(|(x, y)| typed(&format!("({x:e},{y})"), "point"))
        .boxed()
}

fn bpchars() -> BoxedStrategy<String> {
    "[ -~]{0,4} {0,2}"
        .prop_map(|v| typed(&v, "char(6)"))
        .boxed()
}

fn chars() -> BoxedStrategy<String> {
    "[ -~]?".prop_map(|v| typed(&v, "\"char\"")).boxed()
}

fn or_null(strategy: BoxedStrategy<String>) -> BoxedStrategy<String> {
    option::weighted(0.8, strategy)
        .prop_map(|v| v.unwrap_or_else(|| "NULL".to_owned()))
        .boxed()
}

fn inner_ts() -> BoxedStrategy<String> {
    (
        or_null(any::<i32>().prop_map(|i| format!("({i})::int4")).boxed()),
        or_null(text().prop_map(|t| typed(&t, "text")).boxed()),
        or_null(timestamptzs()),
        or_null(any::<bool>().prop_map(|b| b.to_string()).boxed()),
        or_null(float4s()),
    )
        .prop_map(|(a, b, c, d, e)| format!("ROW({a}, {b}, {c}, {d}, {e})::inner_t"))
        .boxed()
}

fn outer_ts() -> BoxedStrategy<String> {
    (
        or_null(any::<i64>().prop_map(|i| format!("({i})::int8")).boxed()),
        or_null(inner_ts()),
        or_null(
            array_of("text", text().prop_map(|t| typed(&t, "text")).boxed())
                .prop_map(|c| c.sql)
                .boxed(),
        ),
        or_null(numerics()),
        or_null(jsonbs()),
        (
            or_null(
                (1..i32::MAX)
                    .prop_map(|i| typed(&i.to_string(), "posint"))
                    .boxed(),
            ),
            or_null(moods()),
            or_null(float8s()),
            or_null(
                array_of("timestamptz", timestamptzs())
                    .prop_map(|c| c.sql)
                    .boxed(),
            ),
            or_null("[ -~]{0,3} ?".prop_map(|v| typed(&v, "char(4)")).boxed()),
        ),
    )
        .prop_map(|(a, b, c, d, e, (f, g, h, i, j))| {
            format!("ROW({a}, {b}, {c}, {d}, {e}, {f}, {g}, {h}, {i}, {j})::outer_t")
        })
        .boxed()
}

/// Arrays of `ty` (one or two dimensions, NULL elements, any lower bounds).
fn array_of(ty: &'static str, element: BoxedStrategy<String>) -> BoxedStrategy<Case> {
    let element = or_null(element);
    let shape = prop_oneof![
        (0..5usize).prop_map(|n| (1usize, n, false)),
        (1..4usize, 1..4usize).prop_map(|(r, c)| (r, c, true)),
    ];
    (shape, option::of((-5i32..5, -5i32..5)))
        .prop_flat_map(move |((rows, cols, two), bounds)| {
            (
                vec(element.clone(), rows * cols),
                Just((rows, cols, two, bounds)),
            )
        })
        .prop_map(move |(items, (rows, cols, two, bounds))| {
            let array = if items.is_empty() {
                format!("'{{}}'::{ty}[]")
            } else if two {
                let rows_sql: Vec<String> = items
                    .chunks(cols)
                    .map(|row| format!("ARRAY[{}]", row.join(", ")))
                    .collect();
                format!("ARRAY[{}]::{ty}[]", rows_sql.join(", "))
            } else {
                format!("ARRAY[{}]::{ty}[]", items.join(", "))
            };
            let sql = match bounds {
                Some((first, second)) if !items.is_empty() => {
                    let mut dims = format!("[{first}:{}]", first + rows as i32 - 1);
                    if two {
                        dims.push_str(&format!("[{second}:{}]", second + cols as i32 - 1));
                    } else {
                        dims = format!("[{first}:{}]", first + cols as i32 - 1);
                    }
                    format!("(SELECT ('{dims}=' || a::text)::{ty}[] FROM (SELECT {array} AS a) x)")
                }
                _ => array,
            };
            Case {
                sql,
                array: true,
                instant: false,
            }
        })
        .boxed()
}

fn scalar(strategy: BoxedStrategy<String>, instant: bool) -> BoxedStrategy<Case> {
    strategy
        .prop_map(move |sql| Case {
            sql,
            array: false,
            instant,
        })
        .boxed()
}

/// Every kind of value, each equally likely.
fn cases() -> Union<BoxedStrategy<Case>> {
    let int2 = || any::<i16>().prop_map(|i| format!("({i})::int2")).boxed();
    let int4 = || any::<i32>().prop_map(|i| format!("({i})::int4")).boxed();
    let int8 = || any::<i64>().prop_map(|i| format!("({i})::int8")).boxed();
    let bools = || any::<bool>().prop_map(|b| b.to_string()).boxed();
    let texts = || text().prop_map(|t| typed(&t, "text")).boxed();
    let posints = || {
        (1..i32::MAX)
            .prop_map(|i| typed(&i.to_string(), "posint"))
            .boxed()
    };
    let elements: Vec<(&'static str, BoxedStrategy<String>)> = vec![
        ("int2", int2()),
        ("int4", int4()),
        ("int8", int8()),
        ("float4", float4s()),
        ("float8", float8s()),
        ("numeric", numerics()),
        ("bool", bools()),
        ("text", texts()),
        ("varchar", text().prop_map(|t| typed(&t, "varchar")).boxed()),
        ("char(6)", bpchars()),
        ("\"char\"", chars()),
        ("bytea", bytea()),
        ("uuid", uuids()),
        ("date", dates()),
        ("time", times()),
        ("timestamp", timestamps()),
        ("timestamptz", timestamptzs()),
        ("interval", intervals()),
        ("json", jsons()),
        ("jsonb", jsonbs()),
        ("inet", inets()),
        ("cidr", cidrs()),
        ("mood", moods()),
        ("box", boxes()),
        ("point", points()),
        ("posint", posints()),
        ("dtext", text().prop_map(|t| typed(&t, "dtext")).boxed()),
        ("inner_t", inner_ts()),
        ("outer_t", outer_ts()),
    ];
    let mut all: Vec<BoxedStrategy<Case>> = Vec::new();
    for (ty, element) in elements {
        all.push(scalar(element.clone(), ty == "timestamptz"));
        all.push(array_of(ty, element));
    }
    let instant = |sql: String| Case {
        sql,
        array: false,
        instant: true,
    };
    all.push(
        timestamptz_text()
            .prop_map(move |v| instant(typed(&v, "stamp")))
            .boxed(),
    );
    all.push(
        array_of("int4", int4())
            .prop_map(|c| Case {
                sql: format!("({})::ints", c.sql),
                ..c
            })
            .boxed(),
    );
    all.push(scalar(Just("ROW()::empty_t".to_owned()).boxed(), false));
    all.push(
        (1..=1000i32, 1..10i32)
            .prop_map(|(a, b)| Case {
                sql: format!("int4range({a}, {a} + {b})"),
                array: false,
                instant: false,
            })
            .boxed(),
    );
    Union::new(all)
}

/// What the server says of one value.
#[derive(Debug)]
struct Oracle {
    sql: String,
    /// The output function's text, which pgoutput sends.
    text: String,
    oid: u32,
    json: String,
    text_json: String,
    text_array_json: Option<String>,
    key: String,
    instant_key: Option<String>,
}

async fn oracle(client: &Client, cases: &[Case]) -> Result<Vec<Oracle>, tokio_postgres::Error> {
    let selects: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let text_array = if case.array {
                "to_json(v::text[])::text"
            } else {
                "NULL::text"
            };
            let instant_key = if case.instant {
                "json_build_array(v AT TIME ZONE 'UTC')::text"
            } else {
                "NULL::text"
            };
            format!(
                "SELECT {i} AS i, format('%s', v), pg_typeof(v)::oid, to_json(v)::text, \
                 to_json(v::text)::text, {text_array}, json_build_array(v)::text, {instant_key} \
                 FROM (SELECT {} AS v) s",
                case.sql
            )
        })
        .collect();
    let sql = format!("{} ORDER BY i", selects.join("\nUNION ALL "));
    let rows = client.query(&sql, &[]).await?;
    let unbracket = |s: String| s[1..s.len() - 1].to_owned();
    Ok(rows
        .into_iter()
        .zip(cases)
        .map(|(row, case)| Oracle {
            sql: case.sql.clone(),
            text: row.get(1),
            oid: row.get(2),
            json: row.get(3),
            text_json: row.get(4),
            text_array_json: row.get(5),
            key: unbracket(row.get(6)),
            instant_key: row.get::<_, Option<String>>(7).map(unbracket),
        })
        .collect())
}

/// At most 2000 characters of `text`, for messages.
fn cut(text: &str) -> &str {
    match text.char_indices().nth(2000) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Every applicable encoding of `value`, by the encoder and by the oracle.
fn compare(catalog: &TypeCatalog, value: &Oracle) -> Result<(), String> {
    let fail = |what: &str, expected: &str, got: Result<String, String>| {
        format!(
            "{what} of {} (type oid {}, text {:?}):\n  server:  {}\n  encoder: {}",
            cut(&value.sql),
            value.oid,
            cut(&value.text),
            cut(expected),
            cut(&format!("{got:?}")),
        )
    };
    let run = |encoding: Encoding, key: bool| -> Result<String, String> {
        let checked = if key {
            catalog.check_key(value.oid, encoding)
        } else {
            catalog.check(value.oid, encoding)
        };
        checked.map_err(|e| format!("check refused: {e}"))?;
        let mut out = String::from("«");
        let encoded = if key {
            catalog.encode_key(value.oid, encoding, &value.text, &mut out)
        } else {
            catalog.encode(value.oid, encoding, &value.text, &mut out)
        };
        encoded.map_err(|e| e.to_string())?;
        // What was there before stays.
        out.strip_prefix('«')
            .map(str::to_owned)
            .ok_or_else(|| "clobbered the output".to_owned())
    };
    let expect = |what: &str, encoding: Encoding, key: bool, expected: &str| {
        let got = run(encoding, key);
        if got.as_deref() != Ok(expected) {
            return Err(fail(what, expected, got));
        }
        Ok(())
    };
    expect("to_json(v)", Encoding::Json, false, &value.json)?;
    expect("to_json(v::text)", Encoding::Text, false, &value.text_json)?;
    expect(
        "to_json(v::text) as Float",
        Encoding::Float,
        false,
        &value.text_json,
    )?;
    expect("key json_build_array(v)", Encoding::Json, true, &value.key)?;
    expect(
        "key json_build_array(v) of Text",
        Encoding::Text,
        true,
        &value.key,
    )?;
    match &value.text_array_json {
        Some(expected) => {
            expect("to_json(v::text[])", Encoding::TextArray, false, expected)?;
            expect(
                "key json_build_array(v) of TextArray",
                Encoding::TextArray,
                true,
                &value.key,
            )?;
        }
        None => {
            if catalog.check(value.oid, Encoding::TextArray).is_ok() {
                return Err(format!("TextArray accepted for {}", value.sql));
            }
        }
    }
    match &value.instant_key {
        Some(expected) => {
            expect(
                "to_json(v) as Instant",
                Encoding::Instant,
                false,
                &value.json,
            )?;
            expect(
                "key json_build_array(v AT TIME ZONE 'UTC')",
                Encoding::Instant,
                true,
                expected,
            )?;
        }
        None => {
            if catalog.check(value.oid, Encoding::Instant).is_ok() {
                return Err(format!("Instant accepted for {}", value.sql));
            }
        }
    }
    Ok(())
}

async fn database() -> (TestDb, Client) {
    let db = TestDb::new().await.expect("a test database");
    let client = db.connect().await.expect("a connection");
    client
        .batch_execute(&format!("{}{DDL}", settings()))
        .await
        .expect("settings and types");
    (db, client)
}

#[test]
fn encoder_matches_to_json() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (_db, client) = runtime.block_on(database());
    let started = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let catalog = std::cell::RefCell::new(TypeCatalog::new());
    let values = std::cell::Cell::new(0usize);
    let result = runner.run(&vec(cases(), 150..=150), |cases| {
        runtime.block_on(async {
            let oracles = oracle(&client, &cases)
                .await
                .map_err(|e| TestCaseError::fail(format!("oracle query: {e:?}")))?;
            let oids: Vec<u32> = oracles.iter().map(|o| o.oid).collect();
            // One catalog for every case: `load` skips the types it knows.
            let mut types = catalog.take();
            let loaded = types.load(&client, &oids).await;
            catalog.replace(types);
            loaded.map_err(|e| TestCaseError::fail(format!("catalog: {e}")))?;
            values.set(values.get() + oracles.len());
            for value in &oracles {
                compare(&catalog.borrow(), value).map_err(TestCaseError::fail)?;
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "{} values compared in {:?}",
        values.get(),
        started.elapsed()
    );
}

/// A type with its own cast to json is refused for `Json` (to_json applies
/// the cast), wherever it is: in an array, a composite, under a domain.
#[test]
fn refuses_types_with_a_cast_to_json() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (_db, client) = database().await;
        client
            .batch_execute(
                "CREATE TYPE color AS ENUM ('red', 'green');
                 CREATE FUNCTION color_json(color) RETURNS json LANGUAGE sql IMMUTABLE
                   AS $$ SELECT json_build_object('color', $1::text) $$;
                 CREATE CAST (color AS json) WITH FUNCTION color_json(color);
                 CREATE DOMAIN dcolor AS color;
                 CREATE TYPE painted AS (n int4, c color);
                 CREATE TYPE shade AS ENUM ('dark');
                 CREATE FUNCTION shade_text(shade) RETURNS text LANGUAGE sql IMMUTABLE
                   AS $$ SELECT 'very ' || $1::name $$;
                 CREATE CAST (shade AS text) WITH FUNCTION shade_text(shade);",
            )
            .await
            .expect("types and casts");
        // The server applies the cast: to_json is not the string of the text.
        let row = client
            .query_one(
                "SELECT to_json('red'::color)::text, 'dark'::shade::text, \
                        'color'::regtype::oid, 'color[]'::regtype::oid, 'dcolor'::regtype::oid, \
                        'painted'::regtype::oid, 'shade'::regtype::oid, 'shade[]'::regtype::oid",
                &[],
            )
            .await
            .expect("oids");
        assert_eq!(row.get::<_, String>(0), r#"{"color" : "red"}"#);
        assert_eq!(row.get::<_, String>(1), "very dark");
        let oids: Vec<u32> = (2..8).map(|i| row.get(i)).collect();
        let [color, colors, dcolor, painted, shade, shades] = oids[..] else {
            unreachable!()
        };
        let mut catalog = TypeCatalog::new();
        catalog.load(&client, &oids).await.expect("catalog");

        for oid in [color, colors, dcolor, painted] {
            let refused = catalog
                .check(oid, Encoding::Json)
                .expect_err("a cast to json is refused");
            assert!(
                refused.contains("color") && refused.contains("cast to json"),
                "{refused}"
            );
            assert!(catalog.check_key(oid, Encoding::Json).is_err());
            let mut out = String::new();
            assert!(catalog
                .encode(oid, Encoding::Json, "red", &mut out)
                .is_err());
        }
        // `v::text` is the output text: the cast to json does not matter.
        for oid in [color, dcolor, painted] {
            assert_eq!(catalog.check(oid, Encoding::Text), Ok(()));
        }
        assert_eq!(catalog.check(colors, Encoding::TextArray), Ok(()));
        // A cast to text of its own changes `v::text`.
        assert!(catalog.check(shade, Encoding::Json).is_ok());
        let refused = catalog.check(shade, Encoding::Text).expect_err("refused");
        assert!(refused.contains("shade_text"), "{refused}");
        assert!(catalog.check(shades, Encoding::TextArray).is_err());
        // Unknown, and not an array / not a timestamptz.
        assert!(catalog.check(4_000_000_000, Encoding::Json).is_err());
        assert!(catalog.check(color, Encoding::TextArray).is_err());
        assert!(catalog.check(color, Encoding::Instant).is_err());
    });
}
