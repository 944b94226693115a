//! Demo data: an organisation with a realistic profile, assessments, answers, plans
//! and a readiness history, for people trying ruleIQ and for benchmarks.
//!
//! Everything goes through the same services as the API, so the data obeys every
//! rule a user's would. Answers are drawn from a fixed pseudo-random sequence, so
//! two runs make the same organisation; later rounds of assessment answer better,
//! as a business improving would.

use chrono::Days;
use ruleiq_core::{BusinessProfile, Clock, OrganizationId, UserId};
use ruleiq_db::{
    DatabaseConnection, DbErr, entities::readiness_snapshot,
    repositories::readiness as readiness_repo,
};
use std::sync::Arc;
use uuid::Uuid;

use crate::{
    assessments::{AssessmentError, Assessments, scoring::Response},
    audit::{Audit, ClientInfo},
    evidence::Evidence,
    frameworks::Catalog,
    identity::{Identity, IdentityError, RegisterInput},
    plans::{PlanError, Plans, TaskChange, TaskStatus},
    profiles::{ProfileError, Profiles},
};

/// How much to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Two frameworks, one round of assessment: a quick look around.
    Small,
    /// Every built-in framework, rounds until at least 2,000 answers and 500 tasks:
    /// the dataset the performance targets are measured on.
    Large,
}

/// What was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoReport {
    pub organization_id: Uuid,
    pub owner_id: Uuid,
    pub email: String,
    pub assessments: usize,
    pub answers: usize,
    pub plans: usize,
    pub tasks: usize,
    pub snapshots: usize,
    pub evidence: usize,
}

/// Why the demo could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0} already has an account; pass another --email or remove that organisation")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Step(String),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl From<AssessmentError> for DemoError {
    fn from(e: AssessmentError) -> Self {
        Self::Step(format!("assessment: {e}"))
    }
}

impl From<PlanError> for DemoError {
    fn from(e: PlanError) -> Self {
        Self::Step(format!("plan: {e}"))
    }
}

impl From<ProfileError> for DemoError {
    fn from(e: ProfileError) -> Self {
        Self::Step(format!("profile: {e}"))
    }
}

/// A fixed pseudo-random sequence (splitmix64): the same demo every run.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A percentage, 0–99.
    fn percent(&mut self) -> u64 {
        self.next() % 100
    }
}

/// An answer for round `round` of `rounds`: later rounds say `yes` more often.
fn answer(seq: &mut Sequence, round: usize, rounds: usize) -> Response {
    let better = u64::try_from(20 * (round + 1) / rounds.max(1)).unwrap_or(20);
    let p = seq.percent();
    let yes = 35 + better;
    match p {
        _ if p < yes => Response::Yes,
        _ if p < yes + 22 => Response::Partial,
        _ if p < yes + 22 + 25 => Response::No,
        _ if p < yes + 22 + 25 + 8 => Response::NotApplicable,
        _ => Response::Unknown,
    }
}

const NOTES: [&str; 5] = [
    "Checked with the IT provider on the last call.",
    "Covered by the office manager; written procedure to follow.",
    "In place for laptops, not yet for phones.",
    "Agreed at the last board meeting.",
    "Supplier confirms this in their contract.",
];

fn profile() -> BusinessProfile {
    serde_json::from_value(serde_json::json!({
        "company_name": "Harbour Lane Logistics Ltd",
        "industry": "technology",
        "employee_count": 85,
        "annual_turnover_gbp": 9_500_000,
        "country": "GB",
        "data_sensitivity": "high",
        "handles_personal_data": true,
        "processes_special_category_data": false,
        "processes_payment_cards": true,
        "stores_health_data": false,
        "provides_financial_services": false,
        "operates_critical_infrastructure": false,
        "serves_eu_customers": true,
        "transfers_data_internationally": true,
        "remote_workforce": true,
        "uses_cloud_services": true,
        "cloud_providers": ["Microsoft 365", "AWS"],
        "existing_certifications": [],
        "planned_frameworks": ["cyber-essentials", "iso27001-2022"]
    }))
    .unwrap_or_else(|e| unreachable!("the demo profile is valid: {e}"))
}

/// Makes demo organisations.
pub struct Demo {
    db: DatabaseConnection,
    identity: Identity,
    catalog: Catalog,
    profiles: Profiles,
    assessments: Assessments,
    plans: Plans,
    audit: Audit,
    evidence: Option<Evidence>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo").finish_non_exhaustive()
    }
}

impl Demo {
    #[must_use]
    pub fn new(
        db: DatabaseConnection,
        identity: Identity,
        audit: Audit,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            catalog: Catalog::new(db.clone()),
            profiles: Profiles::new(db.clone(), audit.clone(), clock.clone()),
            assessments: Assessments::new(db.clone(), clock.clone()),
            plans: Plans::new(db.clone(), audit.clone(), clock.clone()),
            audit,
            evidence: None,
            db,
            identity,
            clock,
        }
    }

    /// Also makes an evidence library (12 items small, 50,000 large) with a second
    /// member, the reviewer, who decided the approved ones.
    #[must_use]
    pub fn with_evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = Some(evidence);
        self
    }

    /// Creates the demo organisation and its owner (`email`, `password`), reporting
    /// each step to `progress`.
    ///
    /// # Errors
    /// [`DemoError::Exists`] when the address has an account already.
    pub async fn create(
        &self,
        size: Size,
        email: &str,
        password: &str,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<DemoReport, DemoError> {
        let (user, org) = self
            .identity
            .create_admin(RegisterInput {
                email: email.to_owned(),
                password: password.to_owned(),
                full_name: "Dana Demo".into(),
                organization_name: "Harbour Lane Logistics Ltd (demo)".into(),
            })
            .await
            .map_err(|e| match e {
                IdentityError::EmailTaken => DemoError::Exists(email.to_owned()),
                IdentityError::Invalid { field, message } => {
                    DemoError::Invalid(format!("{field}: {message}"))
                }
                other => DemoError::Step(format!("account: {other}")),
            })?;
        let org_id = OrganizationId::from(org.id);
        let by = UserId::from(user.id);
        let client = ClientInfo {
            ip: None,
            user_agent: Some("ruleiq demo".into()),
        };
        self.profiles
            .save(org_id, by, profile(), &self.catalog, &client)
            .await?;
        progress(&format!("created {email} as owner of \"{}\"", org.name));

        let names: std::collections::HashMap<String, String> = self
            .catalog
            .list(None)
            .await?
            .into_iter()
            .filter(|f| f.source == "library")
            .map(|f| (f.slug, f.name))
            .collect();
        let mut library: Vec<String> = names.keys().cloned().collect();
        library.sort();
        let slugs: Vec<String> = match size {
            Size::Small => ["cyber-essentials", "uk-gdpr"]
                .iter()
                .map(|s| (*s).to_owned())
                .filter(|s| library.contains(s))
                .collect(),
            Size::Large => library,
        };
        let (min_answers, min_tasks, max_rounds) = match size {
            Size::Small => (0, 0, 1),
            Size::Large => (2_000, 500, 12),
        };

        let mut seq = Sequence(0x5eed_1a2b_3c4d_5e6f);
        let mut report = DemoReport {
            organization_id: org.id,
            owner_id: user.id,
            email: email.to_owned(),
            assessments: 0,
            answers: 0,
            plans: 0,
            tasks: 0,
            snapshots: 0,
            evidence: 0,
        };
        let today = self.clock.now().date_naive();
        let mut round = 0;
        let mut completed: Vec<(usize, Uuid)> = Vec::new();
        // Rounds of assessment, a quarter apart, until there is enough data.
        while round == 0 || (round < max_rounds && report.answers < min_answers) {
            for slug in &slugs {
                let name = format!(
                    "{} review, round {}",
                    names.get(slug).map_or(slug.as_str(), String::as_str),
                    round + 1
                );
                let a = self
                    .assessments
                    .create(org_id, by, slug, Some(&name))
                    .await?;
                for q in self.assessments.questions(org_id, a.id).await? {
                    let response = answer(&mut seq, round, max_rounds.min(4));
                    let notes = (seq.percent() < 15)
                        .then(|| NOTES[usize::try_from(seq.next() % 5).unwrap_or(0)].to_owned());
                    self.assessments
                        .answer(org_id, by, a.id, q.id, response, notes, Vec::new())
                        .await?;
                    report.answers += 1;
                }
                self.assessments.complete(org_id, a.id).await?;
                report.assessments += 1;
                completed.push((round, a.id));
            }
            progress(&format!(
                "round {}: {} assessments, {} answers so far",
                round + 1,
                report.assessments,
                report.answers
            ));
            round += 1;
        }
        let rounds = round;

        // Plans, newest round first, until there are enough tasks; older plans are
        // mostly done, the newest partly started.
        completed.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
        for (r, assessment) in &completed {
            if report.plans >= slugs.len() && report.tasks >= min_tasks {
                break;
            }
            let age = u64::try_from(rounds - 1 - r).unwrap_or(0);
            let start = today - Days::new(30 + 91 * age);
            let plan = self
                .plans
                .create(org_id, by, *assessment, Some(start), None, &client)
                .await?;
            let share_done = if age == 0 { 25 } else { 85 };
            for task in &plan.tasks {
                let p = seq.percent();
                let status = match p {
                    _ if p < share_done => TaskStatus::Done,
                    _ if p < share_done + 10 => TaskStatus::InProgress,
                    _ if p < share_done + 13 => TaskStatus::Blocked,
                    _ => TaskStatus::Todo,
                };
                let assign = seq.percent() < 60;
                if status == TaskStatus::Todo && !assign {
                    continue;
                }
                self.plans
                    .update_task(
                        org_id,
                        by,
                        plan.id,
                        task.id,
                        TaskChange {
                            status: Some(status),
                            assignee_id: assign.then_some(Some(user.id)),
                            ..TaskChange::default()
                        },
                        &client,
                    )
                    .await?;
            }
            report.plans += 1;
            report.tasks += plan.tasks.len();
        }
        progress(&format!(
            "{} plans with {} tasks",
            report.plans, report.tasks
        ));

        // Ninety days of readiness history rising to today's figures.
        let mut rows = Vec::new();
        let now = self.clock.now();
        for r in self.assessments.status(org_id).await? {
            for back in 1..90u32 {
                let factor = 1.0 - f64::from(back) / 180.0;
                let score = (r.readiness_score * factor * 10.0).round() / 10.0;
                rows.push(readiness_snapshot::Model {
                    id: Uuid::now_v7(),
                    organization_id: org.id,
                    framework_id: r.framework_id,
                    day: today - Days::new(u64::from(back)),
                    assessment_score: (r.assessment_score * factor * 10.0).round() / 10.0,
                    evidence_coverage: 0.0,
                    policy_coverage: 0.0,
                    readiness_score: score,
                    created_at: now,
                });
            }
        }
        report.snapshots = rows.len();
        readiness_repo::upsert(&self.db, rows).await?;
        progress(&format!("{} days of readiness history", 89));

        if let Some(evidence) = &self.evidence {
            let reviewer = self.reviewer(org_id, by, email, password, &client).await?;
            let frameworks: Vec<Uuid> = self
                .assessments
                .status(org_id)
                .await?
                .into_iter()
                .map(|r| r.framework_id)
                .collect();
            let count = match size {
                Size::Small => 12,
                Size::Large => 50_000,
            };
            report.evidence = crate::evidence::demo::seed(
                &self.db,
                evidence.store(),
                evidence.search(),
                &self.audit,
                self.clock.as_ref(),
                org.id,
                (user.id, reviewer),
                &frameworks,
                count,
            )
            .await?;
            progress(&format!(
                "{} evidence items, reviewed by {}",
                report.evidence,
                reviewer_email(email)
            ));
        }
        Ok(report)
    }

    /// A compliance manager who decides on the owner's evidence (nobody approves
    /// their own), invited and accepted as any member would be.
    async fn reviewer(
        &self,
        org: OrganizationId,
        owner: UserId,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Uuid, DemoError> {
        let principal = crate::identity::Principal {
            user_id: owner,
            organization_id: org,
            role: ruleiq_core::Role::Owner,
            session_id: Uuid::nil(),
        };
        let permit = principal
            .require(ruleiq_core::Permission::UsersManage)
            .map_err(|e| DemoError::Step(e.to_string()))?;
        let step = |e: IdentityError| DemoError::Step(format!("reviewer: {e}"));
        let invited = self
            .identity
            .invite(
                &permit,
                &reviewer_email(email),
                "compliance_manager",
                client,
            )
            .await
            .map_err(step)?;
        let joined = self
            .identity
            .accept_invitation(
                crate::identity::AcceptInput {
                    token: invited.token,
                    full_name: "Rowan Reviewer".into(),
                    password: password.to_owned(),
                },
                client,
            )
            .await
            .map_err(step)?;
        Ok(joined.user.id)
    }
}

/// The reviewer's address: the owner's with `reviewer.` before it.
fn reviewer_email(owner: &str) -> String {
    format!("reviewer.{owner}")
}
