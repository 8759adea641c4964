//! The queue contract: what every [`Queue`] must do for the watcher and the
//! listener, as one suite that runs against each backend.
//!
//! A backend joins with one line in a test file: a
//! [`queue_contract!`](crate::queue_contract) that names a module and an
//! async function making a [`Harness`] (a fresh, empty queue of the given
//! [`Shape`], and a way to read its dead letters).
//!
//! A backend whose [`Queue::admin`] offers a [`QueueAdmin`] (all of
//! dawdle's do) has it checked too: its depth, and listing, showing,
//! redriving and discarding its dead letters.
//!
//! ```ignore
//! dawdle_test::queue_contract!(memory, |shape| async move { memory_harness(shape) });
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use dawdle::queue::BoxFuture;
use dawdle::queue::{
    DeadLetter, DeadLetterPage, DeadLetterSelection, Failure, OutgoingMessage, Queue, QueueAdmin,
    QueueDepth, ReceivedMessage,
};

/// The queue a contract test asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// A FIFO queue rather than a standard one.
    pub fifo: bool,
    /// The queue's maximum receive count (SQS: its redrive policy's).
    pub max_receives: u32,
}

/// A fresh queue for one contract test, and what the contract needs to
/// look at beyond the [`Queue`] trait.
pub trait Harness: Send + Sync {
    /// The queue under test.
    fn queue(&self) -> &dyn Queue;

    /// The bodies and failures of the queue's dead letters, oldest first.
    fn dead_letters(&self) -> BoxFuture<'_, Vec<(String, Option<Failure>)>>;

    /// Whether the queue keeps a retried message's failure with it
    /// ([`Queue::retry`]), so that its next receive carries it. SQS cannot.
    fn keeps_failures(&self) -> bool;

    /// Whether the queue offers a [`QueueAdmin`] ([`Queue::admin`]); the
    /// contract checks that it does when this says so, and that it does not
    /// otherwise.
    fn administered(&self) -> bool {
        true
    }

    /// Whether its [`QueueAdmin::depth`] tells the age of the oldest
    /// message ([`QueueDepth::oldest_age`]). SQS cannot.
    fn tells_oldest_age(&self) -> bool {
        true
    }
}

/// Runs every contract test against the backend `$make` builds: a closure
/// or function from a [`Shape`] to a future of a `Box<dyn Harness>`.
#[macro_export]
macro_rules! queue_contract {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            $crate::queue_contract!(@tests $make;
                a_received_message_is_hidden_until_its_visibility_passes,
                the_receive_count_grows_with_each_receive,
                a_deleted_message_is_gone,
                a_retried_message_comes_back_after_its_delay_with_its_failure,
                a_dead_letter_keeps_its_failure,
                the_queue_tells_its_maximum_receive_count,
                a_delayed_message_waits,
                a_group_gives_one_message_at_a_time_in_order,
                the_depth_counts_waiting_in_flight_delayed_and_dead_messages,
                a_dead_letter_is_listed_shown_and_redriven_as_a_new_message,
                dead_letters_come_in_pages_and_are_discarded_for_good,
            );
        }
    };
    (@tests $make:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                $crate::contract::$test(&$make).await;
            }
        )*
    };
}

/// How long a contract test waits for a receive that should get something.
const WAIT: Duration = Duration::from_secs(10);
/// A visibility long enough that the message stays hidden through the test.
const LONG: Duration = Duration::from_secs(60);

async fn harness<F, Fut>(make: &F, fifo: bool, max_receives: u32) -> Box<dyn Harness>
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    make(Shape { fifo, max_receives }).await
}

fn message(body: &str, group: Option<&str>) -> OutgoingMessage {
    OutgoingMessage {
        group_id: group.map(str::to_owned),
        dedup_id: group.map(|_| body.to_owned()),
        ..OutgoingMessage::new(body)
    }
}

async fn send(queue: &dyn Queue, messages: &[OutgoingMessage]) {
    let outcome = queue.send(messages).await.expect("the send call");
    assert!(outcome.failed.is_empty(), "refused: {:?}", outcome.failed);
    assert_eq!(outcome.accepted.len(), messages.len());
}

/// Receives until `count` messages came or `within` passed.
async fn receive(
    queue: &dyn Queue,
    count: usize,
    within: Duration,
    visibility: Duration,
) -> Vec<ReceivedMessage> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let wait = left.min(Duration::from_secs(1));
        got.extend(
            queue
                .receive(count - got.len(), wait, visibility)
                .await
                .expect("the receive call"),
        );
    }
    got
}

fn bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

/// Nothing comes back while hidden; it comes back once visible again.
pub async fn a_received_message_is_hidden_until_its_visibility_passes<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 5).await;
    let queue = h.queue();
    send(queue, &[message("hidden", None)]).await;
    let got = receive(queue, 1, WAIT, Duration::from_secs(3)).await;
    assert_eq!(bodies(&got), ["hidden"]);
    assert!(
        receive(queue, 1, Duration::from_millis(500), LONG)
            .await
            .is_empty(),
        "received again while hidden"
    );
    let again = receive(queue, 1, Duration::from_secs(30), LONG).await;
    assert_eq!(
        bodies(&again),
        ["hidden"],
        "visible again after its timeout"
    );
}

/// Each receive counts, and the count comes with the message.
pub async fn the_receive_count_grows_with_each_receive<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 5).await;
    let queue = h.queue();
    send(queue, &[message("counted", None)]).await;
    for expected in 1..=3 {
        let got = receive(queue, 1, WAIT, LONG).await;
        assert_eq!(got.len(), 1, "receive {expected}");
        assert_eq!(got[0].receive_count, expected);
        assert_eq!(got[0].failure, None, "never failed");
        queue
            .change_visibility(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
}

/// A delete by the current receipt removes the message for good.
pub async fn a_deleted_message_is_gone<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 5).await;
    let queue = h.queue();
    send(queue, &[message("one", None), message("two", None)]).await;
    let got = receive(queue, 2, WAIT, LONG).await;
    assert_eq!(got.len(), 2);
    // Hidden for a second only from here: a message the delete left would
    // be back within the wait below.
    for m in &got {
        queue
            .change_visibility(&m.receipt, Duration::from_secs(1))
            .await
            .unwrap();
    }
    let receipts: Vec<_> = got.iter().map(|m| m.receipt.clone()).collect();
    queue.delete(&receipts).await.unwrap();
    assert!(
        receive(queue, 1, Duration::from_secs(3), LONG)
            .await
            .is_empty(),
        "a deleted message came back"
    );
    assert!(h.dead_letters().await.is_empty());
}

/// [`Queue::retry`] hides the message for the delay, and (where the queue
/// can keep it) its next receive carries the failure.
pub async fn a_retried_message_comes_back_after_its_delay_with_its_failure<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 5).await;
    let queue = h.queue();
    send(queue, &[message("flaky", None)]).await;
    let got = receive(queue, 1, WAIT, LONG).await;
    let failure = Failure::new(Some("on_flaky"), "boom: the disk is full", false);
    queue
        .retry(&got[0], Duration::from_secs(3), &failure)
        .await
        .unwrap();
    assert!(
        receive(queue, 1, Duration::from_millis(300), LONG)
            .await
            .is_empty(),
        "back before its delay"
    );
    let again = receive(queue, 1, Duration::from_secs(30), LONG).await;
    assert_eq!(bodies(&again), ["flaky"]);
    assert_eq!(again[0].receive_count, 2);
    if h.keeps_failures() {
        assert_eq!(again[0].failure.as_ref(), Some(&failure));
    }
}

/// [`Queue::dead_letter`] moves the message, with its failure.
pub async fn a_dead_letter_keeps_its_failure<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 5).await;
    let queue = h.queue();
    send(queue, &[message("doomed", None), message("fine", None)]).await;
    let got = receive(queue, 2, WAIT, LONG).await;
    let doomed = got.iter().find(|m| m.body == "doomed").unwrap();
    let failure = Failure::new(Some("on_doomed"), "bang", true).following(None, 3);
    queue.dead_letter(doomed, &failure).await.unwrap();
    let dead = h.dead_letters().await;
    assert_eq!(dead, [("doomed".to_owned(), Some(failure))]);
    let fine = got.iter().find(|m| m.body == "fine").unwrap();
    queue
        .delete(std::slice::from_ref(&fine.receipt))
        .await
        .unwrap();
}

/// [`Queue::max_receives`] says the count the queue dead-letters after.
pub async fn the_queue_tells_its_maximum_receive_count<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 4).await;
    assert_eq!(h.queue().max_receives().await.unwrap(), Some(4));
}

/// A message sent with a delay is not received before it.
pub async fn a_delayed_message_waits<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 5).await;
    let queue = h.queue();
    let delayed = OutgoingMessage {
        delay: Duration::from_secs(3),
        ..message("later", None)
    };
    send(queue, &[delayed]).await;
    assert!(
        receive(queue, 1, Duration::from_millis(300), LONG)
            .await
            .is_empty(),
        "received before its delay"
    );
    let got = receive(queue, 1, Duration::from_secs(30), LONG).await;
    assert_eq!(bodies(&got), ["later"]);
}

/// FIFO: a group's next message is received only once the one before it
/// is deleted, and in the order sent.
pub async fn a_group_gives_one_message_at_a_time_in_order<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, true, 5).await;
    let queue = h.queue();
    assert!(queue.is_fifo());
    send(
        queue,
        &[
            message("a1", Some("a")),
            message("a2", Some("a")),
            message("b1", Some("b")),
        ],
    )
    .await;
    // A receive may hold several messages of a group, in order (SQS does
    // this); while one is hidden, the group's later ones wait.
    let first = receive(queue, 3, Duration::from_secs(3), LONG).await;
    let mut seen: Vec<String> = first.iter().map(|m| m.body.clone()).collect();
    assert!(
        seen.contains(&"a1".to_owned()) && seen.contains(&"b1".to_owned()),
        "{seen:?}"
    );
    assert!(
        first.iter().all(|m| m.group_id.is_some()),
        "FIFO messages say their group"
    );
    if !seen.contains(&"a2".to_owned()) {
        assert!(
            receive(queue, 1, Duration::from_millis(500), LONG)
                .await
                .is_empty(),
            "a2 overtook a1, which is still hidden"
        );
        let receipts: Vec<_> = first.iter().map(|m| m.receipt.clone()).collect();
        queue.delete(&receipts).await.unwrap();
        let next = receive(queue, 1, WAIT, LONG).await;
        seen.extend(next.iter().map(|m| m.body.clone()));
    }
    let a: Vec<&String> = seen.iter().filter(|b| b.starts_with('a')).collect();
    assert_eq!(a, ["a1", "a2"], "in order within the group: {seen:?}");
}

/// The harness's [`QueueAdmin`], when it has one; `None` (and checked
/// absent) when the harness says the queue has none.
fn admin(h: &dyn Harness) -> Option<&dyn QueueAdmin> {
    let admin = h.queue().admin();
    assert_eq!(
        admin.is_some(),
        h.administered(),
        "Queue::admin disagrees with Harness::administered"
    );
    admin
}

/// Reads the depth until `check` holds (SQS's counts are approximate and
/// may lag), for at most five seconds; the last depth read.
async fn depth_until(admin: &dyn QueueAdmin, check: impl Fn(&QueueDepth) -> bool) -> QueueDepth {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let depth = admin.depth().await.expect("the depth call");
        if check(&depth) || tokio::time::Instant::now() > deadline {
            return depth;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Receives the messages `bodies` were sent as, and dead-letters each with
/// a failure; the failure.
async fn dead_letter_all(queue: &dyn Queue, sent: &[&str]) -> Failure {
    let messages: Vec<_> = sent.iter().map(|body| message(body, None)).collect();
    send(queue, &messages).await;
    let got = receive(queue, sent.len(), WAIT, LONG).await;
    assert_eq!(got.len(), sent.len(), "{:?}", bodies(&got));
    let failure = Failure::new(Some("on_doomed"), "the disk is full", false);
    for message in &got {
        queue.dead_letter(message, &failure).await.unwrap();
    }
    failure
}

/// Every dead letter, a page of `limit` at a time; each must come once.
async fn every_dead_letter(admin: &dyn QueueAdmin, limit: usize) -> Vec<DeadLetter> {
    let mut all: Vec<DeadLetter> = Vec::new();
    let mut page = DeadLetterPage::first(limit);
    loop {
        let letters = admin.dead_letters(page.clone()).await.unwrap();
        assert!(letters.len() <= limit, "a page holds at most its limit");
        let Some(last) = letters.last() else {
            return all;
        };
        page = page.after(&last.id);
        for letter in letters {
            assert!(
                all.iter().all(|seen| seen.id != letter.id),
                "{} on two pages",
                letter.id
            );
            all.push(letter);
        }
    }
}

/// [`QueueAdmin::depth`] tells waiting, in-flight and delayed messages
/// apart, counts dead letters, and (where it can) the oldest message's age.
pub async fn the_depth_counts_waiting_in_flight_delayed_and_dead_messages<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 5).await;
    let Some(admin) = admin(&*h) else { return };
    let queue = h.queue();
    let empty = admin.depth().await.unwrap();
    assert_eq!(
        (
            empty.waiting,
            empty.in_flight,
            empty.delayed,
            empty.dead_letters
        ),
        (0, 0, 0, 0)
    );
    if h.tells_oldest_age() {
        assert_eq!(empty.oldest_age, Some(Duration::ZERO), "nothing waits");
    } else {
        assert_eq!(empty.oldest_age, None);
    }

    let delayed = OutgoingMessage {
        delay: Duration::from_secs(60),
        ..message("later", None)
    };
    send(
        queue,
        &[
            message("first", None),
            message("second", None),
            message("third", None),
            delayed,
        ],
    )
    .await;
    let got = receive(queue, 1, WAIT, LONG).await;
    assert_eq!(got.len(), 1);
    let counts = |d: &QueueDepth| (d.waiting, d.in_flight, d.delayed, d.dead_letters);
    let depth = depth_until(admin, |d| counts(d) == (2, 1, 1, 0)).await;
    assert_eq!(
        counts(&depth),
        (2, 1, 1, 0),
        "waiting, in flight, delayed, dead: {depth:?}"
    );
    match depth.oldest_age {
        Some(age) => {
            assert!(h.tells_oldest_age(), "{depth:?}");
            assert!(age < Duration::from_secs(60), "{age:?}");
        }
        None => assert!(!h.tells_oldest_age(), "{depth:?}"),
    }

    let failure = Failure::new(None, "not a dawdle message", false);
    queue.dead_letter(&got[0], &failure).await.unwrap();
    let depth = depth_until(admin, |d| counts(d) == (2, 0, 1, 1)).await;
    assert_eq!(counts(&depth), (2, 0, 1, 1), "dead-lettered: {depth:?}");
}

/// A dead letter is listed and shown with its failure; a redrive sends it
/// back as a new message (received once, without its failure) and it is no
/// longer a dead letter; an id not there is named, not redriven.
pub async fn a_dead_letter_is_listed_shown_and_redriven_as_a_new_message<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 5).await;
    let Some(admin) = admin(&*h) else { return };
    let queue = h.queue();
    let failure = dead_letter_all(queue, &["doomed"]).await;

    let listed = admin.dead_letters(DeadLetterPage::first(10)).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let letter = &listed[0];
    assert_eq!(letter.body, "doomed");
    assert_eq!(letter.failure.as_ref(), Some(&failure));
    assert_eq!(letter.reason, failure.reason());
    assert_eq!(letter.group_id, None);
    assert!(letter.receive_count >= 1, "{letter:?}");
    let at = letter.dead_lettered_at.expect("when it was dead-lettered");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now - at.timestamp_millis()).abs() < 60_000, "{at}");

    let shown = admin
        .find_dead_letter(&letter.id)
        .await
        .unwrap()
        .expect("found by its id");
    assert_eq!(
        (&shown.id, &shown.body, &shown.failure, &shown.reason),
        (&letter.id, &letter.body, &letter.failure, &letter.reason)
    );

    let ids = [letter.id.clone()];
    let outcome = admin.redrive(DeadLetterSelection::ids(&ids)).await.unwrap();
    assert_eq!(
        (outcome.done, outcome.not_found.len()),
        (1, 0),
        "{outcome:?}"
    );
    let again = receive(queue, 1, Duration::from_secs(5), LONG).await;
    assert_eq!(bodies(&again), ["doomed"], "received again");
    assert_eq!(again[0].receive_count, 1, "a new message");
    assert_eq!(again[0].failure, None, "a fresh set of attempts");
    assert_eq!(admin.find_dead_letter(&letter.id).await.unwrap(), None);
    let depth = depth_until(admin, |d| d.dead_letters == 0).await;
    assert_eq!(depth.dead_letters, 0, "{depth:?}");

    let outcome = admin.redrive(DeadLetterSelection::ids(&ids)).await.unwrap();
    assert_eq!(outcome.done, 0, "redriven already");
    assert_eq!(outcome.not_found, ids);
    queue.delete(&[again[0].receipt.clone()]).await.unwrap();
}

/// Dead letters page by id, each once; a discard (by id, with one that is
/// not there, then of all) deletes them without sending them back.
pub async fn dead_letters_come_in_pages_and_are_discarded_for_good<F, Fut>(make: &F)
where
    F: Fn(Shape) -> Fut,
    Fut: Future<Output = Box<dyn Harness>>,
{
    let h = harness(make, false, 5).await;
    let Some(admin) = admin(&*h) else { return };
    let queue = h.queue();
    dead_letter_all(queue, &["one", "two", "three"]).await;

    let all = every_dead_letter(admin, 2).await;
    let mut seen: Vec<&str> = all.iter().map(|l| l.body.as_str()).collect();
    seen.sort_unstable();
    assert_eq!(seen, ["one", "three", "two"], "each once: {all:?}");

    let done = AtomicU64::new(0);
    let progress = |n: u64| {
        done.fetch_add(n, Ordering::Relaxed);
    };
    let missing = "999999999".to_owned();
    let ids = [all[0].id.clone(), missing.clone()];
    let outcome = admin
        .discard(DeadLetterSelection::ids(&ids).on_progress(&progress))
        .await
        .unwrap();
    assert_eq!(outcome.done, 1, "{outcome:?}");
    assert_eq!(outcome.not_found, [missing]);
    assert_eq!(done.load(Ordering::Relaxed), 1, "progress told");
    let left = every_dead_letter(admin, 10).await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|l| l.id != all[0].id));

    let outcome = admin.discard(DeadLetterSelection::all()).await.unwrap();
    assert_eq!(
        (outcome.done, outcome.not_found.len()),
        (2, 0),
        "{outcome:?}"
    );
    assert!(every_dead_letter(admin, 10).await.is_empty());
    let depth = depth_until(admin, |d| d.dead_letters == 0).await;
    assert_eq!(depth.dead_letters, 0, "{depth:?}");
    assert!(
        receive(queue, 1, Duration::from_secs(2), LONG)
            .await
            .is_empty(),
        "a discarded message came back"
    );
}
