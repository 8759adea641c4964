//! `dawdle watch --metrics-addr`: Prometheus text at `/metrics`, `/healthz`
//! and `/readyz`, over real HTTP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use dawdle_test::SqsServer;

use common::{database, dawdle, eventually, Process};

/// One GET, as a probe sends it: the status line and the body.
fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

#[tokio::test]
async fn serves_metrics_health_and_readiness() {
    let (db, client) = database().await;
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("metrics", false, None).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut watcher = Process(
        dawdle(Some(server))
            .args(["watch", "--linger", "20ms"])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", db.url())
            .env("DAWDLE_SQS_QUEUE_URL", &url)
            .spawn()
            .unwrap(),
    );
    eventually("/readyz says ready", || async {
        matches!(get(port, "/readyz"), Some((status, body)) if status.contains("200") && body.contains("leading"))
    })
    .await;
    let (status, body) = get(port, "/healthz").unwrap();
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "ok\n");

    client
        .batch_execute("INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 5) n")
        .await
        .unwrap();
    eventually("/metrics counts the events sent", || async {
        get(port, "/metrics").is_some_and(|(_, body)| {
            body.lines().any(|line| {
                line.starts_with("dawdle_watcher_events_sent_total") && line.ends_with(" 5")
            })
        })
    })
    .await;
    let (status, body) = get(port, "/metrics").unwrap();
    assert!(status.contains("200"), "{status}");
    for name in [
        "dawdle_watcher_leading 1",
        "dawdle_watcher_backlog_events",
        "dawdle_watcher_send_duration_seconds",
    ] {
        assert!(body.contains(name), "{name} in:\n{body}");
    }
    let (status, _) = get(port, "/nope").unwrap();
    assert!(status.contains("404"), "{status}");

    watcher.signal("-TERM");
    assert!(watcher.0.wait().unwrap().success());
}
