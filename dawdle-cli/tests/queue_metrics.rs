//! `dawdle watch --metrics-addr` reports the depth of the watcher's queue
//! as the `dawdle_queue_*` gauges, read from the queue itself.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{database, dawdle, eventually, Process};

/// The body of `GET /metrics`.
fn metrics(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
}

#[tokio::test]
async fn serves_the_depth_of_the_watchers_pg_queue() {
    let (db, client) = database().await;
    // In the PgQueue "jobs": one dead letter, one in flight, one delayed
    // and two waiting.
    client
        .batch_execute(
            "SELECT dawdle.queue_send('jobs', 'doomed');
             SELECT dawdle.queue_dead_letter('jobs', id, receive_count, 'handler failed')
             FROM dawdle.queue_read('jobs', 30, 1);
             SELECT dawdle.queue_send('jobs', 'busy');
             SELECT FROM dawdle.queue_read('jobs', 600, 1);
             SELECT dawdle.queue_send('jobs', 'later', delay_seconds => 600),
                    dawdle.queue_send('jobs', 'one'), dawdle.queue_send('jobs', 'two');",
        )
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut watcher = Process(
        dawdle(None)
            .args(["watch", "--queue", "jobs"])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", db.url())
            .spawn()
            .unwrap(),
    );
    let expected = [
        r#"dawdle_queue_depth{queue="jobs"} 2"#,
        r#"dawdle_queue_in_flight{queue="jobs"} 1"#,
        r#"dawdle_queue_delayed{queue="jobs"} 1"#,
        r#"dawdle_queue_dead_letters{queue="jobs"} 1"#,
    ];
    eventually("/metrics shows the queue's depth", || async {
        metrics(port)
            .is_some_and(|body| expected.iter().all(|line| body.lines().any(|l| l == *line)))
    })
    .await;
    let body = metrics(port).unwrap();
    let age: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix(r#"dawdle_queue_oldest_age_seconds{queue="jobs"} "#))
        .unwrap_or_else(|| panic!("no oldest age in:\n{body}"))
        .parse()
        .unwrap();
    assert!((0.0..600.0).contains(&age), "{age}");
    assert!(
        body.contains("# TYPE dawdle_queue_depth gauge"),
        "described as a gauge:\n{body}"
    );

    watcher.signal("-TERM");
    assert!(watcher.0.wait().unwrap().success());
}
