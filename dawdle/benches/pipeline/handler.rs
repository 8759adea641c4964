//! The bench's handler: records each call through whatever sink the
//! running section installed (handlers are global, found through inventory).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use dawdle::Insert;

use crate::model::Order;

/// Called with (event id, row id, when the handler ran).
pub type Sink = Arc<dyn Fn(i64, Option<i64>, Instant) + Send + Sync>;

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

pub fn install(sink: Option<Sink>) {
    *SINK.lock().unwrap() = sink;
}

#[dawdle::handler(name = "bench::on_order")]
async fn on_order(event: Insert<Order>) {
    let at = Instant::now();
    let sink = SINK.lock().unwrap().clone();
    if let Some(sink) = sink {
        sink(event.meta.id, Some(event.new.id), at);
    }
}
