//! Mailing a scheduled report to its schedule's recipients once it is ready.
//!
//! The file travels as an attachment when it fits under the outbox's limit
//! ([`MAX_ATTACHMENT_BYTES`]); a larger one (an audit pack, say) is announced with a
//! link to its page, where a member signs in to download it. Either way the message goes
//! through the outbox, so a failed send is retried and visible to an administrator.

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use ruleiq_core::{OrganizationId, human_size};
use ruleiq_db::{entities::report, repositories::reports as repo};
use uuid::Uuid;

use super::kinds::{Format, ReportType};
use crate::{
    evidence::store::BlobStore,
    mail::{Attachment, MAX_ATTACHMENT_BYTES, Message, Outbox},
    notifications::Notifications,
};

/// Where and how scheduled reports are mailed.
#[derive(Clone)]
pub struct Delivery {
    pub outbox: Outbox,
    /// The address members reach ruleIQ at, for the link in the message.
    pub public_url: String,
    /// Tells the member who set up the schedule (in the app, and by e-mail if they
    /// chose it) that the report is ready.
    pub notifications: Notifications,
}

/// What became of a ready report's mail.
#[derive(Debug, PartialEq, Eq)]
pub enum Mailed {
    /// Not a scheduled report, or its schedule is gone.
    NotScheduled,
    /// Queued in the outbox as this message, with the file attached or not.
    Queued { message_id: Uuid, attached: bool },
}

impl Delivery {
    /// Queues the mail for `row` (now ready, its file stored under `sha256`) when it
    /// was made by a schedule.
    ///
    /// # Errors
    /// A message for the job's record: the schedule or the file could not be read, or
    /// the outbox refused the message.
    pub(super) async fn scheduled_report(
        &self,
        db: &ruleiq_db::DatabaseConnection,
        store: &BlobStore,
        row: &report::Model,
        sha256: &str,
        size: u64,
    ) -> Result<Mailed, String> {
        let Some(schedule_id) = row.schedule_id else {
            return Ok(Mailed::NotScheduled);
        };
        let Some(schedule) = repo::find_schedule(db, row.organization_id, schedule_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Mailed::NotScheduled);
        };
        let to: Vec<String> = serde_json::from_value(schedule.recipients).unwrap_or_default();
        if to.is_empty() {
            return Ok(Mailed::NotScheduled);
        }
        let title = ReportType::parse(&row.report_type).map_or("Report", ReportType::title);
        let format = Format::parse(&row.format).unwrap_or(Format::Json);
        let link = format!("{}/reports/{}", self.public_url, row.id);
        let attach = size <= MAX_ATTACHMENT_BYTES;
        let mut attachments = Vec::new();
        if attach {
            attachments.push(Attachment {
                filename: row.file_name.clone(),
                content_type: format.content_type().to_owned(),
                bytes: read_all(store, sha256, size).await?,
            });
        }
        let file_line = if attach {
            format!("The file is attached: {}.", row.file_name)
        } else {
            format!(
                "The file ({}) is too large to attach; download it from the report's page.",
                human_size(size)
            )
        };
        let expires = row
            .expires_at
            .map(|t| format!("It can be downloaded until {}.\n", t.format("%-d %B %Y")))
            .unwrap_or_default();
        let text = format!(
            "Your scheduled {title} ({format}) is ready.\n\n{file_line}\n\nReport page: {link}\n{expires}\n\
             You receive this because your address is on one of your organisation's report \
             schedules in ruleIQ. An administrator can change the schedule's recipients.\n",
            format = format.as_str().to_uppercase(),
        );
        let message_id = self
            .outbox
            .enqueue(Message {
                organization_id: Some(OrganizationId::from(row.organization_id)),
                to,
                subject: format!("ruleIQ: your scheduled {title} is ready"),
                text,
                html: None,
                attachments,
            })
            .await
            .map_err(|e| format!("queueing the report's mail: {e}"))?;
        if let Some(owner) = schedule.created_by {
            // The schedule's recipients have their mail; the notice is for the member
            // who set it up, and a failure to store it does not undo the mail.
            if let Err(e) = self
                .notifications
                .report_ready(
                    OrganizationId::from(row.organization_id),
                    row.id,
                    &format!("{title} (scheduled)"),
                    &[owner],
                )
                .await
            {
                tracing::warn!(report = %row.id, error = %e, "could not notify that a scheduled report is ready");
            }
        }
        Ok(Mailed::Queued {
            message_id,
            attached: attach,
        })
    }
}

/// The whole of a stored file no larger than the attachment limit.
async fn read_all(store: &BlobStore, sha256: &str, size: u64) -> Result<Bytes, String> {
    let stream = store
        .get(sha256)
        .await
        .map_err(|e| format!("reading the report to attach it: {e}"))?;
    let mut buf = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| format!("reading the report to attach it: {e}"))?
    {
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
