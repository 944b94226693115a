//! Assessments: answering a framework's questions, and scoring the answers.
//!
//! One assessment per framework run; its questions are the library's (own and shared)
//! for that framework's controls, in published order. An answer given to a shared
//! question anywhere in the organisation pre-fills the same question in a new
//! assessment, marked with the assessment it came from, and can be overridden.

pub mod scoring;

use chrono::{DateTime, Utc};
use ruleiq_core::{Clock, Criticality, OrganizationId, UserId};
use ruleiq_db::{
    DatabaseConnection, DbErr,
    entities::{answer, assessment, framework},
    repositories::{assessments as repo, frameworks as frameworks_repo},
    sea_orm::DbBackend,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};
use uuid::Uuid;

use scoring::{ControlAnswers, Response, Scored};

/// Why an assessment operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AssessmentError {
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// An assessment as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssessmentView {
    pub id: Uuid,
    pub framework_id: Uuid,
    pub framework_slug: String,
    pub framework_name: String,
    pub name: String,
    pub status: String,
    pub answered: usize,
    pub total: usize,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A question of an assessment, with its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionView {
    pub id: Uuid,
    pub domain: Option<String>,
    pub text: String,
    pub help: Option<String>,
    pub control_refs: Vec<String>,
    pub answer: Option<AnswerView>,
}

/// An answer as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerView {
    pub response: Response,
    pub notes: Option<String>,
    pub evidence_ids: Vec<Uuid>,
    pub answered_at: DateTime<Utc>,
    /// The assessment this answer was copied from, when it was pre-filled.
    pub prefilled_from: Option<Uuid>,
}

/// Stored results of a completed assessment (also computed live while in progress).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub score: f64,
    pub band: scoring::Band,
    pub by_domain: Vec<DomainResult>,
    pub gaps: Vec<GapResult>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// One domain's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainResult {
    pub domain: String,
    pub score: f64,
    pub answered: usize,
    pub total: usize,
}

/// One gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapResult {
    pub control_id: Uuid,
    #[serde(rename = "ref")]
    pub reference: String,
    pub title: String,
    pub severity: Criticality,
    pub response: Response,
    pub recommendation: String,
}

/// A framework's readiness.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// The completed assessment the figures come from.
    pub assessment_id: Uuid,
    pub framework_id: Uuid,
    pub framework_slug: String,
    pub framework_name: String,
    pub assessment_score: f64,
    pub evidence_coverage: f64,
    pub policy_coverage: f64,
    pub readiness_score: f64,
    pub band: scoring::Band,
    pub last_assessed_at: DateTime<Utc>,
}

/// The assessment service.
#[derive(Clone)]
pub struct Assessments {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Assessments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assessments").finish_non_exhaustive()
    }
}

const MAX_NOTES: usize = 5_000;

/// This process's answer writes on SQLite, one at a time (see [`Assessments::answer`]).
static SQLITE_ANSWER_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Assessments {
    #[must_use]
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// Starts an assessment of a framework in reach, pre-filling shared answers.
    ///
    /// # Errors
    /// `NotFound` for a framework out of reach; `Invalid` for a bad name.
    pub async fn create(
        &self,
        org: OrganizationId,
        by: UserId,
        framework: &str,
        name: Option<&str>,
    ) -> Result<AssessmentView, AssessmentError> {
        let org_id = org.as_uuid();
        let f = frameworks_repo::find_visible(&self.db, Some(org_id), framework)
            .await?
            .ok_or(AssessmentError::NotFound(
                "no such framework within your reach",
            ))?;
        let name = match name.map(str::trim) {
            Some(n) if n.chars().count() > 200 || n.is_empty() => {
                return Err(AssessmentError::Invalid {
                    field: "name",
                    message: "must be 1 to 200 characters",
                });
            }
            Some(n) => n.to_owned(),
            None => format!("{} assessment", f.name),
        };
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let questions = repo::framework_questions(&self.db, f.id).await?;
        let mut qids: Vec<Uuid> = questions.iter().map(|q| q.question_id).collect();
        qids.sort_unstable();
        qids.dedup();
        let earlier = repo::latest_answers(&self.db, org_id, &qids).await?;
        let txn = ruleiq_db::begin(&self.db).await?;
        repo::insert(
            &txn,
            assessment::Model {
                id,
                organization_id: org_id,
                framework_id: f.id,
                name,
                status: "in_progress".into(),
                created_by: Some(by.as_uuid()),
                completed_at: None,
                results: None,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
        repo::upsert_answers(
            &txn,
            earlier
                .into_iter()
                .map(|a| answer::Model {
                    id: Uuid::now_v7(),
                    assessment_id: id,
                    prefilled_from: Some(a.assessment_id),
                    created_at: now,
                    updated_at: now,
                    ..a
                })
                .collect(),
        )
        .await?;
        txn.commit().await?;
        self.get(org, id).await
    }

    /// The organisation's assessments, newest first. A fixed number of queries per
    /// framework in use, whatever the number of assessments and answers.
    ///
    /// # Errors
    /// On a database error.
    pub async fn list(&self, org: OrganizationId) -> Result<Vec<AssessmentView>, AssessmentError> {
        let assessments = repo::list(&self.db, org.as_uuid()).await?;
        let mut answered: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
        for (assessment, question) in repo::answered(&self.db, org.as_uuid()).await? {
            answered.entry(assessment).or_default().insert(question);
        }
        let mut frameworks: HashMap<Uuid, (framework::Model, HashSet<Uuid>)> = HashMap::new();
        let mut out = Vec::with_capacity(assessments.len());
        for a in assessments {
            let (f, questions) = match frameworks.entry(a.framework_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.framework_of(org, &a).await?)
                }
            };
            let done = answered.remove(&a.id).unwrap_or_default();
            out.push(view(a, &*f, &*questions, &done));
        }
        Ok(out)
    }

    /// One assessment.
    ///
    /// # Errors
    /// `NotFound` outside the organisation.
    pub async fn get(
        &self,
        org: OrganizationId,
        id: Uuid,
    ) -> Result<AssessmentView, AssessmentError> {
        let a = self.find(org, id).await?;
        let (f, questions) = self.framework_of(org, &a).await?;
        let done: HashSet<Uuid> = repo::answers(&self.db, org.as_uuid(), a.id)
            .await?
            .into_iter()
            .map(|x| x.question_id)
            .collect();
        Ok(view(a, &f, &questions, &done))
    }

    async fn find(
        &self,
        org: OrganizationId,
        id: Uuid,
    ) -> Result<assessment::Model, AssessmentError> {
        repo::find(&self.db, org.as_uuid(), id)
            .await?
            .ok_or(AssessmentError::NotFound(
                "no such assessment in your organisation",
            ))
    }

    /// The assessment's framework and the ids of its current questions.
    async fn framework_of(
        &self,
        org: OrganizationId,
        a: &assessment::Model,
    ) -> Result<(framework::Model, HashSet<Uuid>), AssessmentError> {
        let f = frameworks_repo::find_visible(
            &self.db,
            Some(org.as_uuid()),
            &a.framework_id.to_string(),
        )
        .await?
        .ok_or(AssessmentError::NotFound(
            "the assessment's framework is gone",
        ))?;
        let questions = repo::framework_questions(&self.db, f.id)
            .await?
            .into_iter()
            .map(|r| r.question_id)
            .collect();
        Ok((f, questions))
    }

    /// The assessment's questions in domain order, with their answers.
    ///
    /// # Errors
    /// `NotFound` outside the organisation.
    pub async fn questions(
        &self,
        org: OrganizationId,
        id: Uuid,
    ) -> Result<Vec<QuestionView>, AssessmentError> {
        let a = self.find(org, id).await?;
        let rows = repo::framework_questions(&self.db, a.framework_id).await?;
        let answers: HashMap<Uuid, answer::Model> = repo::answers(&self.db, org.as_uuid(), id)
            .await?
            .into_iter()
            .map(|a| (a.question_id, a))
            .collect();
        let mut out: Vec<QuestionView> = Vec::new();
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        for r in rows {
            if let Some(&i) = index.get(&r.question_id) {
                out[i].control_refs.push(r.control_ref);
                continue;
            }
            index.insert(r.question_id, out.len());
            out.push(QuestionView {
                id: r.question_id,
                domain: r.domain_ref,
                text: r.text,
                help: r.help,
                control_refs: vec![r.control_ref],
                answer: answers.get(&r.question_id).map(answer_view),
            });
        }
        Ok(out)
    }

    /// Saves one answer.
    ///
    /// # Errors
    /// `NotFound` for an assessment outside the organisation or a question not in it;
    /// `Conflict` once completed; `Invalid` for over-long notes or evidence links.
    #[allow(clippy::too_many_arguments)]
    pub async fn answer(
        &self,
        org: OrganizationId,
        by: UserId,
        id: Uuid,
        question_id: Uuid,
        response: Response,
        notes: Option<String>,
        evidence_ids: Vec<Uuid>,
    ) -> Result<AnswerView, AssessmentError> {
        let (status, asks) = repo::answer_target(&self.db, org.as_uuid(), id, question_id)
            .await?
            .ok_or(AssessmentError::NotFound(
                "no such assessment in your organisation",
            ))?;
        if status == "completed" {
            return Err(AssessmentError::Conflict(
                "this assessment is completed; start a new one to answer again",
            ));
        }
        if !asks {
            return Err(AssessmentError::NotFound(
                "no such question in this assessment",
            ));
        }
        let notes = notes.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        if notes
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTES)
        {
            return Err(AssessmentError::Invalid {
                field: "notes",
                message: "must be at most 5,000 characters",
            });
        }
        if !evidence_ids.is_empty() {
            // Evidence arrives with its own issue; until then nothing can be linked.
            return Err(AssessmentError::Invalid {
                field: "evidence_ids",
                message: "no evidence exists to link yet",
            });
        }
        let now = self.clock.now();
        let row = answer::Model {
            id: Uuid::now_v7(),
            organization_id: org.as_uuid(),
            assessment_id: id,
            question_id,
            response: response_str(response).to_owned(),
            notes,
            evidence_ids: serde_json::json!([]),
            answered_by: Some(by.as_uuid()),
            prefilled_from: None,
            answered_at: now,
            created_at: now,
            updated_at: now,
        };
        {
            // SQLite has one writer at a time, and a writer that finds the file locked
            // sleeps in SQLite's busy handler (1, 2, 5, 10 ms …) before trying again:
            // that sleep was the tail of saving answers under concurrency. This
            // process's answers queue here instead, where a waiter wakes the moment
            // the one before is written. (Outside any transaction, so it cannot wait
            // on a lock its own holder needs.)
            let _turn = if self.db.get_database_backend() == DbBackend::Sqlite {
                Some(SQLITE_ANSWER_WRITES.lock().await)
            } else {
                None
            };
            repo::upsert_answers(&self.db, vec![row.clone()]).await?;
        }
        Ok(answer_view(&row))
    }

    /// Completes the assessment: unanswered questions count as `unknown`.
    ///
    /// # Errors
    /// `Conflict` when already completed.
    pub async fn complete(
        &self,
        org: OrganizationId,
        id: Uuid,
    ) -> Result<Results, AssessmentError> {
        let a = self.find(org, id).await?;
        if a.status == "completed" {
            return Err(AssessmentError::Conflict(
                "this assessment is already completed",
            ));
        }
        let now = self.clock.now();
        let mut results = self.score(org, &a).await?;
        results.completed_at = Some(now);
        let value = serde_json::to_value(&results).map_err(|e| DbErr::Custom(e.to_string()))?;
        if !repo::complete(&self.db, org.as_uuid(), id, value, now).await? {
            return Err(AssessmentError::Conflict(
                "this assessment is already completed",
            ));
        }
        Ok(results)
    }

    /// The results: as completed, or as they stand while in progress.
    ///
    /// # Errors
    /// `NotFound` outside the organisation.
    pub async fn results(&self, org: OrganizationId, id: Uuid) -> Result<Results, AssessmentError> {
        let a = self.find(org, id).await?;
        if let Some(stored) = a.results.clone()
            && let Ok(r) = serde_json::from_value::<Results>(stored)
        {
            return Ok(r);
        }
        self.score(org, &a).await
    }

    /// Readiness per framework from each framework's latest completed assessment:
    /// 0.5 × assessment score + 0.3 × evidence coverage + 0.2 × policy coverage
    /// (API.md). Evidence counts when approved and unexpired, policies when approved.
    ///
    /// # Errors
    /// On a database error.
    pub async fn status(&self, org: OrganizationId) -> Result<Vec<Readiness>, AssessmentError> {
        Ok(self
            .latest_results(org)
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    /// Each assessed framework's readiness with the results it came from: five
    /// queries (assessments, frameworks, evidence coverage, control counts, policy
    /// coverage), however
    /// many assessments, answers and evidence items there are.
    ///
    /// # Errors
    /// On a database error.
    pub async fn latest_results(
        &self,
        org: OrganizationId,
    ) -> Result<Vec<(Readiness, Results)>, AssessmentError> {
        let mut latest: Vec<(assessment::Model, DateTime<Utc>, Results)> = Vec::new();
        for a in repo::list_completed(&self.db, org.as_uuid()).await? {
            let (Some(completed_at), Some(stored)) = (a.completed_at, a.results.clone()) else {
                continue;
            };
            if latest
                .iter()
                .any(|(l, _, _)| l.framework_id == a.framework_id)
            {
                continue; // newest first: an older assessment of the same framework
            }
            let Ok(results) = serde_json::from_value::<Results>(stored) else {
                continue;
            };
            latest.push((a, completed_at, results));
        }
        let ids: Vec<Uuid> = latest.iter().map(|(a, _, _)| a.framework_id).collect();
        let frameworks: HashMap<Uuid, framework::Model> = frameworks_repo::by_ids(&self.db, &ids)
            .await?
            .into_iter()
            .map(|f| (f.id, f))
            .collect();
        let (coverage, totals) =
            crate::evidence::coverage(&self.db, org.as_uuid(), &ids, self.clock.now()).await?;
        let policies = crate::policies::coverage(&self.db, org.as_uuid(), &totals).await?;
        let mut out = Vec::with_capacity(latest.len());
        for (a, completed_at, results) in latest {
            let Some(f) = frameworks.get(&a.framework_id).cloned() else {
                continue;
            };
            let evidence = coverage.get(&f.id).copied().unwrap_or(0.0);
            let policy = policies.get(&f.id).copied().unwrap_or(0.0);
            let readiness =
                ((0.5 * results.score + 0.3 * evidence + 0.2 * policy) * 10.0).round() / 10.0;
            out.push((
                Readiness {
                    assessment_id: a.id,
                    framework_id: f.id,
                    framework_slug: f.slug,
                    framework_name: f.name,
                    assessment_score: results.score,
                    evidence_coverage: evidence,
                    policy_coverage: policy,
                    readiness_score: readiness,
                    band: scoring::Band::of(readiness),
                    last_assessed_at: completed_at,
                },
                results,
            ));
        }
        Ok(out)
    }

    async fn score(
        &self,
        org: OrganizationId,
        a: &assessment::Model,
    ) -> Result<Results, AssessmentError> {
        let rows = repo::framework_questions(&self.db, a.framework_id).await?;
        let answers: HashMap<Uuid, Response> = repo::answers(&self.db, org.as_uuid(), a.id)
            .await?
            .into_iter()
            .map(|x| (x.question_id, parse_response(&x.response)))
            .collect();
        let mut controls: Vec<ControlAnswers> = Vec::new();
        for r in rows {
            let response = answers
                .get(&r.question_id)
                .copied()
                .unwrap_or(Response::Unknown);
            // Rows come in control order, so a control's questions are together.
            match controls.last_mut().filter(|c| c.control_id == r.control_id) {
                Some(c) => c.responses.push(response),
                None => controls.push(ControlAnswers {
                    control_id: r.control_id,
                    reference: r.control_ref,
                    title: r.control_title,
                    domain: r.domain_ref.unwrap_or_default(),
                    criticality: r.criticality.parse().unwrap_or(Criticality::Medium),
                    guidance: r.guidance,
                    responses: vec![response],
                }),
            }
        }
        Ok(results_of(scoring::score(&controls)))
    }
}

/// An assessment as shown, from its framework's questions and those answered.
fn view(
    a: assessment::Model,
    f: &framework::Model,
    questions: &HashSet<Uuid>,
    answered: &HashSet<Uuid>,
) -> AssessmentView {
    AssessmentView {
        id: a.id,
        framework_id: f.id,
        framework_slug: f.slug.clone(),
        framework_name: f.name.clone(),
        name: a.name,
        status: a.status,
        answered: answered.intersection(questions).count(),
        total: questions.len(),
        created_at: a.created_at,
        completed_at: a.completed_at,
    }
}

fn results_of(s: Scored) -> Results {
    Results {
        score: s.score,
        band: s.band,
        by_domain: s
            .by_domain
            .into_iter()
            .map(|d| DomainResult {
                domain: d.domain,
                score: d.score,
                answered: d.answered,
                total: d.total,
            })
            .collect(),
        gaps: s
            .gaps
            .into_iter()
            .map(|g| GapResult {
                control_id: g.control_id,
                reference: g.reference,
                title: g.title,
                severity: g.severity,
                response: g.response,
                recommendation: g.recommendation,
            })
            .collect(),
        completed_at: None,
    }
}

pub(crate) fn response_str(r: Response) -> &'static str {
    match r {
        Response::Yes => "yes",
        Response::Partial => "partial",
        Response::No => "no",
        Response::NotApplicable => "not_applicable",
        Response::Unknown => "unknown",
    }
}

pub(crate) fn parse_response(s: &str) -> Response {
    match s {
        "yes" => Response::Yes,
        "partial" => Response::Partial,
        "no" => Response::No,
        "not_applicable" => Response::NotApplicable,
        _ => Response::Unknown,
    }
}

fn answer_view(a: &answer::Model) -> AnswerView {
    AnswerView {
        response: parse_response(&a.response),
        notes: a.notes.clone(),
        evidence_ids: serde_json::from_value(a.evidence_ids.clone()).unwrap_or_default(),
        answered_at: a.answered_at,
        prefilled_from: a.prefilled_from,
    }
}
