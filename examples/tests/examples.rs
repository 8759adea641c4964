//! The example binaries end by themselves: run them as a newcomer would.

use std::process::Command;

fn run(binary: &str) -> String {
    let out = Command::new(binary)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{binary} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn quickstart_prints_what_the_handlers_received() {
    let out = run(env!("CARGO_BIN_EXE_quickstart"));
    for line in [
        "welcome:  Ada joined",
        "welcome:  Grace joined",
        "renamed:  \"Ada\" -> \"Ada Lovelace\", settings {\"theme\":\"dark\"}",
        "audit:    order 1 placed, 12.50 Pending",
        "audit:    order 1 Pending -> Paid",
        "farewell: Ada Lovelace left",
        "handled 6 events; shut down cleanly",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn signals_example_delays_a_signal_and_backfills() {
    let out = run(env!("CARGO_BIN_EXE_signals"));
    for line in [
        "snapshot: Ada was there before dawdle",
        "snapshot: Edsger was there before dawdle",
        "insert:   Barbara joined",
        "signal:   remind Barbara (sent 2 s before it was due",
        "backfill: 4 rows of public.users sent",
        "handled 6 events; shut down cleanly",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(
        !out.contains("nobody"),
        "a rolled-back signal was delivered:\n{out}"
    );
    assert!(
        !out.contains("insert:   Ada"),
        "a snapshot reached the Insert handler:\n{out}"
    );
}

#[test]
fn capture_prints_decoded_events() {
    let out = run(env!("CARGO_BIN_EXE_capture"));
    assert!(out.contains("event 1: insert on public.users"), "{out}");
    assert!(out.contains("status: Paid"), "{out}");
    assert!(
        !out.contains("delete on shop.orders"),
        "orders do not capture deletes:\n{out}"
    );
}

#[test]
fn sqs_example_crosses_processes() {
    let out = run(env!("CARGO_BIN_EXE_sqs"));
    assert_eq!(out.matches("listener: handled event").count(), 7, "{out}");
    assert!(
        out.contains("7 events went through SQS from one process to another"),
        "{out}"
    );
}

#[test]
fn pg_listeners_example_shares_one_queue_between_two_processes() {
    let out = run(env!("CARGO_BIN_EXE_pg_listeners"));
    assert_eq!(out.matches(": handled event").count(), 42, "{out}");
    assert!(
        out.contains("42 events went through one PgQueue to"),
        "{out}"
    );
}
