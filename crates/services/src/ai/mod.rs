//! AI use as the organisation sees it: every call goes through here so that it is
//! budgeted, cached and written to the ledger (organisation, member, feature,
//! provider, model, tokens, exact cost, latency, cache hit, error).
//!
//! The models themselves are `ruleiq-ai`'s business. Over a hard budget limit this
//! service sends the call to the offline engine and says why, so a feature never
//! stops working for lack of money either.

pub mod budget;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ruleiq_ai::{
    Ai, ChatRequest, Finish, ProviderName, ProviderStatus, Route, Usage, pricing::PriceTable,
};
use ruleiq_core::Clock;
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::ai_usage,
    repositories::ai::{self as repo, GroupBy, Totals},
};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use uuid::Uuid;

use crate::cache::ExpiringCache;
pub use budget::{Budget, BudgetInput, BudgetState};

/// What a call was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Assistant,
    AssessmentHelp,
    PolicyGeneration,
}

impl Feature {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assistant => "assistant",
            Self::AssessmentHelp => "assessment_help",
            Self::PolicyGeneration => "policy_generation",
        }
    }
}

/// Who is asking, and for what.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub organization_id: Uuid,
    pub user_id: Option<Uuid>,
    pub feature: Feature,
}

/// A finished answer with what it cost.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub text: String,
    pub provider: ProviderName,
    pub model: String,
    pub usage: Usage,
    pub cost_nanos: i64,
    pub finish: Finish,
    pub notices: Vec<String>,
    pub cache_hit: bool,
}

/// Nano-dollars as an exact decimal.
#[must_use]
pub fn usd(nanos: i64) -> Decimal {
    Decimal::new(nanos, 9).normalize()
}

/// An exact decimal of dollars as nano-dollars (rounded to the nearest nano-dollar,
/// which no price table reaches below).
#[must_use]
pub fn nanos(usd: Decimal) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    (usd * Decimal::from(1_000_000_000_i64))
        .round()
        .to_i64()
        .unwrap_or(i64::MAX)
}

/// Answers kept for identical requests.
const CACHE_TTL: Duration = Duration::from_secs(3_600);
const CACHE_ENTRIES: usize = 2_000;

/// Answered calls and what they cost since the process started, per provider, for
/// `/metrics`. Kept in memory rather than summed from the ledger so that each
/// instance reports its own calls and the counters only ever grow, as Prometheus
/// counters must.
#[derive(Debug, Default)]
pub struct AiMeter {
    calls: [AtomicU64; ProviderName::ALL.len()],
    cache_hits: [AtomicU64; ProviderName::ALL.len()],
    cost_nanos: [AtomicU64; ProviderName::ALL.len()],
}

/// One provider's line of the [`AiMeter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProviderCalls {
    pub provider: ProviderName,
    /// Calls answered, cache hits included.
    pub calls: u64,
    /// Of which answered from the cache, at no cost.
    pub cache_hits: u64,
    pub cost_usd: f64,
}

impl AiMeter {
    fn count(&self, provider: ProviderName, cache_hit: bool, cost_nanos: i64) {
        let Some(i) = ProviderName::ALL.iter().position(|p| *p == provider) else {
            return;
        };
        self.calls[i].fetch_add(1, Ordering::Relaxed);
        if cache_hit {
            self.cache_hits[i].fetch_add(1, Ordering::Relaxed);
        }
        self.cost_nanos[i].fetch_add(u64::try_from(cost_nanos).unwrap_or(0), Ordering::Relaxed);
    }

    /// Every provider's calls and spend so far, in [`ProviderName::ALL`] order.
    #[must_use]
    pub fn totals(&self) -> Vec<ProviderCalls> {
        ProviderName::ALL
            .iter()
            .enumerate()
            .map(|(i, provider)| ProviderCalls {
                provider: *provider,
                calls: self.calls[i].load(Ordering::Relaxed),
                cache_hits: self.cache_hits[i].load(Ordering::Relaxed),
                cost_usd: self.cost_nanos[i].load(Ordering::Relaxed) as f64 / 1e9,
            })
            .collect()
    }
}

/// The AI service.
#[derive(Clone)]
pub struct AiService {
    db: DatabaseConnection,
    ai: Ai,
    prices: Arc<PriceTable>,
    clock: Arc<dyn Clock>,
    cache: Arc<ExpiringCache<[u8; 32], Outcome>>,
    meter: Arc<AiMeter>,
}

impl std::fmt::Debug for AiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiService").finish_non_exhaustive()
    }
}

impl AiService {
    #[must_use]
    pub fn new(db: DatabaseConnection, ai: Ai, prices: PriceTable, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            ai,
            prices: Arc::new(prices),
            clock,
            cache: Arc::new(ExpiringCache::new(CACHE_TTL, CACHE_ENTRIES)),
            meter: Arc::default(),
        }
    }

    /// Calls answered and their cost since start.
    #[must_use]
    pub fn meter(&self) -> &AiMeter {
        &self.meter
    }

    /// The service the settings describe: the configured providers in preference
    /// order (offline last, always), the price table with `AI_PRICES` applied.
    ///
    /// # Errors
    /// A message naming the setting when `AI_PRICES` cannot be read.
    pub fn from_settings(
        db: DatabaseConnection,
        settings: &ruleiq_config::AiSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let prices = match &settings.prices {
            Some(spec) => PriceTable::default()
                .with_overrides(spec)
                .map_err(|e| format!("AI_PRICES: {e}"))?,
            None => PriceTable::default(),
        };
        Ok(Self::new(
            db,
            Ai::new(engine_settings(settings)),
            prices,
            clock,
        ))
    }

    /// The providers and their circuit breakers' states.
    #[must_use]
    pub fn providers(&self) -> Vec<ProviderStatus> {
        self.ai.statuses()
    }

    /// The route a call of this organisation may take now, with the notice to show
    /// when the budget has sent it offline.
    ///
    /// # Errors
    /// On a database error.
    pub async fn route(&self, organization_id: Uuid) -> Result<(Route, Option<String>), DbErr> {
        let budget = self.budget(organization_id).await?;
        // Without a hard limit nothing can send the call offline, so the ledger is not
        // summed on every call (it grows with every answer).
        if !budget.can_block() {
            return Ok((Route::Auto, None));
        }
        let state = self
            .state_of(budget, organization_id, self.clock.now())
            .await?;
        Ok(match state.blocking_reason() {
            Some(reason) => (
                Route::OfflineOnly,
                Some(format!(
                    "{reason} This answer comes from the offline engine, which costs nothing."
                )),
            ),
            None => (Route::Auto, None),
        })
    }

    /// Runs one call: from the cache when the same request was answered within the
    /// hour, else through the providers; either way written to the ledger.
    ///
    /// # Errors
    /// On a database error writing the ledger.
    pub async fn complete(&self, caller: Caller, req: &ChatRequest) -> Result<Outcome, DbErr> {
        let (outcome, ledger) = self.run(caller, req).await?;
        repo::insert_usage(&self.db, ledger).await?;
        Ok(outcome)
    }

    /// Runs one call as [`Self::complete`] does, but leaves writing its ledger row to
    /// the caller, so that it can commit it with what the answer changes.
    ///
    /// # Errors
    /// On a database error reading the budget.
    pub async fn run(
        &self,
        caller: Caller,
        req: &ChatRequest,
    ) -> Result<(Outcome, ai_usage::Model), DbErr> {
        let (route, budget_notice) = self.route(caller.organization_id).await?;
        let key = cache_key(caller, route, req);
        let generation = self.cache.generation();
        if let Some(mut hit) = self.cache.get(&key) {
            hit.cache_hit = true;
            hit.cost_nanos = 0;
            hit.notices.clear();
            let ledger = self.ledger_row(caller, &hit, Duration::ZERO, None);
            return Ok((hit, ledger));
        }
        let started = std::time::Instant::now();
        let answer = self.ai.complete(req, route).await;
        let latency = started.elapsed();
        let c = answer.completion;
        let cost = nanos(self.prices.cost(answer.provider, &c.model, &c.usage));
        // A provider that failed before another answered is the call's error.
        let error = (!answer.notices.is_empty()).then(|| answer.notices.join("; "));
        let mut notices = answer.notices;
        notices.extend(budget_notice);
        let outcome = Outcome {
            text: c.text,
            provider: answer.provider,
            model: c.model,
            usage: c.usage,
            cost_nanos: cost,
            finish: c.finish,
            notices,
            cache_hit: false,
        };
        let ledger = self.ledger_row(caller, &outcome, latency, error);
        // Only whole answers are worth repeating; a fallback answer is not kept, so the
        // next identical question tries the preferred provider again.
        if matches!(outcome.finish, Finish::Stop) && outcome.notices.is_empty() {
            self.cache.put(key, generation, outcome.clone());
        }
        Ok((outcome, ledger))
    }

    /// The underlying providers, for streaming (the caller records the outcome with
    /// [`Self::record`] when the stream ends).
    #[must_use]
    pub fn engine(&self) -> &Ai {
        &self.ai
    }

    /// The cost of a finished call, in nano-dollars.
    #[must_use]
    pub fn cost(&self, provider: ProviderName, model: &str, usage: &Usage) -> i64 {
        nanos(self.prices.cost(provider, model, usage))
    }

    /// Writes one call to the ledger.
    ///
    /// # Errors
    /// On a database error.
    pub async fn record(
        &self,
        caller: Caller,
        outcome: &Outcome,
        latency: Duration,
        error: Option<String>,
    ) -> Result<(), DbErr> {
        repo::insert_usage(&self.db, self.ledger_row(caller, outcome, latency, error)).await
    }

    /// The ledger row of one finished call.
    #[must_use]
    pub fn ledger_row(
        &self,
        caller: Caller,
        outcome: &Outcome,
        latency: Duration,
        error: Option<String>,
    ) -> ai_usage::Model {
        // Every answered call, whichever path writes its row (a plain call, a cache
        // hit, a finished stream), has its row made here exactly once: so it is
        // counted here.
        self.meter
            .count(outcome.provider, outcome.cache_hit, outcome.cost_nanos);
        let now = self.clock.now();
        ai_usage::Model {
            id: Uuid::now_v7(),
            organization_id: caller.organization_id,
            user_id: caller.user_id,
            feature: caller.feature.as_str().to_owned(),
            provider: outcome.provider.as_str().to_owned(),
            model: outcome.model.clone(),
            input_tokens: i64::try_from(outcome.usage.input_tokens).unwrap_or(i64::MAX),
            output_tokens: i64::try_from(outcome.usage.output_tokens).unwrap_or(i64::MAX),
            cost_nanos: outcome.cost_nanos,
            latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
            cache_hit: outcome.cache_hit,
            error,
            day: day(now),
            created_at: now,
        }
    }

    /// One day's spending and usage with the budget's state.
    ///
    /// # Errors
    /// On a database error.
    pub async fn daily_summary(
        &self,
        organization_id: Uuid,
        date: NaiveDate,
    ) -> Result<DailySummary, DbErr> {
        let d = day_key(date);
        let all = repo::totals(&self.db, organization_id, &d, &d, GroupBy::Nothing)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let by_provider = repo::totals(&self.db, organization_id, &d, &d, GroupBy::Provider)
            .await?
            .into_iter()
            .map(UsageRow::from)
            .collect();
        let by_feature = repo::totals(&self.db, organization_id, &d, &d, GroupBy::Feature)
            .await?
            .into_iter()
            .map(UsageRow::from)
            .collect();
        let at = date
            .and_hms_opt(12, 0, 0)
            .map_or_else(|| self.clock.now(), |t| t.and_utc());
        let budget = self.budget_state(organization_id, at).await?;
        Ok(DailySummary {
            date,
            total_cost_usd: usd(all.cost_nanos),
            requests: all.requests,
            input_tokens: all.input_tokens,
            output_tokens: all.output_tokens,
            cache_hits: all.cache_hits,
            errors: all.errors,
            by_provider,
            by_feature,
            budget: budget.daily_view(),
        })
    }

    /// Usage between two days (inclusive), grouped.
    ///
    /// # Errors
    /// On a database error.
    pub async fn usage(
        &self,
        organization_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
        group_by: GroupBy,
    ) -> Result<Vec<UsageRow>, DbErr> {
        Ok(repo::totals(
            &self.db,
            organization_id,
            &day_key(from),
            &day_key(to),
            group_by,
        )
        .await?
        .into_iter()
        .map(UsageRow::from)
        .collect())
    }

    /// What the organisation has spent this month up to and including `today`: one
    /// query.
    ///
    /// # Errors
    /// On a database error.
    pub async fn month_to_date(
        &self,
        organization_id: Uuid,
        today: NaiveDate,
    ) -> Result<Decimal, DbErr> {
        let start = today.with_day(1).unwrap_or(today);
        let rows = repo::totals(
            &self.db,
            organization_id,
            &day_key(start),
            &day_key(today),
            GroupBy::Nothing,
        )
        .await?;
        Ok(usd(rows.first().map_or(0, |r| r.cost_nanos)))
    }

    /// The budget with today's and this month's spending: two queries.
    ///
    /// # Errors
    /// On a database error.
    pub async fn budget_state(
        &self,
        organization_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<BudgetState, DbErr> {
        let budget = self.budget(organization_id).await?;
        self.state_of(budget, organization_id, at).await
    }

    async fn budget(&self, organization_id: Uuid) -> Result<Budget, DbErr> {
        Ok(repo::budget(&self.db, organization_id)
            .await?
            .map(Budget::from)
            .unwrap_or_default())
    }

    async fn state_of(
        &self,
        budget: Budget,
        organization_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<BudgetState, DbErr> {
        let today = at.date_naive();
        let month_start = today.with_day(1).unwrap_or(today);
        let spent = repo::spent(
            &self.db,
            organization_id,
            &day_key(month_start),
            &day_key(today),
        )
        .await?;
        Ok(BudgetState {
            budget,
            spent_today_nanos: spent.today_nanos,
            spent_month_nanos: spent.period_nanos,
        })
    }

    /// Sets the organisation's budget.
    ///
    /// # Errors
    /// [`budget::BudgetError`] for values out of range; a database error.
    pub async fn put_budget(
        &self,
        organization_id: Uuid,
        by: Uuid,
        input: BudgetInput,
    ) -> Result<Budget, budget::BudgetError> {
        let budget = input.validate()?;
        let now = self.clock.now();
        repo::put_budget(&self.db, budget.row(organization_id, by, now)).await?;
        Ok(budget)
    }
}

/// The engine's settings from ours. A remote provider is listed only with its key
/// (Ollama with its URL); a listed provider's breaker opens after three failed calls
/// in a row and is tried again after thirty seconds.
#[must_use]
pub fn engine_settings(s: &ruleiq_config::AiSettings) -> ruleiq_ai::AiSettings {
    use ruleiq_ai::ProviderConfig;
    let mut providers = Vec::new();
    for name in &s.providers {
        let config = match name.as_str() {
            "openai" => s.openai_api_key.as_ref().map(|k| ProviderConfig {
                name: ProviderName::OpenAi,
                api_key: Some(k.clone()),
                base_url: s
                    .openai_base_url
                    .clone()
                    .unwrap_or_else(|| ProviderName::OpenAi.default_base_url()),
                model: s
                    .openai_model
                    .clone()
                    .unwrap_or_else(|| ruleiq_ai::DEFAULT_OPENAI_MODEL.to_owned()),
            }),
            "anthropic" => s.anthropic_api_key.as_ref().map(|k| ProviderConfig {
                name: ProviderName::Anthropic,
                api_key: Some(k.clone()),
                base_url: s
                    .anthropic_base_url
                    .clone()
                    .unwrap_or_else(|| ProviderName::Anthropic.default_base_url()),
                model: s
                    .anthropic_model
                    .clone()
                    .unwrap_or_else(|| ruleiq_ai::DEFAULT_ANTHROPIC_MODEL.to_owned()),
            }),
            "gemini" => s.google_api_key.as_ref().map(|k| ProviderConfig {
                name: ProviderName::Gemini,
                api_key: Some(k.clone()),
                base_url: s
                    .gemini_base_url
                    .clone()
                    .unwrap_or_else(|| ProviderName::Gemini.default_base_url()),
                model: s
                    .gemini_model
                    .clone()
                    .unwrap_or_else(|| ruleiq_ai::DEFAULT_GEMINI_MODEL.to_owned()),
            }),
            "ollama" => s.ollama_url.as_ref().map(|u| ProviderConfig {
                name: ProviderName::Ollama,
                api_key: None,
                base_url: u.clone(),
                model: s
                    .ollama_model
                    .clone()
                    .unwrap_or_else(|| ruleiq_ai::DEFAULT_OLLAMA_MODEL.to_owned()),
            }),
            _ => None,
        };
        providers.extend(config);
    }
    ruleiq_ai::AiSettings {
        providers,
        timeout: s.timeout,
        max_retries: s.max_retries,
        breaker_failures: 3,
        breaker_cool_down: Duration::from_secs(30),
    }
}

/// `YYYY-MM-DD` of a UTC time.
#[must_use]
pub fn day(at: DateTime<Utc>) -> String {
    day_key(at.date_naive())
}

/// A date as the ledger's `day` key.
fn day_key(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Identical requests of one organisation share an answer; nothing of one
/// organisation can be served to another, because the organisation is in the key.
fn cache_key(caller: Caller, route: Route, req: &ChatRequest) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut part = |s: &[u8]| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s);
    };
    part(caller.organization_id.as_bytes());
    part(caller.feature.as_str().as_bytes());
    part(if matches!(route, Route::OfflineOnly) {
        b"offline"
    } else {
        b"auto"
    });
    part(format!("{:?}", req.task).as_bytes());
    part(req.instructions.as_bytes());
    part(req.draft.as_deref().unwrap_or("").as_bytes());
    part(&req.max_output_tokens.to_le_bytes());
    for m in &req.messages {
        part(format!("{:?}", m.role).as_bytes());
        part(m.content.as_bytes());
    }
    for s in &req.sources {
        part(s.kind.as_bytes());
        part(s.id.as_bytes());
        part(s.text.as_bytes());
    }
    h.finalize().into()
}

/// Usage of one group.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageRow {
    /// The day, feature or provider.
    pub key: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    #[serde(serialize_with = "budget::as_number")]
    #[schema(value_type = f64)]
    pub cost_usd: Decimal,
    pub cache_hits: i64,
    pub errors: i64,
}

impl From<Totals> for UsageRow {
    fn from(t: Totals) -> Self {
        Self {
            key: t.key,
            requests: t.requests,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cost_usd: usd(t.cost_nanos),
            cache_hits: t.cache_hits,
            errors: t.errors,
        }
    }
}

/// `GET /ai/cost/daily-summary`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DailySummary {
    pub date: NaiveDate,
    #[serde(serialize_with = "budget::as_number")]
    #[schema(value_type = f64)]
    pub total_cost_usd: Decimal,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_hits: i64,
    pub errors: i64,
    pub by_provider: Vec<UsageRow>,
    pub by_feature: Vec<UsageRow>,
    pub budget: budget::DailyBudgetView,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_dollars_round_trip_exactly() {
        let d: Decimal = "0.000525".parse().expect("decimal");
        assert_eq!(nanos(d), 525_000);
        assert_eq!(usd(525_000).to_string(), "0.000525");
        // Ten thousand calls of $0.0001851 add to exactly $1.851.
        assert_eq!(usd(185_100 * 10_000).to_string(), "1.851");
    }
}
