//! Dating a plan's tasks: pure, so the rules can be tested without a database.
//!
//! Tasks are worked one after another in the order given (most severe first), on
//! working days (Monday to Friday; bank holidays are not known here), at a capacity of
//! person-days per working day. Without a target the capacity is one person full time.
//! With a target the capacity rises as far as [`MAX_CAPACITY`] to finish by it; when
//! even that is not enough, the plan is dated at the maximum and says by how much the
//! target is missed.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// One person's full working day on the plan.
pub const DEFAULT_CAPACITY: f64 = 1.0;

/// Three people full time: more than most businesses of 5–250 people can give.
pub const MAX_CAPACITY: f64 = 3.0;

/// The dated outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// One due date per task, in the order given.
    pub due: Vec<NaiveDate>,
    /// Person-days per working day the dates assume.
    pub capacity: f64,
    /// The last due date (the start date for an empty plan).
    pub end: NaiveDate,
    /// Whether `end` is on or before the target (true without a target).
    pub target_met: bool,
    /// A plain statement of what the dates assume and, when it is missed, by how much.
    pub note: String,
}

/// The next working day on or after `day`.
fn working(day: NaiveDate) -> NaiveDate {
    match day.weekday() {
        Weekday::Sat => day + Days::new(2),
        Weekday::Sun => day + Days::new(1),
        _ => day,
    }
}

/// The working day `n` working days after `start` (0 = `start` itself, moved to a
/// working day).
#[must_use]
pub fn add_working_days(start: NaiveDate, n: u64) -> NaiveDate {
    let first = working(start);
    let weeks = n / 5;
    let rest = n % 5;
    let mut day = first + Days::new(weeks * 7);
    for _ in 0..rest {
        day = working(day + Days::new(1));
    }
    day
}

/// Working days from `start` to `end`, both included (0 when `end` is earlier).
#[must_use]
pub fn working_days_between(start: NaiveDate, end: NaiveDate) -> u64 {
    let first = working(start);
    if end < first {
        return 0;
    }
    let days = u64::try_from((end - first).num_days()).unwrap_or(0) + 1;
    let mut count = days / 7 * 5;
    let mut day = first + Days::new(days / 7 * 7);
    while day <= end {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            count += 1;
        }
        day = day + Days::new(1);
    }
    count
}

/// Dates tasks of the given effort (half days each), in order.
#[must_use]
pub fn schedule(effort_half_days: &[u32], start: NaiveDate, target: Option<NaiveDate>) -> Schedule {
    let total: u64 = effort_half_days.iter().map(|&h| u64::from(h)).sum();
    let total_days = total as f64 / 2.0;
    let (capacity, note_head) = match target {
        None => (
            DEFAULT_CAPACITY,
            format!("{total_days} person-days of work, one person full time"),
        ),
        Some(target) => {
            let available = working_days_between(start, target);
            let needed = if available == 0 {
                f64::INFINITY
            } else {
                total_days / available as f64
            };
            if needed <= DEFAULT_CAPACITY {
                (
                    DEFAULT_CAPACITY,
                    format!("{total_days} person-days of work, one person full time"),
                )
            } else if needed <= MAX_CAPACITY {
                // Round up to a quarter of a person so the dates keep inside the target.
                let capacity = (needed * 4.0).ceil() / 4.0;
                (
                    capacity,
                    format!(
                        "{total_days} person-days of work at {capacity} person-days per working day to meet the target"
                    ),
                )
            } else {
                (
                    MAX_CAPACITY,
                    format!(
                        "{total_days} person-days of work at {MAX_CAPACITY} person-days per working day, the most this plan assumes"
                    ),
                )
            }
        }
    };
    // Capacity is a whole number of quarter person-days, so count in eighths of a day
    // (half days × 4) to keep the arithmetic exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let per_day_eighths = (capacity * 8.0).round() as u64;
    let mut done_eighths = 0u64;
    let mut due = Vec::with_capacity(effort_half_days.len());
    for &h in effort_half_days {
        done_eighths += u64::from(h) * 4;
        let day_index = done_eighths.div_ceil(per_day_eighths).saturating_sub(1);
        due.push(add_working_days(start, day_index));
    }
    let end = due.last().copied().unwrap_or_else(|| working(start));
    // Nothing to do meets any target, even one on the weekend the plan starts.
    let target_met = effort_half_days.is_empty() || target.is_none_or(|t| end <= t);
    let note = match target {
        _ if effort_half_days.is_empty() => "No gaps to close: nothing to schedule.".to_owned(),
        Some(t) if !target_met => {
            let late = working_days_between(t + Days::new(1), end);
            format!(
                "{note_head}. The target date {t} cannot be met: the last task is due {end}, {late} working day(s) later. Move the target, or accept that some tasks finish after it."
            )
        }
        Some(t) => format!("{note_head}; finishes {end}, on or before the target {t}."),
        None => format!("{note_head}; finishes {end}."),
    };
    Schedule {
        due,
        capacity,
        end,
        target_met,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn working_days_skip_weekends() {
        // 2026-11-27 is a Friday.
        assert_eq!(add_working_days(d("2026-11-27"), 0), d("2026-11-27"));
        assert_eq!(add_working_days(d("2026-11-27"), 1), d("2026-11-30"));
        assert_eq!(add_working_days(d("2026-11-28"), 0), d("2026-11-30"));
        assert_eq!(add_working_days(d("2026-11-30"), 5), d("2026-12-07"));
        assert_eq!(working_days_between(d("2026-11-30"), d("2026-12-04")), 5);
        assert_eq!(working_days_between(d("2026-11-28"), d("2026-11-29")), 0);
        assert_eq!(working_days_between(d("2026-11-30"), d("2026-12-14")), 11);
    }

    #[test]
    fn one_person_works_through_in_order() {
        // Monday start: 1 day, half a day, half a day, 3 days.
        let s = schedule(&[2, 1, 1, 6], d("2026-11-30"), None);
        assert_eq!(
            s.due,
            vec![
                d("2026-11-30"),
                d("2026-12-01"),
                d("2026-12-01"),
                d("2026-12-04")
            ]
        );
        assert!(s.target_met);
        assert!((s.capacity - 1.0).abs() < f64::EPSILON);
        assert!(s.note.contains("5 person-days"), "{}", s.note);
    }

    #[test]
    fn a_tight_target_raises_capacity_and_is_met() {
        // 10 days of work, 5 working days available: two people.
        let s = schedule(&[4, 4, 4, 4, 4], d("2026-11-30"), Some(d("2026-12-04")));
        assert!(s.target_met, "{}", s.note);
        assert!((s.capacity - 2.0).abs() < f64::EPSILON);
        assert_eq!(s.end, d("2026-12-04"));
    }

    #[test]
    fn an_impossible_target_is_said_plainly() {
        // 40 days of work in 2 working days.
        let s = schedule(&[80], d("2026-11-30"), Some(d("2026-12-01")));
        assert!(!s.target_met);
        assert!((s.capacity - MAX_CAPACITY).abs() < f64::EPSILON);
        assert!(s.note.contains("cannot be met"), "{}", s.note);
        assert!(s.end > d("2026-12-01"));
        // A target before the start cannot be met either.
        let s = schedule(&[2], d("2026-11-30"), Some(d("2026-11-29")));
        assert!(!s.target_met);
    }

    #[test]
    fn nothing_to_do_is_a_valid_plan() {
        let s = schedule(&[], d("2026-11-28"), Some(d("2026-12-01")));
        assert!(s.due.is_empty());
        assert!(s.target_met);
        assert_eq!(s.end, d("2026-11-30"));
        // Starting and ending on one weekend: still nothing missed.
        let s = schedule(&[], d("2026-11-28"), Some(d("2026-11-29")));
        assert!(s.target_met, "{}", s.note);
    }

    proptest! {
        #[test]
        fn dates_never_go_backwards_and_fall_on_working_days(
            efforts in proptest::collection::vec(1u32..=120, 0..60),
            offset in 0u64..400,
            target_offset in proptest::option::of(0u64..400),
        ) {
            let start = d("2026-01-01") + Days::new(offset);
            let target = target_offset.map(|t| start + Days::new(t));
            let s = schedule(&efforts, start, target);
            prop_assert_eq!(s.due.len(), efforts.len());
            for pair in s.due.windows(2) {
                prop_assert!(pair[0] <= pair[1]);
            }
            for day in &s.due {
                prop_assert!(*day >= start);
                prop_assert!(!matches!(day.weekday(), Weekday::Sat | Weekday::Sun));
            }
            prop_assert!(s.capacity >= DEFAULT_CAPACITY && s.capacity <= MAX_CAPACITY);
            if let Some(t) = target {
                // Met exactly when the last date is within the target.
                prop_assert_eq!(s.target_met, efforts.is_empty() || s.end <= t);
                // If the maximum capacity was not needed, the target was met.
                if s.capacity < MAX_CAPACITY {
                    prop_assert!(s.target_met, "{}", s.note);
                }
            }
        }
    }
}
