//! What dawdle reports through the [`metrics`] facade: install any
//! recorder (metrics-exporter-prometheus, a StatsD one, your own) and these
//! appear; without one they cost next to nothing. Units are in the names.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `dawdle_watcher_leading` | gauge | | 1 while this process's watcher is the active one, else 0 |
//! | `dawdle_watcher_backlog_events` | gauge | | events waiting in `dawdle.events` (measured every 5 s) |
//! | `dawdle_watcher_oldest_event_age_seconds` | gauge | | age of the oldest waiting event |
//! | `dawdle_watcher_events_sent_total` | counter | `route` | events the route's queue accepted |
//! | `dawdle_watcher_messages_sent_total` | counter | `route` | messages the route's queue accepted |
//! | `dawdle_watcher_send_duration_seconds` | histogram | `route` | one send call to the route's queue |
//! | `dawdle_wal_retained_bytes` | gauge | | WAL the replication slot keeps the server from removing (capture from the WAL; every 5 s) |
//! | `dawdle_wal_lag_bytes` | gauge | | WAL written since the slot's confirmed position: changes not yet sent, or not yet confirmed |
//! | `dawdle_wal_slot_lost` | gauge | | 1 when the slot was invalidated (its WAL removed): the watcher stops, see README |
//! | `dawdle_listener_events_handled_total` | counter | `handler` | handler calls that succeeded |
//! | `dawdle_listener_events_failed_total` | counter | `handler` | handler calls that failed, panicked or timed out |
//! | `dawdle_listener_handler_duration_seconds` | histogram | `handler` | one handler call |
//! | `dawdle_listener_commit_to_handler_seconds` | histogram | `table` | from the change's capture to the start of its first handler call |
//! | `dawdle_listener_messages_dead_lettered_total` | counter | | messages the listener sent to the dead-letter queue: invalid, or failed on their last receive |
//! | `dawdle_listener_unknown_events_total` | counter | `table` | events of a table (`schema.table`) or signal (`signal:name`) this program has no type or handler for, handed back for another listener |
//! | `dawdle_queue_depth` | gauge | `queue` | messages waiting to be received |
//! | `dawdle_queue_in_flight` | gauge | `queue` | messages received and not yet deleted: being handled, or waiting for a retry |
//! | `dawdle_queue_delayed` | gauge | `queue` | messages sent with a delay that has not passed yet |
//! | `dawdle_queue_dead_letters` | gauge | `queue` | dead letters |
//! | `dawdle_queue_oldest_age_seconds` | gauge | `queue` | age of the oldest message the queue holds (0 when none); not for SQS, which cannot tell |
//!
//! The `dawdle_queue_*` gauges are set by
//! [`sample_depth`](crate::queue::sample_depth) (every 15 s by default; the
//! `dawdle watch --metrics-addr` endpoint runs it), labelled `queue` with
//! the queue's [name](crate::queue::QueueAdmin::name): a PgQueue's name, an
//! SQS queue's URL. SQS's counts are approximate.
//!
//! Tracing: each message is handled in a `message` span, each event's
//! handler call in a `handler` span (`event`, `table`, `action`,
//! `handler`), inside which the handler runs: its own logs carry them.

use std::time::Duration;

pub(crate) const WATCHER_LEADING: &str = "dawdle_watcher_leading";
pub(crate) const WATCHER_BACKLOG: &str = "dawdle_watcher_backlog_events";
pub(crate) const WATCHER_OLDEST_AGE: &str = "dawdle_watcher_oldest_event_age_seconds";
pub(crate) const WATCHER_EVENTS_SENT: &str = "dawdle_watcher_events_sent_total";
pub(crate) const WATCHER_MESSAGES_SENT: &str = "dawdle_watcher_messages_sent_total";
pub(crate) const WATCHER_SEND_DURATION: &str = "dawdle_watcher_send_duration_seconds";
pub(crate) const WAL_RETAINED_BYTES: &str = "dawdle_wal_retained_bytes";
pub(crate) const WAL_LAG_BYTES: &str = "dawdle_wal_lag_bytes";
pub(crate) const WAL_SLOT_LOST: &str = "dawdle_wal_slot_lost";
pub(crate) const HANDLED: &str = "dawdle_listener_events_handled_total";
pub(crate) const FAILED: &str = "dawdle_listener_events_failed_total";
pub(crate) const HANDLER_DURATION: &str = "dawdle_listener_handler_duration_seconds";
pub(crate) const COMMIT_TO_HANDLER: &str = "dawdle_listener_commit_to_handler_seconds";
pub(crate) const DEAD_LETTERED: &str = "dawdle_listener_messages_dead_lettered_total";
pub(crate) const UNKNOWN_EVENTS: &str = "dawdle_listener_unknown_events_total";
pub(crate) const QUEUE_DEPTH: &str = "dawdle_queue_depth";
pub(crate) const QUEUE_IN_FLIGHT: &str = "dawdle_queue_in_flight";
pub(crate) const QUEUE_DELAYED: &str = "dawdle_queue_delayed";
pub(crate) const QUEUE_DEAD_LETTERS: &str = "dawdle_queue_dead_letters";
pub(crate) const QUEUE_OLDEST_AGE: &str = "dawdle_queue_oldest_age_seconds";

/// Describes every metric to the installed recorder, once per process.
pub(crate) fn describe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use metrics::Unit;
        metrics::describe_gauge!(
            WATCHER_LEADING,
            "1 while this process's watcher is the active one"
        );
        metrics::describe_gauge!(
            WAL_RETAINED_BYTES,
            Unit::Bytes,
            "WAL the replication slot keeps the server from removing"
        );
        metrics::describe_gauge!(
            WAL_LAG_BYTES,
            Unit::Bytes,
            "WAL written since the replication slot's confirmed position"
        );
        metrics::describe_gauge!(WAL_SLOT_LOST, "1 when the replication slot was invalidated");
        metrics::describe_gauge!(
            WATCHER_BACKLOG,
            Unit::Count,
            "events waiting in dawdle.events"
        );
        metrics::describe_gauge!(
            WATCHER_OLDEST_AGE,
            Unit::Seconds,
            "age of the oldest waiting event"
        );
        metrics::describe_counter!(
            WATCHER_EVENTS_SENT,
            Unit::Count,
            "events the queue accepted"
        );
        metrics::describe_counter!(
            WATCHER_MESSAGES_SENT,
            Unit::Count,
            "messages the queue accepted"
        );
        metrics::describe_histogram!(
            WATCHER_SEND_DURATION,
            Unit::Seconds,
            "one send call to the queue"
        );
        metrics::describe_counter!(HANDLED, Unit::Count, "handler calls that succeeded");
        metrics::describe_counter!(
            FAILED,
            Unit::Count,
            "handler calls that failed, panicked or timed out"
        );
        metrics::describe_histogram!(HANDLER_DURATION, Unit::Seconds, "one handler call");
        metrics::describe_histogram!(
            COMMIT_TO_HANDLER,
            Unit::Seconds,
            "from the change's capture to the start of its first handler call"
        );
        metrics::describe_counter!(
            DEAD_LETTERED,
            Unit::Count,
            "messages the listener sent to the dead-letter queue: invalid, or failed on their last receive"
        );
        metrics::describe_counter!(
            UNKNOWN_EVENTS,
            Unit::Count,
            "events of a table or signal this program has no type or handler for, handed back"
        );
        metrics::describe_gauge!(
            QUEUE_DEPTH,
            Unit::Count,
            "messages waiting to be received"
        );
        metrics::describe_gauge!(
            QUEUE_IN_FLIGHT,
            Unit::Count,
            "messages received and not yet deleted"
        );
        metrics::describe_gauge!(
            QUEUE_DELAYED,
            Unit::Count,
            "messages sent with a delay that has not passed yet"
        );
        metrics::describe_gauge!(QUEUE_DEAD_LETTERS, Unit::Count, "dead letters");
        metrics::describe_gauge!(
            QUEUE_OLDEST_AGE,
            Unit::Seconds,
            "age of the oldest message the queue holds"
        );
    });
}

/// Seconds, as the histograms take them.
pub(crate) fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}
