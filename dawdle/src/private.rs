//! Not public API: what generated code reaches through `::dawdle::__private`.

pub use inventory;
// Not named by generated code; kept because the compiler's diagnostics name
// serde_json's types through it, and the ui tests' expected output does too.
pub use serde_json;

pub use crate::handler::Handler;
pub use crate::registry::WatchedType;
pub use crate::signal::{SignalRegistration, SignalType};
// The WAL encoder's tests (tests/wal_encode.rs) reach it here.
pub use crate::wal::encode as wal_encode;

/// Builds the events waiting in the database both ways, by the watcher's
/// encoder and by PostgreSQL, and compares them byte for byte: how many
/// the encoder built, and how many it left to PostgreSQL (`Err`: the
/// first event that differs). The fidelity tests check every event so.
pub async fn compare_encoders(client: &tokio_postgres::Client) -> Result<(usize, usize), String> {
    crate::watcher::compare_encoders(client).await
}

/// The events waiting in the database's slot of capture from the WAL,
/// built as the watcher builds them (ids, capture times and transaction
/// ids aside), without consuming them: what the fidelity tests decode in
/// WAL mode.
pub async fn peek_wal_events(client: &tokio_postgres::Client) -> Result<Vec<String>, String> {
    crate::watcher::peek_wal_events(client)
        .await
        .map_err(|e| e.to_string())
}

/// Flushes the WAL written so far (a transaction's SQL), which
/// [`peek_wal_events`] and `pg_replication_slot_advance` see only once
/// flushed.
pub const FLUSH_WAL: &str = crate::watcher::FLUSH_WAL;

use crate::event::EventArg;
use crate::handler::{decode_arg, CallFn, HandlerResult};
use crate::queue::BoxFuture;

/// What `#[dawdle::handler]` submits for `handler`, a handler taking `A`.
///
/// `A: EventArg` is checked here and nowhere else in the generated code, so
/// that an argument that is not an event type is reported once, on its type
/// (the span the macro gives to `handler`).
pub const fn register<A: EventArg, Fut>(
    name: &'static str,
    call: CallFn,
    handler: fn(A) -> Fut,
) -> Handler {
    let _ = handler;
    Handler {
        name,
        subject: A::SUBJECT,
        decode: decode_arg::<A>,
        call,
    }
}

/// Calls `handler` with the argument its `decode` made.
///
/// `handler` and `output` are the same function. The macro spans them
/// differently, so that a future that is not `Send` is reported on
/// `handler` (the function's name) and a return type that is not a
/// [`HandlerResult`] on `output` (the return type). `A` is not bound by
/// `EventArg`, which `register` checks.
pub fn call<A, Fut, Out>(
    arg: Box<dyn std::any::Any + Send>,
    handler: fn(A) -> Fut,
    output: fn(A) -> Out,
) -> BoxFuture<'static, Result<(), crate::handler::HandlerError>>
where
    A: 'static,
    Fut: std::future::Future<Output = Out::Output> + Send + 'static,
    Out: std::future::Future,
    Out::Output: HandlerResult,
{
    let _ = output;
    match arg.downcast::<A>() {
        Ok(arg) => {
            let future = handler(*arg);
            Box::pin(async move { future.await.into_result() })
        }
        // `register` pairs `decode` and `call` of one `A`.
        Err(_) => Box::pin(async {
            Err(crate::handler::HandlerError::other(
                "internal error: handler argument of the wrong type",
            ))
        }),
    }
}
