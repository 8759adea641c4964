//! `dawdle dlq`: the dead-letter queue of a queue's listeners.
//!
//! Everything here works by receive, send and delete, not SQS's message
//! move tasks, which emulators lack and which cannot pick messages by id.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use clap::{Args, Subcommand};
use dawdle::wire::Envelope;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::opts::{self, sqs_failure, Queues};
use crate::Failure;

/// The message attribute a listener's dead-lettering sets to the reason.
const REASON: &str = "dawdle_reason";

/// How long a message this command received stays hidden from listeners
/// (and from this command's own next receive) while it works.
const HOLD: Duration = Duration::from_secs(60);

/// The most messages `list` and `show` look at.
const SCAN_LIMIT: usize = 1000;

const LIST_AFTER_HELP: &str = concat!(
    r#"With --json, one array, [] when the queue is empty:
  [
    { "message_id": "5fd2c6e1-...", "receive_count": 4, "reason": "...",
      "group_id": null, "events": 3,
      "first_event": { "schema": "public", "table": "users", "action": "insert", "id": 42 },
      "error": null }
  ]
"receive_count", "reason" (as the listener that dead-lettered it gave it) and
"group_id" (FIFO queues) are null when SQS has none; "events" and "first_event"
are null, and "error" says why, when the body is not a dawdle message.

"#,
    exit_codes!()
);

/// Lists, shows and sends back the messages of an SQS dead-letter queue.
///
/// The dead-letter queue is `--dead-letter-queue`, or the one the redrive
/// policy of `--queue-url` names. Listing receives the messages and makes
/// them visible again at once: it deletes nothing, but it does add one to
/// each message's receive count. In a FIFO dead-letter queue, only the first
/// ten messages of each message group can be seen before the earlier ones
/// are redriven.
#[derive(Debug, Args)]
pub struct Dlq {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Lists the dead-lettered messages (at most 1000) without removing them.
    #[command(after_help = crate::EXIT_CODES, after_long_help = LIST_AFTER_HELP)]
    List {
        #[command(flatten)]
        queues: Queues,

        /// Prints one JSON array (its shape is in `--help`) instead of a
        /// table.
        #[arg(long, env = "DAWDLE_JSON")]
        json: bool,
    },
    /// Prints one message: its events as JSON, and why it was dead-lettered.
    #[command(after_help = crate::EXIT_CODES)]
    Show {
        #[command(flatten)]
        queues: Queues,
        /// The SQS message id, as `list` shows it.
        message_id: String,
    },
    /// Sends messages back to the queue, deleting each from the dead-letter
    /// queue only once the queue accepted it.
    Redrive(Redrive),
}

#[derive(Debug, Args)]
#[command(after_help = crate::EXIT_CODES)]
#[group(id = "which", required = true, args = ["all", "message_ids"])]
struct Redrive {
    #[command(flatten)]
    queues: Queues,

    /// Every message in the dead-letter queue.
    #[arg(long, env = "DAWDLE_DLQ_REDRIVE_ALL", conflicts_with = "message_ids")]
    all: bool,

    /// The messages to send back, by SQS message id.
    message_ids: Vec<String>,
}

/// A message received from the dead-letter queue.
#[derive(Debug)]
struct Dead {
    message_id: String,
    receipt: String,
    body: String,
    receive_count: Option<u64>,
    reason: Option<String>,
    group_id: Option<String>,
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
        Dead {
            receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|n| n.parse().ok()),
            group_id: system(MessageSystemAttributeName::MessageGroupId),
            dedup_id: system(MessageSystemAttributeName::MessageDeduplicationId),
            reason: message
                .message_attributes()
                .and_then(|a| a.get(REASON))
                .and_then(|v| v.string_value())
                .map(String::from),
            message_id: message.message_id.unwrap_or_default(),
            receipt: message.receipt_handle.unwrap_or_default(),
            body: message.body.unwrap_or_default(),
        }
    }

    /// The first event's table, action and id, or why there is none.
    fn first_event(&self) -> String {
        match Envelope::parse(&self.body) {
            Ok(envelope) => {
                let e = &envelope.events[0];
                let more = match envelope.events.len() {
                    1 => String::new(),
                    n => format!(" (+{} more)", n - 1),
                };
                format!(
                    "{}.{} {} {}{more}",
                    e.schema,
                    e.table,
                    e.action.as_str(),
                    e.id
                )
            }
            Err(e) => e.to_string(),
        }
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
            DlqCommand::List { queues, json } => list(queues, json).await,
            DlqCommand::Show { queues, message_id } => show(queues, &message_id).await,
            DlqCommand::Redrive(redrive) => redrive.run().await,
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
        .message_attribute_names(REASON)
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

/// One message of `list --json`; documented in `LIST_AFTER_HELP`, which
/// must follow it.
#[derive(Debug, Serialize)]
struct Listed<'a> {
    message_id: &'a str,
    receive_count: Option<u64>,
    reason: Option<&'a str>,
    group_id: Option<&'a str>,
    events: Option<usize>,
    first_event: Option<FirstEvent>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct FirstEvent {
    schema: String,
    table: String,
    action: &'static str,
    id: i64,
}

impl<'a> Listed<'a> {
    fn new(message: &'a Dead) -> Listed<'a> {
        let (events, first_event, error) = match Envelope::parse(&message.body) {
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
            message_id: &message.message_id,
            receive_count: message.receive_count,
            reason: message.reason.as_deref(),
            group_id: message.group_id.as_deref(),
            events,
            first_event,
            error,
        }
    }
}

async fn list(queues: Queues, json: bool) -> Result<(), Failure> {
    let (client, dlq) = resolve(&queues).await?;
    let messages = scan(&client, &dlq).await?;
    if json {
        let listed: Vec<Listed<'_>> = messages.iter().map(Listed::new).collect();
        let json =
            serde_json::to_string_pretty(&listed).map_err(Failure::runtime("cannot write JSON"))?;
        return outln!("{json}");
    }
    if messages.is_empty() {
        outln!("{dlq} is empty")?;
        return Ok(());
    }
    let rows: Vec<[String; 4]> = messages
        .iter()
        .map(|m| {
            [
                m.message_id.clone(),
                m.receive_count
                    .map_or_else(|| "?".into(), |n| n.to_string()),
                m.first_event(),
                m.reason.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
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

async fn show(queues: Queues, message_id: &str) -> Result<(), Failure> {
    let (client, dlq) = resolve(&queues).await?;
    let messages = scan(&client, &dlq).await?;
    let Some(message) = messages.iter().find(|m| m.message_id == message_id) else {
        return Err(Failure::Message(format!(
            "no message {message_id} in {dlq} (of the {} seen)",
            messages.len()
        )));
    };
    outln!("message id:    {}", message.message_id)?;
    if let Some(count) = message.receive_count {
        outln!("receive count: {count}")?;
    }
    if let Some(group) = &message.group_id {
        outln!("group id:      {group}")?;
    }
    outln!(
        "reason:        {}",
        message.reason.as_deref().unwrap_or("(none given)")
    )?;
    match Envelope::parse(&message.body) {
        Ok(envelope) => {
            outln!("events:        {}", envelope.events.len())?;
            let value: serde_json::Value = serde_json::from_str(&message.body)
                .map_err(Failure::runtime("reading the message"))?;
            let pretty = serde_json::to_string_pretty(&value)
                .map_err(Failure::runtime("writing the message"))?;
            outln!("{pretty}")?;
        }
        Err(e) => {
            outln!("events:        none: {e}")?;
            outln!("{}", message.body)?;
        }
    }
    Ok(())
}

impl Redrive {
    async fn run(self) -> Result<(), Failure> {
        let Some(queue) = self.queues.queue_url.clone() else {
            return Err(Failure::Usage(
                "redrive needs --queue-url: where to send the messages back to".into(),
            ));
        };
        let (client, dlq) = resolve(&self.queues).await?;
        let fifo = queue.ends_with(".fifo");
        let mut wanted: BTreeSet<String> = self.message_ids.iter().cloned().collect();
        let total = if self.all {
            let attributes = opts::attributes(
                &client,
                &dlq,
                &[QueueAttributeName::ApproximateNumberOfMessages],
            )
            .await?;
            attributes
                .get(&QueueAttributeName::ApproximateNumberOfMessages)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        } else {
            wanted.len() as u64
        };
        let progress = progress_bar(total);

        let mut others = Vec::new();
        let mut moved = 0u64;
        let result = async {
            while self.all || !wanted.is_empty() {
                let batch = receive(&client, &dlq).await?;
                if batch.is_empty() {
                    break;
                }
                for message in batch {
                    if !self.all && !wanted.remove(&message.message_id) {
                        others.push(message);
                        continue;
                    }
                    send_back(&client, &queue, fifo, &message).await?;
                    client
                        .delete_message()
                        .queue_url(&dlq)
                        .receipt_handle(&message.receipt)
                        .send()
                        .await
                        .map_err(sqs_failure("DeleteMessage"))?;
                    moved += 1;
                    if moved > progress.length().unwrap_or(0) {
                        progress.set_length(moved);
                    }
                    progress.inc(1);
                }
            }
            Ok::<_, Failure>(())
        }
        .await;
        progress.finish_and_clear();
        release(&client, &dlq, &others).await?;
        result?;
        outln!("redrove {moved} messages from {dlq} to {queue}")?;
        if !wanted.is_empty() {
            let missing: Vec<_> = wanted.into_iter().collect();
            return Err(Failure::Message(format!(
                "not found in {dlq}: {}",
                missing.join(", ")
            )));
        }
        Ok(())
    }
}

/// Sends a dead-lettered message's body to `queue`, in its FIFO group and
/// with its deduplication id where it had them.
async fn send_back(
    client: &Client,
    queue: &str,
    fifo: bool,
    message: &Dead,
) -> Result<(), Failure> {
    let mut request = client
        .send_message()
        .queue_url(queue)
        .message_body(&message.body);
    if fifo {
        request = request
            .message_group_id(message.group_id.as_deref().unwrap_or("dawdle-redrive"))
            .message_deduplication_id(message.dedup_id.as_deref().unwrap_or(&message.message_id));
    }
    request.send().await.map_err(sqs_failure("SendMessage"))?;
    Ok(())
}

/// A bar on stderr when it is a terminal; hidden otherwise, so that logs
/// and pipes get no control characters.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} redriven ({eta} left)") {
        bar.set_style(style);
    }
    bar
}
