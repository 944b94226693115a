//! Policies, their versions and the controls they cover. Every query takes the
//! organisation, and every read of policies leaves soft-deleted ones out.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::frameworks::{placeholders, sql};
use crate::entities::{policy, policy_control, policy_version};

/// Records a new policy, its first version (none while it is being generated) and the
/// controls it covers, in the caller's transaction.
///
/// # Errors
/// On a database error.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: policy::Model,
    version: Option<policy_version::Model>,
    control_ids: &[Uuid],
) -> Result<(), DbErr> {
    let (org, id) = (row.organization_id, row.id);
    policy::Entity::insert(policy::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    if let Some(v) = version {
        insert_version(db, v).await?;
    }
    set_controls(db, org, id, control_ids).await
}

/// Adds a version row.
///
/// # Errors
/// On a database error (a duplicate version number among them).
pub async fn insert_version<C: ConnectionTrait>(
    db: &C,
    version: policy_version::Model,
) -> Result<(), DbErr> {
    policy_version::Entity::insert(policy_version::ActiveModel::from(version))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Replaces the controls a policy covers.
///
/// # Errors
/// On a database error.
pub async fn set_controls<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    policy_id: Uuid,
    control_ids: &[Uuid],
) -> Result<(), DbErr> {
    policy_control::Entity::delete_many()
        .filter(policy_control::Column::OrganizationId.eq(organization_id))
        .filter(policy_control::Column::PolicyId.eq(policy_id))
        .exec(db)
        .await?;
    for chunk in control_ids.chunks(200) {
        policy_control::Entity::insert_many(chunk.iter().map(|c| {
            policy_control::ActiveModel::from(policy_control::Model {
                policy_id,
                control_id: *c,
                organization_id,
            })
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// One live policy of the organisation.
///
/// # Errors
/// On a database error.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<policy::Model>, DbErr> {
    policy::Entity::find_by_id(id)
        .filter(policy::Column::OrganizationId.eq(organization_id))
        .filter(policy::Column::DeletedAt.is_null())
        .one(db)
        .await
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub policy_type: Option<String>,
    /// Keyset: only policies created before this (time, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u64,
}

/// A page of live policies, newest first.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    filter: &ListFilter,
) -> Result<Vec<policy::Model>, DbErr> {
    use policy::Column as P;
    let mut q = policy::Entity::find()
        .filter(P::OrganizationId.eq(organization_id))
        .filter(P::DeletedAt.is_null());
    if let Some(s) = &filter.status {
        q = q.filter(P::Status.eq(s.clone()));
    }
    if let Some(t) = &filter.policy_type {
        q = q.filter(P::PolicyType.eq(t.clone()));
    }
    if let Some((at, id)) = filter.before {
        q = q.filter(
            Condition::any()
                .add(P::CreatedAt.lt(at))
                .add(Condition::all().add(P::CreatedAt.eq(at)).add(P::Id.lt(id))),
        );
    }
    q.order_by_desc(P::CreatedAt)
        .order_by_desc(P::Id)
        .limit(filter.limit)
        .all(db)
        .await
}

/// Every version of a policy, newest first.
///
/// # Errors
/// On a database error.
pub async fn versions<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    policy_id: Uuid,
) -> Result<Vec<policy_version::Model>, DbErr> {
    policy_version::Entity::find()
        .filter(policy_version::Column::OrganizationId.eq(organization_id))
        .filter(policy_version::Column::PolicyId.eq(policy_id))
        .order_by_desc(policy_version::Column::Version)
        .all(db)
        .await
}

/// One version of a policy.
///
/// # Errors
/// On a database error.
pub async fn find_version<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    policy_id: Uuid,
    version: i32,
) -> Result<Option<policy_version::Model>, DbErr> {
    policy_version::Entity::find()
        .filter(policy_version::Column::OrganizationId.eq(organization_id))
        .filter(policy_version::Column::PolicyId.eq(policy_id))
        .filter(policy_version::Column::Version.eq(version))
        .one(db)
        .await
}

/// Writes `row` over `before` only if nobody has changed its status or version in
/// between: the compare-and-set every edit and transition goes through. False when
/// the policy moved on (or was deleted) meanwhile.
///
/// # Errors
/// On a database error.
pub async fn update_if_unchanged<C: ConnectionTrait>(
    db: &C,
    before: &policy::Model,
    row: policy::Model,
) -> Result<bool, DbErr> {
    use sea_orm::ActiveValue::Set;
    let res = policy::Entity::update_many()
        .set(policy::ActiveModel {
            title: Set(row.title),
            status: Set(row.status),
            generation: Set(row.generation),
            generation_error: Set(row.generation_error),
            version: Set(row.version),
            content_markdown: Set(row.content_markdown),
            template_version: Set(row.template_version),
            generated_provider: Set(row.generated_provider),
            generated_model: Set(row.generated_model),
            prompt_version: Set(row.prompt_version),
            submitted_by: Set(row.submitted_by),
            submitted_at: Set(row.submitted_at),
            approved_by: Set(row.approved_by),
            approved_at: Set(row.approved_at),
            next_review_at: Set(row.next_review_at),
            updated_at: Set(row.updated_at),
            deleted_at: Set(row.deleted_at),
            ..Default::default()
        })
        .filter(policy::Column::Id.eq(before.id))
        .filter(policy::Column::OrganizationId.eq(before.organization_id))
        .filter(policy::Column::Status.eq(before.status.clone()))
        .filter(policy::Column::Version.eq(before.version))
        .filter(policy::Column::Generation.eq(before.generation.clone()))
        .filter(policy::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// A control a policy covers, as shown beside it.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct CoveredControl {
    pub policy_id: Uuid,
    pub control_id: Uuid,
    pub framework_slug: String,
    pub reference: String,
    pub title: String,
}

/// The controls these policies cover, in framework and reference order: one query.
///
/// # Errors
/// On a database error.
pub async fn controls_of<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    policy_ids: &[Uuid],
) -> Result<Vec<CoveredControl>, DbErr> {
    if policy_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut values: Vec<sea_orm::Value> = vec![organization_id.into()];
    values.extend(policy_ids.iter().map(|i| sea_orm::Value::from(*i)));
    CoveredControl::find_by_statement(sql(
        db.get_database_backend(),
        &format!(
            "SELECT l.policy_id, l.control_id, f.slug AS framework_slug, c.ref AS reference, \
             c.title FROM policy_controls l JOIN controls c ON c.id = l.control_id \
             JOIN frameworks f ON f.id = c.framework_id \
             WHERE l.organization_id = ? AND l.policy_id IN ({}) \
             ORDER BY f.slug, c.position",
            placeholders(policy_ids.len())
        ),
        values,
    ))
    .all(db)
    .await
}

/// Controls covered by approved live policies, per framework: one query.
///
/// # Errors
/// On a database error.
pub async fn coverage<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<(Uuid, i64)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        framework_id: Uuid,
        covered: i64,
    }
    Ok(Row::find_by_statement(sql(
        db.get_database_backend(),
        "SELECT c.framework_id, COUNT(DISTINCT l.control_id) AS covered \
         FROM policy_controls l \
         JOIN policies p ON p.id = l.policy_id \
         JOIN controls c ON c.id = l.control_id \
         WHERE l.organization_id = ? AND p.organization_id = ? AND p.status = 'approved' \
         AND p.deleted_at IS NULL GROUP BY c.framework_id",
        vec![organization_id.into(), organization_id.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| (r.framework_id, r.covered))
    .collect())
}

/// How many live policies the organisation has in each status.
///
/// # Errors
/// On a database error.
pub async fn counts<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<(String, i64)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        status: String,
        count: i64,
    }
    Ok(Row::find_by_statement(sql(
        db.get_database_backend(),
        "SELECT status, COUNT(*) AS count FROM policies \
         WHERE organization_id = ? AND deleted_at IS NULL GROUP BY status",
        vec![organization_id.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| (r.status, r.count))
    .collect())
}

/// Approved policies whose review date has passed, for the reminders.
///
/// # Errors
/// On a database error.
pub async fn due_for_review<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<policy::Model>, DbErr> {
    policy::Entity::find()
        .filter(policy::Column::OrganizationId.eq(organization_id))
        .filter(policy::Column::DeletedAt.is_null())
        .filter(policy::Column::Status.eq("approved"))
        .filter(policy::Column::NextReviewAt.lt(now))
        .order_by_asc(policy::Column::NextReviewAt)
        .all(db)
        .await
}

/// A library control named by its framework and reference.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct NamedControl {
    pub id: Uuid,
    pub framework_id: Uuid,
    pub framework_slug: String,
    pub reference: String,
}

/// The current controls of these library frameworks: what templates' references
/// resolve against. One query.
///
/// # Errors
/// On a database error.
pub async fn library_controls<C: ConnectionTrait>(
    db: &C,
    slugs: &[String],
) -> Result<Vec<NamedControl>, DbErr> {
    if slugs.is_empty() {
        return Ok(Vec::new());
    }
    NamedControl::find_by_statement(sql(
        db.get_database_backend(),
        &format!(
            "SELECT c.id, c.framework_id, f.slug AS framework_slug, c.ref AS reference \
             FROM controls c JOIN frameworks f ON f.id = c.framework_id \
             WHERE f.organization_id IS NULL AND c.retired_at IS NULL AND f.slug IN ({})",
            placeholders(slugs.len())
        ),
        slugs
            .iter()
            .map(|s| sea_orm::Value::from(s.clone()))
            .collect(),
    ))
    .all(db)
    .await
}
