//! Evidence items, versions, control links and history. Every query takes the
//! organisation, and every read of items leaves soft-deleted ones out.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, Query},
};
use uuid::Uuid;

use super::frameworks::{placeholders, sql};
use crate::entities::{control, evidence_control, evidence_event, evidence_item, evidence_version};

/// Records a new item with its first version (none for a link), its links and its
/// first history entry, in the caller's transaction.
///
/// # Errors
/// On a database error.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    item: evidence_item::Model,
    version: Option<evidence_version::Model>,
    control_ids: &[Uuid],
    event: evidence_event::Model,
) -> Result<(), DbErr> {
    let (org, id, now) = (item.organization_id, item.id, item.created_at);
    evidence_item::Entity::insert(evidence_item::ActiveModel::from(item))
        .exec_without_returning(db)
        .await?;
    if let Some(v) = version {
        insert_version(db, v).await?;
    }
    link(db, org, id, control_ids, now).await?;
    insert_event(db, event).await
}

/// Adds a version row.
///
/// # Errors
/// On a database error (a duplicate version number among them).
pub async fn insert_version<C: ConnectionTrait>(
    db: &C,
    version: evidence_version::Model,
) -> Result<(), DbErr> {
    evidence_version::Entity::insert(evidence_version::ActiveModel::from(version))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Adds a history entry.
///
/// # Errors
/// On a database error.
pub async fn insert_event<C: ConnectionTrait>(
    db: &C,
    event: evidence_event::Model,
) -> Result<(), DbErr> {
    evidence_event::Entity::insert(evidence_event::ActiveModel::from(event))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

async fn link<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    evidence_id: Uuid,
    control_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for chunk in control_ids.chunks(200) {
        evidence_control::Entity::insert_many(chunk.iter().map(|c| {
            evidence_control::ActiveModel::from(evidence_control::Model {
                evidence_id,
                control_id: *c,
                organization_id,
                created_at: now,
            })
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Replaces the controls an item backs.
///
/// # Errors
/// On a database error.
pub async fn set_controls<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    evidence_id: Uuid,
    control_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    evidence_control::Entity::delete_many()
        .filter(evidence_control::Column::OrganizationId.eq(organization_id))
        .filter(evidence_control::Column::EvidenceId.eq(evidence_id))
        .exec(db)
        .await?;
    link(db, organization_id, evidence_id, control_ids, now).await
}

/// Which of `ids` are controls in the library or in the organisation's own imports.
///
/// # Errors
/// On a database error.
pub async fn existing_controls<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(FromQueryResult)]
    struct Row {
        id: Uuid,
    }
    let mut values: Vec<sea_orm::Value> = vec![organization_id.into()];
    values.extend(ids.iter().map(|i| sea_orm::Value::from(*i)));
    Ok(Row::find_by_statement(sql(
        db.get_database_backend(),
        &format!(
            "SELECT c.id FROM controls c JOIN frameworks f ON f.id = c.framework_id \
             WHERE (f.organization_id IS NULL OR f.organization_id = ?) AND c.id IN ({})",
            placeholders(ids.len())
        ),
        values,
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| r.id)
    .collect())
}

/// One live item of the organisation.
///
/// # Errors
/// On a database error.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<evidence_item::Model>, DbErr> {
    evidence_item::Entity::find_by_id(id)
        .filter(evidence_item::Column::OrganizationId.eq(organization_id))
        .filter(evidence_item::Column::DeletedAt.is_null())
        .one(db)
        .await
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub evidence_type: Option<String>,
    pub control_id: Option<Uuid>,
    pub framework_id: Option<Uuid>,
    /// Matched, case-insensitively, against title, description and file name.
    pub text: Option<String>,
    /// Items expiring before this time (and not already expired).
    pub expiring_before: Option<DateTime<Utc>>,
    /// Items submitted by someone other than this user (an approver's queue).
    pub awaiting_approval_by: Option<Uuid>,
    /// Keyset: items created before this `(created_at, id)`.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u64,
}

/// Live items, newest first, by keyset: an index range scan however many there are.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    filter: &ListFilter,
) -> Result<Vec<evidence_item::Model>, DbErr> {
    use evidence_item::Column as E;
    let mut q = evidence_item::Entity::find()
        .filter(E::OrganizationId.eq(organization_id))
        .filter(E::DeletedAt.is_null());
    if let Some(s) = &filter.status {
        q = q.filter(E::Status.eq(s.clone()));
    }
    if let Some(t) = &filter.evidence_type {
        q = q.filter(E::EvidenceType.eq(t.clone()));
    }
    if let Some(control_id) = filter.control_id {
        q = q.filter(
            E::Id.in_subquery(
                Query::select()
                    .column(evidence_control::Column::EvidenceId)
                    .from(evidence_control::Entity)
                    .and_where(evidence_control::Column::OrganizationId.eq(organization_id))
                    .and_where(evidence_control::Column::ControlId.eq(control_id))
                    .to_owned(),
            ),
        );
    }
    if let Some(framework_id) = filter.framework_id {
        q = q.filter(
            E::Id.in_subquery(
                Query::select()
                    .column((
                        evidence_control::Entity,
                        evidence_control::Column::EvidenceId,
                    ))
                    .from(evidence_control::Entity)
                    .inner_join(
                        control::Entity,
                        Expr::col((control::Entity, control::Column::Id)).equals((
                            evidence_control::Entity,
                            evidence_control::Column::ControlId,
                        )),
                    )
                    .and_where(ExprTrait::eq(
                        Expr::col((
                            evidence_control::Entity,
                            evidence_control::Column::OrganizationId,
                        )),
                        organization_id,
                    ))
                    .and_where(ExprTrait::eq(
                        Expr::col((control::Entity, control::Column::FrameworkId)),
                        framework_id,
                    ))
                    .to_owned(),
            ),
        );
    }
    if let Some(text) = &filter.text {
        let pattern = format!(
            "%{}%",
            text.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let like = |c: E| {
            Expr::expr(Func::lower(Expr::col(c)))
                .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
        };
        q = q.filter(
            Condition::any()
                .add(like(E::Title))
                .add(like(E::Description))
                .add(like(E::FileName)),
        );
    }
    if let Some(before) = filter.expiring_before {
        q = q
            .filter(E::ExpiresAt.lt(before))
            .filter(E::Status.ne("expired"));
    }
    if let Some(user) = filter.awaiting_approval_by {
        q = q.filter(E::Status.eq("submitted")).filter(
            Condition::any()
                .add(E::SubmittedBy.ne(user))
                .add(E::SubmittedBy.is_null()),
        );
    }
    if let Some((at, id)) = filter.before {
        q = q.filter(
            Condition::any()
                .add(E::CreatedAt.lt(at))
                .add(Condition::all().add(E::CreatedAt.eq(at)).add(E::Id.lt(id))),
        );
    }
    q.order_by_desc(E::CreatedAt)
        .order_by_desc(E::Id)
        .limit(filter.limit)
        .all(db)
        .await
}

/// A control an item backs, as shown beside it.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct LinkedControl {
    pub evidence_id: Uuid,
    pub control_id: Uuid,
    pub reference: String,
    pub title: String,
    pub framework_id: Uuid,
    pub framework_slug: String,
}

/// The controls each of `evidence_ids` backs, in one query.
///
/// # Errors
/// On a database error.
pub async fn linked_controls<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    evidence_ids: &[Uuid],
) -> Result<Vec<LinkedControl>, DbErr> {
    if evidence_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut values: Vec<sea_orm::Value> = vec![organization_id.into()];
    values.extend(evidence_ids.iter().map(|i| sea_orm::Value::from(*i)));
    LinkedControl::find_by_statement(sql(
        db.get_database_backend(),
        &format!(
            "SELECT l.evidence_id, c.id AS control_id, c.ref AS reference, c.title, f.id AS framework_id, \
             f.slug AS framework_slug \
             FROM evidence_controls l JOIN controls c ON c.id = l.control_id \
             JOIN frameworks f ON f.id = c.framework_id \
             WHERE l.organization_id = ? AND l.evidence_id IN ({}) \
             ORDER BY f.slug, c.ref",
            placeholders(evidence_ids.len())
        ),
        values,
    ))
    .all(db)
    .await
}

/// An item's versions, newest first.
///
/// # Errors
/// On a database error.
pub async fn versions<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    evidence_id: Uuid,
) -> Result<Vec<evidence_version::Model>, DbErr> {
    evidence_version::Entity::find()
        .filter(evidence_version::Column::OrganizationId.eq(organization_id))
        .filter(evidence_version::Column::EvidenceId.eq(evidence_id))
        .order_by_desc(evidence_version::Column::Version)
        .all(db)
        .await
}

/// One version of an item. Not scoped by organisation: callers reach it through an
/// item already found in the caller's organisation, or from a job that carries the
/// item's id and reads the organisation from the row.
///
/// # Errors
/// On a database error.
pub async fn find_version<C: ConnectionTrait>(
    db: &C,
    evidence_id: Uuid,
    version: i32,
) -> Result<Option<evidence_version::Model>, DbErr> {
    evidence_version::Entity::find()
        .filter(evidence_version::Column::EvidenceId.eq(evidence_id))
        .filter(evidence_version::Column::Version.eq(version))
        .one(db)
        .await
}

/// An item's history, oldest first.
///
/// # Errors
/// On a database error.
pub async fn events<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    evidence_id: Uuid,
) -> Result<Vec<evidence_event::Model>, DbErr> {
    evidence_event::Entity::find()
        .filter(evidence_event::Column::OrganizationId.eq(organization_id))
        .filter(evidence_event::Column::EvidenceId.eq(evidence_id))
        .order_by_asc(evidence_event::Column::CreatedAt)
        .order_by_asc(evidence_event::Column::Id)
        .all(db)
        .await
}

/// The fields of `row` that differ from `before`, and only those, so a background
/// write to another field (an extraction's outcome) is never overwritten.
fn changes(before: &evidence_item::Model, row: evidence_item::Model) -> evidence_item::ActiveModel {
    use sea_orm::ActiveValue::{NotSet, Set};
    fn changed<T: PartialEq + Into<sea_orm::Value>>(old: &T, new: T) -> sea_orm::ActiveValue<T> {
        if *old == new { NotSet } else { Set(new) }
    }
    evidence_item::ActiveModel {
        title: changed(&before.title, row.title),
        description: changed(&before.description, row.description),
        evidence_type: changed(&before.evidence_type, row.evidence_type),
        status: changed(&before.status, row.status),
        current_version: changed(&before.current_version, row.current_version),
        file_name: changed(&before.file_name, row.file_name),
        content_type: changed(&before.content_type, row.content_type),
        size_bytes: changed(&before.size_bytes, row.size_bytes),
        sha256: changed(&before.sha256, row.sha256),
        effective_date: changed(&before.effective_date, row.effective_date),
        expires_at: changed(&before.expires_at, row.expires_at),
        extraction: changed(&before.extraction, row.extraction),
        submitted_by: changed(&before.submitted_by, row.submitted_by),
        submitted_at: changed(&before.submitted_at, row.submitted_at),
        decided_by: changed(&before.decided_by, row.decided_by),
        decided_at: changed(&before.decided_at, row.decided_at),
        decision_comment: changed(&before.decision_comment, row.decision_comment),
        deleted_at: changed(&before.deleted_at, row.deleted_at),
        updated_at: Set(row.updated_at),
        ..Default::default()
    }
}

/// Saves what changed from `before` to `row` if the item is still in `before`'s
/// status (and current version): a compare-and-set, so two people deciding one item
/// at once, or two new versions at once, cannot both win. Returns whether it saved.
///
/// # Errors
/// On a database error.
pub async fn update_if_unchanged<C: ConnectionTrait>(
    db: &C,
    before: &evidence_item::Model,
    row: evidence_item::Model,
) -> Result<bool, DbErr> {
    let res = evidence_item::Entity::update_many()
        .set(changes(before, row))
        .filter(evidence_item::Column::Id.eq(before.id))
        .filter(evidence_item::Column::OrganizationId.eq(before.organization_id))
        .filter(evidence_item::Column::Status.eq(before.status.clone()))
        .filter(evidence_item::Column::CurrentVersion.eq(before.current_version))
        .filter(evidence_item::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Approved items whose `expires_at` has passed, in every organisation.
///
/// # Errors
/// On a database error.
pub async fn due_to_expire<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<evidence_item::Model>, DbErr> {
    evidence_item::Entity::find()
        .filter(evidence_item::Column::Status.eq("approved"))
        .filter(evidence_item::Column::ExpiresAt.lte(now))
        .filter(evidence_item::Column::DeletedAt.is_null())
        .order_by_asc(evidence_item::Column::ExpiresAt)
        .limit(limit)
        .all(db)
        .await
}

/// Records an extraction's outcome on the version and, when it is still the current
/// one, on the item.
///
/// # Errors
/// On a database error.
pub async fn set_extraction<C: ConnectionTrait>(
    db: &C,
    evidence_id: Uuid,
    version: i32,
    outcome: &str,
    error: Option<String>,
    text: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    evidence_version::Entity::update_many()
        .col_expr(evidence_version::Column::Extraction, Expr::value(outcome))
        .col_expr(
            evidence_version::Column::ExtractionError,
            Expr::value(error),
        )
        .col_expr(evidence_version::Column::ExtractedText, Expr::value(text))
        .filter(evidence_version::Column::EvidenceId.eq(evidence_id))
        .filter(evidence_version::Column::Version.eq(version))
        .exec(db)
        .await?;
    evidence_item::Entity::update_many()
        .col_expr(evidence_item::Column::Extraction, Expr::value(outcome))
        .col_expr(evidence_item::Column::UpdatedAt, Expr::value(now))
        .filter(evidence_item::Column::Id.eq(evidence_id))
        .filter(evidence_item::Column::CurrentVersion.eq(version))
        .exec(db)
        .await?;
    Ok(())
}

/// Live items by status and by type, in one query.
///
/// # Errors
/// On a database error.
pub async fn counts<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<(String, String, i64)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        status: String,
        evidence_type: String,
        count: i64,
    }
    Ok(Row::find_by_statement(sql(
        db.get_database_backend(),
        "SELECT status, evidence_type, COUNT(*) AS count FROM evidence_items \
         WHERE organization_id = ? AND deleted_at IS NULL GROUP BY status, evidence_type",
        vec![organization_id.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| (r.status, r.evidence_type, r.count))
    .collect())
}

/// Controls covered by approved, unexpired evidence, per framework: one query.
/// `framework_ids` empty means every framework the organisation has evidence in.
///
/// # Errors
/// On a database error.
pub async fn coverage<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, i64)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        framework_id: Uuid,
        covered: i64,
    }
    Ok(Row::find_by_statement(sql(
        db.get_database_backend(),
        "SELECT c.framework_id, COUNT(DISTINCT l.control_id) AS covered \
         FROM evidence_controls l \
         JOIN evidence_items e ON e.id = l.evidence_id \
         JOIN controls c ON c.id = l.control_id \
         WHERE l.organization_id = ? AND e.organization_id = ? AND e.status = 'approved' \
         AND e.deleted_at IS NULL AND (e.expires_at IS NULL OR e.expires_at > ?) \
         GROUP BY c.framework_id",
        vec![organization_id.into(), organization_id.into(), now.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| (r.framework_id, r.covered))
    .collect())
}

/// How many controls each of these frameworks has.
///
/// # Errors
/// On a database error.
pub async fn control_totals<C: ConnectionTrait>(
    db: &C,
    framework_ids: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, DbErr> {
    if framework_ids.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(FromQueryResult)]
    struct Row {
        framework_id: Uuid,
        total: i64,
    }
    Ok(Row::find_by_statement(sql(
        db.get_database_backend(),
        &format!(
            "SELECT framework_id, COUNT(*) AS total FROM controls WHERE framework_id IN ({}) \
             GROUP BY framework_id",
            placeholders(framework_ids.len())
        ),
        framework_ids
            .iter()
            .map(|i| sea_orm::Value::from(*i))
            .collect(),
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| (r.framework_id, r.total))
    .collect())
}

/// Whether any version anywhere refers to each of these hashes.
///
/// # Errors
/// On a database error.
pub async fn referenced<C: ConnectionTrait>(db: &C, shas: &[String]) -> Result<Vec<String>, DbErr> {
    if shas.is_empty() {
        return Ok(Vec::new());
    }
    let mut kept: Vec<String> = evidence_version::Entity::find()
        .select_only()
        .column(evidence_version::Column::Sha256)
        .distinct()
        .filter(evidence_version::Column::Sha256.is_in(shas.to_vec()))
        .into_tuple::<String>()
        .all(db)
        .await?;
    // Report files share the store; a report being made or still within its
    // retention keeps its file (an expired or deleted one does not).
    kept.extend(
        crate::entities::report::Entity::find()
            .select_only()
            .column(crate::entities::report::Column::Sha256)
            .distinct()
            .filter(crate::entities::report::Column::Sha256.is_in(shas.to_vec()))
            .filter(crate::entities::report::Column::Status.eq("ready"))
            .into_tuple::<Option<String>>()
            .all(db)
            .await?
            .into_iter()
            .flatten(),
    );
    Ok(kept)
}

/// Every stored version's hash and size, in pages by hash, for verification.
///
/// # Errors
/// On a database error.
pub async fn blobs_after<C: ConnectionTrait>(
    db: &C,
    after: &str,
    limit: u64,
) -> Result<Vec<(String, i64)>, DbErr> {
    evidence_version::Entity::find()
        .select_only()
        .column(evidence_version::Column::Sha256)
        .column_as(evidence_version::Column::SizeBytes.max(), "size")
        .filter(evidence_version::Column::Sha256.gt(after))
        .group_by(evidence_version::Column::Sha256)
        .order_by_asc(evidence_version::Column::Sha256)
        .limit(limit)
        .into_tuple::<(String, i64)>()
        .all(db)
        .await
}

/// The frameworks the organisation has assessments of.
///
/// # Errors
/// On a database error.
pub async fn assessed_frameworks<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<Uuid>, DbErr> {
    ids(
        db,
        "SELECT DISTINCT framework_id AS id FROM assessments WHERE organization_id = ?",
        organization_id,
    )
    .await
}

/// The frameworks of the controls the organisation's live evidence backs.
///
/// # Errors
/// On a database error.
pub async fn linked_frameworks<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<Uuid>, DbErr> {
    ids(
        db,
        "SELECT DISTINCT c.framework_id AS id FROM evidence_controls l \
         JOIN controls c ON c.id = l.control_id WHERE l.organization_id = ?",
        organization_id,
    )
    .await
}

async fn ids<C: ConnectionTrait>(db: &C, text: &str, org: Uuid) -> Result<Vec<Uuid>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        id: Uuid,
    }
    Ok(
        Row::find_by_statement(sql(db.get_database_backend(), text, vec![org.into()]))
            .all(db)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect(),
    )
}

/// Live, unexpired items expiring before `before`, soonest first.
///
/// # Errors
/// On a database error.
pub async fn expiring<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    now: DateTime<Utc>,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<evidence_item::Model>, DbErr> {
    evidence_item::Entity::find()
        .filter(evidence_item::Column::OrganizationId.eq(organization_id))
        .filter(evidence_item::Column::DeletedAt.is_null())
        .filter(evidence_item::Column::Status.ne("expired"))
        .filter(evidence_item::Column::ExpiresAt.gt(now))
        .filter(evidence_item::Column::ExpiresAt.lt(before))
        .order_by_asc(evidence_item::Column::ExpiresAt)
        .limit(limit)
        .all(db)
        .await
}

/// Live items expiring between `now` and `before` (not yet expired), and live items
/// awaiting a decision: the dashboard's two evidence figures in one query.
///
/// # Errors
/// On a database error.
pub async fn expiring_and_pending<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    now: DateTime<Utc>,
    before: DateTime<Utc>,
) -> Result<(u64, u64), DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        expiring: Option<i64>,
        pending: Option<i64>,
    }
    let row = Row::find_by_statement(sql(
        db.get_database_backend(),
        "SELECT \
         SUM(CASE WHEN status <> 'expired' AND expires_at > ? AND expires_at < ? THEN 1 ELSE 0 END) AS expiring, \
         SUM(CASE WHEN status = 'submitted' THEN 1 ELSE 0 END) AS pending \
         FROM evidence_items WHERE organization_id = ? AND deleted_at IS NULL",
        vec![now.into(), before.into(), organization_id.into()],
    ))
    .one(db)
    .await?;
    let n = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
    Ok(row.map_or((0, 0), |r| (n(r.expiring), n(r.pending))))
}

/// Writes many items at once (demo data), in batches, in the caller's transaction.
///
/// # Errors
/// On a database error.
pub async fn insert_bulk<C: ConnectionTrait>(
    db: &C,
    items: Vec<evidence_item::Model>,
    versions: Vec<evidence_version::Model>,
    links: Vec<evidence_control::Model>,
    events: Vec<evidence_event::Model>,
) -> Result<(), DbErr> {
    for chunk in items.chunks(200) {
        evidence_item::Entity::insert_many(
            chunk.iter().cloned().map(evidence_item::ActiveModel::from),
        )
        .exec_without_returning(db)
        .await?;
    }
    for chunk in versions.chunks(300) {
        evidence_version::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(evidence_version::ActiveModel::from),
        )
        .exec_without_returning(db)
        .await?;
    }
    for chunk in links.chunks(1_000) {
        evidence_control::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(evidence_control::ActiveModel::from),
        )
        .exec_without_returning(db)
        .await?;
    }
    for chunk in events.chunks(500) {
        evidence_event::Entity::insert_many(
            chunk.iter().cloned().map(evidence_event::ActiveModel::from),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// The ids of the controls of these frameworks.
///
/// # Errors
/// On a database error.
pub async fn controls_of<C: ConnectionTrait>(
    db: &C,
    framework_ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    control::Entity::find()
        .select_only()
        .column(control::Column::Id)
        .filter(control::Column::FrameworkId.is_in(framework_ids.to_vec()))
        .order_by_asc(control::Column::Id)
        .into_tuple::<Uuid>()
        .all(db)
        .await
}

/// Refreshes the planner's statistics for the evidence tables, after a bulk load (the
/// demo's fifty thousand items): without them both engines pick plans that read every
/// link an organisation has for a page of fifty items, until the next automatic
/// analysis (PostgreSQL) or forever (SQLite, which only analyses when asked).
///
/// # Errors
/// On a database error.
pub async fn analyze<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    for table in [
        "evidence_items",
        "evidence_versions",
        "evidence_controls",
        "evidence_events",
    ] {
        db.execute_unprepared(&format!("ANALYZE {table}")).await?;
    }
    Ok(())
}
