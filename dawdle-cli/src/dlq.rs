//! `dawdle dlq`: the dead letters of a queue's listeners, in the database's
//! PgQueue or in an SQS dead-letter queue, through the queue's
//! [`QueueAdmin`] (`dawdle::queue`), which does the work on either.

use std::io::IsTerminal;

use aws_sdk_sqs::types::QueueAttributeName;
use clap::{ArgGroup, Args, Subcommand};
use dawdle::queue::{
    DeadLetter, DeadLetterPage, DeadLetterSelection, Failure as MessageFailure, PgQueue, Queue,
    QueueAdmin, QueueError, SqsQueue,
};
use dawdle::wire::Envelope;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::opts::{self, PgQueueName, Queues};
use crate::Failure;

/// How many dead letters one call lists.
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
and discard take. "reason" is why it was dead-lettered, as the listener or the
queue said it (on SQS, for a message without the dawdle_reason attribute, what is
known of how it got there); "group_id" (FIFO queues) is null when there is none;
"events" and "first_event" are null, and "error" says why, when the body is not
a dawdle message. "failure" is why handling it failed last, as the listener
recorded it ("handler" null when none could run), or null when nothing was
recorded (a message the queue dead-lettered by its receive count, or
dead-lettered by an older listener).

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
    /// Lists the dead letters without removing them (on SQS, those a
    /// receive of up to 1000 messages at a time sees).
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

/// Where the dead letters are: the queue whose [`QueueAdmin`] works on
/// them, and how messages name them.
#[derive(Debug)]
struct Opened {
    queue: Box<dyn Queue>,
    place: Place,
}

/// How this command names where the dead letters are.
#[derive(Debug)]
enum Place {
    /// The PgQueue of this name in the database.
    Pg(String),
    /// An SQS dead-letter queue, and the queue it belongs to when given.
    Sqs { dlq: String, queue: Option<String> },
}

impl Target {
    /// SQS when `--queue-url` or `--dead-letter-queue` is given, else the
    /// database's PgQueue.
    async fn open(&self) -> Result<Opened, Failure> {
        if self.queues.queue_url.is_some() || self.queues.dead_letter_queue.is_some() {
            let (client, dlq) = resolve(&self.queues).await?;
            // An unreachable SQS is told at once as a connection failure
            // (exit code 3), not as a failed queue call.
            opts::attributes(&client, &dlq, &[QueueAttributeName::QueueArn]).await?;
            // Without --queue-url, a queue of its own: only what works on
            // the dead-letter queue alone is asked of it (not redrive).
            let url = self.queues.queue_url.as_deref().unwrap_or(&dlq);
            let queue = SqsQueue::builder(client, url)
                .dead_letter_queue(&dlq)
                .build();
            return Ok(Opened {
                queue: Box::new(queue),
                place: Place::Sqs {
                    dlq,
                    queue: self.queues.queue_url.clone(),
                },
            });
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
        let queue = PgQueue::builder(database.config()?)
            .name(&self.queue.name)
            .max_connections(1)
            .build();
        Ok(Opened {
            queue: Box::new(queue),
            place: Place::Pg(self.queue.name.clone()),
        })
    }
}

/// The SQS client and the dead-letter queue to work on, which `dlq` needs.
async fn resolve(queues: &Queues) -> Result<(aws_sdk_sqs::Client, String), Failure> {
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

impl Opened {
    fn admin(&self) -> Result<&dyn QueueAdmin, Failure> {
        self.queue.admin().ok_or_else(|| {
            Failure::Message(format!("{} cannot be administered", self.place.name()))
        })
    }

    /// A failed admin call: a dead letter's id of the wrong form is a usage
    /// error, anything else a failure while running.
    fn failed(&self, what: &str) -> impl FnOnce(QueueError) -> Failure + '_ {
        let what = format!("cannot {what} {}", self.place.name());
        move |error| match error {
            QueueError::InvalidId(_) if matches!(self.place, Place::Pg(_)) => {
                Failure::Usage(format!(
                    "{error}, as `dawdle dlq list` shows them (for an SQS dead-letter queue, \
                     give --queue-url or --dead-letter-queue)"
                ))
            }
            QueueError::InvalidId(_) => Failure::Usage(format!("{error}")),
            error => Failure::runtime(what)(error),
        }
    }
}

impl Place {
    /// `PgQueue "name"`, or the dead-letter queue's URL.
    fn name(&self) -> String {
        match self {
            Place::Pg(name) => format!("PgQueue {name:?}"),
            Place::Sqs { dlq, .. } => dlq.clone(),
        }
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

/// One dead letter of `list --json`; documented in `LIST_AFTER_HELP`,
/// which must follow it.
#[derive(Debug, Serialize)]
struct Listed {
    message_id: String,
    receive_count: u32,
    reason: String,
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
    fn new(letter: &DeadLetter) -> Listed {
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
            message_id: letter.id.clone(),
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
            self.receive_count.to_string(),
            first_event,
            self.reason.clone(),
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

/// Every dead letter, a page of [`PAGE`] at a time.
async fn every_dead_letter(opened: &Opened) -> Result<Vec<DeadLetter>, Failure> {
    let admin = opened.admin()?;
    let mut all = Vec::new();
    let mut page = DeadLetterPage::first(PAGE);
    loop {
        let letters = admin
            .dead_letters(page.clone())
            .await
            .map_err(opened.failed("list the dead letters of"))?;
        let full = letters.len() == PAGE;
        let Some(last) = letters.last() else {
            return Ok(all);
        };
        page = page.after(&last.id);
        all.extend(letters);
        if !full {
            return Ok(all);
        }
    }
}

async fn list(opened: &Opened, json: bool) -> Result<(), Failure> {
    let listed: Vec<Listed> = every_dead_letter(opened)
        .await?
        .iter()
        .map(Listed::new)
        .collect();
    if json {
        let json =
            serde_json::to_string_pretty(&listed).map_err(Failure::runtime("cannot write JSON"))?;
        return outln!("{json}");
    }
    if listed.is_empty() {
        return match &opened.place {
            Place::Pg(_) => outln!("{} has no dead letters", opened.place.name()),
            Place::Sqs { dlq, .. } => outln!("{dlq} is empty"),
        };
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

async fn show(opened: &Opened, message_id: &str, json: bool) -> Result<(), Failure> {
    let letter = opened
        .admin()?
        .find_dead_letter(message_id)
        .await
        .map_err(opened.failed("read the dead letters of"))?
        .ok_or_else(|| {
            Failure::Message(match &opened.place {
                Place::Pg(_) => format!("no dead letter {message_id} in {}", opened.place.name()),
                Place::Sqs { dlq, .. } => format!("no message {message_id} in {dlq}"),
            })
        })?;
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
    outln!("message id:    {}", letter.id)?;
    outln!("receive count: {}", letter.receive_count)?;
    if let Some(group) = &letter.group_id {
        outln!("group id:      {group}")?;
    }
    outln!("reason:        {}", letter.reason)?;
    if let Some(at) = letter.dead_lettered_at {
        outln!("dead-lettered: {}", at.to_rfc3339())?;
    }
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

/// `redrive` and `discard`: `verb` on every dead letter (`all`) or on
/// those of `ids`, with a progress bar; names the ids not found.
async fn sweep(target: &Target, all: bool, ids: &[String], verb: Verb) -> Result<(), Failure> {
    let sqs = target.queues.queue_url.is_some() || target.queues.dead_letter_queue.is_some();
    if verb == Verb::Redrive && sqs && target.queues.queue_url.is_none() {
        return Err(Failure::Usage(
            "redrive needs --queue-url: where to send the messages back to".into(),
        ));
    }
    let opened = target.open().await?;
    let admin = opened.admin()?;
    let total = if all {
        admin
            .depth()
            .await
            .map_err(opened.failed("count the dead letters of"))?
            .dead_letters
    } else {
        ids.len() as u64
    };
    let progress = progress_bar(total, verb);
    let step = |done: u64| {
        if progress.position() + done > progress.length().unwrap_or(0) {
            progress.set_length(progress.position() + done);
        }
        progress.inc(done);
    };
    let which = if all {
        DeadLetterSelection::all()
    } else {
        DeadLetterSelection::ids(ids)
    };
    let which = which.on_progress(&step);
    let outcome = match verb {
        Verb::Redrive => admin
            .redrive(which)
            .await
            .map_err(opened.failed("redrive the dead letters of")),
        Verb::Discard => admin
            .discard(which)
            .await
            .map_err(opened.failed("discard the dead letters of")),
    };
    progress.finish_and_clear();
    let outcome = outcome?;
    let done = outcome.done;
    match (&opened.place, verb) {
        (Place::Pg(_), Verb::Redrive) => outln!(
            "redrove {done} dead letters back to {}",
            opened.place.name()
        )?,
        (Place::Pg(_), Verb::Discard) => {
            outln!("discarded {done} dead letters of {}", opened.place.name())?
        }
        (Place::Sqs { dlq, queue }, Verb::Redrive) => {
            let queue = queue.as_deref().unwrap_or_default();
            outln!("redrove {done} messages from {dlq} to {queue}")?
        }
        (Place::Sqs { dlq, .. }, Verb::Discard) => outln!("discarded {done} messages from {dlq}")?,
    }
    if outcome.not_found.is_empty() {
        return Ok(());
    }
    let missing = outcome.not_found.join(", ");
    Err(Failure::Message(match &opened.place {
        Place::Pg(_) => format!("no such dead letters in {}: {missing}", opened.place.name()),
        Place::Sqs { dlq, .. } => format!("not found in {dlq}: {missing}"),
    }))
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
