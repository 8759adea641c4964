//! Line charts as SVG, written by hand: the bench's pictures for
//! BENCHMARKS.md, with no plotting dependency.
//!
//! The chart draws its own white background and names every colour, so it
//! reads the same in GitHub's light and dark themes; its `viewBox` lets it
//! scale. This file uses only `std`, so that its tests can run on their own:
//! the bench is built with `harness = false`, and `cargo test` never compiles
//! them.
//!
//! ```text
//! rustc --edition 2021 --test dawdle/benches/pipeline/plot.rs -o target/plot-tests && target/plot-tests
//! ```

use std::fmt::Write as _;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 28.0;
const BOTTOM: f64 = 62.0;
const LEGEND_LINE: f64 = 19.0;
const TEXT: &str = "#1f2328";
const MUTED: &str = "#59636e";
const GRID: &str = "#e4e7eb";

/// Colour and dash pattern of each series in turn: the Okabe–Ito colours
/// (told apart with colour blindness), and dashes for a grey print.
const STYLES: [(&str, &str); 4] = [
    ("#0072b2", ""),
    ("#d55e00", "7 4"),
    ("#009e73", "2 3"),
    ("#cc79a7", "9 3 2 3"),
];

/// One line of the chart, in data coordinates.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// An axis: its label, and its ticks when the data's units are not the
/// axis's (a percentile on a scale of nines); `None` picks round numbers.
#[derive(Debug, Clone, Default)]
pub struct Axis {
    pub label: String,
    pub ticks: Option<Vec<(f64, String)>>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    /// A grey line under the title: where the figures come from.
    pub note: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    /// Shade the area between each line and zero, so that lines that
    /// cross often stay apart.
    pub fill: bool,
}

/// `text` for SVG text content and attribute values.
pub fn escape(text: &str) -> String {
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

/// Round-numbered ticks (steps of 1, 2, 2.5 or 5 × 10ⁿ) from at or below
/// `lo` to at or above `hi`.
fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * magnitude);
    let (first, last) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A tick's label: the decimals its step needs, thousands grouped.
fn tick_label(value: f64, step: f64) -> String {
    let decimals = (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6) as usize;
    let text = format!("{:.*}", decimals, value.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::new();
    if value < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        out.push('-');
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// The range an axis spans and its ticks: round numbers from 0 (or below,
/// for negative data) past the data, or the given ticks and the data.
fn scale(axis: &Axis, values: impl Iterator<Item = f64>) -> ((f64, f64), Vec<(f64, String)>) {
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let ticks = match &axis.ticks {
        Some(ticks) => ticks.clone(),
        None => {
            let ticks = nice_ticks(lo, hi);
            let step = ticks[1] - ticks[0];
            ticks.iter().map(|&t| (t, tick_label(t, step))).collect()
        }
    };
    let lo = ticks.iter().map(|t| t.0).fold(lo, f64::min);
    let hi = ticks.iter().map(|t| t.0).fold(hi, f64::max);
    ((lo, if hi > lo { hi } else { lo + 1.0 }), ticks)
}

impl Chart {
    pub fn svg(&self) -> String {
        let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
        let points = self.series.iter().flat_map(|s| s.points.iter().copied());
        let data: Vec<(f64, f64)> = points.filter(finite).collect();
        let ((x0, x1), x_ticks) = scale(&self.x, data.iter().map(|p| p.0));
        let ((y0, y1), y_ticks) = scale(&self.y, data.iter().map(|p| p.1));
        let top = 62.0 + LEGEND_LINE * self.series.len() as f64 + 12.0;
        let (width, height) = (WIDTH - LEFT - RIGHT, HEIGHT - top - BOTTOM);
        let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * width;
        let py = |y: f64| top + height - (y - y0) / (y1 - y0) * height;

        let mut svg = String::new();
        let w = &mut svg;
        let _ = writeln!(
            w,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="13" role="img">"#
        );
        let _ = writeln!(w, "<title>{}</title>", escape(&self.title));
        let _ = writeln!(w, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        let _ = writeln!(
            w,
            r#"<text x="{LEFT}" y="28" font-size="17" font-weight="bold" fill="{TEXT}">{}</text>"#,
            escape(&self.title)
        );
        let _ = writeln!(
            w,
            r#"<text x="{LEFT}" y="48" font-size="12" fill="{MUTED}">{}</text>"#,
            escape(&self.note)
        );
        for (x, label) in x_ticks.iter().filter(|t| (x0..=x1).contains(&t.0)) {
            let x = px(*x);
            let _ = writeln!(
                w,
                r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{:.1}" stroke="{GRID}"/><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{TEXT}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="{TEXT}">{}</text>"#,
                top + height,
                top + height,
                top + height + 5.0,
                top + height + 20.0,
                escape(label)
            );
        }
        for (y, label) in y_ticks.iter().filter(|t| (y0..=y1).contains(&t.0)) {
            let y = py(*y);
            let _ = writeln!(
                w,
                r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID}"/><line x1="{:.1}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="{TEXT}"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{TEXT}">{}</text>"#,
                LEFT + width,
                LEFT - 5.0,
                LEFT - 8.0,
                y + 4.5,
                escape(label)
            );
        }
        let _ = writeln!(
            w,
            r#"<path d="M{LEFT} {top:.1}V{:.1}H{:.1}" fill="none" stroke="{TEXT}"/>"#,
            top + height,
            LEFT + width
        );
        let _ = writeln!(
            w,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{TEXT}">{}</text>"#,
            LEFT + width / 2.0,
            HEIGHT - 16.0,
            escape(&self.x.label)
        );
        let (lx, ly) = (20.0, top + height / 2.0);
        let _ = writeln!(
            w,
            r#"<text x="{lx}" y="{ly:.1}" transform="rotate(-90 {lx} {ly:.1})" text-anchor="middle" fill="{TEXT}">{}</text>"#,
            escape(&self.y.label)
        );
        // In pixels; SVG's points attribute.
        let xy = |series: &Series| -> Vec<(f64, f64)> {
            let points = series.points.iter().copied().filter(finite);
            points.map(|(x, y)| (px(x), py(y))).collect()
        };
        let text = |points: &[(f64, f64)]| -> String {
            let points = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}"));
            points.collect::<Vec<_>>().join(" ")
        };
        let zero = py(0f64.clamp(y0, y1));
        for (i, series) in self.series.iter().enumerate().filter(|_| self.fill) {
            let (colour, _) = STYLES[i % STYLES.len()];
            let mut points = xy(series);
            if let (Some(&(first, _)), Some(&(last, _))) = (points.first(), points.last()) {
                points.extend([(last, zero), (first, zero)]);
                let _ = writeln!(
                    w,
                    r#"<polygon points="{}" fill="{colour}" fill-opacity="0.12"/>"#,
                    text(&points)
                );
            }
        }
        for (i, series) in self.series.iter().enumerate() {
            let (colour, dash) = STYLES[i % STYLES.len()];
            let dash = if dash.is_empty() {
                String::new()
            } else {
                format!(r#" stroke-dasharray="{dash}""#)
            };
            let line = format!(r#"fill="none" stroke="{colour}" stroke-width="2"{dash}"#);
            let ly = 62.0 + LEGEND_LINE * i as f64 + 6.0;
            let _ = writeln!(
                w,
                r#"<line x1="{LEFT}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" {line}/><text x="{:.1}" y="{:.1}" fill="{TEXT}">{}</text>"#,
                LEFT + 30.0,
                LEFT + 38.0,
                ly + 4.5,
                escape(&series.name)
            );
            let points = xy(series);
            if !points.is_empty() {
                let _ = writeln!(
                    w,
                    r#"<polyline points="{}" {line} stroke-linejoin="round"/>"#,
                    text(&points)
                );
            }
        }
        if data.is_empty() {
            let _ = writeln!(
                w,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}">no data</text>"#,
                LEFT + width / 2.0,
                top + height / 2.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cargo builds the bench with `cfg(test)` but without the test harness,
    // which drops the #[test]s that use this.
    #[allow(dead_code)]
    fn chart(series: Vec<Series>) -> Chart {
        Chart {
            title: "a <b> & \"c\"".into(),
            note: "it's".into(),
            x: Axis::default(),
            y: Axis::default(),
            series,
            fill: true,
        }
    }

    #[test]
    fn escapes_text() {
        assert_eq!(
            escape(r#"<a & "b">'"#),
            "&lt;a &amp; &quot;b&quot;&gt;&#39;"
        );
        let svg = chart(vec![Series {
            name: "<q>".into(),
            points: vec![(0.0, 1.0)],
        }])
        .svg();
        assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;") && svg.contains("&lt;q&gt;"));
        assert!(svg.contains("it&#39;s") && !svg.contains("<b>") && !svg.contains("<q>"));
    }

    #[test]
    fn empty_series_do_not_panic() {
        for series in [
            vec![],
            vec![Series {
                name: "none".into(),
                points: vec![],
            }],
        ] {
            let svg = chart(series).svg();
            assert!(
                svg.starts_with("<svg") && svg.ends_with("</svg>\n") && svg.contains("no data")
            );
            assert!(!svg.contains("NaN") && !svg.contains("inf"));
        }
        let odd = vec![(f64::NAN, 1.0), (2.0, f64::INFINITY), (3.0, 3.0)];
        let svg = chart(vec![Series {
            name: "odd".into(),
            points: odd,
        }])
        .svg();
        assert!(!svg.contains("NaN") && !svg.contains("inf") && !svg.contains("no data"));
    }

    #[test]
    fn ticks_cover_the_data() {
        for (lo, hi) in [
            (0.0, 1.0),
            (0.0, 6.07),
            (0.0, 43_917.0),
            (-3.2, 0.7),
            (0.0, 0.003),
            (5.0, 5.0),
        ] {
            let ticks = nice_ticks(lo, hi);
            let (first, last) = (ticks[0], ticks[ticks.len() - 1]);
            assert!(first <= lo && last >= hi, "{lo}..{hi}: {ticks:?}");
            assert!((3..=12).contains(&ticks.len()), "{lo}..{hi}: {ticks:?}");
        }
        let axis = Axis::default();
        let ((lo, hi), ticks) = scale(&axis, [3.0, 97.0].into_iter());
        assert!(lo <= 0.0 && hi >= 97.0 && ticks.last().unwrap().0 >= 97.0);
        let given = Axis {
            label: String::new(),
            ticks: Some(vec![(0.0, "0%".into()), (1.0, "90%".into())]),
        };
        assert_eq!(scale(&given, [0.5, 3.5].into_iter()).0, (0.0, 3.5));
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(40_000.0, 10_000.0), "40,000");
        assert_eq!(tick_label(2.5, 2.5), "2.5");
        assert_eq!(tick_label(0.1 * 3.0, 0.1), "0.3");
        assert_eq!(tick_label(-0.0, 0.5), "0.0");
        assert_eq!(tick_label(-1.5, 0.5), "-1.5");
    }
}
