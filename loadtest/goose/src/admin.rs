//! The admin user: whoever runs the service for the organisation, checking on it.
//! Reads the monitoring summary, the job queue, the members and the audit log.

use goose::prelude::*;

use crate::api::{self, Token};

#[derive(Clone)]
struct Admin {
    token: Token,
}

/// # Errors
///
/// None in practice: only the weights, which are constants, are checked.
pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("AdminUser")
        .set_weight(1)?
        .set_wait_time(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_millis(800),
        )?
        .register_transaction(transaction!(sign_in).set_name("sign in").set_on_start())
        .register_transaction(
            transaction!(monitoring)
                .set_name("monitoring")
                .set_weight(2)?,
        )
        .register_transaction(transaction!(jobs).set_name("jobs"))
        .register_transaction(transaction!(members).set_name("members"))
        .register_transaction(transaction!(audit_log).set_name("audit log")))
}

async fn sign_in(user: &mut GooseUser) -> TransactionResult {
    let token = api::sign_in(user).await?;
    user.set_session_data(Admin { token });
    Ok(())
}

async fn read(user: &mut GooseUser, route: &str) -> TransactionResult {
    let admin: Admin = api::state(user).await?;
    api::get(user, &admin.token, route, route).await?;
    Ok(())
}

async fn monitoring(user: &mut GooseUser) -> TransactionResult {
    read(user, "/monitoring/status").await
}

async fn jobs(user: &mut GooseUser) -> TransactionResult {
    read(user, "/jobs").await
}

async fn members(user: &mut GooseUser) -> TransactionResult {
    read(user, "/users").await
}

async fn audit_log(user: &mut GooseUser) -> TransactionResult {
    read(user, "/audit-log").await
}
