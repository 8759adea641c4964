//! The pipeline benchmark: what capture costs the application's writers,
//! how fast events decode, and how fast and how promptly the watcher moves
//! them to the queue.
//!
//! ```text
//! cargo bench -p dawdle --bench pipeline               # full run
//! cargo bench -p dawdle --bench pipeline -- --quick    # within 3 minutes on 2 cores
//! ```
//!
//! Prints a markdown table and writes `target/dawdle-bench.json` (every
//! figure a number), and with the throughput and latency sections their
//! pictures, `target/dawdle-bench-throughput.svg` and
//! `target/dawdle-bench-latency.svg` (`figures.rs`).
//!
//! Options after `--`: `--quick`, `--only SECTION[,SECTION]`
//! (`write`, `decode`, `throughput`, `latency`, `signals`, `sqs`), `--seconds S` (the write-cost
//! window), `--rounds N` (write-cost repetitions, interleaved; throughput and
//! latency repetitions, one after the other: figures are medians), `--diagnose`
//! (also (b) with parts of the capture left out, and dawdle 0.1's design, for the 8-writer loads), `--loads
//! LOAD[,LOAD]` (write-cost loads: `8_writers`, `1_writer`, `8_writers_100_rows`).
//!
//! PostgreSQL: `DATABASE_URL` when set (a fresh database per measurement is
//! created on it); otherwise the write cost runs on a cluster of its own with
//! durable settings (`fsync=on`, `synchronous_commit=on`: the commit cost
//! that NOTIFY serializes is only visible there), and the other sections on
//! the tests' throwaway cluster (`dawdle_test::TestDb`, `fsync=off`).
//!
//! Throughput and latency are measured end to end, through a
//! `dawdle::Runtime` (watcher + listener) to a `#[dawdle::handler]`, on
//! MemoryQueue and on PgQueue side by side, and for the watcher alone, to a
//! plain consumer that receives from the queue.

mod cluster;
mod consumer;
mod decode;
mod diagnose;
mod figures;
mod handler;
mod model;
mod plot;
mod report;
mod signals;
mod throughput;
mod write_cost;

use std::time::Duration;

use report::Report;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// What to run, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    /// Also run the write cost of (b) with parts of the capture left out.
    pub diagnose: bool,
    only: Option<Vec<String>>,
    /// Write-cost loads to run (`8_writers`, `1_writer`, `8_writers_100_rows`).
    loads: Option<Vec<String>>,
    /// The write-cost window per variant.
    pub write_window: Duration,
    /// Untimed warm-up before each write-cost window.
    pub write_warmup: Duration,
    /// Repetitions: of the write cost (variants interleaved), of each
    /// throughput and latency run; figures are the medians.
    pub rounds: usize,
    /// Changes in the throughput run.
    pub throughput_changes: usize,
    /// Duration of the steady-rate latency run.
    pub latency_window: Duration,
    /// Time spent in each decode loop.
    pub decode_window: Duration,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut quick = false;
        let mut diagnose = false;
        let mut only = None;
        let mut loads = None;
        let mut seconds = None;
        let mut rounds = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--diagnose" => diagnose = true,
                "--only" => {
                    let list = args.next().ok_or("--only needs a list of sections")?;
                    only = Some(list.split(',').map(str::to_owned).collect());
                }
                "--loads" => {
                    let list = args.next().ok_or("--loads needs a list of loads")?;
                    loads = Some(list.split(',').map(str::to_owned).collect());
                }
                "--seconds" => {
                    seconds = Some(
                        args.next()
                            .ok_or("--seconds needs a number")?
                            .parse::<f64>()?,
                    )
                }
                "--rounds" => {
                    rounds = Some(
                        args.next()
                            .ok_or("--rounds needs a number")?
                            .parse::<usize>()?,
                    )
                }
                // cargo bench passes --bench; libtest options mean nothing here.
                _ => {}
            }
        }
        let window = seconds.unwrap_or(if quick { 3.0 } else { 10.0 });
        Ok(Options {
            quick,
            diagnose,
            only,
            loads,
            write_window: Duration::from_secs_f64(window),
            write_warmup: Duration::from_millis(if quick { 500 } else { 1000 }),
            rounds: rounds.unwrap_or(if quick { 1 } else { 2 }).max(1),
            throughput_changes: if quick { 20_000 } else { 200_000 },
            latency_window: Duration::from_secs(if quick { 3 } else { 10 }),
            decode_window: Duration::from_millis(if quick { 1000 } else { 3000 }),
        })
    }

    pub fn runs_load(&self, load: &str) -> bool {
        match &self.loads {
            None => true,
            Some(loads) => loads.iter().any(|l| l == load),
        }
    }

    fn runs(&self, section: &str) -> bool {
        match &self.only {
            None => true,
            Some(only) => only.iter().any(|s| s == section),
        }
    }
}

/// The sections measured per end of the pipeline.
#[derive(Debug, Clone, Copy)]
enum Section {
    Throughput,
    Latency,
}

impl Section {
    /// As `--only` names it.
    fn name(self) -> &'static str {
        match self {
            Section::Throughput => "throughput",
            Section::Latency => "latency",
        }
    }
}

fn main() -> Result<()> {
    let options = Options::parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<()> {
    let started = std::time::Instant::now();
    let mut report = Report::new(&options);
    let mut traces = figures::Traces::default();
    if options.runs("write") {
        eprintln!("== write cost");
        let server = cluster::Server::durable().await?;
        report.machine("write-cost server", server.describe().await?);
        let mut result = write_cost::run(&options, &server, &mut report).await;
        if result.is_ok() && options.diagnose {
            eprintln!("== diagnosis");
            result = diagnose::run(&options, &server, &mut report).await;
        }
        server.stop().await;
        result?;
    }
    let needs_test_db = ["decode", "throughput", "latency", "signals"]
        .iter()
        .any(|s| options.runs(s));
    if needs_test_db {
        // Starts the throwaway cluster (or uses DATABASE_URL).
        let db = dawdle_test::TestDb::new().await?;
        let client = db.connect().await?;
        report.machine(
            "decode/throughput/latency server",
            cluster::describe(&client).await?,
        );
    }
    if options.runs("decode") {
        eprintln!("== decode");
        decode::run(&options, &mut report).await?;
    }
    let mut ends = vec![
        throughput::End::Handler,
        throughput::End::PgHandler,
        throughput::End::Receive,
    ];
    if (options.runs("throughput") || options.runs("latency")) && throughput::logical().await? {
        ends.push(throughput::End::WalHandler);
    }
    // Each end `rounds` times, one after the other: the figures are the
    // medians, and list every round's value. The plots show the last round.
    for end in ends {
        for section in [Section::Throughput, Section::Latency] {
            if !options.runs(section.name()) {
                continue;
            }
            let mut rounds = Vec::new();
            for round in 0..options.rounds {
                eprintln!("== {} to {end:?}, round {}", section.name(), round + 1);
                let mut sub = report.round();
                let mut scratch = figures::Traces::default();
                let plotted = if round + 1 == options.rounds {
                    &mut traces
                } else {
                    &mut scratch
                };
                match section {
                    Section::Throughput => {
                        throughput::throughput(&options, &mut sub, plotted, end).await?
                    }
                    Section::Latency => {
                        throughput::latency(&options, &mut sub, plotted, end).await?
                    }
                }
                rounds.push(sub);
            }
            report.merge_rounds(rounds);
        }
    }
    if options.runs("signals") {
        eprintln!("== signals");
        signals::run(&options, &mut report).await?;
    }
    if options.runs("sqs") {
        // moto's server: DAWDLE_MOTO_SERVER, target/moto-venv (scripts/test
        // installs it) or PATH; without it these rows are left out.
        match dawdle_test::SqsServer::get().await {
            Ok(_) => {
                let end = throughput::End::SqsHandler;
                eprintln!("== throughput to {end:?}");
                throughput::throughput(&options, &mut report, &mut traces, end).await?;
                eprintln!("== latency to {end:?}");
                throughput::latency(&options, &mut report, &mut traces, end).await?;
                report.note(
                    "SQS rows: moto's server is slow Python on the same 2 cores; its figures \
                     show request counts and the shape of the pipeline, not SQS's speed.",
                );
            }
            Err(error) => {
                eprintln!("SQS rows left out: {error}");
                report.note(format!("SQS rows left out: {error}"));
            }
        }
    }
    report.number("bench_seconds", started.elapsed().as_secs_f64());
    report.print();
    let path = report.write()?;
    eprintln!("wrote {}", path.display());
    for path in traces.write(&options)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
