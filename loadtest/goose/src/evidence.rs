//! The evidence uploader: someone filing proof against controls. Each iteration
//! uploads a small CSV (an access review) as multipart evidence linked to a control,
//! lists the evidence, then reads and downloads the item just made.

use std::sync::Arc;

use goose::prelude::*;

use crate::api::{self, Form, Id, Page, Token};

#[derive(Clone)]
struct Uploader {
    token: Token,
    controls: Arc<[String]>,
    last: Option<String>,
}

/// # Errors
///
/// None in practice: only the weights, which are constants, are checked.
pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("EvidenceUploader")
        .set_weight(3)?
        .set_wait_time(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_millis(800),
        )?
        .register_transaction(transaction!(sign_in).set_name("sign in").set_on_start())
        .register_transaction(transaction!(upload).set_name("upload").set_sequence(1))
        .register_transaction(transaction!(list).set_name("list evidence").set_sequence(2))
        .register_transaction(transaction!(read).set_name("read evidence").set_sequence(3)))
}

async fn sign_in(user: &mut GooseUser) -> TransactionResult {
    let token = api::sign_in(user).await?;
    let slugs = api::framework_slugs(user, &token).await?;
    let slug = api::pick(&slugs).ok_or("no framework")?;
    let path = format!("/frameworks/{slug}/controls?limit=20");
    let controls: Page<Id> =
        api::get_json(user, &token, "/frameworks/{slug}/controls", &path).await?;
    if controls.items.is_empty() {
        return Err(format!("{slug} has no controls to link evidence to").into());
    }
    user.set_session_data(Uploader {
        token,
        controls: controls.items.into_iter().map(|c| c.id).collect(),
        last: None,
    });
    Ok(())
}

async fn upload(user: &mut GooseUser) -> TransactionResult {
    let mut uploader: Uploader = api::state(user).await?;
    let control = api::pick(&uploader.controls).ok_or("no control")?.clone();
    let n = user.get_iterations();
    // A line of its own in each file, so no two uploads are the same bytes.
    let csv = format!(
        "account,role,reviewed_by,decision\nalex,admin,sam,keep\njo,finance,sam,remove\n\
         load-{n}-{:08x},viewer,sam,keep\n",
        rand::random::<u32>()
    );
    let form = Form::new()
        .text("title", &format!("Quarterly access review {n}"))
        .text("evidence_type", "log")
        .text("control_ids", &control)
        .file("file", "access-review.csv", "text/csv", csv.as_bytes());
    let made: Id = api::send(
        user,
        Some(&uploader.token),
        GooseMethod::Post,
        "/evidence",
        "/evidence",
        api::Body::Form(form),
    )
    .await?
    .json(user)?;
    uploader.last = Some(made.id);
    user.set_session_data(uploader);
    Ok(())
}

async fn list(user: &mut GooseUser) -> TransactionResult {
    let uploader: Uploader = api::state(user).await?;
    api::get(
        user,
        &uploader.token,
        "/evidence?limit=20",
        "/evidence?limit=20",
    )
    .await?;
    Ok(())
}

async fn read(user: &mut GooseUser) -> TransactionResult {
    let uploader: Uploader = api::state(user).await?;
    let id = uploader.last.as_deref().ok_or("nothing uploaded")?;
    api::get(
        user,
        &uploader.token,
        "/evidence/{id}",
        &format!("/evidence/{id}"),
    )
    .await?;
    let path = format!("/evidence/{id}/download");
    api::get(user, &uploader.token, "/evidence/{id}/download", &path).await?;
    Ok(())
}
