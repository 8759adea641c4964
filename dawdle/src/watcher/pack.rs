//! Packing drained events into queue messages and send calls.
//!
//! Several events go into one message where that saves requests; one send
//! call carries up to 10 messages within the queue's byte limit. On a FIFO
//! queue, a message holds the events of one row only (its MessageGroupId),
//! and a call holds at most one message per row, so that a failed entry can
//! never let a later change of the same row overtake it.

use std::collections::HashMap;

use crate::fnv::fnv;
use crate::queue::{OutgoingMessage, SendOutcome, MAX_BATCH_MESSAGES};
use crate::wire;

/// One event read from `dawdle.events`, already encoded as a wire event.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub id: i64,
    /// The wire event (a JSON object), or its by-reference form.
    pub json: String,
    /// `schema.table` and the primary key: the ordering group on FIFO queues.
    pub group: String,
}

/// A message and the events it carries.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    pub message: OutgoingMessage,
    /// Ids of the events.
    pub events: Vec<i64>,
}

/// How many events the messages `outcome` says the queue accepted carry,
/// of those `call` sent.
pub(crate) fn accepted_events(outcome: &SendOutcome, call: &[Packed]) -> usize {
    outcome
        .accepted
        .iter()
        .filter_map(|&index| call.get(index))
        .map(|packed| packed.events.len())
        .sum()
}

/// Limits for packing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub fifo: bool,
    /// The queue's limit, for one message and for one send call.
    pub max_bytes: usize,
    pub max_events_per_message: usize,
    /// Identifies the source database in deduplication ids.
    pub source: u64,
}

impl Limits {
    /// Messages aim at a tenth of the call limit, so that a call carries ten
    /// of them; a larger event travels alone.
    fn message_target(&self) -> usize {
        (self.max_bytes / MAX_BATCH_MESSAGES).max(1)
    }
}

/// Packs `events` (in id order) into send calls of messages.
pub(crate) fn pack(events: Vec<PendingEvent>, limits: Limits) -> Vec<Vec<Packed>> {
    let messages = if limits.fifo {
        pack_fifo(events, limits)
    } else {
        pack_standard(events, limits)
    };
    into_calls(messages, limits)
}

fn pack_standard(events: Vec<PendingEvent>, limits: Limits) -> Vec<Vec<PendingEvent>> {
    by_size(
        events,
        |event| event.json.len(),
        limits.message_target(),
        limits.max_events_per_message,
    )
}

/// Groups `events` (their JSON `len` bytes each), in order, into messages
/// whose envelope stays within `target` bytes and `max_events` events; an
/// event larger than that goes alone. Standard queues' packing, of the
/// watcher and of the listener's re-sends.
pub(crate) fn by_size<T>(
    events: impl IntoIterator<Item = T>,
    len: impl Fn(&T) -> usize,
    target: usize,
    max_events: usize,
) -> Vec<Vec<T>> {
    let mut messages: Vec<Vec<T>> = Vec::new();
    let mut size = 0;
    for event in events {
        let bytes = len(&event);
        let fits = messages.last().is_some_and(|m| {
            m.len() < max_events && size + 1 + bytes + wire::ENVELOPE_OVERHEAD <= target
        });
        if fits {
            size += 1 + bytes;
            messages.last_mut().expect("checked above").push(event);
        } else {
            size = bytes;
            messages.push(vec![event]);
        }
    }
    messages
}

fn pack_fifo(events: Vec<PendingEvent>, limits: Limits) -> Vec<Vec<PendingEvent>> {
    // One message per row per call: the row's events in order, up to the
    // limits; what does not fit waits for the next round.
    let mut by_group: HashMap<String, usize> = HashMap::new();
    let mut messages: Vec<(Vec<PendingEvent>, usize, bool)> = Vec::new();
    for event in events {
        match by_group.get(&event.group) {
            Some(&index) => {
                let (message, size, closed) = &mut messages[index];
                let fits = !*closed
                    && message.len() < limits.max_events_per_message
                    && *size + 1 + event.json.len() + wire::ENVELOPE_OVERHEAD
                        <= limits.message_target();
                if fits {
                    *size += 1 + event.json.len();
                    message.push(event);
                } else {
                    // Later events of this row must not overtake this one.
                    *closed = true;
                }
            }
            None => {
                by_group.insert(event.group.clone(), messages.len());
                let size = event.json.len();
                messages.push((vec![event], size, false));
            }
        }
    }
    messages.into_iter().map(|(m, _, _)| m).collect()
}

fn into_calls(messages: Vec<Vec<PendingEvent>>, limits: Limits) -> Vec<Vec<Packed>> {
    let mut calls: Vec<Vec<Packed>> = Vec::new();
    let mut call_bytes = 0;
    for events in messages {
        let packed = to_message(events, limits.fifo, limits.source);
        let bytes = packed.message.body.len();
        let fits = calls.last().is_some_and(|c| {
            c.len() < MAX_BATCH_MESSAGES && call_bytes + bytes <= limits.max_bytes
        });
        if fits {
            call_bytes += bytes;
            calls.last_mut().expect("checked above").push(packed);
        } else {
            call_bytes = bytes;
            calls.push(vec![packed]);
        }
    }
    calls
}

fn to_message(events: Vec<PendingEvent>, fifo: bool, source: u64) -> Packed {
    let body = wire::envelope(events.iter().map(|e| e.json.as_str()));
    let (group_id, dedup_id) = if fifo {
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        (
            Some(group_id(&events[0].group)),
            Some(dedup_id(source, &ids)),
        )
    } else {
        (None, None)
    };
    Packed {
        message: OutgoingMessage {
            body,
            group_id,
            dedup_id,
            failure: None,
            delay: std::time::Duration::ZERO,
        },
        events: events.iter().map(|e| e.id).collect(),
    }
}

/// SQS group ids are at most 128 printable ASCII characters: the group as
/// is when it qualifies, else a 128-bit hash of it.
pub(crate) fn group_id(group: &str) -> String {
    let printable = group.bytes().all(|b| b.is_ascii_graphic());
    if printable && group.len() <= 128 {
        group.to_owned()
    } else {
        format!(
            "h:{:016x}{:016x}",
            fnv(crate::fnv::OFFSET_BASIS, group.as_bytes()),
            fnv(0x6c62_272e_07bb_0142, group.as_bytes())
        )
    }
}

/// The same events of the same database, packed the same way, get the same
/// id: a re-send within SQS's five-minute window is dropped by the queue.
fn dedup_id(source: u64, ids: &[i64]) -> String {
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
    format!(
        "{}-{}-{:016x}",
        ids[0],
        ids[ids.len() - 1],
        fnv(source, &bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, group: &str, size: usize) -> PendingEvent {
        PendingEvent {
            id,
            json: format!("{{\"id\":{id},\"pad\":\"{}\"}}", "x".repeat(size)),
            group: group.to_owned(),
        }
    }

    const LIMITS: Limits = Limits {
        fifo: false,
        max_bytes: 1024 * 1024,
        max_events_per_message: 100,
        source: 7,
    };

    fn ids(call: &[Packed]) -> Vec<Vec<i64>> {
        call.iter().map(|p| p.events.clone()).collect()
    }

    #[test]
    fn standard_queues_pack_many_events_per_call() {
        let events = (0..2500).map(|i| event(i, "t:[1]", 200)).collect();
        let calls = pack(events, LIMITS);
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].len(), 10);
        assert_eq!(calls[0][0].events.len(), 100);
        for call in &calls {
            let bytes: usize = call.iter().map(|p| p.message.body.len()).sum();
            assert!(bytes <= LIMITS.max_bytes);
        }
        let all: Vec<i64> = calls.iter().flat_map(|c| ids(c)).flatten().collect();
        assert_eq!(
            all,
            (0..2500).collect::<Vec<_>>(),
            "every event once, in order"
        );
    }

    #[test]
    fn a_large_event_travels_alone() {
        let events = vec![
            event(1, "a", 10),
            event(2, "a", 600_000),
            event(3, "a", 10),
            event(4, "a", 600_000),
        ];
        let calls = pack(events, LIMITS);
        let shapes: Vec<Vec<Vec<i64>>> = calls.iter().map(|c| ids(c)).collect();
        // A message of its own; and two of them exceed one call's 1 MiB.
        assert_eq!(shapes, vec![vec![vec![1], vec![2], vec![3]], vec![vec![4]]]);
    }

    #[test]
    fn fifo_keeps_rows_apart_and_in_order() {
        let limits = Limits {
            fifo: true,
            max_events_per_message: 2,
            ..LIMITS
        };
        let events = vec![
            event(1, "t:[1]", 10),
            event(2, "t:[2]", 10),
            event(3, "t:[1]", 10),
            event(4, "t:[1]", 10),
            event(5, "t:[1]", 10),
        ];
        let calls = pack(events, limits);
        assert_eq!(calls.len(), 1);
        assert_eq!(
            ids(&calls[0]),
            vec![vec![1, 3], vec![2]],
            "4 and 5 wait for the next round"
        );
        let m = &calls[0][0].message;
        assert_eq!(m.group_id.as_deref(), Some("t:[1]"));
        let again = |source| {
            to_message(
                vec![event(1, "t:[1]", 10), event(3, "t:[1]", 10)],
                true,
                source,
            )
            .message
            .dedup_id
        };
        assert_eq!(m.dedup_id, again(7), "same events, same database: same id");
        assert_ne!(m.dedup_id, again(8), "another database: another id");
    }

    #[test]
    fn group_ids_fit_sqs() {
        assert_eq!(group_id("public.users:[1]"), "public.users:[1]");
        let hashed = group_id("public.users:[\"with space\"]");
        assert!(hashed.starts_with("h:") && hashed.len() == 34);
        assert_ne!(hashed, group_id("public.users:[\"with  space\"]"));
        assert!(group_id(&"x".repeat(200)).len() <= 128);
    }
}
