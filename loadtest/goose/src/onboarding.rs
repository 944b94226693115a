//! The onboarding user: someone new signing up. Each iteration registers a fresh
//! organisation, describes the business, reads which frameworks apply, starts an
//! assessment of the first that does and answers its opening questions. Signing up
//! hashes a password on purpose, so this user is slow and weighted low.

use std::sync::atomic::{AtomicU64, Ordering};

use goose::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::api::{self, Id, Page, Token};

/// How many questions each new assessment gets answered.
const ANSWERS: usize = 5;

/// Tells apart the e-mail addresses of one run's sign-ups; the process id and a random
/// number tell apart those of runs against the same server.
static SIGN_UPS: AtomicU64 = AtomicU64::new(0);

/// What one sign-up has reached. Each step fills in what the next needs.
#[derive(Clone, Default)]
struct Newcomer {
    token: Option<Token>,
    framework: Option<String>,
    assessment: Option<String>,
    questions: Vec<String>,
}

/// # Errors
///
/// None in practice: only the weights, which are constants, are checked.
pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("OnboardingUser")
        .set_weight(1)?
        .set_wait_time(
            std::time::Duration::from_millis(500),
            std::time::Duration::from_millis(1500),
        )?
        .register_transaction(transaction!(register).set_name("register").set_sequence(1))
        .register_transaction(
            transaction!(profile)
                .set_name("business profile")
                .set_sequence(2),
        )
        .register_transaction(
            transaction!(recommendations)
                .set_name("applicable frameworks")
                .set_sequence(3),
        )
        .register_transaction(
            transaction!(assess)
                .set_name("start assessment")
                .set_sequence(4),
        )
        .register_transaction(
            transaction!(answer)
                .set_name("answer questions")
                .set_sequence(5),
        ))
}

async fn register(user: &mut GooseUser) -> TransactionResult {
    #[derive(Deserialize)]
    struct Registered {
        access_token: String,
    }
    // A failed sign-up must not leave the last one's organisation to be reused.
    user.set_session_data(Newcomer::default());
    let n = SIGN_UPS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{}-{n}-{:08x}", std::process::id(), rand::random::<u32>());
    let body = json!({
        "email": format!("onboarding-{tag}@example.co.uk"),
        "password": api::NEW_ACCOUNT_PASSWORD,
        "full_name": "Morgan Example",
        "organization_name": format!("Load Test Ltd {tag}"),
    });
    let registered: Registered = api::send_json(
        user,
        None,
        GooseMethod::Post,
        "/auth/register",
        "/auth/register",
        body,
    )
    .await?;
    user.set_session_data(Newcomer {
        token: Some(api::token(registered.access_token)),
        ..Newcomer::default()
    });
    Ok(())
}

async fn signed_up(user: &GooseUser) -> Result<(Newcomer, Token), Box<TransactionError>> {
    let newcomer: Newcomer = api::state(user).await?;
    let token = newcomer.token.clone().ok_or("registration failed")?;
    Ok((newcomer, token))
}

async fn profile(user: &mut GooseUser) -> TransactionResult {
    let (_, token) = signed_up(user).await?;
    // A small UK technology company, as most of the original system's customers were.
    let body = json!({
        "company_name": "Load Test Ltd",
        "industry": "technology",
        "employee_count": 42,
        "annual_turnover_gbp": 3_500_000,
        "country": "GB",
        "data_sensitivity": "medium",
        "handles_personal_data": true,
        "processes_payment_cards": true,
        "serves_eu_customers": true,
        "remote_workforce": true,
        "uses_cloud_services": true,
        "cloud_providers": ["aws"],
        "planned_frameworks": ["cyber-essentials"],
    });
    api::send(
        user,
        Some(&token),
        GooseMethod::Put,
        "/business-profile",
        "/business-profile",
        api::Body::Json(body),
    )
    .await?;
    Ok(())
}

async fn recommendations(user: &mut GooseUser) -> TransactionResult {
    #[derive(Deserialize)]
    struct Framework {
        slug: String,
    }
    #[derive(Deserialize)]
    struct Recommendation {
        framework: Framework,
        applicable: bool,
    }
    let (mut newcomer, token) = signed_up(user).await?;
    let list: Vec<Recommendation> = api::get_json(
        user,
        &token,
        "/frameworks/recommendations",
        "/frameworks/recommendations",
    )
    .await?;
    let chosen = list
        .iter()
        .find(|r| r.applicable)
        .or(list.first())
        .ok_or("no framework recommended")?;
    newcomer.framework = Some(chosen.framework.slug.clone());
    user.set_session_data(newcomer);
    Ok(())
}

async fn assess(user: &mut GooseUser) -> TransactionResult {
    #[derive(Deserialize)]
    struct Question {
        id: String,
    }
    let (mut newcomer, token) = signed_up(user).await?;
    let framework = newcomer.framework.clone().ok_or("no framework chosen")?;
    let assessment: Id = api::send_json(
        user,
        Some(&token),
        GooseMethod::Post,
        "/assessments",
        "/assessments",
        json!({ "framework_id": framework }),
    )
    .await?;
    let path = format!("/assessments/{}/questions", assessment.id);
    let questions: Page<Question> =
        api::get_json(user, &token, "/assessments/{id}/questions", &path).await?;
    newcomer.questions = questions
        .items
        .into_iter()
        .take(ANSWERS)
        .map(|q| q.id)
        .collect();
    newcomer.assessment = Some(assessment.id);
    user.set_session_data(newcomer);
    Ok(())
}

async fn answer(user: &mut GooseUser) -> TransactionResult {
    let (newcomer, token) = signed_up(user).await?;
    let assessment = newcomer
        .assessment
        .as_deref()
        .ok_or("no assessment started")?;
    for (i, question) in newcomer.questions.iter().enumerate() {
        let response = ["yes", "partial", "no", "yes", "unknown"][i % 5];
        let path = format!("/assessments/{assessment}/answers/{question}");
        api::send(
            user,
            Some(&token),
            GooseMethod::Put,
            "/assessments/{id}/answers/{question_id}",
            &path,
            api::Body::Json(json!({ "response": response, "notes": "load test" })),
        )
        .await?;
    }
    Ok(())
}
