//! The `dawdle-sql` binary, as a user runs it, on a real database.

use std::process::Command;

use dawdle_test::TestDb;

fn dawdle_sql(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dawdle-sql"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn up_applies_twice_and_down_restores_the_schema() {
    let up = dawdle_sql(&[]);
    assert_eq!(up, dawdle_sql(&["up"]));
    let down = dawdle_sql(&["down"]);

    let db = TestDb::new().await.unwrap();
    let client = db.connect().await.unwrap();
    client
        .batch_execute(include_str!("../schema.sql"))
        .await
        .unwrap();
    let before = db.dump_schema().unwrap();
    // Applied as psql -f would: statement by statement, no transaction of ours.
    client.batch_execute(&up).await.unwrap();
    let after_up = db.dump_schema().unwrap();
    let triggers: Vec<String> = client
        .query(
            "SELECT tgrelid::regclass::text || ' ' || tgname FROM pg_trigger \
             WHERE tgname LIKE 'dawdle%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        triggers,
        [
            "shop.orders dawdle_enter",
            "shop.orders dawdle_insert",
            "shop.orders dawdle_update",
            "users dawdle_delete",
            "users dawdle_enter",
            "users dawdle_insert",
            "users dawdle_truncate",
            "users dawdle_truncating",
            "users dawdle_update",
        ],
        "orders do not capture deletes"
    );
    client.batch_execute(&up).await.unwrap();
    assert_eq!(
        after_up,
        db.dump_schema().unwrap(),
        "a second up changes nothing"
    );

    client
        .batch_execute("INSERT INTO users (name) VALUES ('a'); UPDATE users SET password = 'x';")
        .await
        .unwrap();
    let events: i64 = client
        .query_one("SELECT count(*) FROM dawdle.events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 1, "the insert; the password is not watched");

    client.batch_execute(&down).await.unwrap();
    assert_eq!(
        before,
        db.dump_schema().unwrap(),
        "down leaves the schema as it was"
    );
}

#[test]
fn dir_writes_sqlx_and_refinery_files() {
    let dir = std::env::temp_dir().join(format!("dawdle-sql-dir-{}", std::process::id()));
    let dir_arg = dir.to_str().unwrap();
    let printed = dawdle_sql(&["--dir", dir_arg]);
    dawdle_sql(&[
        "--dir", dir_arg, "--format", "refinery", "--name", "capture",
    ]);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names[0].ends_with("_dawdle.down.sql")
            && names[0].len() == "20260101000000_dawdle.down.sql".len()
    );
    assert!(names[1].ends_with("_dawdle.up.sql"));
    assert!(names[2].starts_with('V') && names[2].ends_with("__capture.sql"));
    assert!(printed.contains("wrote "));
    assert_eq!(
        std::fs::read_to_string(dir.join(&names[1])).unwrap(),
        dawdle_sql(&["up"])
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn help_and_usage_errors() {
    assert!(dawdle_sql(&["--help"]).contains("USAGE:"));
    let out = Command::new(env!("CARGO_BIN_EXE_dawdle-sql"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument \"--frobnicate\""));
}

#[test]
fn schema_tells_a_reader_how_each_column_is_spelled() {
    let schema: serde_json::Value = serde_json::from_str(&dawdle_sql(&["schema"])).unwrap();
    assert_eq!(schema["properties"]["dawdle"]["const"], 1);
    let orders = &schema["$defs"]["shop.orders.row"]["properties"];
    // numeric travels as its text, a timestamptz as an instant with an offset.
    assert_eq!(orders["total"]["x-dawdle-encoding"], "text");
    assert_eq!(orders["placed_at"]["x-dawdle-encoding"], "instant");
    let users = &schema["$defs"]["public.users.row"]["properties"];
    assert_eq!(users["settings"]["x-dawdle-encoding"], "json");
    // The point override is read as a float array: strings, nulls kept.
    assert_eq!(users["location"]["x-dawdle-encoding"], "text-array");
    let actions = &schema["$defs"]["shop.orders"]["properties"]["action"]["enum"];
    assert!(
        !actions.as_array().unwrap().contains(&"delete".into()),
        "{actions}"
    );
}

#[tokio::test]
async fn apply_prints_what_the_server_said() {
    // No schema.sql: the watched tables do not exist.
    let db = TestDb::new().await.unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dawdle-sql"))
        .arg("apply")
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(
            "dawdle-sql: applying dawdle's SQL failed: \
             ERROR: table \"public\".\"users\" does not exist, and dawdle_examples::User \
             watches it (SQLSTATE 42P01)\nHINT: Create it before applying dawdle's up migration.\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("db error"), "{stderr}");
    // Where the server points into the migration, it is a line of it with
    // a caret under the spot, not a character count.
    assert!(!stderr.contains(" at character "), "{stderr}");
    let mut lines = stderr.lines().skip(1);
    if let (Some(line), Some(caret)) = (lines.next(), lines.next()) {
        if line.starts_with("LINE ") {
            assert!(caret.trim_start() == "^", "{stderr}");
            assert!(
                line[caret.len() - 1..].starts_with(r#""public""#),
                "{stderr}"
            );
        }
    }
}

#[test]
fn a_closed_pipe_ends_it_quietly() {
    // `dawdle-sql schema | head`, with the reader gone before the first write.
    for command in ["schema", "up"] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_dawdle-sql"))
            .arg(command)
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{command}: {stderr}");
    }
}
