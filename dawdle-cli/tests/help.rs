//! `--help` of every subcommand shows each flag with its environment variable.

mod common;

use common::{dawdle, succeed};

fn help(args: &[&str]) -> String {
    succeed(dawdle(None).args(args).arg("--help"))
}

/// Every flag in `dawdle <args> --help` shows an `[env: ...]` note; and
/// `expected` flags are there with their variables.
fn assert_flags_have_env(args: &[&str], expected: &[(&str, &str)]) {
    let text = help(args);
    // In the long help each flag starts a block "      --name ...", which
    // runs until the next one.
    for block in text.split("\n      --").skip(1) {
        let name: String = block
            .chars()
            .take_while(|c| *c != ' ' && *c != '\n')
            .collect();
        // Wrapping may break a note across lines.
        let flat = block.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("[env: "),
            "`dawdle {} --help`: --{name} shows no environment variable:\n{block}",
            args.join(" ")
        );
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (flag, env) in expected {
        assert!(text.contains(&format!("--{flag}")), "no --{flag}:\n{text}");
        assert!(text.contains(&format!("[env: {env}")), "no {env}:\n{text}");
    }
    assert!(text.contains("Exit codes:"), "{text}");
}

#[test]
fn watch_help_shows_every_setting_with_its_variable() {
    assert_flags_have_env(
        &["watch"],
        &[
            ("database-url", "DATABASE_URL"),
            ("queue-url", "DAWDLE_SQS_QUEUE_URL"),
            ("sqs-endpoint", "DAWDLE_SQS_ENDPOINT"),
            ("region", "DAWDLE_AWS_REGION"),
            ("fifo", "DAWDLE_SQS_FIFO"),
            ("max-message-bytes", "DAWDLE_MAX_MESSAGE_BYTES"),
            ("dead-letter-queue", "DAWDLE_SQS_DEAD_LETTER_QUEUE"),
            ("sqs-operation-timeout", "DAWDLE_SQS_OPERATION_TIMEOUT"),
            ("sqs-attempt-timeout", "DAWDLE_SQS_ATTEMPT_TIMEOUT"),
            ("batch-size", "DAWDLE_BATCH_SIZE"),
            ("events-per-message", "DAWDLE_EVENTS_PER_MESSAGE"),
            ("linger", "DAWDLE_LINGER"),
            ("linger-poll", "DAWDLE_LINGER_POLL"),
            ("poll-interval", "DAWDLE_POLL_INTERVAL"),
            ("standby-retry", "DAWDLE_STANDBY_RETRY"),
            ("payload-retention", "DAWDLE_PAYLOAD_RETENTION"),
            ("send-timeout", "DAWDLE_SEND_TIMEOUT"),
            ("route", "DAWDLE_ROUTES"),
            ("log", "RUST_LOG"),
        ],
    );
}

#[test]
fn status_help_shows_its_flags_and_the_json_shape() {
    assert_flags_have_env(
        &["status"],
        &[
            ("database-url", "DATABASE_URL"),
            ("queue-url", "DAWDLE_SQS_QUEUE_URL"),
            ("dead-letter-queue", "DAWDLE_SQS_DEAD_LETTER_QUEUE"),
            ("json", "DAWDLE_JSON"),
        ],
    );
    assert!(help(&["status"]).contains(r#""oldest_event_age_seconds""#));
}

#[test]
fn dlq_help_shows_its_flags() {
    for command in ["list", "show", "redrive"] {
        assert_flags_have_env(
            &["dlq", command],
            &[
                ("queue-url", "DAWDLE_SQS_QUEUE_URL"),
                ("dead-letter-queue", "DAWDLE_SQS_DEAD_LETTER_QUEUE"),
                ("sqs-endpoint", "DAWDLE_SQS_ENDPOINT"),
            ],
        );
    }
    assert_flags_have_env(&["dlq", "redrive"], &[("all", "DAWDLE_DLQ_REDRIVE_ALL")]);
}

#[test]
fn backfill_help_shows_its_flags() {
    assert_flags_have_env(
        &["backfill"],
        &[
            ("database-url", "DATABASE_URL"),
            ("where", "DAWDLE_BACKFILL_WHERE"),
            ("batch", "DAWDLE_BACKFILL_BATCH"),
            ("max-rate", "DAWDLE_BACKFILL_MAX_RATE"),
            ("rest", "DAWDLE_BACKFILL_REST"),
            ("max-backlog", "DAWDLE_BACKFILL_MAX_BACKLOG"),
            ("restart", "DAWDLE_BACKFILL_RESTART"),
        ],
    );
}

#[test]
fn the_database_url_is_never_shown() {
    let text = succeed(
        dawdle(None)
            .args(["watch", "--help"])
            .env("DATABASE_URL", "postgres://u:secret@host/db"),
    );
    assert!(!text.contains("secret"), "{text}");
}
