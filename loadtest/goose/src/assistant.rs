//! The assistant user: a member asking the AI assistant for help. Each iteration
//! opens a conversation, asks one question and reads the conversation back. Without
//! provider keys the server's offline engine answers, so this costs nothing.

use goose::prelude::*;
use serde_json::json;

use crate::api::{self, Id, Token};

/// Questions in the words a UK small business would use.
const QUESTIONS: &[&str] = &[
    "What do we need for Cyber Essentials?",
    "How often should we review user access?",
    "Which controls cover backups under ISO 27001?",
    "What must a data breach procedure include under UK GDPR?",
    "Do we need multi-factor authentication for remote staff?",
];

#[derive(Clone)]
struct Asker {
    token: Token,
}

/// # Errors
///
/// None in practice: only the weights, which are constants, are checked.
pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("AssistantUser")
        .set_weight(2)?
        .set_wait_time(
            std::time::Duration::from_millis(500),
            std::time::Duration::from_millis(1500),
        )?
        .register_transaction(transaction!(sign_in).set_name("sign in").set_on_start())
        .register_transaction(transaction!(converse).set_name("ask the assistant")))
}

async fn sign_in(user: &mut GooseUser) -> TransactionResult {
    let token = api::sign_in(user).await?;
    user.set_session_data(Asker { token });
    Ok(())
}

async fn converse(user: &mut GooseUser) -> TransactionResult {
    let asker: Asker = api::state(user).await?;
    let question = *api::pick(QUESTIONS).ok_or("no questions")?;
    let conversation: Id = api::send_json(
        user,
        Some(&asker.token),
        GooseMethod::Post,
        "/chat/conversations",
        "/chat/conversations",
        json!({ "title": "Load test" }),
    )
    .await?;
    let path = format!("/chat/conversations/{}", conversation.id);
    api::send(
        user,
        Some(&asker.token),
        GooseMethod::Post,
        "/chat/conversations/{id}/messages",
        &format!("{path}/messages"),
        api::Body::Json(json!({ "content": question })),
    )
    .await?;
    api::get(user, &asker.token, "/chat/conversations/{id}", &path).await?;
    Ok(())
}
