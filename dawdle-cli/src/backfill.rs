//! `dawdle backfill`: snapshot events of the rows a captured table already
//! holds, resumable, with a progress bar.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use dawdle::backfill::{Backfill as Run, BackfillError, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::opts;
use crate::Failure;

/// Sends every existing row of a captured table as a `snapshot` event (not
/// an insert: Insert handlers are not called), in primary-key order, in
/// batches of one transaction each.
///
/// The cursor is kept in the database (`dawdle.backfills`): a backfill
/// that was stopped or killed continues where it stopped when run again
/// with the same --where; a finished one starts anew. It rests between
/// batches, and waits while the watcher is behind, so that writers and
/// live changes keep flowing.
#[derive(Debug, Args)]
pub struct Backfill {
    #[command(flatten)]
    database: opts::Database,

    /// The table, as `schema.table` (unquoted, as in `dawdle.captures`).
    #[arg(value_name = "SCHEMA.TABLE")]
    table: String,

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
    /// (perhaps with another --where) would be resumed.
    #[arg(long, env = "DAWDLE_BACKFILL_RESTART")]
    restart: bool,
}

impl Backfill {
    pub async fn run(self) -> Result<(), Failure> {
        let client = self.database.connect().await?;
        let mut run = Run::new(&self.table)
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
        let done = run
            .run(&client, |p| show(&bar, p))
            .await
            .map_err(|e| match e {
                BackfillError::Database(e) => {
                    Failure::runtime(format!("backfill of {}", self.table))(e)
                }
                other => Failure::Message(other.to_string()),
            })?;
        bar.finish_and_clear();
        outln!(
            "backfilled {}: {} rows sent as snapshots",
            done.table,
            done.rows_read
        )?;
        Ok(())
    }
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

/// Rows read of the total, rows per second and the time left.
fn show(bar: &ProgressBar, progress: &Progress) {
    if let Some(total) = progress.total {
        bar.set_length(total.max(progress.rows_read));
    }
    bar.set_position(progress.rows_read);
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
    if bar.is_hidden() {
        tracing::info!(
            table = %progress.table,
            rows = progress.rows_read,
            total = progress.total,
            rate = progress.rate as u64,
            "backfill"
        );
    }
}
