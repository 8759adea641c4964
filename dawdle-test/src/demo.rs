//! A database with something in every corner of the console: captured
//! rows the watcher sent, dead letters that say why, delayed signals and a
//! paused backfill. For the console's tests and screenshots.

use std::time::Duration;

use dawdle::queue::{Failure, OutgoingMessage, PgQueue, Queue};
use dawdle::watcher::Watcher;
use dawdle::{Column, Encoding, Events, SessionSettings, Table};

use crate::{wait_until, TestDb};

const fn column(name: &'static str, primary_key: bool) -> Column {
    Column {
        name,
        field: name,
        primary_key,
        sql: None,
        encoding: Encoding::Json,
        settings: SessionSettings::NONE,
    }
}

/// The demo's table: `orders (id int PRIMARY KEY, item text, qty int)`.
pub static ORDERS: Table = Table {
    type_name: "demo::Order",
    schema: "public",
    name: "orders",
    columns: &[
        column("id", true),
        column("item", false),
        column("qty", false),
    ],
    events: Events::ALL,
    capture_unchanged: false,
    capture_replica: false,
};

/// The error of the demo's failing handler.
pub const DEMO_ERROR: &str = "warehouse API returned 503 Service Unavailable";

/// Fills `db`: `orders` captured, 40 rows inserted and 10 updated and sent
/// by a watcher to the PgQueue `default`, `dead_letters` of its messages
/// dead-lettered by handler `orders::ship` with [`DEMO_ERROR`] (the rest
/// left waiting), two delayed signals (`billing.invoice_due`, in an hour
/// and in a day) and a paused backfill of `public.orders`.
pub async fn populate(db: &TestDb, dead_letters: usize) {
    let mut client = db.connect().await.expect("connect");
    client
        .batch_execute(
            "CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL, qty int NOT NULL)",
        )
        .await
        .expect("create orders");
    dawdle::sql::apply(
        &mut client,
        &dawdle::sql::up(&[&ORDERS]).expect("render up"),
    )
    .await
    .expect("apply up");
    client
        .batch_execute(
            "INSERT INTO orders SELECT g, 'item ' || g, g % 7 + 1 FROM generate_series(1, 40) g;
             UPDATE orders SET qty = qty + 1 WHERE id <= 10;
             SELECT dawdle.signal('billing.invoice_due', '{\"invoice\": 1017, \"amount\": \"129.90\"}', now() + interval '1 hour');
             SELECT dawdle.signal('billing.invoice_due', '{\"invoice\": 1018, \"amount\": \"12.00\"}', now() + interval '1 day');",
        )
        .await
        .expect("write rows and signals");
    let queue = PgQueue::builder(db.config().clone())
        .max_receives(Some(5))
        .build();
    let watcher = Watcher::builder(db.config().clone(), queue.clone())
        .max_events_per_message(5)
        .linger(Duration::from_millis(20))
        .build()
        .start();
    let stats = watcher.shared_stats();
    wait_until(
        "the watcher sent the 50 events",
        Duration::from_secs(30),
        || stats.events_sent() >= 50,
    )
    .await;
    // Its activity is saved as it stops.
    watcher.shutdown().await.expect("watcher shutdown");
    let mut left = dead_letters;
    let mut template = None;
    while left > 0 {
        let messages = queue
            .receive(
                left.min(10),
                Duration::from_secs(1),
                Duration::from_secs(30),
            )
            .await
            .expect("receive");
        if messages.is_empty() {
            // More dead letters than the watcher's messages: copies of one.
            let body: &String = template.as_ref().expect("the watcher sent messages");
            let copies = vec![OutgoingMessage::new(body.clone()); left.min(10)];
            queue.send(&copies).await.expect("send copies");
            continue;
        }
        template = Some(messages[0].body.clone());
        for message in &messages {
            let failure = Failure::new(
                Some("orders::ship"),
                format!("{DEMO_ERROR}\n\nCaused by:\n    0: connection reset"),
                false,
            )
            .following(None, 5);
            queue
                .dead_letter(message, &failure)
                .await
                .expect("dead-letter");
        }
        left -= messages.len();
    }
    client
        .batch_execute(
            "INSERT INTO dawdle.backfills (name, rows_read, rows_total, started_at, updated_at, resumed_at, rows_at_resume, paused_at)
             VALUES ('public.orders', 12000, 50000, now() - interval '2 minutes', now(), now() - interval '2 minutes', 0, now())",
        )
        .await
        .expect("a backfill row");
}
