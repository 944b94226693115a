//! `ruleiq-load`: goose load tests of the ruleIQ HTTP API, one scenario for each kind
//! of user the original system's Locust file simulated. Any server will do:
//!
//! ```text
//! RULEIQ_LOAD_EMAIL=… RULEIQ_LOAD_PASSWORD=… ruleiq-load --host http://127.0.0.1:8000 \
//!     --scenarios complianceuser --users 32 --run-time 60s
//! ```
//!
//! Every Goose option works (`--help`; `--scenarios-list` names the scenarios). Runs
//! are bounded: without `--run-time`, `--iterations` or `--test-plan` one lasts 60 s.
//! Each user signs in for itself, unless `RULEIQ_LOAD_SHARED_LOGIN=1` has one sign-in,
//! made before the run starts, shared by all.
//! At the end Goose prints requests per second, percentiles per route, errors and
//! status codes (`--report-file run.json` keeps them), then one line of totals over
//! every route. It exits 1 when any request or transaction failed.

mod admin;
mod api;
mod assistant;
mod compliance;
mod evidence;
mod onboarding;
mod reports;
mod summary;

use std::process::ExitCode;

use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::prelude::*;

use crate::api::sign_in_for_all;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("ruleiq-load: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs the attack; whether every request and transaction succeeded.
async fn run() -> Result<bool, String> {
    let mut configuration = GooseConfiguration::parse_args_default_or_exit();
    let account = needs_account(&configuration);
    if account {
        api::Account::from_env()?.install();
    }
    bound(&mut configuration);
    let mut attack =
        GooseAttack::initialize_with_config(configuration).map_err(|e| e.to_string())?;
    if account && std::env::var("RULEIQ_LOAD_SHARED_LOGIN").is_ok_and(|v| v == "1") {
        attack = attack.test_start(transaction!(sign_in_for_all));
    }
    let attack = attack
        .register_scenario(compliance::scenario().map_err(|e| e.to_string())?)
        .register_scenario(onboarding::scenario().map_err(|e| e.to_string())?)
        .register_scenario(evidence::scenario().map_err(|e| e.to_string())?)
        .register_scenario(assistant::scenario().map_err(|e| e.to_string())?)
        .register_scenario(reports::scenario().map_err(|e| e.to_string())?)
        .register_scenario(admin::scenario().map_err(|e| e.to_string())?)
        .set_default(GooseDefault::Host, "http://127.0.0.1:8000")
        // No telnet controller: nothing drives these runs, and two runs at once would
        // both want its port.
        .and_then(|a| a.set_default(GooseDefault::NoTelnet, true))
        // One client shared by every user: one connection pool, no cookie jars, as
        // bearer tokens need none.
        .and_then(|a| {
            a.set_client_builder_without_cookies(
                GooseClientBuilder::new()
                    .without_cookies()
                    .user_agent(concat!("ruleiq-load/", env!("CARGO_PKG_VERSION"))),
            )
        })
        .map_err(|e| e.to_string())?;
    let metrics = attack.execute().await.map_err(|e| e.to_string())?;
    let totals = summary::print(&metrics);
    Ok(totals.failed == 0 && totals.transaction_errors == 0)
}

/// Whether the scenarios to run sign in with an existing account: all but the
/// onboarding user, which registers its own, and not at all for a listing.
fn needs_account(configuration: &GooseConfiguration) -> bool {
    if configuration.list || configuration.scenarios_list || configuration.version {
        return false;
    }
    match &configuration.scenarios {
        Some(chosen) => !chosen
            .active
            .iter()
            .all(|name| name.starts_with("onboarding")),
        None => true,
    }
}

/// Bounds a run that was given no length, and starts users quickly. Set on the
/// configuration rather than as Goose defaults, because a default `--run-time` would
/// clash with an `--iterations` or `--test-plan` given on the command line.
fn bound(configuration: &mut GooseConfiguration) {
    let planned = std::env::args().any(|a| a == "--test-plan" || a.starts_with("--test-plan="));
    if configuration.run_time.is_none() && configuration.iterations.is_none() && !planned {
        configuration.run_time = Some("60".to_owned());
    }
    // Goose starts one user a second by default: half a minute before 32 users run.
    if configuration.increase_rate.is_none() && configuration.increase_time.is_none() && !planned {
        configuration.increase_rate = Some("50".to_owned());
    }
}
