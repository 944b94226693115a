//! The search index table: one row per searchable thing, with a lower-cased copy of
//! its text to match against. Matching is `LIKE` on that copy, which both engines
//! answer the same way; ranking happens in the service.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::frameworks::{placeholders, sql};
use crate::entities::search_document;

/// Rows per multi-row INSERT.
const BATCH: usize = 200;

/// Replaces the library's control documents (those with no organisation).
///
/// # Errors
/// On a database error.
pub async fn replace_library_controls<C: ConnectionTrait>(
    db: &C,
    rows: Vec<search_document::Model>,
) -> Result<(), DbErr> {
    search_document::Entity::delete_many()
        .filter(search_document::Column::Kind.eq("control"))
        .filter(search_document::Column::OrganizationId.is_null())
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
                .update_columns([
                    S::OrganizationId,
                    S::FrameworkSlug,
                    S::Title,
                    S::Body,
                    S::SearchText,
                    S::UpdatedAt,
                ])
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
    kind: &str,
    subjects: &[Uuid],
) -> Result<(), DbErr> {
    for chunk in subjects.chunks(BATCH) {
        search_document::Entity::delete_many()
            .filter(search_document::Column::Kind.eq(kind))
            .filter(search_document::Column::SubjectId.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// A candidate match.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Candidate {
    pub kind: String,
    pub subject_id: Uuid,
    pub framework_slug: Option<String>,
    pub title: String,
    pub body: String,
}

/// Documents within reach of the organisation whose text contains every pattern
/// (already lower-cased and escaped for `LIKE … ESCAPE '\'`).
///
/// # Errors
/// On a database error.
pub async fn candidates<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
    kind: Option<&str>,
    patterns: &[String],
    cap: u64,
) -> Result<Vec<Candidate>, DbErr> {
    let mut text = String::from(
        "SELECT kind, subject_id, framework_slug, title, body FROM search_documents WHERE ",
    );
    let mut values: Vec<sea_orm::Value> = Vec::new();
    match organization_id {
        Some(org) => {
            text.push_str("(organization_id IS NULL OR organization_id = ?)");
            values.push(org.into());
        }
        None => text.push_str("organization_id IS NULL"),
    }
    if let Some(kind) = kind {
        text.push_str(" AND kind = ?");
        values.push(kind.into());
    }
    for p in patterns {
        text.push_str(" AND search_text LIKE ? ESCAPE '\\'");
        values.push(p.clone().into());
    }
    text.push_str(&format!(" LIMIT {cap}"));
    let _ = placeholders;
    Candidate::find_by_statement(sql(db.get_database_backend(), &text, values))
        .all(db)
        .await
}
