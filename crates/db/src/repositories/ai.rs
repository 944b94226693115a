//! The ledger of model calls and the organisations' budgets. Sums are of integer
//! nano-dollars, so both engines add them exactly.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::frameworks::sql;
use crate::entities::{ai_budget, ai_usage};

/// Records one call.
///
/// # Errors
/// On a database error.
pub async fn insert_usage<C: ConnectionTrait>(db: &C, row: ai_usage::Model) -> Result<(), DbErr> {
    ai_usage::Entity::insert(ai_usage::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Totals of a group of calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromQueryResult)]
pub struct Totals {
    pub key: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub cache_hits: i64,
    pub errors: i64,
}

/// What usage is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Feature,
    Provider,
    /// Everything in one row.
    Nothing,
}

impl GroupBy {
    fn column(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Feature => "feature",
            Self::Provider => "provider",
            // A constant key keeps one statement shape for every grouping.
            Self::Nothing => "'all'",
        }
    }
}

/// The organisation's calls from `from` to `to` (UTC days, inclusive), grouped: one
/// query, ordered by key.
///
/// # Errors
/// On a database error.
pub async fn totals<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    from: &str,
    to: &str,
    group_by: GroupBy,
) -> Result<Vec<Totals>, DbErr> {
    let key = group_by.column();
    let group = if group_by == GroupBy::Nothing {
        String::new()
    } else {
        format!(" GROUP BY {key} ORDER BY {key}")
    };
    Totals::find_by_statement(sql(
        db.get_database_backend(),
        &format!(
            // PostgreSQL sums BIGINT as NUMERIC; the casts keep one integer type.
            "SELECT {key} AS key, COUNT(*) AS requests, \
             CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
             CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
             CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos, \
             CAST(COALESCE(SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0) AS BIGINT) AS cache_hits, \
             CAST(COALESCE(SUM(CASE WHEN error IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) AS errors \
             FROM ai_usage WHERE organization_id = ? AND day >= ? AND day <= ?{group}"
        ),
        vec![organization_id.into(), from.into(), to.into()],
    ))
    .all(db)
    .await
}

/// What an organisation spent from a day up to today, with today's part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromQueryResult)]
pub struct Spent {
    pub today_nanos: i64,
    pub period_nanos: i64,
}

/// The organisation's spending from `from` to `today` (UTC days, inclusive) and on
/// `today` alone: one query.
///
/// # Errors
/// On a database error.
pub async fn spent<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    from: &str,
    today: &str,
) -> Result<Spent, DbErr> {
    let row = Spent::find_by_statement(sql(
        db.get_database_backend(),
        "SELECT \
         CAST(COALESCE(SUM(CASE WHEN day = ? THEN cost_nanos ELSE 0 END), 0) AS BIGINT) AS today_nanos, \
         CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS period_nanos \
         FROM ai_usage WHERE organization_id = ? AND day >= ? AND day <= ?",
        vec![
            today.into(),
            organization_id.into(),
            from.into(),
            today.into(),
        ],
    ))
    .one(db)
    .await?;
    Ok(row.unwrap_or_default())
}

/// The organisation's budget, if it has set one.
///
/// # Errors
/// On a database error.
pub async fn budget<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Option<ai_budget::Model>, DbErr> {
    ai_budget::Entity::find_by_id(organization_id)
        .filter(ai_budget::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await
}

/// Sets the organisation's budget, creating it the first time.
///
/// # Errors
/// On a database error.
pub async fn put_budget<C: ConnectionTrait>(db: &C, row: ai_budget::Model) -> Result<(), DbErr> {
    use ai_budget::Column as B;
    ai_budget::Entity::insert(ai_budget::ActiveModel::from(row))
        .on_conflict(
            OnConflict::column(B::OrganizationId)
                .update_columns([
                    B::DailyLimitNanos,
                    B::MonthlyLimitNanos,
                    B::WarningThresholdPercent,
                    B::HardLimit,
                    B::UpdatedBy,
                    B::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
