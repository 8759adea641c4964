//! The far end of the pipeline: receives from the queue, parses the
//! envelopes, reports each batch of events, deletes the messages.
//!
//! It stands in for the listener where the bench measures the watcher's
//! share (write cost, "watcher alone"): the Runtime's figures are COMMIT →
//! handler call, these COMMIT → receive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dawdle::queue::Queue;
use dawdle::wire::{Envelope, WireEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Called with the events of each received message and when it was received.
pub type OnEvents = Arc<dyn Fn(&[WireEvent], Instant) + Send + Sync>;

#[derive(Debug)]
pub struct Consumer {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Consumer {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// `receivers` loops of receive (up to 10 messages) → parse → callback → delete.
pub fn spawn(queue: Arc<dyn Queue>, receivers: usize, on_events: OnEvents) -> Consumer {
    let (stop, stopped) = watch::channel(false);
    let tasks = (0..receivers)
        .map(|_| {
            let queue = queue.clone();
            let on_events = on_events.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                loop {
                    if *stopped.borrow() {
                        return;
                    }
                    let received = tokio::select! {
                        r = queue.receive(10, Duration::from_millis(500), Duration::from_secs(60)) => r,
                        _ = stopped.changed() => return,
                    };
                    let messages = match received {
                        Ok(messages) => messages,
                        Err(error) => {
                            eprintln!("consumer: receive failed: {error}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if messages.is_empty() {
                        continue;
                    }
                    let now = Instant::now();
                    for message in &messages {
                        match Envelope::parse(&message.body) {
                            Ok(envelope) => on_events(&envelope.events, now),
                            Err(error) => eprintln!("consumer: not a dawdle message: {error}"),
                        }
                    }
                    let receipts: Vec<_> = messages.into_iter().map(|m| m.receipt).collect();
                    if let Err(error) = queue.delete(&receipts).await {
                        eprintln!("consumer: delete failed: {error}");
                    }
                }
            })
        })
        .collect();
    Consumer { stop, tasks }
}

/// The first element of an event's key (the `id` of `orders`).
pub fn key_id(event: &WireEvent) -> Option<i64> {
    let key: Vec<i64> = serde_json::from_str(event.key.get()).ok()?;
    key.first().copied()
}
