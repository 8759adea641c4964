//! The generated SQL: its text (snapshots), what it refuses, and what it does
//! on a real database. Tables are described by hand here, so these tests do
//! not depend on the derive.

use dawdle::sql::{self, SqlError};
use dawdle::{Column, Encoding, Events, SessionSettings, Table};
use dawdle_test::TestDb;
use serde_json::{json, Value};

const fn column(name: &'static str) -> Column {
    Column {
        name,
        field: name,
        primary_key: false,
        sql: None,
        encoding: Encoding::Json,
        settings: SessionSettings::NONE,
    }
}

const fn key(name: &'static str) -> Column {
    Column {
        primary_key: true,
        ..column(name)
    }
}

static USERS: Table = Table {
    type_name: "app::User",
    schema: "public",
    name: "users",
    columns: &[
        key("id"),
        column("name"),
        Column {
            encoding: Encoding::Float,
            ..column("score")
        },
        Column {
            sql: Some("upper($1)"),
            settings: SessionSettings::ALL,
            ..column("email")
        },
    ],
    events: Events::ALL,
    capture_unchanged: false,
    capture_replica: false,
};

/// Capitals, spaces, quotes and a backslash, in a schema of their own.
static WEIRD: Table = Table {
    type_name: "app::Weird",
    schema: "Odd Schema",
    name: "we\"ird Tab\\le",
    columns: &[key("Key Part"), key("other\"key"), column("Value Col")],
    events: Events {
        insert: true,
        update: true,
        delete: false,
        truncate: false,
    },
    capture_unchanged: true,
    capture_replica: false,
};

#[test]
fn up_and_down_snapshots() {
    insta::assert_snapshot!("up", sql::up(&[&USERS, &WEIRD]).unwrap());
    insta::assert_snapshot!("down", sql::down(&[&USERS, &WEIRD]).unwrap());
}

#[test]
fn up_for_capture_from_the_wal() {
    // USERS has an sql override, which the WAL reader cannot apply.
    let error = sql::up_with(&[&USERS, &WEIRD], sql::Capture::Wal).unwrap_err();
    assert!(error.to_string().contains("sql override"), "{error}");
    insta::assert_snapshot!(
        "up_wal",
        sql::up_with(&[&WEIRD], sql::Capture::Wal).unwrap()
    );
}

/// `public.<name>` with json columns `c0` (the key) to `c<columns - 1>`.
fn wide(name: &'static str, columns: usize) -> &'static Table {
    let columns: Vec<Column> = (0..columns)
        .map(|i| Column {
            primary_key: i == 0,
            ..column(format!("c{i}").leak())
        })
        .collect();
    Box::leak(Box::new(Table {
        schema: "public",
        name,
        columns: columns.leak(),
        ..USERS
    }))
}

#[test]
fn wide_tables_are_built_in_chunks() {
    // json_build_object takes at most 50 key/value pairs.
    let table = wide("users", 60);
    let up = sql::up(&[table]).unwrap();
    assert!(
        up.contains("(left(json_build_object('c0', e.\"new:c0\""),
        "{up}"
    );
    assert!(
        up.contains(" || ', ' || right(json_build_object('c50', e.\"new:c50\""),
        "{up}"
    );
}

#[tokio::test]
async fn a_wide_table_keeps_json_values_as_written() {
    // 120 json columns: three chunks. Merged as jsonb, `1e16` and `-0` would
    // be rewritten, and a key order changed.
    let table = wide("wide", 120);
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    let definition: Vec<String> = (0..120).map(|i| format!("c{i} json")).collect();
    client
        .batch_execute(&format!("CREATE TABLE wide ({})", definition.join(", ")))
        .await
        .unwrap();
    sql::apply(&mut client, &sql::up(&[table]).unwrap())
        .await
        .unwrap();
    let values = ["1e16", "-0", r#"{"b": 1, "a": [1.50, "x"]}"#, "null"];
    let row: Vec<String> = (0..120)
        .map(|i| format!("'{}'", values[i % values.len()]))
        .collect();
    client
        .batch_execute(&format!("INSERT INTO wide VALUES ({})", row.join(", ")))
        .await
        .unwrap();
    let captured: String = client
        .query_one(r#"SELECT "new"::text FROM "dawdle"."events""#, &[])
        .await
        .unwrap()
        .get(0);
    let captured: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&captured).unwrap();
    assert_eq!(captured.len(), 120);
    for i in 0..120 {
        let direct: String = client
            .query_one(&format!("SELECT c{i}::text FROM wide"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            captured[&format!("c{i}")].to_string(),
            serde_json::from_str::<serde_json::Value>(&direct)
                .unwrap()
                .to_string(),
            "column c{i}"
        );
    }
    // And as text, byte for byte where serde_json would not tell.
    let text: String = client
        .query_one(r#"SELECT "new"::text FROM "dawdle"."events""#, &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        text.contains(r#""c0" : 1e16"#) && text.contains(r#""c1" : -0"#),
        "{text}"
    );
}

#[test]
fn refuses_what_would_be_wrong_sql() {
    let bad = |table: Table| {
        sql::up(&[Box::leak(Box::new(table))])
            .unwrap_err()
            .to_string()
    };

    let injected = [Column {
        sql: Some("$1); DROP TABLE users; --"),
        ..key("id")
    }];
    let message = bad(Table {
        columns: Box::leak(Box::new(injected)),
        ..USERS
    });
    assert!(
        message.contains("sql override of app::User.id"),
        "{message}"
    );
    assert!(message.contains("unbalanced `)`"), "{message}");

    let message = bad(Table {
        columns: Box::leak(Box::new([column("name")])),
        ..USERS
    });
    assert!(
        message.contains("app::User has no primary key"),
        "{message}"
    );

    let message = bad(Table { name: "", ..USERS });
    assert!(message.contains("invalid table name \"\""), "{message}");

    let message = bad(Table {
        events: Events {
            insert: false,
            update: false,
            delete: false,
            truncate: false,
        },
        ..USERS
    });
    assert!(message.contains("app::User captures no event"), "{message}");

    let message = sql::up(&[Box::leak(Box::new(Table {
        name: "users\nDROP TABLE users; --",
        ..USERS
    }))])
    .unwrap();
    assert!(
        message.contains("-- public.\"users?DROP TABLE users; --\" (app::User)\n"),
        "{message}"
    );

    let long = "x".repeat(64);
    let message = bad(Table {
        name: long.leak(),
        ..USERS
    });
    assert!(message.contains("63-byte limit"), "{message}");

    let message = bad(Table {
        columns: Box::leak(Box::new([key("id"), column("id")])),
        ..USERS
    });
    assert!(
        message.contains("captures column \"id\" twice"),
        "{message}"
    );

    let twice = Table {
        type_name: "other::User",
        ..USERS
    };
    let err = sql::up(&[&USERS, Box::leak(Box::new(twice))]).unwrap_err();
    assert!(matches!(err, SqlError::TableWatchedTwice { .. }), "{err}");
    assert!(
        err.to_string().contains("app::User and other::User"),
        "{err}"
    );
}

async fn events(
    client: &tokio_postgres::Client,
) -> Vec<(String, String, String, Value, Option<Value>, Option<Value>)> {
    client
        .query(
            "SELECT schema_name, table_name, action, row_key, old, new FROM dawdle.events ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

#[tokio::test]
async fn captures_changes_of_the_named_columns_only() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, score float8, email text,
                                 secret text DEFAULT 'never leaves')",
        )
        .await
        .unwrap();
    sql::apply(&mut client, &sql::up(&[&USERS]).unwrap())
        .await
        .unwrap();

    client
        .batch_execute(
            "INSERT INTO users (id, name, score, email) VALUES (1, 'ada', '-0', 'ada@example.com');
             UPDATE users SET secret = 'changed';            -- no captured column changed
             UPDATE users SET name = 'ada';                  -- same value
             UPDATE users SET name = 'Ada', score = 'NaN';
             DELETE FROM users;",
        )
        .await
        .unwrap();
    let events = events(&client).await;
    let new_row = json!({"id": 1, "name": "ada", "score": "-0", "email": "ADA@EXAMPLE.COM"});
    let renamed = json!({"id": 1, "name": "Ada", "score": "NaN", "email": "ADA@EXAMPLE.COM"});
    let public = |action: &str, old: Option<&Value>, new: Option<&Value>| {
        (
            "public".to_owned(),
            "users".to_owned(),
            action.to_owned(),
            json!([1]),
            old.cloned(),
            new.cloned(),
        )
    };
    assert_eq!(
        events,
        vec![
            public("insert", None, Some(&new_row)),
            public("update", Some(&new_row), Some(&renamed)),
            public("delete", Some(&renamed), None),
        ]
    );

    // A rolled-back change leaves no event.
    client
        .batch_execute("BEGIN; INSERT INTO users (id, name) VALUES (2, 'x'); ROLLBACK;")
        .await
        .unwrap();
    let (count, txids): (i64, i64) = client
        .query_one(
            "SELECT count(*), count(DISTINCT txid) FROM dawdle.events",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    // The statements above ran as one simple query: one implicit transaction.
    assert_eq!((count, txids), (3, 1));
}

#[tokio::test]
async fn quoted_names_in_another_schema_work() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            r#"CREATE SCHEMA "Odd Schema";
               CREATE TABLE "Odd Schema"."we""ird Tab\le" ("Key Part" int, "other""key" text, "Value Col" text,
                                                          PRIMARY KEY ("Key Part", "other""key"));"#,
        )
        .await
        .unwrap();
    sql::apply(&mut client, &sql::up(&[&WEIRD]).unwrap())
        .await
        .unwrap();
    client
        .batch_execute(
            r#"INSERT INTO "Odd Schema"."we""ird Tab\le" VALUES (1, 'k', 'v');
               UPDATE "Odd Schema"."we""ird Tab\le" SET "Value Col" = "Value Col";  -- capture_unchanged
               DELETE FROM "Odd Schema"."we""ird Tab\le";                           -- not captured"#,
        )
        .await
        .unwrap();
    let events = events(&client).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let row = json!({"Key Part": 1, "other\"key": "k", "Value Col": "v"});
    assert_eq!(
        events[1],
        (
            "Odd Schema".to_owned(),
            "we\"ird Tab\\le".to_owned(),
            "update".to_owned(),
            json!([1, "k"]),
            Some(row.clone()),
            Some(row)
        )
    );
}

#[tokio::test]
async fn triggers_do_not_depend_on_the_writers_session() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE users (id int PRIMARY KEY, name text, score float8, email text)",
        )
        .await
        .unwrap();
    sql::apply(&mut client, &sql::up(&[&USERS]).unwrap())
        .await
        .unwrap();
    client
        .batch_execute(
            "SET extra_float_digits = -15; SET search_path = pg_catalog;
             INSERT INTO public.users VALUES (1, 'a', 0.1, NULL);",
        )
        .await
        .unwrap();
    let events = events(&client).await;
    assert_eq!(
        events[0].5,
        Some(json!({"id": 1, "name": "a", "score": "0.1", "email": null}))
    );
}

/// Floats and timestamps: no `SET` clause, exact in any session.
static READINGS: Table = Table {
    type_name: "app::Reading",
    schema: "public",
    name: "readings",
    columns: &[
        key("id"),
        Column {
            encoding: Encoding::Instant,
            ..key("at")
        },
        Column {
            encoding: Encoding::Float,
            ..column("score")
        },
        Column {
            encoding: Encoding::Float,
            ..column("ratio")
        },
    ],
    events: Events::ALL,
    capture_unchanged: false,
    capture_replica: false,
};

#[tokio::test]
async fn floats_and_instants_need_no_set_clause() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE readings (id int, at timestamptz, score float8, ratio real,
                                   PRIMARY KEY (id, at))",
        )
        .await
        .unwrap();
    sql::apply(&mut client, &sql::up(&[&READINGS]).unwrap())
        .await
        .unwrap();
    let config: Option<Vec<String>> = client
        .query_one(
            r#"SELECT proconfig FROM pg_proc WHERE proname = 'capture:public.readings'"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(config, None, "the trigger function fixes no setting");

    let scores = [
        0.1,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        5e-324,
        f64::MAX,
        1e-5,
    ];
    let ratios = [
        0.1f32,
        -0.0,
        f32::NAN,
        f32::MIN_POSITIVE,
        f32::MAX,
        1.0e-45,
        16_777_217.0,
        3.0,
    ];
    for (session, digits) in [("rounding", -15), ("default", 1), ("pg_dump", 3)] {
        client
            .batch_execute(&format!(
                "DELETE FROM readings; COMMIT; {};
                 SET extra_float_digits = {digits}; SET TimeZone = 'America/St_Johns';",
                dawdle_test::DISCARD_EVENTS
            ))
            .await
            .unwrap();
        for (id, (score, ratio)) in scores.iter().zip(ratios).enumerate() {
            client
                .execute(
                    "INSERT INTO readings VALUES ($1, '2026-01-01 00:00:00+00', $2, $3)",
                    &[&(id as i32), score, &ratio],
                )
                .await
                .unwrap();
        }
        let events = events(&client).await;
        for (id, ((score, ratio), event)) in scores.iter().zip(ratios).zip(&events).enumerate() {
            let new = event.5.as_ref().unwrap();
            let text = |name: &str| {
                new[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("{session}: {new}"))
                    .to_owned()
            };
            let parse64 = |t: String| match t.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                t => t.parse().unwrap(),
            };
            let got = parse64(text("score"));
            assert_eq!(
                got.to_bits(),
                score.to_bits(),
                "{session}: score {score} came as {new}"
            );
            let got = parse64(text("ratio")) as f32;
            assert_eq!(
                got.to_bits(),
                ratio.to_bits(),
                "{session}: ratio {ratio} came as {new}"
            );
            // The row is spelled in UTC whatever the writer's offset, and
            // so is the key.
            assert_eq!(new["at"], json!("2026-01-01T00:00:00+00:00"));
            assert_eq!(event.3, json!([id, "2026-01-01T00:00:00"]));
        }
    }
}

/// A database with the tables of [`USERS`] and [`WEIRD`].
async fn users_and_weird() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new().await.unwrap();
    let client = db.connect().await.unwrap();
    client
        .batch_execute(
            r#"CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, score float8, email text);
               CREATE SCHEMA "Odd Schema";
               CREATE TABLE "Odd Schema"."we""ird Tab\le" ("Key Part" int, "other""key" text, "Value Col" text,
                                                          PRIMARY KEY ("Key Part", "other""key"));"#,
        )
        .await
        .unwrap();
    (db, client)
}

#[tokio::test]
async fn up_runs_twice_and_down_restores_the_schema() {
    let (db, mut client) = users_and_weird().await;
    let before = db.dump_schema().unwrap();
    let tables = [&USERS, &WEIRD];
    let up = sql::up(&tables).unwrap();
    sql::apply(&mut client, &up).await.unwrap();
    let once = db.dump_schema().unwrap();
    sql::apply(&mut client, &up).await.unwrap();
    assert_eq!(
        once,
        db.dump_schema().unwrap(),
        "a second up changes nothing"
    );
    client
        .batch_execute("INSERT INTO users VALUES (1, 'pending', 1, NULL)")
        .await
        .unwrap();
    sql::apply(&mut client, &sql::down(&tables).unwrap())
        .await
        .unwrap();
    assert_eq!(
        before,
        db.dump_schema().unwrap(),
        "down leaves the schema as it was"
    );
}

#[tokio::test]
async fn a_statement_updating_many_rows_pairs_each_old_row_with_its_new_one() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, score float8, email text);
             INSERT INTO users SELECT g, 'user ' || g, g, NULL FROM generate_series(1, 200) g;",
        )
        .await
        .unwrap();
    sql::apply(&mut client, &sql::up(&[&USERS]).unwrap())
        .await
        .unwrap();
    // The key changes too, and every third row is left as it was.
    client
        .batch_execute(
            "UPDATE users SET id = CASE WHEN id % 3 = 0 THEN id ELSE id + 1000 END,
                              name = CASE WHEN id % 3 = 0 THEN name ELSE 'renamed ' || id END",
        )
        .await
        .unwrap();
    let events = events(&client).await;
    assert_eq!(events.len(), 200 - 200 / 3, "no event for unchanged rows");
    for (_, _, action, key, old, new) in &events {
        assert_eq!(action, "update");
        let (old, new) = (old.as_ref().unwrap(), new.as_ref().unwrap());
        let id = old["id"].as_i64().unwrap();
        assert_ne!(id % 3, 0, "{old}");
        assert_eq!(new["id"], json!(id + 1000), "{old} → {new}");
        assert_eq!(new["name"], json!(format!("renamed {id}")));
        assert_eq!(old["name"], json!(format!("user {id}")));
        assert_eq!(key, &json!([id + 1000]), "the key is the new row's");
    }
}

/// A column whose type a migration of the application changes.
static METERS: Table = Table {
    type_name: "app::Meter",
    schema: "public",
    name: "meters",
    columns: &[key("id"), column("reading")],
    events: Events::ALL,
    capture_unchanged: false,
    capture_replica: false,
};

#[tokio::test]
async fn an_altered_column_is_retyped_by_running_up_again_keeping_waiting_events() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE meters (id int PRIMARY KEY, reading int NOT NULL)")
        .await
        .unwrap();
    let up = sql::up(&[&METERS]).unwrap();
    assert!(up.contains("After an ALTER TABLE of a captured column, run this migration again"));
    sql::apply(&mut client, &up).await.unwrap();
    client
        .batch_execute("INSERT INTO meters VALUES (1, 7)")
        .await
        .unwrap();
    // The application's migration: the column grows, and dawdle's up runs
    // again in the same transaction, as the migration's comment says.
    sql::apply(
        &mut client,
        &format!("ALTER TABLE meters ALTER reading TYPE bigint;\n{up}"),
    )
    .await
    .unwrap();
    client
        .batch_execute("INSERT INTO meters VALUES (2, 1099511627776)")
        .await
        .unwrap();
    let news: Vec<Value> = events(&client)
        .await
        .into_iter()
        .map(|e| e.5.unwrap())
        .collect();
    assert_eq!(
        news,
        [
            json!({"id": 1, "reading": 7}),
            json!({"id": 2, "reading": 1_099_511_627_776_i64})
        ]
    );
    // A type whose text the old values do not fit is refused with the
    // column's name, and nothing changes.
    sql::apply(
        &mut client,
        &format!("ALTER TABLE meters ALTER reading TYPE text;\n{up}"),
    )
    .await
    .unwrap();
    client
        .batch_execute("UPDATE meters SET reading = 'x' || reading")
        .await
        .unwrap();
    let waiting = events(&client).await.len();
    let retyped = sql::apply(
        &mut client,
        &format!("ALTER TABLE meters ALTER reading TYPE int USING length(reading);\n{up}"),
    )
    .await;
    assert!(retyped.is_err());
    assert_eq!(events(&client).await.len(), waiting);
}

#[tokio::test]
async fn a_refused_apply_says_what_the_server_said() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    let missing = sql::apply(&mut client, &sql::up(&[&USERS]).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(missing, SqlError::Database(_)), "{missing:?}");
    // Then where in the migration, which moves as the SQL does.
    let text = missing.to_string();
    assert!(
        text.starts_with(
            "applying dawdle's SQL failed: ERROR: table \"public\".\"users\" does not exist, \
             and app::User watches it (SQLSTATE 42P01)\nHINT: Create it before applying dawdle's up migration."
        ),
        "{text}"
    );
    assert!(
        text.lines().next().unwrap().ends_with(" (SQLSTATE 42P01)"),
        "{text}"
    );
    // The message has the server's text; the error is not a source too.
    assert!(std::error::Error::source(&missing).is_none());

    // The server's hint, and where in the statement.
    let hinted = sql::apply(&mut client, "SELECT no_such_function(1)")
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        hinted,
        "applying dawdle's SQL failed: ERROR: function no_such_function(integer) does not exist \
         at character 8 (SQLSTATE 42883)\n\
         HINT: No function matches the given name and argument types. \
         You might need to add explicit type casts."
    );

    // Detail, hint and the context the error arose in.
    let raised = sql::apply(
        &mut client,
        "DO $$ BEGIN RAISE EXCEPTION 'no' USING DETAIL = 'why', HINT = 'do this'; END $$",
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(
        raised,
        "applying dawdle's SQL failed: ERROR: no (SQLSTATE P0001)\n\
         DETAIL: why\n\
         HINT: do this\n\
         CONTEXT: PL/pgSQL function inline_code_block line 1 at RAISE"
    );

    // In a query a function ran: its line, and the function.
    let inside = sql::apply(
        &mut client,
        "CREATE FUNCTION report() RETURNS void LANGUAGE plpgsql AS $$
         BEGIN
           PERFORM relnmae FROM pg_class;
         END $$;
         SELECT report();",
    )
    .await
    .unwrap_err()
    .to_string();
    let caret = format!("{}^", " ".repeat("QUERY LINE 1: SELECT ".len()));
    assert_eq!(
        inside,
        format!(
            "applying dawdle's SQL failed: ERROR: column \"relnmae\" does not exist (SQLSTATE 42703)\n\
             HINT: Perhaps you meant to reference the column \"pg_class.relname\".\n\
             QUERY LINE 1: SELECT relnmae FROM pg_class\n\
             {caret}\n\
             CONTEXT: PL/pgSQL function report() line 3 at PERFORM"
        )
    );
}

#[tokio::test]
async fn upgrading_from_0_1_sends_the_events_waiting_in_its_table_first() {
    let (db, mut client) = users_and_weird().await;
    // dawdle 0.1's migration, as it generated it for these two tables.
    sql::apply(&mut client, include_str!("fixtures/up_0_1.sql"))
        .await
        .unwrap();
    client
        .batch_execute(
            "INSERT INTO users VALUES (1, 'old', 0.5, 'a@b'); UPDATE users SET name = 'older';",
        )
        .await
        .unwrap();
    let before: Vec<Value> = client
        .query("SELECT new FROM dawdle.events ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(before.len(), 2, "{before:?}");

    let up = sql::up(&[&USERS, &WEIRD]).unwrap();
    sql::apply(&mut client, &up).await.unwrap();
    client
        .batch_execute("UPDATE users SET name = 'new'")
        .await
        .unwrap();
    let after = events(&client).await;
    assert_eq!(after.len(), 3, "{after:?}");
    let news: Vec<_> = after.iter().map(|e| e.5.clone().unwrap()).collect();
    assert_eq!(news[..2], before[..], "0.1's events come first, unchanged");
    assert_eq!(after[2].2, "update");
    assert_eq!(news[2]["name"], json!("new"));

    // A watcher sends both, in order, and then the next up drops 0.1's table.
    let queue = dawdle::MemoryQueue::new();
    let watcher = dawdle::Watcher::builder(db.config().clone(), queue.clone())
        .build()
        .start();
    let mut ids = Vec::new();
    while ids.len() < 3 {
        for message in dawdle::queue::Queue::receive(
            &queue,
            10,
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap()
        {
            let envelope = dawdle::wire::Envelope::parse(&message.body).unwrap();
            ids.extend(envelope.events.iter().map(|e| e.id));
        }
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // The watcher empties 0.1's table once its events were sent.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left: i64 = client
            .query_one(r#"SELECT count(*) FROM "dawdle"."events:0.1""#, &[])
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "0.1's table keeps {left} events"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    watcher.shutdown().await.unwrap();
    sql::apply(&mut client, &up).await.unwrap();
    let legacy: Option<String> = client
        .query_one(r#"SELECT to_regclass('"dawdle"."events:0.1"')::text"#, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(legacy, None);
    assert_eq!(events(&client).await.len(), 0);
}
