//! The queue contract (`dawdle_test::contract`) on every backend:
//! MemoryQueue, PgQueue on a database of its own, and SQS on moto; with
//! their administration (`QueueAdmin`) too.

use dawdle::queue::{Failure, MemoryQueue, PgQueue, Queue, SqsQueue};
use dawdle_test::contract::{BoxFuture, Harness, Shape};
use dawdle_test::{SqsServer, TestDb};
use std::time::Duration;

struct Memory(MemoryQueue);

impl Harness for Memory {
    fn queue(&self) -> &dyn Queue {
        &self.0
    }

    fn dead_letters(&self) -> BoxFuture<'_, Vec<(String, Option<Failure>)>> {
        let dead = self.0.dead_letters();
        Box::pin(async move { dead.into_iter().map(|d| (d.body, d.failure)).collect() })
    }

    fn keeps_failures(&self) -> bool {
        true
    }
}

async fn memory(shape: Shape) -> Box<dyn Harness> {
    Box::new(Memory(
        MemoryQueue::builder()
            .fifo(shape.fifo)
            .max_receives(Some(shape.max_receives))
            .build(),
    ))
}

struct Pg {
    queue: PgQueue,
    _db: TestDb,
}

impl Harness for Pg {
    fn queue(&self) -> &dyn Queue {
        &self.queue
    }

    fn dead_letters(&self) -> BoxFuture<'_, Vec<(String, Option<Failure>)>> {
        Box::pin(async move {
            let dead = self.queue.dead_letters(0, 100).await.unwrap();
            dead.into_iter().map(|d| (d.body, d.failure)).collect()
        })
    }

    fn keeps_failures(&self) -> bool {
        true
    }
}

async fn pg(shape: Shape) -> Box<dyn Harness> {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect().await.unwrap();
    dawdle::sql::apply(&mut client, &dawdle::sql::up(&[]).unwrap())
        .await
        .unwrap();
    let queue = PgQueue::builder(db.database().clone())
        .fifo(shape.fifo)
        .max_receives(Some(shape.max_receives))
        .poll_interval(Duration::from_millis(50))
        .build();
    Box::new(Pg { queue, _db: db })
}

struct Sqs {
    queue: SqsQueue,
    dead_letter_queue: SqsQueue,
}

impl Harness for Sqs {
    fn queue(&self) -> &dyn Queue {
        &self.queue
    }

    fn dead_letters(&self) -> BoxFuture<'_, Vec<(String, Option<Failure>)>> {
        Box::pin(async move {
            let got = self
                .dead_letter_queue
                .receive(10, Duration::from_secs(1), Duration::from_secs(60))
                .await
                .unwrap();
            got.into_iter().map(|m| (m.body, m.failure)).collect()
        })
    }

    fn keeps_failures(&self) -> bool {
        false
    }

    fn tells_oldest_age(&self) -> bool {
        false
    }
}

async fn sqs(shape: Shape) -> Box<dyn Harness> {
    let server = SqsServer::get().await.unwrap();
    let url = server
        .create_queue("contract", shape.fifo, Some(shape.max_receives))
        .await
        .unwrap();
    let dlq = match url.strip_suffix(".fifo") {
        Some(name) => format!("{name}-dlq.fifo"),
        None => format!("{url}-dlq"),
    };
    let client = server.client().await;
    Box::new(Sqs {
        queue: SqsQueue::new(client.clone(), &url),
        dead_letter_queue: SqsQueue::new(client, dlq),
    })
}

dawdle_test::queue_contract!(memory_queue, memory);
dawdle_test::queue_contract!(pg_queue, pg);
dawdle_test::queue_contract!(sqs_queue, sqs);
