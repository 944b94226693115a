//! Charts for reports: a line chart of values over time (readiness per framework) and a bar chart
//! of values per category (controls by status).
//!
//! This module owns the chart types, their limits, and everything about a chart that does not
//! depend on the output format: the axes (ranges, ticks, labels), the geometry of every line and
//! bar as fractions of the plot area, and the chart's data as a table. The PDF draws the geometry
//! with typst's own primitives (see `template.typ`); the DOCX and the Markdown export show the
//! table.
//!
//! Invariants: chart text is user data and reaches typst only as string values; a value that is
//! NaN or infinite is never plotted (it is a gap in a line, a bar of no length, "n/a" in a
//! table); values are clamped to ±[`PLOT_LIMIT`] before any arithmetic, so no range, step or
//! coordinate can overflow to infinity.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use crate::{DocsError, MAX_HEADER_BYTES};

/// Most charts in one document. A report has a handful; each chart is a small layout job.
pub const MAX_CHARTS: usize = 64;
/// Most series in one line chart: one per framework. Past eight, colours repeat with dashes.
pub const MAX_CHART_SERIES: usize = 16;
/// Most points in one line chart, over all its series: years of daily snapshots for a few
/// frameworks, while keeping layout of one chart well under a second.
pub const MAX_CHART_POINTS: usize = 5_000;
/// Most bars in one bar chart: as many as fit on one page with readable labels.
pub const MAX_CHART_BARS: usize = 40;

/// Values are clamped to this magnitude for plotting (tables show them unclamped).
const PLOT_LIMIT: f64 = 1e15;
/// Most intervals between x-axis date labels (so at most six labels): more would collide on A4.
const MAX_X_INTERVALS: i64 = 5;
/// Day steps for short date ranges: days, fortnights, weeks.
const DAY_STEPS: [i64; 4] = [1, 2, 7, 14];
/// Month steps for longer ranges, aligned to the calendar: months, quarters, halves, years.
const MONTH_STEPS: [i64; 5] = [1, 2, 3, 6, 12];
/// Points get a dot when a chart has this few (a dot per point is noise on a dense line).
const MAX_MARKED_POINTS: usize = 120;

/// A chart placed in a [`crate::Document`] with [`crate::Block::Chart`].
///
/// All text (titles, labels) is user data and is printed literally.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// Values over time, one line per series, e.g. readiness per framework.
    ///
    /// The y axis runs from 0 to 100 when every value lies within 0–100 — the percentages this
    /// chart is for — and otherwise from 0 (or the lowest value, if negative) to a rounded-up
    /// maximum. The x axis runs from the earliest date to the latest. A NaN or infinite value
    /// is a gap in its line; a point alone between gaps is drawn as a dot.
    Line {
        /// Printed above the chart.
        title: String,
        /// Printed along the y axis, e.g. "Readiness (%)".
        y_label: String,
        /// One line each, in legend order.
        series: Vec<Series>,
    },
    /// One horizontal bar per category, with its value printed at the bar's end, e.g. controls
    /// by status. The axis runs from 0 (or the lowest value, if negative) to a rounded-up
    /// maximum. A NaN or infinite value gets no bar and is printed as "n/a".
    Bar {
        /// Printed above the chart.
        title: String,
        /// (category label, value), top to bottom.
        bars: Vec<(String, f64)>,
    },
}

/// One line of a [`Chart::Line`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Shown in the legend and as a column header in tables.
    pub label: String,
    /// (date, value); need not be sorted. Several values on one date are all plotted and all
    /// listed in tables.
    pub points: Vec<(NaiveDate, f64)>,
}

/// Rejects charts over the limits, and chart text over [`MAX_HEADER_BYTES`] in total.
pub(crate) fn check_charts<'a>(charts: impl Iterator<Item = &'a Chart>) -> Result<(), DocsError> {
    let mut count = 0;
    let mut text = 0;
    for chart in charts {
        count += 1;
        match chart {
            Chart::Line {
                title,
                y_label,
                series,
            } => {
                DocsError::check("chart", series.len(), MAX_CHART_SERIES, "series")?;
                let points = series.iter().map(|s| s.points.len()).sum();
                DocsError::check("chart", points, MAX_CHART_POINTS, "points")?;
                text += title.len() + y_label.len();
                text += series.iter().map(|s| s.label.len()).sum::<usize>();
            }
            Chart::Bar { title, bars } => {
                DocsError::check("chart", bars.len(), MAX_CHART_BARS, "bars")?;
                text += title.len() + bars.iter().map(|(label, _)| label.len()).sum::<usize>();
            }
        }
    }
    DocsError::check("charts", count, MAX_CHARTS, "charts")?;
    DocsError::check("charts", text, MAX_HEADER_BYTES, "bytes")
}

impl Chart {
    /// The chart's title.
    pub(crate) fn title(&self) -> &str {
        match self {
            Chart::Line { title, .. } | Chart::Bar { title, .. } => title,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry for the PDF

/// An axis tick: position as a fraction of the axis (0 = start) and its label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tick {
    pub(crate) at: f64,
    pub(crate) label: String,
}

/// Consecutive finite points of one series, (x, y) in the unit square, in date order.
pub(crate) type Run = Vec<(f64, f64)>;

/// A line chart laid out in the unit square: x from the earliest date (0) to the latest (1), y
/// from the axis minimum (0) to its maximum (1).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinePlot {
    pub(crate) y_ticks: Vec<Tick>,
    pub(crate) x_ticks: Vec<Tick>,
    /// Per series: its label and its runs of consecutive finite points, in date order.
    pub(crate) series: Vec<(String, Vec<Run>)>,
    /// Whether every point gets a dot.
    pub(crate) markers: bool,
    /// No finite value at all: the PDF prints "No data".
    pub(crate) empty: bool,
}

/// A bar chart laid out along one unit axis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BarPlot {
    pub(crate) ticks: Vec<Tick>,
    /// Where zero is on the axis.
    pub(crate) zero: f64,
    /// Per bar: label, start and length as fractions of the axis, and the printed value.
    pub(crate) bars: Vec<Bar>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) start: f64,
    pub(crate) length: f64,
    pub(crate) value: String,
}

/// A value axis: its range and ticks.
#[derive(Debug, Clone, PartialEq)]
struct ValueAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<Tick>,
}

impl ValueAxis {
    /// An axis covering `values` (finite ones only) and zero, ending on tick marks. With
    /// `percent`, an axis whose values all lie within 0–100 is exactly 0–100.
    fn covering(values: impl Iterator<Item = f64>, percent: bool) -> Self {
        let (mut lo, mut hi) = (0.0_f64, 0.0_f64);
        let mut integral = true;
        for v in values.filter(|v| v.is_finite()).map(clamp) {
            lo = lo.min(v);
            hi = hi.max(v);
            integral &= v.fract() == 0.0;
        }
        if percent && lo >= 0.0 && hi <= 100.0 {
            return Self::ticked(0.0, 100.0, 20.0);
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        let step = nice_step((hi - lo) / 5.0, integral);
        let lo = (lo / step).floor() * step;
        let hi = (hi / step).ceil() * step;
        Self::ticked(lo, hi, step)
    }

    fn ticked(lo: f64, hi: f64, step: f64) -> Self {
        // At most a dozen ticks whatever rounding did; ranges here are at most 2e15 wide and
        // steps at least a fifth of that, so the count is small and finite.
        let count = ((hi - lo) / step).round().clamp(1.0, 12.0) as usize;
        let ticks = (0..=count)
            .map(|i| {
                let value = lo + step * i as f64;
                Tick {
                    at: (value - lo) / (hi - lo),
                    label: format_value(value),
                }
            })
            .collect();
        Self { lo, hi, ticks }
    }

    /// Where `value` falls on the axis, 0–1; `None` for a non-finite value.
    fn fraction(&self, value: f64) -> Option<f64> {
        value
            .is_finite()
            .then(|| ((clamp(value) - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0))
    }
}

fn clamp(value: f64) -> f64 {
    value.clamp(-PLOT_LIMIT, PLOT_LIMIT)
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ that is at least `raw`; for whole-number data only whole
/// steps, so counts are not ticked at 0.5 or 2.5.
fn nice_step(raw: f64, integral: bool) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .filter(|s| !integral || s.fract() == 0.0)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    if integral { step.max(1.0) } else { step }
}

/// A value as people write it: whole numbers without decimals, others with two decimals (two
/// significant digits for values below 1), trailing zeros dropped, and scientific notation from
/// 10¹⁵ up. NaN and infinities are "n/a".
pub(crate) fn format_value(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    if value == 0.0 {
        // Also -0.0, which would print as "-0".
        return "0".to_owned();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    let magnitude = value.abs();
    if magnitude >= 1e15 {
        return format!("{value:e}");
    }
    let decimals = if magnitude >= 1.0 {
        2
    } else {
        // 0.0123 → 4 decimals: two significant digits.
        ((-magnitude.log10()).floor() as usize + 2).min(12)
    };
    let text = format!("{value:.decimals$}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A date as printed on axes and in tables: "1 Mar 2025", unambiguous in every locale.
pub(crate) fn format_date(date: NaiveDate) -> String {
    date.format("%-d %b %Y").to_string()
}

/// Lays out a line chart.
pub(crate) fn line_plot(series: &[Series]) -> LinePlot {
    let values = series.iter().flat_map(|s| s.points.iter().map(|(_, v)| *v));
    let y = ValueAxis::covering(values, true);
    let dates = series.iter().flat_map(|s| s.points.iter().map(|(d, _)| *d));
    let first = dates.clone().min();
    let last = dates.max();
    let span = match (first, last) {
        (Some(first), Some(last)) => (last - first).num_days(),
        _ => 0,
    };
    let x = |date: NaiveDate| match first {
        Some(first) if span > 0 => (date - first).num_days() as f64 / span as f64,
        _ => 0.5,
    };

    let x_ticks = match (first, last) {
        (Some(first), Some(last)) => date_ticks(first, last),
        _ => Vec::new(),
    };

    let mut finite = 0;
    let series = series
        .iter()
        .map(|s| {
            let mut points = s.points.clone();
            points.sort_by_key(|(date, _)| *date);
            let mut runs: Vec<Run> = Vec::new();
            let mut run = Vec::new();
            for (date, value) in points {
                match y.fraction(value) {
                    Some(at) => {
                        finite += 1;
                        run.push((x(date), at));
                    }
                    None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                    None => {}
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
            (s.label.clone(), runs)
        })
        .collect();

    LinePlot {
        y_ticks: y.ticks,
        x_ticks,
        series,
        markers: finite <= MAX_MARKED_POINTS,
        empty: finite == 0,
    }
}

/// Date labels between `first` and `last` at calendar-friendly steps: every 1, 2, 7 or 14 days
/// for ranges up to ten weeks, then on the first of every 1, 2, 3, 6 or 12 months ("Apr 2025"),
/// then every 1, 2, 5, 10… years ("2030"); at most six labels. A single date gets one label in
/// the middle.
fn date_ticks(first: NaiveDate, last: NaiveDate) -> Vec<Tick> {
    let span = (last - first).num_days();
    if span <= 0 {
        return vec![Tick {
            at: 0.5,
            label: format_date(first),
        }];
    }
    let at = |date: NaiveDate| (date - first).num_days() as f64 / span as f64;

    if let Some(step) = DAY_STEPS
        .into_iter()
        .find(|step| span / step <= MAX_X_INTERVALS)
    {
        return (0..=span / step)
            .filter_map(|i| first.checked_add_signed(chrono::Duration::days(i * step)))
            .map(|date| Tick {
                at: at(date),
                label: format_date(date),
            })
            .collect();
    }

    // Months counted from year 0, so steps align to quarters and years.
    let month_index = |date: NaiveDate| i64::from(date.year()) * 12 + i64::from(date.month0());
    let (from, to) = (month_index(first), month_index(last));
    let step = MONTH_STEPS
        .into_iter()
        .find(|step| (to - from) / step <= MAX_X_INTERVALS)
        .unwrap_or_else(|| {
            let years = nice_step((to - from) as f64 / 12.0 / MAX_X_INTERVALS as f64, true);
            (years as i64).saturating_mul(12)
        });
    let label_format = if step % 12 == 0 { "%Y" } else { "%b %Y" };
    // The first month start on or after `first` that is a multiple of the step.
    let start = if first.day() == 1 { from } else { from + 1 };
    let mut index = (start + step - 1).div_euclid(step) * step;
    let mut ticks = Vec::new();
    while index <= to && ticks.len() <= MAX_X_INTERVALS as usize {
        let year = i32::try_from(index.div_euclid(12)).ok();
        let month = u32::try_from(index.rem_euclid(12) + 1).ok();
        if let Some(date) = year
            .zip(month)
            .and_then(|(year, month)| NaiveDate::from_ymd_opt(year, month, 1))
            .filter(|date| (first..=last).contains(date))
        {
            ticks.push(Tick {
                at: at(date),
                label: date.format(label_format).to_string(),
            });
        }
        index = index.saturating_add(step);
    }
    ticks
}

/// Lays out a bar chart.
pub(crate) fn bar_plot(bars: &[(String, f64)]) -> BarPlot {
    let axis = ValueAxis::covering(bars.iter().map(|(_, v)| *v), false);
    let zero = axis.fraction(0.0).unwrap_or(0.0);
    let bars = bars
        .iter()
        .map(|(label, value)| {
            let (start, length) = match axis.fraction(*value) {
                Some(end) => (zero.min(end), (end - zero).abs()),
                None => (zero, 0.0),
            };
            Bar {
                label: label.clone(),
                start,
                length,
                value: format_value(*value),
            }
        })
        .collect();
    BarPlot {
        ticks: axis.ticks,
        zero,
        bars,
    }
}

// ---------------------------------------------------------------------------------------------
// Tables for DOCX and Markdown

/// A chart's data as a table, for outputs that do not draw charts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChartTable {
    /// The title, and the y label after a dash when there is one.
    pub(crate) caption: String,
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

/// The data behind `chart`: for a line chart one row per date and one column per series (cells
/// empty where a series has no value that day); for a bar chart one row per bar.
pub(crate) fn chart_table(chart: &Chart) -> ChartTable {
    match chart {
        Chart::Line {
            title,
            y_label,
            series,
        } => {
            let caption = [title.as_str(), y_label.as_str()]
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" — ");
            let header = std::iter::once("Date".to_owned())
                .chain(series.iter().map(|s| s.label.clone()))
                .collect();
            let mut by_date: BTreeMap<NaiveDate, Vec<Vec<String>>> = BTreeMap::new();
            for (i, s) in series.iter().enumerate() {
                for (date, value) in &s.points {
                    let row = by_date
                        .entry(*date)
                        .or_insert_with(|| vec![Vec::new(); series.len()]);
                    if let Some(cell) = row.get_mut(i) {
                        cell.push(format_value(*value));
                    }
                }
            }
            let rows = by_date
                .into_iter()
                .map(|(date, cells)| {
                    std::iter::once(format_date(date))
                        .chain(cells.into_iter().map(|values| values.join(" / ")))
                        .collect()
                })
                .collect();
            ChartTable {
                caption,
                header,
                rows,
            }
        }
        Chart::Bar { title, bars } => ChartTable {
            caption: title.clone(),
            header: vec!["Category".to_owned(), "Value".to_owned()],
            rows: bars
                .iter()
                .map(|(label, value)| vec![label.clone(), format_value(*value)])
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn labels(ticks: &[Tick]) -> Vec<&str> {
        ticks.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn percentages_get_a_zero_to_hundred_axis() {
        let axis = ValueAxis::covering([12.5, 80.0].into_iter(), true);
        assert_eq!((axis.lo, axis.hi), (0.0, 100.0));
        assert_eq!(labels(&axis.ticks), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(axis.fraction(50.0), Some(0.5));
    }

    #[test]
    fn counts_get_whole_number_ticks() {
        let axis = ValueAxis::covering([3.0, 1.0].into_iter(), false);
        assert_eq!(labels(&axis.ticks), ["0", "1", "2", "3"]);
        let axis = ValueAxis::covering([130.0].into_iter(), true);
        assert_eq!(axis.hi, 150.0);
        let axis = ValueAxis::covering([-7.0, 12.0].into_iter(), false);
        assert!(axis.lo <= -7.0 && axis.hi >= 12.0, "{axis:?}");
        assert!(axis.fraction(0.0).is_some_and(|z| z > 0.0 && z < 1.0));
    }

    #[test]
    fn hostile_values_stay_finite() {
        for values in [
            vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY],
            vec![f64::MAX, f64::MIN],
            vec![f64::MIN_POSITIVE, 5e-324],
            vec![0.0, -0.0],
            vec![],
        ] {
            let axis = ValueAxis::covering(values.iter().copied(), false);
            assert!(axis.lo.is_finite() && axis.hi.is_finite() && axis.hi > axis.lo);
            assert!(!axis.ticks.is_empty() && axis.ticks.len() <= 13, "{axis:?}");
            for v in values {
                if let Some(f) = axis.fraction(v) {
                    assert!((0.0..=1.0).contains(&f));
                }
            }
        }
    }

    #[test]
    fn values_are_formatted_for_people() {
        assert_eq!(format_value(42.0), "42");
        assert_eq!(format_value(42.456), "42.46");
        assert_eq!(format_value(2.5), "2.5");
        assert_eq!(format_value(0.0123), "0.012");
        assert_eq!(format_value(-0.001), "-0.001");
        assert_eq!(format_value(f64::NAN), "n/a");
        assert_eq!(format_value(-0.0), "0");
        assert_eq!(format_value(1e20), "1e20");
    }

    #[test]
    fn nan_splits_a_line_into_runs() {
        let series = vec![Series {
            label: "ISO 27001".to_owned(),
            points: vec![
                (date(2025, 1, 3), 30.0),
                (date(2025, 1, 1), 10.0),
                (date(2025, 1, 2), f64::NAN),
                (date(2025, 1, 4), 40.0),
            ],
        }];
        let plot = line_plot(&series);
        let runs = &plot.series[0].1;
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(runs[0], vec![(0.0, 0.1)]);
        assert_eq!(runs[1].len(), 2);
        assert_eq!(
            plot.x_ticks.first().map(|t| t.label.as_str()),
            Some("1 Jan 2025")
        );
        assert_eq!(
            plot.x_ticks.last().map(|t| t.label.as_str()),
            Some("4 Jan 2025")
        );
        assert!(plot.markers && !plot.empty);
    }

    #[test]
    fn degenerate_line_charts_lay_out() {
        assert!(line_plot(&[]).empty);
        let single = line_plot(&[Series {
            label: "One".to_owned(),
            points: vec![(date(2025, 6, 1), 55.0)],
        }]);
        assert_eq!(single.series[0].1, vec![vec![(0.5, 0.55)]]);
        assert_eq!(labels(&single.x_ticks), ["1 Jun 2025"]);
        let long = line_plot(&[Series {
            label: "Long".to_owned(),
            points: vec![(date(2020, 1, 1), 1.0), (date(2025, 1, 1), 2.0)],
        }]);
        assert_eq!(
            labels(&long.x_ticks),
            ["2020", "2021", "2022", "2023", "2024", "2025"]
        );
        assert_eq!(long.x_ticks.last().map(|t| t.at), Some(1.0));
    }

    #[test]
    fn date_ticks_fall_on_calendar_steps() {
        let ticks = |a, b| {
            date_ticks(a, b)
                .into_iter()
                .map(|t| t.label)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ticks(date(2025, 1, 1), date(2025, 1, 15)),
            ["1 Jan 2025", "8 Jan 2025", "15 Jan 2025"]
        );
        assert_eq!(
            ticks(date(2025, 1, 10), date(2025, 12, 20)),
            ["Mar 2025", "May 2025", "Jul 2025", "Sep 2025", "Nov 2025"]
        );
        assert_eq!(
            ticks(date(2025, 2, 1), date(2025, 6, 1)),
            ["Feb 2025", "Mar 2025", "Apr 2025", "May 2025", "Jun 2025"]
        );
        let wide = date_ticks(NaiveDate::MIN, NaiveDate::MAX);
        assert!((1..=6).contains(&wide.len()), "{wide:?}");
        assert!(wide.iter().all(|t| (0.0..=1.0).contains(&t.at)));
        for days in [1, 13, 69, 70, 71, 200, 400, 800, 5000, 40_000] {
            let ticks = date_ticks(
                date(2024, 2, 29),
                date(2024, 2, 29) + chrono::Duration::days(days),
            );
            assert!((1..=6).contains(&ticks.len()), "{days}: {ticks:?}");
        }
    }

    #[test]
    fn bars_start_at_zero() {
        let plot = bar_plot(&[
            ("Done".to_owned(), 8.0),
            ("Broken".to_owned(), f64::NAN),
            ("Negative".to_owned(), -2.0),
        ]);
        assert!(plot.zero > 0.0);
        assert_eq!(plot.bars[0].start, plot.zero);
        assert_eq!(plot.bars[1].length, 0.0);
        assert_eq!(plot.bars[1].value, "n/a");
        assert!(plot.bars[2].start < plot.zero);
    }

    #[test]
    fn line_table_has_a_row_per_date() {
        let chart = Chart::Line {
            title: "Readiness".to_owned(),
            y_label: "%".to_owned(),
            series: vec![
                Series {
                    label: "A".to_owned(),
                    points: vec![(date(2025, 1, 2), 20.0), (date(2025, 1, 1), 10.0)],
                },
                Series {
                    label: "B".to_owned(),
                    points: vec![(date(2025, 1, 2), 5.5)],
                },
            ],
        };
        let table = chart_table(&chart);
        assert_eq!(table.caption, "Readiness — %");
        assert_eq!(table.header, ["Date", "A", "B"]);
        assert_eq!(
            table.rows,
            [["1 Jan 2025", "10", ""], ["2 Jan 2025", "20", "5.5"]]
        );
    }
}
