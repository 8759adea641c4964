//! Server-rendered HTML: escaping, the page layout with its embedded style,
//! and an SVG bar chart. No script, no asset from elsewhere.

use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// `text` escaped for HTML text and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` escaped for a URL path segment or query value.
pub(crate) fn url(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A duration as people say it: `850 ms`, `42 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{} ms", d.as_millis()),
        1..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A time, to the second, in UTC.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A size in bytes, as B, kB, MB or GB (powers of 1,000).
pub(crate) fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.1} GB", n as f64 / 1e9),
    }
}

/// A count with thousands separators.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2433; background: #f5f6f8; }
header { background: #1d2433; color: #fff; padding: 0 24px; display: flex; align-items: center; gap: 28px; height: 52px; }
header .brand { font-weight: 700; font-size: 17px; letter-spacing: .3px; }
header .db { color: #a9b4c8; font-size: 13px; margin-left: auto; }
nav a { color: #cfd6e4; text-decoration: none; margin-right: 18px; padding: 15px 0; border-bottom: 3px solid transparent; }
nav a.here, nav a:hover { color: #fff; border-bottom-color: #5b9cff; }
main { padding: 20px 24px 40px; max-width: 1280px; }
h1 { font-size: 20px; margin: 4px 0 16px; }
h2 { font-size: 15px; margin: 26px 0 10px; color: #3a4559; text-transform: uppercase; letter-spacing: .6px; }
.cards { display: flex; flex-wrap: wrap; gap: 14px; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 12px 16px; min-width: 170px; }
.card .label { color: #5d6980; font-size: 12px; text-transform: uppercase; letter-spacing: .5px; }
.card .value { font-size: 24px; font-weight: 650; margin-top: 2px; }
.card .value.bad { color: #c0392b; }
.card .value.good { color: #1e8449; }
.card .sub { color: #5d6980; font-size: 12px; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #dde1e8; border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid #eceff3; vertical-align: top; }
th { background: #f0f2f6; font-size: 12px; color: #4a5568; text-transform: uppercase; letter-spacing: .4px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: none; }
a { color: #1f5fbf; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f7f8fa; border: 1px solid #e3e6ec; border-radius: 6px; padding: 8px 10px; margin: 4px 0; white-space: pre-wrap; word-break: break-word; max-height: 320px; overflow: auto; }
.error { color: #a93226; }
.muted { color: #6b768a; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #e8edf5; color: #34445c; }
.pill.insert { background: #e3f4ea; color: #1e6b3c; } .pill.update { background: #e6effc; color: #1f4f99; }
.pill.delete { background: #fbe7e5; color: #962d22; } .pill.signal { background: #f3e8fb; color: #6c2e99; }
.pill.warn { background: #fdf0d9; color: #8a5a00; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; margin: 10px 0; align-items: center; }
button { font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid #b9c2d0; background: #fff; cursor: pointer; }
button.primary { background: #1f5fbf; border-color: #1f5fbf; color: #fff; }
button.danger { background: #fff; border-color: #c0392b; color: #c0392b; }
form.inline { display: inline; }
.flash { background: #e3f4ea; border: 1px solid #b7e0c5; color: #1e6b3c; padding: 8px 12px; border-radius: 6px; margin-bottom: 14px; }
.flash.bad { background: #fbe7e5; border-color: #f0bbb5; color: #962d22; }
.pager { margin: 12px 0; }
.chart { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 8px; }
.bar { height: 8px; background: #e6e9ef; border-radius: 4px; overflow: hidden; min-width: 120px; }
.bar > span { display: block; height: 100%; background: #1f5fbf; }
"#;

/// The pages, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Pipeline,
    Queues,
    Signals,
    Backfills,
}

/// A whole page around `body`.
pub(crate) fn page(base: &str, database: &str, here: Nav, title: &str, body: &str) -> String {
    let link = |nav: Nav, path: &str, name: &str| {
        let class = if nav == here { " class=\"here\"" } else { "" };
        // Nested under a prefix, the router's root is the prefix itself.
        let href = match (path, base) {
            ("/", base) if !base.is_empty() => base.to_owned(),
            (path, base) => format!("{base}{path}"),
        };
        format!("<a href=\"{href}\"{class}>{name}</a>")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · dawdle</title><style>{STYLE}</style></head><body>\
         <header><span class=\"brand\">dawdle</span><nav>{}{}{}{}</nav>\
         <span class=\"db\">database <b>{}</b></span></header><main>{body}</main></body></html>",
        link(Nav::Pipeline, "/", "Pipeline"),
        link(Nav::Queues, "/queues", "Queues"),
        link(Nav::Signals, "/signals", "Delayed signals"),
        link(Nav::Backfills, "/backfills", "Backfills"),
        esc(database),
        title = esc(title),
    )
}

/// A card with a label, a value and a line below.
pub(crate) fn card(label: &str, value: &str, class: &str, sub: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value {class}\">{}</div>\
         <div class=\"sub\">{}</div></div>",
        esc(label),
        esc(value),
        esc(sub)
    )
}

/// A bar chart of `values` (one bar each, oldest first), with `labels` under
/// some bars and the largest value on the axis.
pub(crate) fn bar_chart(values: &[(String, f64)], unit: &str) -> String {
    const W: f64 = 960.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 24.0;
    const TOP: f64 = 12.0;
    let max = values.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    let scale = nice_ceiling(max);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>",
        esc(unit)
    );
    let plot_h = H - BOTTOM - TOP;
    for step in 0..=4 {
        let v = scale * f64::from(step) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(step) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e9ef\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5d6980\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            short(v)
        );
    }
    let n = values.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    for (i, (label, v)) in values.iter().enumerate() {
        let h = if scale > 0.0 { plot_h * v / scale } else { 0.0 };
        let x = LEFT + slot * i as f64;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#1f5fbf\">\
             <title>{}: {} {}</title></rect>",
            x + 1.0,
            TOP + plot_h - h,
            (slot - 2.0).max(1.0),
            esc(label),
            short(*v),
            esc(unit)
        );
        if i % 10 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#5d6980\">{}</text>",
                x + 1.0,
                H - 6.0,
                esc(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The smallest of 1, 2, 5 × 10^k at least `v` (1 for nothing).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * magnitude)
}

/// A number for an axis: `0`, `2.5`, `40`, `1.2k`, `3M`.
fn short(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v if v >= 10.0 || v == v.trunc() => format!("{v:.0}"),
        v if v >= 1.0 => format!("{v:.1}"),
        v => format!("{v:.2}").trim_end_matches('0').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(duration(Duration::from_secs(200)), "3 min 20 s");
        assert_eq!(duration(Duration::from_secs(7500)), "2 h 5 min");
        assert_eq!(
            (nice_ceiling(0.0), nice_ceiling(37.0), nice_ceiling(120.0)),
            (1.0, 50.0, 200.0)
        );
    }

    #[test]
    fn a_chart_of_nothing_draws() {
        assert!(bar_chart(&[], "events/s").contains("</svg>"));
        let svg = bar_chart(&[("21:00".into(), 3.0), ("21:01".into(), 0.0)], "events/s");
        assert!(svg.contains("<title>21:00: 3 events/s</title>"));
    }
}
