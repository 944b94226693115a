//! The search index table: one row per searchable thing. The service reads a scope's
//! rows once per revision and matches and ranks them in memory, the same on both
//! engines.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::frameworks::sql;
use crate::entities::search_document;

/// Rows per multi-row INSERT.
const BATCH: usize = 200;

/// Replaces the control documents of the built-in frameworks `slugs` (not those of
/// catalogs an operator imported into the library).
///
/// # Errors
/// On a database error.
pub async fn replace_library_controls<C: ConnectionTrait>(
    db: &C,
    slugs: &[String],
    rows: Vec<search_document::Model>,
) -> Result<(), DbErr> {
    search_document::Entity::delete_many()
        .filter(search_document::Column::Kind.eq("control"))
        .filter(search_document::Column::OrganizationId.is_null())
        .filter(search_document::Column::FrameworkSlug.is_in(slugs.to_vec()))
        .exec(db)
        .await?;
    upsert(db, rows).await
}

/// Adds documents, or refreshes those already indexed for the same subject.
///
/// # Errors
/// On a database error.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    rows: Vec<search_document::Model>,
) -> Result<(), DbErr> {
    use search_document::Column as S;
    for chunk in rows.chunks(BATCH) {
        search_document::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(search_document::ActiveModel::from),
        )
        .on_conflict(
            OnConflict::columns([S::Kind, S::SubjectId])
                // A document never changes organisation: the subject is the same thing.
                .update_columns([S::FrameworkSlug, S::Title, S::Body, S::Seq, S::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Removes the documents of these subjects.
///
/// # Errors
/// On a database error.
pub async fn remove<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
    kind: &str,
    subjects: &[Uuid],
) -> Result<(), DbErr> {
    for chunk in subjects.chunks(BATCH) {
        let scope = match organization_id {
            Some(org) => search_document::Column::OrganizationId.eq(org),
            None => search_document::Column::OrganizationId.is_null(),
        };
        search_document::Entity::delete_many()
            .filter(search_document::Column::Kind.eq(kind))
            .filter(search_document::Column::SubjectId.is_in(chunk.to_vec()))
            .filter(scope)
            .exec(db)
            .await?;
    }
    Ok(())
}

/// A stored document.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Candidate {
    pub kind: String,
    pub subject_id: Uuid,
    pub framework_slug: Option<String>,
    pub title: String,
    pub body: String,
    pub seq: i64,
}

/// Every document of one scope: the library's (`None`) or an organisation's own.
///
/// # Errors
/// On a database error.
pub async fn all_in_scope<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
) -> Result<Vec<Candidate>, DbErr> {
    // Every row's `seq` is at least 0.
    changed_since(db, organization_id, -1).await
}

/// The documents of one scope written by an indexing round after `after_seq`.
///
/// # Errors
/// On a database error.
pub async fn changed_since<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
    after_seq: i64,
) -> Result<Vec<Candidate>, DbErr> {
    let (text, values): (&str, Vec<sea_orm::Value>) = match organization_id {
        Some(org) => (
            "SELECT kind, subject_id, framework_slug, title, body, seq FROM search_documents \
             WHERE organization_id = ? AND seq > ? ORDER BY title",
            vec![org.into(), after_seq.into()],
        ),
        None => (
            "SELECT kind, subject_id, framework_slug, title, body, seq FROM search_documents \
             WHERE organization_id IS NULL AND seq > ? ORDER BY title",
            vec![after_seq.into()],
        ),
    };
    Candidate::find_by_statement(sql(db.get_database_backend(), text, values))
        .all(db)
        .await
}

/// The highest `seq` of one scope's documents (0 with none).
///
/// # Errors
/// On a database error.
pub async fn highest_seq<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Highest {
        seq: Option<i64>,
    }
    let (text, values): (&str, Vec<sea_orm::Value>) = match organization_id {
        Some(org) => (
            "SELECT MAX(seq) AS seq FROM search_documents WHERE organization_id = ?",
            vec![org.into()],
        ),
        None => (
            "SELECT MAX(seq) AS seq FROM search_documents WHERE organization_id IS NULL",
            Vec::new(),
        ),
    };
    Ok(
        Highest::find_by_statement(sql(db.get_database_backend(), text, values))
            .one(db)
            .await?
            .and_then(|h| h.seq)
            .unwrap_or(0),
    )
}
