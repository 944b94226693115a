//! Charts drawn on the server as inline SVG, so they show without JavaScript and
//! under a CSP that forbids inline styles: shapes carry classes that `app.css`
//! colours (so they follow light and dark mode), never `style` attributes.
//!
//! Every chart is `role="img"` with a `<title>` and `<desc>`; a page must still follow
//! each one with a text alternative (a table), because a description cannot hold all
//! the figures a reader may want.

use chrono::NaiveDate;
use std::fmt::Write;

/// One bar: a label and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bar {
    pub label: String,
    pub value: f64,
}

/// Text made safe for SVG (an XML dialect): element content and quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

fn open(out: &mut String, id: &str, width: u32, height: u32, title: &str, desc: &str) {
    // aria-labelledby names both, since screen readers differ in which they read.
    let id = escape(id);
    let _ = write!(
        out,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-labelledby="{id}-t {id}-d"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        escape(title),
        escape(desc)
    );
}

/// A horizontal bar chart: one row per bar, scaled so `max` fills the width (at
/// least 1, so an all-zero chart still draws its axis).
pub(crate) fn bar_chart(id: &str, title: &str, desc: &str, bars: &[Bar], max: f64) -> String {
    // Wide enough for 28 characters of a framework name at the chart font size.
    const LABEL: u32 = 220;
    const PLOT: u32 = 260;
    const ROW: u32 = 28;
    let max = if max.is_finite() && max >= 1.0 {
        max
    } else {
        1.0
    };
    let height = ROW * u32::try_from(bars.len()).unwrap_or(0) + 8;
    let width = LABEL + PLOT + 56;
    let mut out = String::new();
    open(&mut out, id, width, height, title, desc);
    for (i, bar) in bars.iter().enumerate() {
        let y = 4 + ROW * u32::try_from(i).unwrap_or(0);
        let value = if bar.value.is_finite() {
            bar.value.clamp(0.0, max)
        } else {
            0.0
        };
        let w = (value / max * f64::from(PLOT)).round();
        let _ = write!(
            out,
            r#"<text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text><rect class="chart-bar" x="{LABEL}" y="{}" width="{w}" height="{}"></rect><text class="chart-value" x="{}" y="{}">{}</text>"#,
            LABEL - 6,
            y + 17,
            escape(&truncate(&bar.label, 28)),
            y + 3,
            ROW - 8,
            f64::from(LABEL) + w + 6.0,
            y + 17,
            number(bar.value)
        );
    }
    let _ = write!(
        out,
        r#"<line class="chart-axis" x1="{LABEL}" y1="0" x2="{LABEL}" y2="{height}"></line></svg>"#
    );
    out
}

/// A line of scores (0–100) over days, oldest first. One point draws as a dot.
pub(crate) fn trend_line(id: &str, title: &str, desc: &str, points: &[(NaiveDate, f64)]) -> String {
    const LEFT: f64 = 36.0;
    const TOP: f64 = 8.0;
    const PLOT_W: f64 = 380.0;
    const PLOT_H: f64 = 120.0;
    let (width, height) = (440, 156);
    let mut out = String::new();
    open(&mut out, id, width, height, title, desc);
    for level in [0.0, 50.0, 100.0] {
        let y = TOP + PLOT_H - level / 100.0 * PLOT_H;
        let _ = write!(
            out,
            r#"<line class="chart-grid" x1="{LEFT}" y1="{y}" x2="{}" y2="{y}"></line><text class="chart-label" x="{}" y="{}" text-anchor="end">{level}</text>"#,
            LEFT + PLOT_W,
            LEFT - 4.0,
            y + 4.0
        );
    }
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        out.push_str("</svg>");
        return out;
    };
    let span = (last.0 - first.0).num_days().max(1) as f64;
    let at = |(day, score): &(NaiveDate, f64)| {
        let x = if points.len() == 1 {
            LEFT + PLOT_W
        } else {
            LEFT + (*day - first.0).num_days() as f64 / span * PLOT_W
        };
        let score = if score.is_finite() {
            score.clamp(0.0, 100.0)
        } else {
            0.0
        };
        (
            (x * 10.0).round() / 10.0,
            ((TOP + PLOT_H - score / 100.0 * PLOT_H) * 10.0).round() / 10.0,
        )
    };
    let coords: Vec<String> = points
        .iter()
        .map(|p| {
            let (x, y) = at(p);
            format!("{x},{y}")
        })
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="chart-line" fill="none" points="{}"></polyline>"#,
        coords.join(" ")
    );
    let (x, y) = at(last);
    let _ = write!(
        out,
        r#"<circle class="chart-dot" cx="{x}" cy="{y}" r="4"></circle><text class="chart-label" x="{LEFT}" y="{}">{}</text><text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text></svg>"#,
        height - 6,
        first.0.format("%-d %b"),
        LEFT + PLOT_W,
        height - 6,
        last.0.format("%-d %b")
    );
    out
}

/// A figure with at most one decimal, and none when it is whole.
pub(crate) fn number(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    if (v - v.round()).abs() < f64::EPSILON {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, d).unwrap()
    }

    #[test]
    fn bar_chart_is_an_image_with_a_name_and_escapes_its_text() {
        let svg = bar_chart(
            "gaps",
            "Open <gaps>",
            "A & B",
            &[
                Bar {
                    label: "<script>".into(),
                    value: 3.0,
                },
                Bar {
                    label: "low".into(),
                    value: 0.0,
                },
            ],
            3.0,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"<title id="gaps-t">Open &lt;gaps&gt;</title>"#));
        assert!(svg.contains(r#"<desc id="gaps-d">A &amp; B</desc>"#));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(!svg.contains("style="), "the CSP forbids inline styles");
        // The full bar fills the plot; the empty one has no width.
        assert!(svg.contains(r#"width="260""#) && svg.contains(r#"width="0""#));
    }

    #[test]
    fn bars_are_clamped_and_an_empty_scale_still_draws() {
        let svg = bar_chart(
            "x",
            "t",
            "d",
            &[Bar {
                label: "a".into(),
                value: f64::NAN,
            }],
            0.0,
        );
        assert!(svg.contains(r#"width="0""#));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn trend_line_scales_days_and_scores() {
        let svg = trend_line("t", "Trend", "Up", &[(day(1), 0.0), (day(11), 100.0)]);
        assert!(svg.contains(r#"role="img""#) && svg.contains("<title id=\"t-t\">Trend</title>"));
        // First point bottom-left of the plot, last top-right.
        assert!(svg.contains(r#"points="36,128 416,8""#), "{svg}");
        assert!(svg.contains("1 Mar") && svg.contains("11 Mar"));
    }

    #[test]
    fn a_single_point_or_none_still_renders() {
        let one = trend_line("t", "T", "D", &[(day(5), 50.0)]);
        assert!(
            one.contains("<circle") && one.contains(r#"cy="68""#),
            "{one}"
        );
        let none = trend_line("t", "T", "D", &[]);
        assert!(none.ends_with("</svg>") && !none.contains("<polyline"));
    }

    #[test]
    fn numbers_show_one_decimal_only_when_needed() {
        assert_eq!(number(42.0), "42");
        assert_eq!(number(42.26), "42.3");
        assert_eq!(number(f64::INFINITY), "0");
    }
}
