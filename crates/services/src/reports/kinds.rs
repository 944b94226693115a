//! What reports there are, the formats each comes in, and the names their files get.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A kind of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportType {
    /// Readiness per framework with trends, top gaps, plan progress, evidence and
    /// policy status and AI spend: a board member's five minutes.
    ExecutiveSummary,
    /// Every open gap with its severity, recommendation, task, owner and due date.
    GapAnalysis,
    /// Every evidence item with its controls, status, hash and dates.
    EvidenceRegister,
    /// Every ISO/IEC 27001:2022 Annex A control with applicability, justification,
    /// implementation status and evidence.
    StatementOfApplicability,
    /// Everything an auditor asks for in one archive, with a manifest of hashes.
    AuditPack,
    /// Every approved policy, with a contents page.
    PolicyPack,
}

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Pdf,
    Docx,
    Xlsx,
    Csv,
    Zip,
    Json,
}

impl ReportType {
    pub const ALL: [Self; 6] = [
        Self::ExecutiveSummary,
        Self::GapAnalysis,
        Self::EvidenceRegister,
        Self::StatementOfApplicability,
        Self::AuditPack,
        Self::PolicyPack,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExecutiveSummary => "executive_summary",
            Self::GapAnalysis => "gap_analysis",
            Self::EvidenceRegister => "evidence_register",
            Self::StatementOfApplicability => "statement_of_applicability",
            Self::AuditPack => "audit_pack",
            Self::PolicyPack => "policy_pack",
        }
    }

    /// The type a stored name stands for.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// A title for people.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::ExecutiveSummary => "Executive summary",
            Self::GapAnalysis => "Gap analysis",
            Self::EvidenceRegister => "Evidence register",
            Self::StatementOfApplicability => "Statement of applicability",
            Self::AuditPack => "Audit pack",
            Self::PolicyPack => "Policy pack",
        }
    }

    /// The formats this report comes in; the first is the one to offer first. JSON is
    /// the report's data for scripts, where the report is data rather than prose.
    #[must_use]
    pub fn formats(self) -> &'static [Format] {
        use Format::{Csv, Docx, Json, Pdf, Xlsx, Zip};
        match self {
            Self::ExecutiveSummary => &[Pdf, Docx, Json],
            Self::GapAnalysis => &[Pdf, Xlsx, Csv, Json],
            Self::EvidenceRegister => &[Xlsx, Csv, Json],
            Self::StatementOfApplicability => &[Xlsx, Docx, Pdf, Json],
            Self::AuditPack => &[Zip],
            Self::PolicyPack => &[Pdf, Docx],
        }
    }

    /// Whether the report may be limited to one framework (`framework_id`).
    #[must_use]
    pub fn takes_framework(self) -> bool {
        matches!(
            self,
            Self::ExecutiveSummary | Self::GapAnalysis | Self::EvidenceRegister | Self::AuditPack
        )
    }
}

impl Format {
    pub const ALL: [Self; 6] = [
        Self::Pdf,
        Self::Docx,
        Self::Xlsx,
        Self::Csv,
        Self::Zip,
        Self::Json,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Xlsx => "xlsx",
            Self::Csv => "csv",
            Self::Zip => "zip",
            Self::Json => "json",
        }
    }

    /// The format a stored name stands for.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The media type a download is served as.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Zip => "application/zip",
            Self::Json => "application/json",
        }
    }
}

/// The file name a report downloads as: type, organisation and day, in characters
/// every file system and mail client accepts.
#[must_use]
pub fn file_name(kind: ReportType, format: Format, organisation: &str, day: &str) -> String {
    let org: String = organisation
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .take(6)
        .collect::<Vec<_>>()
        .join("-");
    let org = if org.is_empty() {
        "organisation".to_owned()
    } else {
        org
    };
    format!(
        "{}-{org}-{day}.{}",
        kind.as_str().replace('_', "-"),
        format.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_formats_and_names_round_trip() {
        for t in ReportType::ALL {
            assert!(!t.formats().is_empty());
            assert_eq!(ReportType::parse(t.as_str()), Some(t));
        }
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
        assert!(ReportType::parse("executive").is_none());
        assert!(
            !ReportType::EvidenceRegister
                .formats()
                .contains(&Format::Pdf)
        );
        assert_eq!(ReportType::AuditPack.formats(), &[Format::Zip]);
    }

    #[test]
    fn file_names_are_safe_everywhere() {
        assert_eq!(
            file_name(
                ReportType::GapAnalysis,
                Format::Xlsx,
                "Acme & Sons Ltd.",
                "2026-11-28"
            ),
            "gap-analysis-acme-sons-ltd-2026-11-28.xlsx"
        );
        assert_eq!(
            file_name(ReportType::AuditPack, Format::Zip, "../../«»", "2026-11-28"),
            "audit-pack-organisation-2026-11-28.zip"
        );
    }
}
