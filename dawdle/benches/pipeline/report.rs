//! The table printed at the end and the JSON file of every figure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::{Options, Result};

/// The bar a figure is held to (README's Performance table).
#[derive(Debug, Clone, Copy)]
pub enum Bar {
    AtLeast(f64),
    AtMost(f64),
}

impl Bar {
    fn text(self, value: f64) -> String {
        let (sign, bar, met) = match self {
            Bar::AtLeast(bar) => ("≥", bar, value >= bar),
            Bar::AtMost(bar) => ("≤", bar, value <= bar),
        };
        format!(
            "{sign} {} {}",
            trim(bar),
            if met { "**met**" } else { "**not met**" }
        )
    }
}

#[derive(Debug)]
struct Line {
    section: &'static str,
    figure: String,
    value: String,
    bar: String,
    key: String,
    /// As measured, for [`Report::merge_rounds`].
    raw: f64,
    unit: String,
    held_to: Option<Bar>,
}

#[derive(Debug)]
pub struct Report {
    quick: bool,
    machine: Vec<(String, String)>,
    lines: Vec<Line>,
    numbers: BTreeMap<String, f64>,
    notes: Vec<String>,
}

/// A number without trailing zeros, at most 3 decimals, thousands grouped.
pub fn trim(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let digits = if value.abs() >= 1000.0 {
        0
    } else if value.abs() >= 100.0 {
        1
    } else if value.abs() >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (int, frac) = rest.split_once('.').map_or((rest, ""), |(i, f)| (i, f));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The workspace's `target` directory, where the bench writes its files.
pub fn target_dir() -> Result<PathBuf> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"));
    std::fs::create_dir_all(&path)?;
    Ok(path.canonicalize()?)
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Report {
    pub fn new(options: &Options) -> Report {
        let mut report = Report {
            quick: options.quick,
            machine: Vec::new(),
            lines: Vec::new(),
            numbers: BTreeMap::new(),
            notes: Vec::new(),
        };
        report.machine("cores", format!("{} × {}", cores(), cpu_model()));
        report.number("cores", cores() as f64);
        report.number("quick", if options.quick { 1.0 } else { 0.0 });
        report
    }

    pub fn machine(&mut self, what: &str, text: String) {
        self.machine.push((what.to_owned(), text));
    }

    /// A number for the JSON only.
    pub fn number(&mut self, key: &str, value: f64) {
        if value.is_finite() {
            self.numbers.insert(key.to_owned(), value);
        }
    }

    /// A figure: a line of the table and a number in the JSON.
    pub fn figure(
        &mut self,
        section: &'static str,
        key: &str,
        figure: impl Into<String>,
        value: f64,
        unit: &str,
        bar: Option<Bar>,
    ) {
        let shown = if unit.is_empty() {
            trim(value)
        } else {
            format!("{} {unit}", trim(value))
        };
        eprintln!("  {key} = {shown}");
        self.lines.push(Line {
            section,
            figure: figure.into(),
            value: shown,
            bar: bar.map(|b| b.text(value)).unwrap_or_default(),
            key: key.to_owned(),
            raw: value,
            unit: unit.to_owned(),
            held_to: bar,
        });
        self.number(key, value);
    }

    /// A report of its own for one round of a section, merged into this
    /// one by [`merge_rounds`](Self::merge_rounds).
    pub fn round(&self) -> Report {
        Report {
            quick: self.quick,
            machine: Vec::new(),
            lines: Vec::new(),
            numbers: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Each figure of `rounds` (reports of the same section, run one
    /// after the other), as the median of its rounds' values, which the
    /// figure's text lists when there are several.
    pub fn merge_rounds(&mut self, rounds: Vec<Report>) {
        let Some(first) = rounds.first() else { return };
        for line in &first.lines {
            let mut values: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.lines.iter().find(|l| l.key == line.key))
                .map(|l| l.raw)
                .collect();
            let figure = if values.len() > 1 {
                format!(
                    "{} (median of {} rounds: {})",
                    line.figure,
                    values.len(),
                    values
                        .iter()
                        .map(|v| trim(*v))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                line.figure.clone()
            };
            values.sort_by(f64::total_cmp);
            let mid = values.len() / 2;
            let median = if values.len() % 2 == 1 {
                values[mid]
            } else {
                (values[mid - 1] + values[mid]) / 2.0
            };
            self.figure(
                line.section,
                &line.key,
                figure,
                median,
                &line.unit,
                line.held_to,
            );
        }
        for round in rounds {
            for note in round.notes {
                if !self.notes.contains(&note) {
                    self.notes.push(note);
                }
            }
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mode = if self.quick { " (--quick)" } else { "" };
        let _ = writeln!(out, "## dawdle pipeline benchmark{mode}\n");
        for (what, text) in &self.machine {
            let _ = writeln!(out, "- {what}: {text}");
        }
        out.push('\n');
        out.push_str("| section | figure | value | bar | JSON key |\n");
        out.push_str("|---|---|---:|---|---|\n");
        for line in &self.lines {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | `{}` |",
                line.section, line.figure, line.value, line.bar, line.key
            );
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }

    pub fn print(&self) {
        println!("{}", self.markdown());
    }

    /// Writes `target/dawdle-bench.json` of the workspace: every figure, a number.
    pub fn write(&self) -> Result<PathBuf> {
        let path = target_dir()?.join("dawdle-bench.json");
        let object: serde_json::Map<String, serde_json::Value> = self
            .numbers
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), serde_json::Number::from_f64(*v)?.into())))
            .collect();
        std::fs::write(&path, serde_json::to_string_pretty(&object)? + "\n")?;
        Ok(path)
    }
}
