//! The kinds of notice and the channels each goes out on by default.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// What a notice is about.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Evidence expires within 30 days, and again within 7.
    EvidenceExpiring,
    /// An assigned task is due today or tomorrow.
    TaskDue,
    /// An assigned task is past its due date and not done.
    TaskOverdue,
    /// Evidence or a policy waits for the member's approval.
    ApprovalRequested,
    /// The member's evidence or policy was approved, rejected or returned.
    ApprovalDecided,
    /// A report the member asked for (or receives on a schedule) is ready.
    ReportReady,
    /// A weekly summary: unread notices, open tasks, what is due soon.
    WeeklyDigest,
}

/// Whether a kind of notice is shown in the app and sent by e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    pub in_app: bool,
    pub email: bool,
}

/// The text a kind failed to parse from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown notification kind `{0}`; expected one of evidence_expiring, task_due, task_overdue, approval_requested, approval_decided, report_ready, weekly_digest"
)]
pub struct UnknownKind(pub String);

impl Kind {
    /// Every kind, in the order the preferences page lists them.
    pub const ALL: [Self; 7] = [
        Self::ApprovalRequested,
        Self::ApprovalDecided,
        Self::EvidenceExpiring,
        Self::TaskDue,
        Self::TaskOverdue,
        Self::ReportReady,
        Self::WeeklyDigest,
    ];

    /// The stored and wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EvidenceExpiring => "evidence_expiring",
            Self::TaskDue => "task_due",
            Self::TaskOverdue => "task_overdue",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalDecided => "approval_decided",
            Self::ReportReady => "report_ready",
            Self::WeeklyDigest => "weekly_digest",
        }
    }

    /// A kind by name; `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A short name for pages and e-mail footers.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::EvidenceExpiring => "Evidence expiring",
            Self::TaskDue => "Task due",
            Self::TaskOverdue => "Task overdue",
            Self::ApprovalRequested => "Approval requested",
            Self::ApprovalDecided => "Approval decided",
            Self::ReportReady => "Report ready",
            Self::WeeklyDigest => "Weekly digest",
        }
    }

    /// One sentence on when the notice is sent.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Self::EvidenceExpiring => {
                "Evidence you added expires within 30 days, and again within 7 (owners and admins hear of evidence whose author has left)."
            }
            Self::TaskDue => "A task assigned to you is due today or tomorrow.",
            Self::TaskOverdue => "A task assigned to you is past its due date and not done.",
            Self::ApprovalRequested => {
                "Evidence or a policy was submitted for review and you may approve it."
            }
            Self::ApprovalDecided => {
                "Evidence or a policy you wrote or submitted was approved, rejected or returned to draft."
            }
            Self::ReportReady => "A report for you has been generated and can be downloaded.",
            Self::WeeklyDigest => {
                "On Mondays: your unread notifications of the week, your open tasks and what is due soon."
            }
        }
    }

    /// The channels a member gets until they choose otherwise. Everything shows in the
    /// app. E-mail is on for what needs acting on or was asked for, and off for
    /// `task_due`: it comes every day a task is due, and the digest and the overdue
    /// notice already cover tasks by e-mail.
    #[must_use]
    pub fn default_channels(self) -> Channels {
        Channels {
            in_app: true,
            email: !matches!(self, Self::TaskDue),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json, k.as_str());
        }
        let err = "evidence_expired".parse::<Kind>().unwrap_err();
        assert!(err.to_string().contains("evidence_expired"), "{err}");
        assert_eq!(Kind::parse(""), None);
    }

    #[test]
    fn every_kind_shows_in_the_app_and_only_task_due_is_not_mailed_by_default() {
        for k in Kind::ALL {
            let c = k.default_channels();
            assert!(c.in_app, "{k}");
            assert_eq!(c.email, k != Kind::TaskDue, "{k}");
        }
    }
}
