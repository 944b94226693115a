//! The compliance user: a member reading where the organisation stands. It is the
//! mix the capacity target is measured on, so it only reads, and every request is
//! one a page of the web UI makes: readiness, the dashboard, the framework library
//! and a framework's controls, plans, a search, and who is signed in.

use std::sync::Arc;

use goose::prelude::*;

use crate::api::{self, Token};

/// Searches a member types, in the words of the built-in library.
const SEARCHES: &[&str] = &[
    "access%20control",
    "encryption",
    "backup",
    "incident",
    "password",
    "supplier",
    "training",
    "risk%20assessment",
];

#[derive(Clone)]
struct Member {
    token: Token,
    slugs: Arc<[String]>,
}

/// # Errors
///
/// None in practice: only the weights, which are constants, are checked.
pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("ComplianceUser")
        .set_weight(10)?
        .register_transaction(transaction!(sign_in).set_name("sign in").set_on_start())
        .register_transaction(transaction!(status).set_name("readiness").set_weight(3)?)
        .register_transaction(
            transaction!(dashboard)
                .set_name("dashboard")
                .set_weight(3)?,
        )
        .register_transaction(transaction!(frameworks).set_name("framework library"))
        .register_transaction(
            transaction!(controls)
                .set_name("framework controls")
                .set_weight(2)?,
        )
        .register_transaction(transaction!(plans).set_name("plans"))
        .register_transaction(transaction!(search).set_name("search").set_weight(2)?)
        .register_transaction(transaction!(me).set_name("who am I")))
}

async fn sign_in(user: &mut GooseUser) -> TransactionResult {
    let token = api::sign_in(user).await?;
    // Which frameworks to open is learnt once, as the UI's menu would.
    let slugs = api::framework_slugs(user, &token).await?;
    user.set_session_data(Member {
        token,
        slugs: slugs.into(),
    });
    Ok(())
}

async fn read(user: &mut GooseUser, route: &str, path: &str) -> TransactionResult {
    let member: Member = api::state(user).await?;
    api::get(user, &member.token, route, path).await?;
    Ok(())
}

async fn status(user: &mut GooseUser) -> TransactionResult {
    read(user, "/compliance/status", "/compliance/status").await
}

async fn dashboard(user: &mut GooseUser) -> TransactionResult {
    read(user, "/dashboard", "/dashboard").await
}

async fn frameworks(user: &mut GooseUser) -> TransactionResult {
    read(user, "/frameworks", "/frameworks").await
}

async fn controls(user: &mut GooseUser) -> TransactionResult {
    let member: Member = api::state(user).await?;
    let slug = api::pick(&member.slugs).ok_or("no framework to open")?;
    let path = format!("/frameworks/{slug}/controls");
    api::get(user, &member.token, "/frameworks/{slug}/controls", &path).await?;
    Ok(())
}

async fn plans(user: &mut GooseUser) -> TransactionResult {
    read(user, "/plans", "/plans").await
}

async fn search(user: &mut GooseUser) -> TransactionResult {
    let term = api::pick(SEARCHES).ok_or("no search terms")?;
    read(user, "/search?q={term}", &format!("/search?q={term}")).await
}

async fn me(user: &mut GooseUser) -> TransactionResult {
    read(user, "/auth/me", "/auth/me").await
}
