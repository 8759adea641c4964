//! `dawdle dlq` against moto's SQS server: list, show and redrive.

mod common;

use std::time::Duration;

use dawdle::queue::{Queue, SqsQueue};
use dawdle_test::SqsServer;

use common::{dawdle, run, succeed};

const BODY: &str = r#"{"dawdle":1,"events":[{"id":7,"schema":"public","table":"items","action":"insert","key":[1],"captured_at":"2026-11-27T10:11:12.123456+00:00","txid":"99","old":null,"new":{"id":1,"name":"one"}}]}"#;

/// Every body on `queue`, deleted.
async fn drain(queue: &SqsQueue) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let messages = queue
            .receive(10, Duration::from_secs(1), Duration::from_secs(60))
            .await
            .unwrap();
        if messages.is_empty() {
            return bodies;
        }
        bodies.extend(messages.iter().map(|m| m.body.clone()));
        let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
        queue.delete(&receipts).await.unwrap();
    }
}

#[tokio::test]
async fn lists_shows_and_redrives_dead_letters() {
    let server = SqsServer::get().await.unwrap();
    let url = server.create_queue("dlq", false, Some(3)).await.unwrap();
    let dlq_url = format!("{url}-dlq");
    let client = server.client().await;
    let queue = SqsQueue::builder(client.clone(), &url)
        .dead_letter_queue(&dlq_url)
        .build();

    // One message dead-lettered as a listener does it, one that never was
    // a dawdle message, put there by hand.
    client
        .send_message()
        .queue_url(&url)
        .message_body(BODY)
        .send()
        .await
        .unwrap();
    let received = queue
        .receive(1, Duration::from_secs(1), Duration::from_secs(60))
        .await
        .unwrap();
    queue
        .dead_letter(&received[0], "no handler for public.items")
        .await
        .unwrap();
    let garbage = client
        .send_message()
        .queue_url(&dlq_url)
        .message_body("not json")
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();

    let dlq = |args: &[&str]| {
        let mut command = dawdle(Some(server));
        command
            .arg("dlq")
            .args(args)
            .env("DAWDLE_SQS_QUEUE_URL", &url);
        command
    };

    let listed = succeed(&mut dlq(&["list"]));
    println!("{listed}");
    assert_eq!(listed.lines().count(), 3, "a header and two messages");
    let line = listed.lines().find(|l| l.contains("items")).unwrap();
    assert!(line.contains("public.items insert 7"), "{line}");
    assert!(line.contains("no handler for public.items"), "{line}");
    let dawdle_id = line.split_whitespace().next().unwrap().to_owned();
    assert!(listed.contains(&garbage));
    assert!(listed.contains("not a dawdle message"));

    let json: serde_json::Value =
        serde_json::from_str(&succeed(&mut dlq(&["list", "--json"]))).unwrap();
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{json}");
    let entry = entries
        .iter()
        .find(|m| m["message_id"] == dawdle_id.as_str())
        .unwrap();
    assert_eq!(
        entry["first_event"],
        serde_json::json!({"schema": "public", "table": "items", "action": "insert", "id": 7})
    );
    assert_eq!(
        (&entry["events"], &entry["error"]),
        (&1.into(), &serde_json::Value::Null)
    );
    assert_eq!(entry["reason"], "no handler for public.items");
    let other = entries
        .iter()
        .find(|m| m["message_id"] == garbage.as_str())
        .unwrap();
    assert!(
        other["error"]
            .as_str()
            .unwrap()
            .contains("not a dawdle message"),
        "{other}"
    );

    let shown = succeed(&mut dlq(&["show", &dawdle_id]));
    assert!(
        shown.contains("reason:        no handler for public.items"),
        "{shown}"
    );
    assert!(shown.contains(r#""name": "one""#), "pretty JSON: {shown}");
    let (output, _) = run(&mut dlq(&["show", "no-such-id"]));
    assert_eq!(output.status.code(), Some(1));

    let (output, _) = run(&mut dlq(&["redrive"]));
    assert_eq!(output.status.code(), Some(2), "--all or ids");

    succeed(&mut dlq(&["redrive", &garbage]));
    assert_eq!(drain(&queue).await, ["not json"]);
    let listed = succeed(&mut dlq(&["list"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");

    let redriven = succeed(&mut dlq(&["redrive", "--all"]));
    assert!(redriven.contains("redrove 1 messages"), "{redriven}");
    assert_eq!(drain(&queue).await, [BODY]);
    let listed = succeed(&mut dlq(&["list"]));
    assert!(listed.contains("is empty"), "{listed}");
    assert_eq!(succeed(&mut dlq(&["list", "--json"])).trim(), "[]");
}
