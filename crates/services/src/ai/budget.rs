//! Budgets: a daily and a monthly limit in dollars, a warning threshold, and whether
//! the limit is hard (calls go to the offline engine once it is reached) or only
//! reported.

use chrono::{DateTime, Utc};
use ruleiq_db::{DbErr, entities::ai_budget};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use super::{nanos, usd};

/// Serialises an exact decimal as a JSON number. The sums behind it are exact
/// integers; a decimal of up to 15 significant digits prints back exactly, because
/// JSON numbers are written in their shortest round-tripping form.
///
/// # Errors
/// The serializer's.
pub fn as_number<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.to_f64().unwrap_or(0.0))
}

fn as_optional_number<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => as_number(d, s),
        None => s.serialize_none(),
    }
}

/// The largest limit accepted, in dollars: beyond it is a typing mistake.
const MAX_LIMIT_USD: i64 = 1_000_000;

/// An organisation's budget. With no limits set, spending is only reported.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Budget {
    #[serde(serialize_with = "as_optional_number")]
    #[schema(value_type = Option<f64>)]
    pub daily_limit_usd: Option<Decimal>,
    #[serde(serialize_with = "as_optional_number")]
    #[schema(value_type = Option<f64>)]
    pub monthly_limit_usd: Option<Decimal>,
    pub warning_threshold_percent: u8,
    pub hard_limit: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            daily_limit_usd: None,
            monthly_limit_usd: None,
            warning_threshold_percent: 80,
            hard_limit: false,
        }
    }
}

impl From<ai_budget::Model> for Budget {
    fn from(m: ai_budget::Model) -> Self {
        Self {
            daily_limit_usd: m.daily_limit_nanos.map(usd),
            monthly_limit_usd: m.monthly_limit_nanos.map(usd),
            warning_threshold_percent: u8::try_from(m.warning_threshold_percent).unwrap_or(80),
            hard_limit: m.hard_limit,
        }
    }
}

impl Budget {
    /// Whether spending can ever send a call offline: a hard limit with a figure.
    #[must_use]
    pub fn can_block(&self) -> bool {
        self.hard_limit && (self.daily_limit_usd.is_some() || self.monthly_limit_usd.is_some())
    }

    pub(super) fn row(
        &self,
        organization_id: Uuid,
        by: Uuid,
        now: DateTime<Utc>,
    ) -> ai_budget::Model {
        ai_budget::Model {
            organization_id,
            daily_limit_nanos: self.daily_limit_usd.map(nanos),
            monthly_limit_nanos: self.monthly_limit_usd.map(nanos),
            warning_threshold_percent: i32::from(self.warning_threshold_percent),
            hard_limit: self.hard_limit,
            updated_by: Some(by),
            created_at: now,
            updated_at: now,
        }
    }
}

/// `PUT /ai/budget`. Limits are decimal dollars (`null` for none).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetInput {
    #[schema(value_type = Option<f64>)]
    pub daily_limit_usd: Option<Decimal>,
    #[schema(value_type = Option<f64>)]
    pub monthly_limit_usd: Option<Decimal>,
    #[serde(default = "default_threshold")]
    pub warning_threshold_percent: i64,
    #[serde(default)]
    pub hard_limit: bool,
}

fn default_threshold() -> i64 {
    80
}

/// Why a budget was refused.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl BudgetInput {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`BudgetError::Invalid`] naming the field.
    pub fn validate(self) -> Result<Budget, BudgetError> {
        let check =
            |field: &'static str, v: Option<Decimal>| -> Result<Option<Decimal>, BudgetError> {
                match v {
                    Some(v) if v.is_sign_negative() => Err(BudgetError::Invalid {
                        field,
                        message: "a limit cannot be negative".into(),
                    }),
                    Some(v) if v > Decimal::from(MAX_LIMIT_USD) => Err(BudgetError::Invalid {
                        field,
                        message: format!("a limit above ${MAX_LIMIT_USD} is not accepted"),
                    }),
                    Some(v) if v.scale() > 9 => Err(BudgetError::Invalid {
                        field,
                        message: "at most nine decimal places".into(),
                    }),
                    other => Ok(other),
                }
            };
        let daily = check("daily_limit_usd", self.daily_limit_usd)?;
        let monthly = check("monthly_limit_usd", self.monthly_limit_usd)?;
        let threshold = u8::try_from(self.warning_threshold_percent)
            .ok()
            .filter(|t| (1..=100).contains(t))
            .ok_or_else(|| BudgetError::Invalid {
                field: "warning_threshold_percent",
                message: "a percentage from 1 to 100".into(),
            })?;
        Ok(Budget {
            daily_limit_usd: daily,
            monthly_limit_usd: monthly,
            warning_threshold_percent: threshold,
            hard_limit: self.hard_limit,
        })
    }
}

/// Where spending stands against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Ok,
    Warning,
    Exceeded,
}

/// The budget with what has been spent.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetState {
    pub budget: Budget,
    pub spent_today_nanos: i64,
    pub spent_month_nanos: i64,
}

fn standing(spent: i64, limit: Option<Decimal>, threshold: u8) -> Standing {
    let Some(limit) = limit.map(nanos) else {
        return Standing::Ok;
    };
    if spent >= limit {
        Standing::Exceeded
    } else if i128::from(spent) * 100 >= i128::from(limit) * i128::from(threshold) {
        Standing::Warning
    } else {
        Standing::Ok
    }
}

impl BudgetState {
    /// Today's standing.
    #[must_use]
    pub fn daily(&self) -> Standing {
        standing(
            self.spent_today_nanos,
            self.budget.daily_limit_usd,
            self.budget.warning_threshold_percent,
        )
    }

    /// This month's standing.
    #[must_use]
    pub fn monthly(&self) -> Standing {
        standing(
            self.spent_month_nanos,
            self.budget.monthly_limit_usd,
            self.budget.warning_threshold_percent,
        )
    }

    /// Why remote models may not be used now, in a sentence; `None` when they may.
    #[must_use]
    pub fn blocking_reason(&self) -> Option<String> {
        if !self.budget.hard_limit {
            return None;
        }
        if self.daily() == Standing::Exceeded {
            return Some(format!(
                "Your organisation has used its daily AI budget (${} of ${}).",
                usd(self.spent_today_nanos),
                self.budget.daily_limit_usd.unwrap_or_default()
            ));
        }
        if self.monthly() == Standing::Exceeded {
            return Some(format!(
                "Your organisation has used its monthly AI budget (${} of ${}).",
                usd(self.spent_month_nanos),
                self.budget.monthly_limit_usd.unwrap_or_default()
            ));
        }
        None
    }

    /// The daily part, as the summary shows it.
    #[must_use]
    pub fn daily_view(&self) -> DailyBudgetView {
        let spent = usd(self.spent_today_nanos);
        DailyBudgetView {
            daily_limit_usd: self.budget.daily_limit_usd,
            spent_usd: spent,
            remaining_usd: self
                .budget
                .daily_limit_usd
                .map(|l| (l - spent).max(Decimal::ZERO)),
            status: self.daily().max_with(self.monthly()),
            hard_limit: self.budget.hard_limit,
        }
    }
}

impl Standing {
    fn max_with(self, other: Self) -> Self {
        let rank = |s: Self| match s {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Exceeded => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// The `budget` object of the daily summary.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DailyBudgetView {
    #[serde(serialize_with = "as_optional_number")]
    #[schema(value_type = Option<f64>)]
    pub daily_limit_usd: Option<Decimal>,
    #[serde(serialize_with = "as_number")]
    #[schema(value_type = f64)]
    pub spent_usd: Decimal,
    #[serde(serialize_with = "as_optional_number")]
    #[schema(value_type = Option<f64>)]
    pub remaining_usd: Option<Decimal>,
    pub status: Standing,
    pub hard_limit: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(daily: &str, threshold: i64) -> BudgetInput {
        BudgetInput {
            daily_limit_usd: Some(daily.parse().expect("decimal")),
            monthly_limit_usd: None,
            warning_threshold_percent: threshold,
            hard_limit: true,
        }
    }

    #[test]
    fn negative_or_absurd_budgets_are_refused() {
        assert!(matches!(
            input("-1", 80).validate(),
            Err(BudgetError::Invalid {
                field: "daily_limit_usd",
                ..
            })
        ));
        assert!(input("2000000", 80).validate().is_err());
        assert!(matches!(
            input("1", 0).validate(),
            Err(BudgetError::Invalid {
                field: "warning_threshold_percent",
                ..
            })
        ));
        assert!(input("1", 101).validate().is_err());
        assert!(input("0.50", 80).validate().is_ok());
    }

    #[test]
    fn only_a_hard_limit_with_a_figure_can_block() {
        assert!(!Budget::default().can_block());
        let mut b = input("1.00", 80).validate().expect("valid");
        assert!(b.can_block() == b.hard_limit);
        b.hard_limit = true;
        assert!(b.can_block());
        b.daily_limit_usd = None;
        b.monthly_limit_usd = None;
        assert!(!b.can_block());
    }

    #[test]
    fn standing_moves_from_ok_to_warning_to_exceeded() {
        let budget = input("1.00", 80).validate().expect("valid");
        let at = |spent: i64| BudgetState {
            budget: budget.clone(),
            spent_today_nanos: spent,
            spent_month_nanos: spent,
        };
        assert_eq!(at(799_999_999).daily(), Standing::Ok);
        assert_eq!(at(800_000_000).daily(), Standing::Warning);
        assert_eq!(at(1_000_000_000).daily(), Standing::Exceeded);
        assert!(at(999_999_999).blocking_reason().is_none());
        let reason = at(1_000_000_000).blocking_reason().expect("blocked");
        assert!(reason.contains("daily AI budget ($1 of $1.00)"), "{reason}");
        assert_eq!(
            at(250_000_000).daily_view().remaining_usd,
            Some("0.75".parse().expect("decimal"))
        );
    }
}
