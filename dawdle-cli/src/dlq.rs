//! `dawdle dlq`: the dead letters of a queue's listeners, in the database's
//! PgQueue or in an SQS dead-letter queue.
//!
//! On SQS everything works by receive, send and delete, not SQS's message
//! move tasks, which emulators lack and which cannot pick messages by id.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use clap::{ArgGroup, Args, Subcommand};
use dawdle::queue::{
    Failure as MessageFailure, PgDeadLetter, PgQueue, FAILURE_ATTRIBUTE, REASON_ATTRIBUTE,
};
use dawdle::wire::Envelope;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::opts::{self, sqs_failure, PgQueueName, Queues};
use crate::Failure;

/// How long a message this command received stays hidden from listeners
/// (and from this command's own next receive) while it works.
const HOLD: Duration = Duration::from_secs(60);

/// The most messages `list` and `show` look at in an SQS dead-letter queue.
const SCAN_LIMIT: usize = 1000;

/// How many dead letters of a PgQueue one call reads or changes.
const PAGE: usize = 1000;

const LIST_AFTER_HELP: &str = concat!(
    r#"With --json, one array, [] when there are no dead letters:
  [
    { "message_id": "5fd2c6e1-...", "receive_count": 4, "reason": "...",
      "group_id": null, "events": 3,
      "first_event": { "schema": "public", "table": "users", "action": "insert", "id": 42 },
      "error": null,
      "failure": { "handler": "on_user", "error": "...", "panicked": false, "attempts": 4,
                   "first_at": "2026-01-02T03:04:05.6Z", "last_at": "2026-01-02T03:09:05.6Z" } }
  ]
For a PgQueue "message_id" is the dead letter's id (as text), which show, redrive
and discard take. "receive_count", "reason" (as the listener that dead-lettered it
gave it) and "group_id" (FIFO queues) are null when SQS has none; "events" and
"first_event" are null, and "error" says why, when the body is not a dawdle
message. "failure" is why handling it failed last, as the listener recorded it
("handler" null when none could run), or null when nothing was recorded (a
message the queue dead-lettered by its receive count, or dead-lettered by an
older listener).

"#,
    exit_codes!()
);

const SHOW_AFTER_HELP: &str = concat!(
    r#"With --json, one object: the fields of one message of `dawdle dlq list --json`
(see `dawdle dlq list --help`), and "body": the message as JSON when it is JSON,
else its text.

"#,
    exit_codes!()
);

/// Lists, shows, sends back and discards dead letters: by default those of
/// the PgQueue in the database (`--database-url`, `--queue`), or those of
/// an SQS dead-letter queue with `--queue-url` or `--dead-letter-queue`.
///
/// A PgQueue's dead letters are rows of `dawdle.queue_dead_letters`, named
/// by the ids `list` shows. On SQS, the dead-letter queue is
/// `--dead-letter-queue`, or the one the redrive policy of `--queue-url`
/// names, and messages are named by their SQS message ids. Listing SQS
/// receives the messages and makes them visible again at once: it deletes
/// nothing, but it does add one to each message's receive count. In a FIFO
/// dead-letter queue, only the first ten messages of each message group can
/// be seen before the earlier ones are redriven.
#[derive(Debug, Args)]
pub struct Dlq {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Lists the dead letters without removing them (of SQS, at most 1000).
    #[command(after_help = crate::EXIT_CODES, after_long_help = LIST_AFTER_HELP)]
    List {
        #[command(flatten)]
        target: Target,

        /// Prints one JSON array (its shape is in `--help`) instead of a
        /// table.
        #[arg(long, env = "DAWDLE_JSON")]
        json: bool,
    },
    /// Prints one dead letter: why it was dead-lettered, how its handling
    /// failed, and its events as JSON.
    #[command(after_help = crate::EXIT_CODES, after_long_help = SHOW_AFTER_HELP)]
    Show {
        #[command(flatten)]
        target: Target,

        /// Prints one JSON object (its shape is in `--help`) instead of
        /// lines.
        #[arg(long, env = "DAWDLE_JSON")]
        json: bool,

        /// The dead letter, by its id as `list` shows it (SQS: the message
        /// id).
        #[arg(value_name = "ID")]
        message_id: String,
    },
    /// Sends dead letters back to the queue: to a PgQueue as new messages,
    /// never received and without their failure; on SQS, deleting each from
    /// the dead-letter queue only once the queue accepted it.
    Redrive(Redrive),
    /// Deletes dead letters for good (from a PgQueue with the rows of their
    /// by-reference events that its database keeps).
    Discard(Discard),
}

/// The dead letters to work on: the database's PgQueue, unless an SQS
/// queue is given. `--queue` (whose argument id is `name`) names a PgQueue,
/// so it goes with neither SQS flag.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("pg_queue").args(["name"]).conflicts_with("dead_letter_queue")))]
struct Target {
    /// The database of the PgQueue, as a PostgreSQL URL or key=value
    /// string; not used with `--queue-url` or `--dead-letter-queue`.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,

    #[command(flatten)]
    queue: PgQueueName,

    #[command(flatten)]
    queues: Queues,
}

#[derive(Debug, Args)]
#[command(after_help = crate::EXIT_CODES)]
#[group(id = "which", required = true, args = ["all", "ids"])]
struct Redrive {
    #[command(flatten)]
    target: Target,

    /// Every dead letter.
    #[arg(long, env = "DAWDLE_DLQ_REDRIVE_ALL", conflicts_with = "ids")]
    all: bool,

    /// The dead letters to send back, by id as `list` shows it (SQS: the
    /// message id).
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = crate::EXIT_CODES)]
#[group(id = "which", required = true, args = ["all", "ids"])]
struct Discard {
    #[command(flatten)]
    target: Target,

    /// Every dead letter.
    #[arg(long, env = "DAWDLE_DLQ_DISCARD_ALL", conflicts_with = "ids")]
    all: bool,

    /// The dead letters to delete, by id as `list` shows it (SQS: the
    /// message id).
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

/// What `redrive` and `discard` do with each dead letter they pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Redrive,
    Discard,
}

impl Verb {
    /// For the progress bar: "12/40 redriven".
    fn done(self) -> &'static str {
        match self {
            Verb::Redrive => "redriven",
            Verb::Discard => "discarded",
        }
    }
}

/// Where the dead letters are.
#[derive(Debug)]
enum Backend {
    /// The PgQueue in the database.
    Pg(PgQueue),
    /// An SQS dead-letter queue.
    Sqs(SqsDlq),
}

/// An SQS dead-letter queue, and the queue it belongs to when given.
#[derive(Debug)]
struct SqsDlq {
    client: Client,
    dlq: String,
    queue_url: Option<String>,
}

impl Target {
    /// SQS when `--queue-url` or `--dead-letter-queue` is given, else the
    /// database's PgQueue.
    async fn open(&self) -> Result<Backend, Failure> {
        if self.queues.queue_url.is_some() || self.queues.dead_letter_queue.is_some() {
            let (client, dlq) = resolve(&self.queues).await?;
            return Ok(Backend::Sqs(SqsDlq {
                client,
                dlq,
                queue_url: self.queues.queue_url.clone(),
            }));
        }
        let Some(url) = &self.database_url else {
            return Err(Failure::Usage(
                "no dead letters to work on: give --database-url (DATABASE_URL) for the \
                 database's PgQueue, or --queue-url or --dead-letter-queue for SQS"
                    .into(),
            ));
        };
        let database = opts::Database { url: url.clone() };
        // A wrong URL is told at once as a connection failure (exit code 3),
        // not as a failed queue call.
        drop(database.connect().await?);
        Ok(Backend::Pg(
            PgQueue::builder(database.config()?)
                .name(&self.queue.name)
                .max_connections(1)
                .build(),
        ))
    }
}

/// The SQS client and the dead-letter queue to work on, which `dlq` needs.
async fn resolve(queues: &Queues) -> Result<(Client, String), Failure> {
    let client = queues.sqs.client().await;
    match (queues.dead_letter_queue(&client).await?, &queues.queue_url) {
        (Some(dlq), _) => Ok((client, dlq)),
        (None, None) => Err(Failure::Usage(
            "give --dead-letter-queue, or --queue-url to use its redrive policy's".into(),
        )),
        (None, Some(url)) => Err(Failure::Message(format!(
            "{url} has no redrive policy; give --dead-letter-queue"
        ))),
    }
}

impl Dlq {
    pub async fn run(self) -> Result<(), Failure> {
        match self.command {
            DlqCommand::List { target, json } => list(&target.open().await?, json).await,
            DlqCommand::Show {
                target,
                json,
                message_id,
            } => show(&target.open().await?, &message_id, json).await,
            DlqCommand::Redrive(r) => sweep(&r.target, r.all, &r.ids, Verb::Redrive).await,
            DlqCommand::Discard(d) => sweep(&d.target, d.all, &d.ids, Verb::Discard).await,
        }
    }
}

/// A dead letter as `list` and `show` print it, from either kind of queue.
#[derive(Debug)]
struct Letter {
    /// The SQS message id, or the PgQueue dead letter's id.
    message_id: String,
    receive_count: Option<u64>,
    reason: Option<String>,
    group_id: Option<String>,
    failure: Option<MessageFailure>,
    body: String,
}

impl Letter {
    fn from_pg(dead: PgDeadLetter) -> Letter {
        Letter {
            message_id: dead.id.to_string(),
            receive_count: Some(dead.receive_count.into()),
            reason: Some(dead.reason),
            group_id: dead.group_id,
            failure: dead.failure,
            body: dead.body,
        }
    }
}

/// A message received from the SQS dead-letter queue.
#[derive(Debug)]
struct Dead {
    letter: Letter,
    receipt: String,
    dedup_id: Option<String>,
}

impl Dead {
    fn new(message: Message) -> Dead {
        let system = |name| {
            message
                .attributes()
                .and_then(|a| a.get(&name))
                .map(String::from)
        };
        let attribute = |name| {
            message
                .message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .map(String::from)
        };
        let message_id = message.message_id.clone().unwrap_or_default();
        let failure = attribute(FAILURE_ATTRIBUTE).and_then(|json| {
            serde_json::from_str(&json)
                .inspect_err(|error| {
                    tracing::warn!(%message_id, %error, "{FAILURE_ATTRIBUTE} is not a failure");
                })
                .ok()
        });
        let receive_count = system(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|n| n.parse().ok());
        let group_id = system(MessageSystemAttributeName::MessageGroupId);
        let dedup_id = system(MessageSystemAttributeName::MessageDeduplicationId);
        let reason = attribute(REASON_ATTRIBUTE);
        Dead {
            letter: Letter {
                message_id,
                receive_count,
                reason,
                group_id,
                failure,
                body: message.body.unwrap_or_default(),
            },
            receipt: message.receipt_handle.unwrap_or_default(),
            dedup_id,
        }
    }
}

/// Up to ten messages, hidden for [`HOLD`]; none once the queue is empty
/// (or, in a FIFO queue, every group's next messages are held).
async fn receive(client: &Client, dlq: &str) -> Result<Vec<Dead>, Failure> {
    let output = client
        .receive_message()
        .queue_url(dlq)
        .max_number_of_messages(10)
        .visibility_timeout(HOLD.as_secs() as i32)
        // A long poll, however short, asks every SQS server: an empty
        // answer then means an empty queue.
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names(REASON_ATTRIBUTE)
        .message_attribute_names(FAILURE_ATTRIBUTE)
        .send()
        .await
        .map_err(sqs_failure("ReceiveMessage"))?;
    Ok(output
        .messages
        .unwrap_or_default()
        .into_iter()
        .map(Dead::new)
        .collect())
}

/// Every message up to [`SCAN_LIMIT`], made visible again before returning.
async fn scan(client: &Client, dlq: &str) -> Result<Vec<Dead>, Failure> {
    let mut seen = Vec::new();
    let result = async {
        while seen.len() < SCAN_LIMIT {
            let batch = receive(client, dlq).await?;
            if batch.is_empty() {
                break;
            }
            seen.extend(batch);
        }
        Ok(())
    }
    .await;
    release(client, dlq, &seen).await?;
    result.map(|()| seen)
}

/// Makes `messages` visible again at once.
async fn release(client: &Client, dlq: &str, messages: &[Dead]) -> Result<(), Failure> {
    for message in messages {
        client
            .change_message_visibility()
            .queue_url(dlq)
            .receipt_handle(&message.receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(sqs_failure("ChangeMessageVisibility"))?;
    }
    Ok(())
}

/// "PgQueue \"name\"", for messages.
fn pg_name(queue: &PgQueue) -> String {
    format!("PgQueue {:?}", queue.name())
}

/// Gives every dead letter of `queue` to `each`, oldest first, a page of
/// [`PAGE`] at a time.
async fn pg_pages(queue: &PgQueue, mut each: impl FnMut(Vec<PgDeadLetter>)) -> Result<(), Failure> {
    let mut from = i64::MIN;
    loop {
        let page = queue
            .dead_letters(from, PAGE)
            .await
            .map_err(Failure::runtime(format!(
                "cannot list the dead letters of {}",
                pg_name(queue)
            )))?;
        let Some(last) = page.last().map(|dead| dead.id) else {
            return Ok(());
        };
        let full = page.len() == PAGE;
        each(page);
        if !full {
            return Ok(());
        }
        from = last.saturating_add(1);
    }
}

/// One dead letter of `list --json`; documented in `LIST_AFTER_HELP`,
/// which must follow it.
#[derive(Debug, Serialize)]
struct Listed {
    message_id: String,
    receive_count: Option<u64>,
    reason: Option<String>,
    group_id: Option<String>,
    events: Option<usize>,
    first_event: Option<FirstEvent>,
    error: Option<String>,
    failure: Option<MessageFailure>,
}

#[derive(Debug, Serialize)]
struct FirstEvent {
    schema: String,
    table: String,
    action: &'static str,
    id: i64,
}

impl Listed {
    fn new(letter: &Letter) -> Listed {
        let (events, first_event, error) = match Envelope::parse(&letter.body) {
            Ok(envelope) => {
                let count = envelope.events.len();
                let first = envelope.events.into_iter().next();
                (
                    Some(count),
                    first.map(|e| FirstEvent {
                        schema: e.schema,
                        table: e.table,
                        action: e.action.as_str(),
                        id: e.id,
                    }),
                    None,
                )
            }
            Err(e) => (None, None, Some(e.to_string())),
        };
        Listed {
            message_id: letter.message_id.clone(),
            receive_count: letter.receive_count,
            reason: letter.reason.clone(),
            group_id: letter.group_id.clone(),
            events,
            first_event,
            error,
            failure: letter.failure.clone(),
        }
    }

    /// The table's row: id, receives, the first event's table, action and
    /// id (or why there is none), and the reason.
    fn row(&self) -> [String; 4] {
        let first_event = match (&self.first_event, self.events) {
            (Some(e), Some(count)) => {
                let more = match count {
                    1 => String::new(),
                    n => format!(" (+{} more)", n - 1),
                };
                format!("{}.{} {} {}{more}", e.schema, e.table, e.action, e.id)
            }
            _ => self.error.clone().unwrap_or_else(|| "-".into()),
        };
        [
            self.message_id.clone(),
            self.receive_count
                .map_or_else(|| "?".into(), |n| n.to_string()),
            first_event,
            self.reason.clone().unwrap_or_else(|| "-".into()),
        ]
    }
}

/// What `show --json` prints; documented in `SHOW_AFTER_HELP`.
#[derive(Debug, Serialize)]
struct Shown {
    #[serde(flatten)]
    listed: Listed,
    body: serde_json::Value,
}

async fn list(backend: &Backend, json: bool) -> Result<(), Failure> {
    let (listed, empty) = match backend {
        Backend::Sqs(sqs) => {
            let messages = scan(&sqs.client, &sqs.dlq).await?;
            let listed = messages.iter().map(|m| Listed::new(&m.letter)).collect();
            (listed, format!("{} is empty", sqs.dlq))
        }
        Backend::Pg(queue) => {
            let mut listed = Vec::new();
            pg_pages(queue, |page| {
                listed.extend(page.into_iter().map(|d| Listed::new(&Letter::from_pg(d))));
            })
            .await?;
            (listed, format!("{} has no dead letters", pg_name(queue)))
        }
    };
    if json {
        let json =
            serde_json::to_string_pretty(&listed).map_err(Failure::runtime("cannot write JSON"))?;
        return outln!("{json}");
    }
    if listed.is_empty() {
        return outln!("{empty}");
    }
    table(&listed)
}

/// `listed` as a table with a header.
fn table(listed: &[Listed]) -> Result<(), Failure> {
    let rows: Vec<[String; 4]> = listed.iter().map(Listed::row).collect();
    let header = ["MESSAGE ID", "RECEIVES", "FIRST EVENT", "REASON"].map(String::from);
    let mut widths = [0; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        outln!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )?;
    }
    Ok(())
}

/// The dead letter `message_id` of `backend`, or a failure saying where it
/// was looked for.
async fn find(backend: &Backend, message_id: &str) -> Result<Letter, Failure> {
    match backend {
        Backend::Sqs(sqs) => {
            let messages = scan(&sqs.client, &sqs.dlq).await?;
            let seen = messages.len();
            messages
                .into_iter()
                .find(|m| m.letter.message_id == message_id)
                .map(|m| m.letter)
                .ok_or_else(|| {
                    Failure::Message(format!(
                        "no message {message_id} in {} (of the {seen} seen)",
                        sqs.dlq
                    ))
                })
        }
        Backend::Pg(queue) => {
            let id = pg_id(message_id)?;
            let found = queue
                .dead_letters(id, 1)
                .await
                .map_err(Failure::runtime(format!(
                    "cannot read the dead letters of {}",
                    pg_name(queue)
                )))?
                .into_iter()
                .find(|dead| dead.id == id);
            found.map(Letter::from_pg).ok_or_else(|| {
                Failure::Message(format!("no dead letter {id} in {}", pg_name(queue)))
            })
        }
    }
}

async fn show(backend: &Backend, message_id: &str, json: bool) -> Result<(), Failure> {
    let letter = find(backend, message_id).await?;
    if json {
        let shown = Shown {
            listed: Listed::new(&letter),
            body: serde_json::from_str(&letter.body)
                .unwrap_or_else(|_| serde_json::Value::String(letter.body.clone())),
        };
        let json =
            serde_json::to_string_pretty(&shown).map_err(Failure::runtime("cannot write JSON"))?;
        return outln!("{json}");
    }
    outln!("message id:    {}", letter.message_id)?;
    if let Some(count) = letter.receive_count {
        outln!("receive count: {count}")?;
    }
    if let Some(group) = &letter.group_id {
        outln!("group id:      {group}")?;
    }
    outln!(
        "reason:        {}",
        letter.reason.as_deref().unwrap_or("(none given)")
    )?;
    if let Some(failure) = &letter.failure {
        show_failure(failure)?;
    }
    show_body(&letter.body)
}

/// The lines of `show` that say how handling the message failed.
fn show_failure(failure: &MessageFailure) -> Result<(), Failure> {
    outln!(
        "handler:       {}",
        failure.handler.as_deref().unwrap_or("(none could run)")
    )?;
    // A panic's message may run over several lines: they stay aligned.
    outln!(
        "error:         {}",
        failure.error.replace('\n', "\n               ")
    )?;
    outln!(
        "panicked:      {}",
        if failure.panicked { "yes" } else { "no" }
    )?;
    outln!("attempts:      {}", failure.attempts)?;
    outln!("first failed:  {}", failure.first_at.to_rfc3339())?;
    outln!("last failed:   {}", failure.last_at.to_rfc3339())
}

/// The number of events and the body, as pretty JSON when it is a dawdle
/// message.
fn show_body(body: &str) -> Result<(), Failure> {
    match Envelope::parse(body) {
        Ok(envelope) => {
            outln!("events:        {}", envelope.events.len())?;
            let value: serde_json::Value =
                serde_json::from_str(body).map_err(Failure::runtime("reading the message"))?;
            let pretty = serde_json::to_string_pretty(&value)
                .map_err(Failure::runtime("writing the message"))?;
            outln!("{pretty}")
        }
        Err(e) => {
            outln!("events:        none: {e}")?;
            outln!("{body}")
        }
    }
}

/// A PgQueue dead letter's id, as `list` shows it.
fn pg_id(text: &str) -> Result<i64, Failure> {
    text.parse().map_err(|_| {
        Failure::Usage(format!(
            "{text:?} is not the id of a PgQueue dead letter: those are numbers, as \
             `dawdle dlq list` shows them (for an SQS dead-letter queue, give --queue-url \
             or --dead-letter-queue)"
        ))
    })
}

/// `redrive` and `discard`: `verb` on every dead letter (`all`) or on
/// those of `ids`.
async fn sweep(target: &Target, all: bool, ids: &[String], verb: Verb) -> Result<(), Failure> {
    match target.open().await? {
        Backend::Sqs(sqs) => sqs_sweep(&sqs, all, ids, verb).await,
        Backend::Pg(queue) => {
            if all {
                pg_sweep_all(&queue, verb).await
            } else {
                pg_sweep_ids(&queue, ids, verb).await
            }
        }
    }
}

/// `verb` on the PgQueue dead letters `ids`; says how many there were.
async fn pg_apply(queue: &PgQueue, ids: &[i64], verb: Verb) -> Result<u64, Failure> {
    let failed = |what: &str| Failure::runtime(format!("cannot {what} {}", pg_name(queue)));
    match verb {
        Verb::Redrive => queue
            .redrive(ids)
            .await
            .map_err(failed("redrive the dead letters of")),
        Verb::Discard => queue
            .discard(ids)
            .await
            .map_err(failed("discard the dead letters of")),
    }
}

/// What `redrive` and `discard` print when done with a PgQueue.
fn pg_done(queue: &PgQueue, verb: Verb, count: u64) -> Result<(), Failure> {
    match verb {
        Verb::Redrive => outln!("redrove {count} dead letters back to {}", pg_name(queue)),
        Verb::Discard => outln!("discarded {count} dead letters of {}", pg_name(queue)),
    }
}

/// `verb` on every dead letter the PgQueue has now: those dead-lettered
/// meanwhile (a redriven one failing again) are left for later.
async fn pg_sweep_all(queue: &PgQueue, verb: Verb) -> Result<(), Failure> {
    let mut ids = Vec::new();
    pg_pages(queue, |page| ids.extend(page.iter().map(|dead| dead.id))).await?;
    let progress = progress_bar(ids.len() as u64, verb);
    let mut count = 0;
    let result = async {
        for chunk in ids.chunks(PAGE) {
            count += pg_apply(queue, chunk, verb).await?;
            progress.inc(chunk.len() as u64);
        }
        Ok::<_, Failure>(())
    }
    .await;
    progress.finish_and_clear();
    result?;
    pg_done(queue, verb, count)
}

/// `verb` on the PgQueue dead letters `ids`, one at a time, so that those
/// not found can be named; every id is checked before any is touched.
async fn pg_sweep_ids(queue: &PgQueue, ids: &[String], verb: Verb) -> Result<(), Failure> {
    let ids: BTreeSet<i64> = ids.iter().map(|id| pg_id(id)).collect::<Result<_, _>>()?;
    let progress = progress_bar(ids.len() as u64, verb);
    let mut count = 0;
    let mut missing = Vec::new();
    let result = async {
        for &id in &ids {
            match pg_apply(queue, &[id], verb).await? {
                0 => missing.push(id.to_string()),
                n => count += n,
            }
            progress.inc(1);
        }
        Ok::<_, Failure>(())
    }
    .await;
    progress.finish_and_clear();
    result?;
    pg_done(queue, verb, count)?;
    if !missing.is_empty() {
        return Err(Failure::Message(format!(
            "no such dead letters in {}: {}",
            pg_name(queue),
            missing.join(", ")
        )));
    }
    Ok(())
}

/// `verb` on the messages of an SQS dead-letter queue: every one (`all`),
/// or those of `ids`. The others it receives are made visible again at the
/// end.
async fn sqs_sweep(sqs: &SqsDlq, all: bool, ids: &[String], verb: Verb) -> Result<(), Failure> {
    let send_to = match (verb, &sqs.queue_url) {
        (Verb::Redrive, Some(url)) => Some(url.as_str()),
        (Verb::Redrive, None) => {
            return Err(Failure::Usage(
                "redrive needs --queue-url: where to send the messages back to".into(),
            ))
        }
        (Verb::Discard, _) => None,
    };
    let (client, dlq) = (&sqs.client, sqs.dlq.as_str());
    let mut wanted: BTreeSet<String> = ids.iter().cloned().collect();
    let total = if all {
        approximate_count(client, dlq).await?
    } else {
        wanted.len() as u64
    };
    let progress = progress_bar(total, verb);

    let mut others = Vec::new();
    let mut done = 0u64;
    let result = async {
        while all || !wanted.is_empty() {
            let batch = receive(client, dlq).await?;
            if batch.is_empty() {
                break;
            }
            for message in batch {
                if !all && !wanted.remove(&message.letter.message_id) {
                    others.push(message);
                    continue;
                }
                if let Some(queue) = send_to {
                    send_back(client, queue, &message).await?;
                }
                client
                    .delete_message()
                    .queue_url(dlq)
                    .receipt_handle(&message.receipt)
                    .send()
                    .await
                    .map_err(sqs_failure("DeleteMessage"))?;
                done += 1;
                if done > progress.length().unwrap_or(0) {
                    progress.set_length(done);
                }
                progress.inc(1);
            }
        }
        Ok::<_, Failure>(())
    }
    .await;
    progress.finish_and_clear();
    release(client, dlq, &others).await?;
    result?;
    match send_to {
        Some(queue) => outln!("redrove {done} messages from {dlq} to {queue}")?,
        None => outln!("discarded {done} messages from {dlq}")?,
    }
    if !wanted.is_empty() {
        let missing: Vec<_> = wanted.into_iter().collect();
        return Err(Failure::Message(format!(
            "not found in {dlq}: {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// SQS's approximate count of the visible messages of `url`.
async fn approximate_count(client: &Client, url: &str) -> Result<u64, Failure> {
    let attributes = opts::attributes(
        client,
        url,
        &[QueueAttributeName::ApproximateNumberOfMessages],
    )
    .await?;
    Ok(attributes
        .get(&QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Sends a dead-lettered message's body to `queue`, in its FIFO group and
/// with its deduplication id where it had them.
async fn send_back(client: &Client, queue: &str, message: &Dead) -> Result<(), Failure> {
    let letter = &message.letter;
    let mut request = client
        .send_message()
        .queue_url(queue)
        .message_body(&letter.body);
    if queue.ends_with(".fifo") {
        request = request
            .message_group_id(letter.group_id.as_deref().unwrap_or("dawdle-redrive"))
            .message_deduplication_id(message.dedup_id.as_deref().unwrap_or(&letter.message_id));
    }
    request.send().await.map_err(sqs_failure("SendMessage"))?;
    Ok(())
}

/// A bar on stderr when it is a terminal; hidden otherwise, so that logs
/// and pipes get no control characters.
fn progress_bar(total: u64, verb: Verb) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = format!("{{bar:40}} {{pos}}/{{len}} {} ({{eta}} left)", verb.done());
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
