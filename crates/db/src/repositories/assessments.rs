//! Assessments and their answers. Every query takes the organisation.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, sea_query::OnConflict,
};
use uuid::Uuid;

use super::frameworks::sql;
use crate::entities::{answer, assessment};

/// Records a new assessment.
///
/// # Errors
/// On a database error.
pub async fn insert<C: ConnectionTrait>(db: &C, row: assessment::Model) -> Result<(), DbErr> {
    assessment::Entity::insert(assessment::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// One of the organisation's assessments.
///
/// # Errors
/// On a database error.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<assessment::Model>, DbErr> {
    assessment::Entity::find_by_id(id)
        .filter(assessment::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await
}

/// The organisation's assessments, newest first.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<assessment::Model>, DbErr> {
    assessment::Entity::find()
        .filter(assessment::Column::OrganizationId.eq(organization_id))
        .order_by_desc(assessment::Column::Id)
        .all(db)
        .await
}

/// The organisation's latest completed assessment of each framework, most recently
/// completed first. Older rounds stay in the database, unread.
///
/// # Errors
/// On a database error.
pub async fn list_completed<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<assessment::Model>, DbErr> {
    assessment::Entity::find()
        .from_raw_sql(sql(
            db.get_database_backend(),
            "SELECT a.* FROM assessments a WHERE a.organization_id = ? AND a.status = 'completed' \
             AND a.completed_at = (SELECT MAX(b.completed_at) FROM assessments b \
             WHERE b.organization_id = a.organization_id AND b.framework_id = a.framework_id \
             AND b.status = 'completed') ORDER BY a.completed_at DESC",
            vec![organization_id.into()],
        ))
        .all(db)
        .await
}

/// A question of a framework, with one control it serves there.
#[derive(Debug, Clone, FromQueryResult)]
pub struct FrameworkQuestion {
    pub question_id: Uuid,
    pub text: String,
    pub help: Option<String>,
    pub control_id: Uuid,
    pub control_ref: String,
    pub control_title: String,
    pub domain_ref: Option<String>,
    pub criticality: String,
    pub guidance: String,
    pub position: i32,
}

/// Every (question, control) pair of a framework's current controls, in published
/// order of the controls and, within one, its own questions before shared ones.
///
/// # Errors
/// On a database error.
pub async fn framework_questions<C: ConnectionTrait>(
    db: &C,
    framework_id: Uuid,
) -> Result<Vec<FrameworkQuestion>, DbErr> {
    FrameworkQuestion::find_by_statement(sql(
        db.get_database_backend(),
        "SELECT q.id AS question_id, q.text, q.help, c.id AS control_id, c.ref AS control_ref, \
         c.title AS control_title, c.domain_ref, c.criticality, c.guidance, c.position \
         FROM controls c JOIN question_controls qc ON qc.control_id = c.id \
         JOIN questions q ON q.id = qc.question_id \
         WHERE c.framework_id = ? AND c.retired_at IS NULL AND q.retired_at IS NULL \
         ORDER BY c.position, q.shared, q.position",
        vec![framework_id.into()],
    ))
    .all(db)
    .await
}

/// The answers of an assessment.
///
/// # Errors
/// On a database error.
pub async fn answers<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    assessment_id: Uuid,
) -> Result<Vec<answer::Model>, DbErr> {
    answer::Entity::find()
        .filter(answer::Column::OrganizationId.eq(organization_id))
        .filter(answer::Column::AssessmentId.eq(assessment_id))
        .all(db)
        .await
}

/// The organisation's most recent answer to each of `questions`, in any assessment.
///
/// # Errors
/// On a database error.
pub async fn latest_answers<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    questions: &[Uuid],
) -> Result<Vec<answer::Model>, DbErr> {
    let mut out: Vec<answer::Model> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for chunk in questions.chunks(200) {
        let rows = answer::Entity::find()
            .filter(answer::Column::OrganizationId.eq(organization_id))
            .filter(answer::Column::QuestionId.is_in(chunk.to_vec()))
            .order_by_desc(answer::Column::AnsweredAt)
            .all(db)
            .await?;
        // Newest first, so the first row of each question is its latest answer.
        for r in rows {
            if seen.insert(r.question_id) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// Saves answers, replacing an assessment's earlier answer to the same question.
///
/// # Errors
/// On a database error.
pub async fn upsert_answers<C: ConnectionTrait>(
    db: &C,
    rows: Vec<answer::Model>,
) -> Result<(), DbErr> {
    use answer::Column as A;
    for chunk in rows.chunks(200) {
        answer::Entity::insert_many(chunk.iter().cloned().map(answer::ActiveModel::from))
            .on_conflict(
                OnConflict::columns([A::AssessmentId, A::QuestionId])
                    .update_columns([
                        A::Response,
                        A::Notes,
                        A::EvidenceIds,
                        A::AnsweredBy,
                        A::PrefilledFrom,
                        A::AnsweredAt,
                        A::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Marks an assessment completed with its results, if it is still in progress.
/// Returns whether it was.
///
/// # Errors
/// On a database error.
pub async fn complete<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
    results: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let n = assessment::Entity::update_many()
        .set(assessment::ActiveModel {
            status: Set("completed".into()),
            completed_at: Set(Some(now)),
            results: Set(Some(results)),
            updated_at: Set(now),
            ..Default::default()
        })
        .filter(assessment::Column::Id.eq(id))
        .filter(assessment::Column::OrganizationId.eq(organization_id))
        .filter(assessment::Column::Status.eq("in_progress"))
        .exec(db)
        .await?
        .rows_affected;
    Ok(n == 1)
}

/// What saving an answer needs to know, in one round trip: the assessment's status
/// (`None` when it is not the organisation's) and whether the question is one of its
/// framework's current questions.
///
/// # Errors
/// On a database error.
pub async fn answer_target<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    assessment_id: Uuid,
    question_id: Uuid,
) -> Result<Option<(String, bool)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Target {
        status: String,
        asks: i64,
    }
    Ok(Target::find_by_statement(sql(
        db.get_database_backend(),
        "SELECT a.status, (SELECT COUNT(*) FROM question_controls qc \
         JOIN controls c ON c.id = qc.control_id JOIN questions q ON q.id = qc.question_id \
         WHERE qc.question_id = ? AND c.framework_id = a.framework_id \
         AND c.retired_at IS NULL AND q.retired_at IS NULL) AS asks \
         FROM assessments a WHERE a.id = ? AND a.organization_id = ?",
        vec![
            question_id.into(),
            assessment_id.into(),
            organization_id.into(),
        ],
    ))
    .one(db)
    .await?
    .map(|t| (t.status, t.asks > 0)))
}

/// Every (assessment, question) the organisation has answered.
///
/// # Errors
/// On a database error.
pub async fn answered<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    use sea_orm::QuerySelect;
    answer::Entity::find()
        .select_only()
        .column(answer::Column::AssessmentId)
        .column(answer::Column::QuestionId)
        .filter(answer::Column::OrganizationId.eq(organization_id))
        .into_tuple()
        .all(db)
        .await
}
