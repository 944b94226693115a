//! The report user: someone preparing for a board meeting. Each iteration asks for
//! the executive summary as a PDF, polls the report until its job has built it, and
//! downloads the file. The poll is bounded, so a stuck job fails the iteration
//! instead of holding the user for the rest of the run.

use std::time::Duration;

use goose::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::api::{self, Token};

/// How often, and how many times at most, the report is polled: 60 s in all.
const POLL_EVERY: Duration = Duration::from_millis(250);
const POLLS: usize = 240;

#[derive(Clone)]
struct Reader {
    token: Token,
}

/// # Errors
///
/// None in practice: only the weights, which are constants, are checked.
pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("ReportUser")
        .set_weight(1)?
        .set_wait_time(Duration::from_secs(1), Duration::from_secs(3))?
        .register_transaction(transaction!(sign_in).set_name("sign in").set_on_start())
        .register_transaction(transaction!(executive_summary).set_name("executive summary PDF")))
}

async fn sign_in(user: &mut GooseUser) -> TransactionResult {
    let token = api::sign_in(user).await?;
    user.set_session_data(Reader { token });
    Ok(())
}

async fn executive_summary(user: &mut GooseUser) -> TransactionResult {
    #[derive(Deserialize)]
    struct Accepted {
        report_id: String,
    }
    #[derive(Deserialize)]
    struct Report {
        status: String,
        progress_note: Option<String>,
    }
    let reader: Reader = api::state(user).await?;
    let accepted: Accepted = api::send_json(
        user,
        Some(&reader.token),
        GooseMethod::Post,
        "/reports",
        "/reports",
        json!({ "report_type": "executive_summary", "format": "pdf" }),
    )
    .await?;
    let path = format!("/reports/{}", accepted.report_id);
    for _ in 0..POLLS {
        let report: Report = api::get_json(user, &reader.token, "/reports/{id}", &path).await?;
        match report.status.as_str() {
            "queued" | "running" => tokio::time::sleep(POLL_EVERY).await,
            "ready" => {
                let file = api::get(
                    user,
                    &reader.token,
                    "/reports/{id}/download",
                    &format!("{path}/download"),
                )
                .await?;
                if file.is_empty() {
                    return Err("the report downloaded empty".into());
                }
                return Ok(());
            }
            other => {
                let why = report.progress_note.unwrap_or_default();
                return Err(format!("the report ended {other}: {why}").into());
            }
        }
    }
    Err(format!(
        "the report was not ready after {:?}",
        POLL_EVERY * POLLS as u32
    )
    .into())
}
