//! The bench's two pictures, from what the throughput and latency runs
//! recorded: `target/dawdle-bench-latency.svg` (COMMIT → handler latency by
//! percentile) and `target/dawdle-bench-throughput.svg` (events handled per
//! interval over the run), one series per queue.
//!
//! Only the runs the bars are about are drawn, a Runtime on MemoryQueue and
//! on PgQueue: the watcher alone ends at a receive, not a handler call, and
//! moto's figures are not SQS's speed.

use std::path::PathBuf;
use std::time::Instant;

use crate::plot::{Axis, Chart, Series};
use crate::report::{cores, target_dir, trim};
use crate::throughput::{percentile, End};
use crate::{Options, Result};

/// A throughput run: seconds from the first write to each event's first
/// delivery, in order, and to the last write.
#[derive(Debug)]
struct Handled {
    end: End,
    seconds: Vec<f64>,
    written: f64,
}

#[derive(Debug, Default)]
pub struct Traces {
    /// What the throughput runs wrote (the same for every run).
    handled_load: String,
    handled: Vec<Handled>,
    /// What the latency runs wrote.
    latency_load: String,
    /// Per run: every event's COMMIT → delivery latency in ms, sorted.
    latencies: Vec<(End, Vec<f64>)>,
}

impl Traces {
    /// A throughput run's deliveries; `written`: seconds the writes took.
    pub fn handled(
        &mut self,
        end: End,
        load: String,
        written: f64,
        started: Instant,
        at: &[Instant],
    ) {
        if end.has_bars() {
            let mut seconds: Vec<f64> = at
                .iter()
                .map(|at| at.saturating_duration_since(started).as_secs_f64())
                .collect();
            seconds.sort_by(f64::total_cmp);
            self.handled_load = load;
            self.handled.push(Handled {
                end,
                seconds,
                written,
            });
        }
    }

    /// A latency run's latencies in ms, sorted.
    pub fn latencies(&mut self, end: End, load: String, sorted: Vec<f64>) {
        if end.has_bars() {
            self.latency_load = load;
            self.latencies.push((end, sorted));
        }
    }

    /// Writes the pictures of the runs there were; returns their paths.
    pub fn write(&self, options: &Options) -> Result<Vec<PathBuf>> {
        let note = |load: &str| {
            format!(
                "{load} · cargo bench -p dawdle --bench pipeline{} · {} cores, shared",
                if options.quick { " -- --quick" } else { "" },
                cores()
            )
        };
        let mut written = Vec::new();
        for (name, chart) in [
            (
                "latency",
                (!self.latencies.is_empty()).then(|| self.latency(note(&self.latency_load))),
            ),
            (
                "throughput",
                (!self.handled.is_empty()).then(|| self.throughput(note(&self.handled_load))),
            ),
        ] {
            if let Some(chart) = chart {
                let path = target_dir()?.join(format!("dawdle-bench-{name}.svg"));
                std::fs::write(&path, chart.svg())?;
                written.push(path);
            }
        }
        Ok(written)
    }

    /// Latency by percentile on a scale of nines (x = −log₁₀(1 − q)), so
    /// that the tail gets as much room as the median.
    fn latency(&self, note: String) -> Chart {
        const STEPS: usize = 400;
        let series = self.latencies.iter().map(|(end, sorted)| {
            // The last rank below the max is at q = 1 − 1/n; the max closes the line.
            let span = (sorted.len().max(1) as f64).log10();
            let mut points: Vec<(f64, f64)> = (0..=STEPS)
                .map(|i| {
                    let x = span * i as f64 / STEPS as f64;
                    (x, percentile(sorted, 1.0 - 10f64.powf(-x)))
                })
                .collect();
            points.push((span, percentile(sorted, 1.0)));
            let ms = |q| trim(percentile(sorted, q));
            Series {
                name: format!(
                    "{}: p50 {} ms, p99 {} ms, max {} ms ({} events)",
                    end.queue(),
                    ms(0.5),
                    ms(0.99),
                    ms(1.0),
                    trim(sorted.len() as f64)
                ),
                points,
            }
        });
        let longest = self.latencies.iter().map(|(_, s)| s.len()).max();
        let span = (longest.unwrap_or(1).max(1) as f64).log10();
        let ticks = [
            (0.0, "0%"),
            (2f64.log10(), "50%"),
            (1.0, "90%"),
            (2.0, "99%"),
            (3.0, "99.9%"),
            (4.0, "99.99%"),
            (5.0, "99.999%"),
        ];
        Chart {
            title: "Latency, COMMIT returned → handler call, by percentile".to_owned(),
            note,
            x: Axis {
                label: "percentile of events (90%, 99%, 99.9% equally spaced; each line ends at its max)"
                    .to_owned(),
                ticks: Some(
                    ticks
                        .iter()
                        .filter(|(x, _)| *x <= span)
                        .map(|(x, label)| (*x, (*label).to_owned()))
                        .collect(),
                ),
            },
            y: Axis {
                label: "latency, ms".to_owned(),
                ticks: None,
            },
            series: series.collect(),
            fill: false,
        }
    }

    /// Events handled per interval, as a rate; the interval is a round
    /// number of ms that cuts the longest run into at most 40.
    fn throughput(&self, note: String) -> Chart {
        let last = |seconds: &[f64]| seconds.last().copied().unwrap_or(0.0);
        let longest = self
            .handled
            .iter()
            .map(|h| last(&h.seconds))
            .fold(0.0, f64::max);
        let interval = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .find(|interval| longest / interval <= 40.0)
            .unwrap_or(10.0);
        let series = self.handled.iter().map(|run| {
            let buckets = (last(&run.seconds) / interval) as usize + 1;
            let mut counts = vec![0u64; buckets];
            for &t in &run.seconds {
                counts[((t / interval) as usize).min(buckets - 1)] += 1;
            }
            let mut points = vec![(0.0, 0.0)];
            for (i, &count) in counts.iter().enumerate() {
                let rate = count as f64 / interval;
                points.extend([
                    (i as f64 * interval, rate),
                    ((i + 1) as f64 * interval, rate),
                ]);
            }
            points.push((buckets as f64 * interval, 0.0));
            Series {
                name: format!(
                    "{}: {} events; writes done after {} s, the last event handled after {} s",
                    run.end.queue(),
                    trim(run.seconds.len() as f64),
                    trim(run.written),
                    trim(last(&run.seconds))
                ),
                points,
            }
        });
        Chart {
            title: "Throughput, events handled over the run".to_owned(),
            note,
            x: Axis {
                label: "seconds since the first write".to_owned(),
                ticks: None,
            },
            y: Axis {
                label: format!(
                    "events handled per second (counted per {} ms)",
                    trim(interval * 1000.0)
                ),
                ticks: None,
            },
            series: series.collect(),
            fill: true,
        }
    }
}
