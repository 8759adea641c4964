//! `dawdle backfill`: snapshot events of the rows a captured table already
//! holds, resumable, with a progress bar; and the backfills of a database
//! listed, paused, resumed and cancelled.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{ArgGroup, Args};
use dawdle::backfill::{Backfill as Run, BackfillError, BackfillStatus, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::opts;
use crate::Failure;

const AFTER_HELP: &str = concat!(
    r#"Pausing and cancelling: --pause, --resume and --cancel work on the row of the
backfill in dawdle.backfills, from any machine; the process running it obeys before
its next batch (while it rests, within a second). A paused backfill waits (its
progress bar says "paused"; a backfill started again while paused waits too) until
--resume or --cancel. A cancelled one stops, and `dawdle backfill` prints that it
was cancelled and exits 0 (so that a job runner does not start it again); started
again, it begins at the first row. These flags exit 1 when no unfinished backfill
of that name exists.

With --list --json, one array, [] when there are none:
  [
    { "name": "public.users", "filter": null, "state": "running",
      "rows_read": 120000, "rows_total": 1000000, "rate_rows_per_second": 850.5,
      "eta_seconds": 1034.6, "started_at": "2026-01-02T03:04:05.6+00:00",
      "updated_at": "2026-01-02T03:06:25.1+00:00", "finished_at": null,
      "paused_at": null, "cancelled_at": null }
  ]
"state" is "running" (not finished, paused nor cancelled: a process works on it, or
will when started again; "updated_at" is its latest batch), "paused", "finished"
or "cancelled" (a cancelled backfill has "finished_at" too). "rows_total" is counted
(with --where) or estimated when its latest run began, null when unknown. The rate
is measured since its latest run began or it was resumed (pauses left out), null
before a batch of it; "eta_seconds" is null unless it is running with a rate and a
total.

"#,
    exit_codes!()
);

/// Sends every existing row of a captured table as a `snapshot` event (not
/// an insert: Insert handlers are not called), in primary-key order, in
/// batches of one transaction each; or lists, pauses, resumes or cancels
/// backfills.
///
/// The cursor is kept in the database (`dawdle.backfills`): a backfill
/// that was stopped or killed continues where it stopped when run again
/// with the same --where; a finished or cancelled one starts anew. It rests
/// between batches, and waits while the watcher is behind, so that writers
/// and live changes keep flowing.
#[derive(Debug, Args)]
#[command(
    after_long_help = AFTER_HELP,
    group(
        ArgGroup::new("what")
            .args(["table", "pause", "resume", "cancel", "list"])
            .required(true)
    )
)]
pub struct Backfill {
    #[command(flatten)]
    database: opts::Database,

    /// The table to backfill, as `schema.table` (unquoted, as in
    /// `dawdle.captures`).
    #[arg(value_name = "SCHEMA.TABLE")]
    table: Option<String>,

    /// Only the rows this SQL condition selects (as after `WHERE`).
    #[arg(long = "where", env = "DAWDLE_BACKFILL_WHERE", value_name = "SQL")]
    filter: Option<String>,

    /// Rows per batch (one transaction each).
    #[arg(
        long,
        env = "DAWDLE_BACKFILL_BATCH",
        default_value_t = Run::DEFAULT_BATCH,
        value_name = "ROWS"
    )]
    batch: u32,

    /// At most this many rows per second.
    #[arg(long, env = "DAWDLE_BACKFILL_MAX_RATE", value_name = "ROWS")]
    max_rate: Option<f64>,

    /// After each batch, rest this many times as long as it took (0: no rest).
    #[arg(
        long,
        env = "DAWDLE_BACKFILL_REST",
        default_value_t = Run::DEFAULT_REST,
        value_name = "RATIO"
    )]
    rest: f64,

    /// Wait before a batch while more events than this wait for the
    /// watcher (0: never wait); default ten batches.
    #[arg(long, env = "DAWDLE_BACKFILL_MAX_BACKLOG", value_name = "EVENTS")]
    max_backlog: Option<i64>,

    /// Start from the first row, even if an unfinished backfill of the table
    /// (perhaps with another --where, or paused) would be resumed.
    #[arg(long, env = "DAWDLE_BACKFILL_RESTART")]
    restart: bool,

    /// Pauses the backfill of this table, wherever it runs: it waits before
    /// its next batch until --resume or --cancel.
    #[arg(long, env = "DAWDLE_BACKFILL_PAUSE", value_name = "SCHEMA.TABLE")]
    pause: Option<String>,

    /// Resumes the paused backfill of this table.
    #[arg(long, env = "DAWDLE_BACKFILL_RESUME", value_name = "SCHEMA.TABLE")]
    resume: Option<String>,

    /// Cancels the backfill of this table: it stops before its next batch;
    /// started again, it begins at the first row.
    #[arg(long, env = "DAWDLE_BACKFILL_CANCEL", value_name = "SCHEMA.TABLE")]
    cancel: Option<String>,

    /// Lists the backfills of the database: state, rows read of the total,
    /// rate and time left.
    #[arg(long, env = "DAWDLE_BACKFILL_LIST")]
    list: bool,

    /// With --list, prints one JSON array (its shape is in `--help`)
    /// instead of a table.
    #[arg(long, env = "DAWDLE_JSON")]
    json: bool,
}

/// What an operator asks of a backfill that may run elsewhere.
#[derive(Debug, Clone, Copy)]
enum Act {
    Pause,
    Resume,
    Cancel,
}

impl Backfill {
    pub async fn run(self) -> Result<(), Failure> {
        let acts = [
            (Act::Pause, &self.pause),
            (Act::Resume, &self.resume),
            (Act::Cancel, &self.cancel),
        ];
        if let Some((act, Some(name))) = acts.into_iter().find(|(_, name)| name.is_some()) {
            let client = self.database.connect().await?;
            return act_on(&client, act, name).await;
        }
        if self.list {
            let client = self.database.connect().await?;
            return list(&client, self.json).await;
        }
        let Some(table) = &self.table else {
            return Err(Failure::Usage(
                "name a table to backfill, or give --pause, --resume, --cancel or --list".into(),
            ));
        };
        let client = self.database.connect().await?;
        let mut run = Run::new(table)
            .batch(self.batch)
            .rest(self.rest)
            .restart(self.restart);
        if let Some(filter) = &self.filter {
            run = run.filter(filter);
        }
        if let Some(rate) = self.max_rate {
            run = run.max_rate(rate);
        }
        if let Some(events) = self.max_backlog {
            run = run.max_backlog((events > 0).then_some(events));
        }
        let bar = progress_bar();
        let result = run.run(&client, |p| show(&bar, p)).await;
        bar.finish_and_clear();
        match result {
            Ok(done) => outln!(
                "backfilled {}: {} rows sent as snapshots",
                done.table,
                done.rows_read
            ),
            // Asked for: not a failure, and a job runner must not start it
            // again (it would begin at the first row).
            Err(BackfillError::Cancelled { table, rows_read }) => outln!(
                "backfill of {table} cancelled after {rows_read} rows sent as snapshots \
                 (run again, it starts from the first row)"
            ),
            Err(BackfillError::Database(e)) => {
                Err(Failure::runtime(format!("backfill of {table}"))(e))
            }
            Err(other) => Err(Failure::Message(other.to_string())),
        }
    }
}

/// Pauses, resumes or cancels the backfill `name`.
async fn act_on(client: &tokio_postgres::Client, act: Act, name: &str) -> Result<(), Failure> {
    let (done, said) = match act {
        Act::Pause => (
            dawdle::backfill::pause(client, name).await,
            "paused: it waits before its next batch until --resume or --cancel",
        ),
        Act::Resume => (
            dawdle::backfill::resume(client, name).await,
            "resumed: it goes on within a second, where a process runs it",
        ),
        Act::Cancel => (
            dawdle::backfill::cancel(client, name).await,
            "cancelled: it stops before its next batch; started again, it begins at the first row",
        ),
    };
    let done = done.map_err(|e| match e {
        BackfillError::Database(e) => Failure::runtime(format!("backfill of {name}"))(e),
        other => Failure::Message(other.to_string()),
    })?;
    if !done {
        return Err(Failure::Message(format!(
            "no unfinished backfill of {name} (`dawdle backfill --list` shows the backfills)"
        )));
    }
    outln!("backfill of {name} {said}")
}

/// One backfill of `--list --json`; documented in `AFTER_HELP`, which must
/// follow it.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    filter: Option<String>,
    state: &'static str,
    rows_read: u64,
    rows_total: Option<u64>,
    rate_rows_per_second: Option<f64>,
    eta_seconds: Option<f64>,
    started_at: String,
    updated_at: String,
    finished_at: Option<String>,
    paused_at: Option<String>,
    cancelled_at: Option<String>,
}

impl Listed {
    fn new(status: &BackfillStatus) -> Listed {
        Listed {
            name: status.name.clone(),
            filter: status.filter.clone(),
            state: status.state().as_str(),
            rows_read: status.rows_read,
            rows_total: status.rows_total,
            rate_rows_per_second: status.rate(),
            eta_seconds: status.eta().map(|eta| eta.as_secs_f64()),
            started_at: status.started_at.to_rfc3339(),
            updated_at: status.updated_at.to_rfc3339(),
            finished_at: status.finished_at.map(|at| at.to_rfc3339()),
            paused_at: status.paused_at.map(|at| at.to_rfc3339()),
            cancelled_at: status.cancelled_at.map(|at| at.to_rfc3339()),
        }
    }
}

async fn list(client: &tokio_postgres::Client, json: bool) -> Result<(), Failure> {
    let backfills = dawdle::backfill::backfills(client)
        .await
        .map_err(|e| match e {
            BackfillError::Database(e) => Failure::runtime("cannot list the backfills")(e),
            other => Failure::Message(other.to_string()),
        })?;
    if json {
        let listed: Vec<Listed> = backfills.iter().map(Listed::new).collect();
        let json =
            serde_json::to_string_pretty(&listed).map_err(Failure::runtime("cannot write JSON"))?;
        return outln!("{json}");
    }
    if backfills.is_empty() {
        return outln!("no backfills in this database");
    }
    let header = ["NAME", "STATE", "ROWS", "RATE", "LEFT", "UPDATED", "WHERE"].map(String::from);
    let rows: Vec<[String; 7]> = backfills.iter().map(row).collect();
    let mut widths = [0; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(widths) {
            line.push_str(&format!("{cell:width$}  "));
        }
        line.push_str(&row[6]);
        outln!("{}", line.trim_end())?;
    }
    Ok(())
}

/// A backfill as a row of `--list`'s table.
fn row(status: &BackfillStatus) -> [String; 7] {
    let rows = match status.rows_total {
        Some(total) => format!("{} of ~{total}", status.rows_read),
        None => status.rows_read.to_string(),
    };
    let dash = || "-".to_owned();
    [
        status.name.clone(),
        status.state().to_string(),
        rows,
        status
            .rate()
            .map_or_else(dash, |rate| format!("{rate:.0}/s")),
        status.eta().map_or_else(dash, |eta| {
            humantime::format_duration(Duration::from_secs(eta.as_secs())).to_string()
        }),
        status
            .updated_at
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        status.filter.clone().unwrap_or_default(),
    ]
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} rows {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Rows read of the total, rows per second and the time left; or that it
/// is paused.
fn show(bar: &ProgressBar, progress: &Progress) {
    if let Some(total) = progress.total {
        bar.set_length(total.max(progress.rows_read));
    }
    bar.set_position(progress.rows_read);
    if progress.paused {
        bar.set_message("(paused: waiting for --resume or --cancel)");
    } else {
        let eta = progress
            .eta()
            .map(|d| {
                format!(
                    ", {} left",
                    humantime::format_duration(Duration::from_secs(d.as_secs()))
                )
            })
            .unwrap_or_default();
        let waiting = match progress.backlog {
            Some(events) if events > 0 => format!(", watcher {events} events behind"),
            _ => String::new(),
        };
        bar.set_message(format!("({:.0} rows/s{eta}{waiting})", progress.rate));
    }
    if bar.is_hidden() {
        tracing::info!(
            table = %progress.table,
            rows = progress.rows_read,
            total = progress.total,
            rate = progress.rate as u64,
            paused = progress.paused,
            "backfill"
        );
    }
}
