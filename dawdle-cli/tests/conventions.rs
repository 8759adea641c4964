//! The command-line conventions of `dawdle`: completions, man pages, logs that suit
//! their reader (no colour codes off a terminal, JSON for log shippers), and
//! a closed pipe that ends the command quietly.

mod common;

use std::process::Stdio;

use common::{database, dawdle, run, succeed};

#[test]
fn completions_for_each_shell_name_the_command() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = succeed(dawdle(None).args(["completions", shell]));
        assert!(script.contains("dawdle"), "{shell}:\n{script}");
        assert!(
            script.contains("watch"),
            "{shell}: no subcommands:\n{script}"
        );
    }
    let (output, _) = run(dawdle(None).args(["completions", "tcsh"]));
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_pages_cover_every_subcommand() {
    let roff = succeed(dawdle(None).arg("man"));
    for page in [
        "dawdle",
        "dawdle-watch",
        "dawdle-console",
        "dawdle-dlq",
        "dawdle-backfill",
    ] {
        assert!(
            roff.contains(&format!(".TH {page} 1")),
            "no page {page}:\n{roff}"
        );
    }
    assert!(
        roff.contains("DAWDLE_CONSOLE_TOKEN"),
        "flags with their variables"
    );
    let dir = std::env::temp_dir().join(format!("dawdle-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    succeed(dawdle(None).args(["man", "--out"]).arg(&dir));
    let watch = std::fs::read_to_string(dir.join("dawdle-watch.1")).unwrap();
    assert!(
        watch.starts_with(".ie") || watch.contains(".TH dawdle-watch 1"),
        "{watch}"
    );
    assert!(watch.contains("route"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `dawdle status` with tokio-postgres's debug logs on: log lines on stderr
/// without a terminal, whatever the format.
async fn status_logs(configure: impl FnOnce(&mut std::process::Command)) -> String {
    let (db, _client) = database().await;
    let mut command = dawdle(None);
    command
        .args(["status", "--log", "debug"])
        .env("DATABASE_URL", db.url());
    configure(&mut command);
    let (output, stdout) = run(&mut command);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.trim().is_empty(), "no log lines");
    stderr
}

#[tokio::test]
async fn logs_have_no_colour_codes_off_a_terminal_or_with_no_color() {
    // stderr is a pipe here, not a terminal.
    let logs = status_logs(|c| {
        c.env_remove("NO_COLOR");
    })
    .await;
    assert!(!logs.contains("\x1b["), "{logs}");
    let logs = status_logs(|c| {
        c.env("NO_COLOR", "1");
    })
    .await;
    assert!(!logs.contains("\x1b["), "{logs}");
}

#[tokio::test]
async fn log_format_json_writes_one_object_per_line() {
    for configure in [
        (|c: &mut std::process::Command| {
            c.args(["--log-format", "json"]);
        }) as fn(&mut std::process::Command),
        |c| {
            c.env("DAWDLE_LOG_FORMAT", "json");
        },
    ] {
        let logs = status_logs(configure).await;
        for line in logs.lines() {
            let object: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert!(object["level"].is_string(), "{line}");
            assert!(object["fields"].is_object(), "{line}");
        }
    }
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    // The reading end is closed before the command writes a byte.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = dawdle(None)
        .args(["completions", "bash"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

#[test]
fn help_shows_the_library_defaults() {
    use dawdle::watcher::WatcherBuilder;

    let help = succeed(dawdle(None).args(["watch", "--help"]));
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let duration = |d| humantime::format_duration(d).to_string();
    for (flag, default) in [
        ("linger-poll", duration(WatcherBuilder::DEFAULT_LINGER_POLL)),
        ("linger", duration(WatcherBuilder::DEFAULT_LINGER)),
        (
            "payload-retention",
            duration(WatcherBuilder::DEFAULT_PAYLOAD_RETENTION),
        ),
        ("batch-size", WatcherBuilder::DEFAULT_BATCH_SIZE.to_string()),
    ] {
        let at = flat
            .find(&format!("--{flag} <"))
            .unwrap_or_else(|| panic!("no --{flag}:\n{help}"));
        let block = &flat[at..];
        let end = block[2..].find(" --").map_or(block.len(), |i| i + 2);
        assert!(
            block[..end].contains(&format!("[default: {default}]")),
            "--{flag}: {}",
            &block[..end]
        );
    }
    // It said 1ms while the watcher used 3 ms.
    assert!(flat.contains("[default: 3ms]"), "{help}");
}
