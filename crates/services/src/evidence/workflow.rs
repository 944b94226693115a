//! The evidence workflow as a state machine: `draft → submitted → approved |
//! rejected`, `approved → expired` when its date passes, and a new version or a
//! change to what was reviewed back to `draft`. Every move not listed is illegal;
//! callers get the reason to show.

use serde::{Deserialize, Serialize};

/// Where an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = EvidenceStatus)]
pub enum Status {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Expired,
}

/// What someone (or the expiry job) does to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Submit,
    Approve,
    Reject,
    Expire,
    /// A new file, or a change to the fields a reviewer judged.
    Revise,
}

/// A move the workflow does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IllegalMove(pub String);

impl Status {
    /// Every status, in the order pages list them.
    pub const ALL: [Self; 5] = [
        Self::Draft,
        Self::Submitted,
        Self::Approved,
        Self::Rejected,
        Self::Expired,
    ];

    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    /// Parses a stored or requested name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The status after `action`.
    ///
    /// # Errors
    /// [`IllegalMove`] naming what the item needs first.
    pub fn apply(self, action: Action) -> Result<Self, IllegalMove> {
        use Status as S;
        match (self, action) {
            // A rejected item may go back for review once the reviewer's point is met.
            (S::Draft | S::Rejected, Action::Submit) => Ok(S::Submitted),
            (S::Submitted, Action::Approve) => Ok(S::Approved),
            (S::Submitted, Action::Reject) => Ok(S::Rejected),
            (S::Approved, Action::Expire) => Ok(S::Expired),
            (_, Action::Revise) => Ok(S::Draft),
            (s, a) => Err(IllegalMove(format!(
                "evidence that is {} cannot be {}{}",
                s.as_str(),
                match a {
                    Action::Submit => "submitted",
                    Action::Approve => "approved",
                    Action::Reject => "rejected",
                    Action::Expire => "expired",
                    Action::Revise => "revised",
                },
                match (s, a) {
                    (S::Submitted, Action::Submit) => "; it is already awaiting approval",
                    (S::Approved | S::Expired, Action::Submit) => {
                        "; upload a new version or change it to start a new review"
                    }
                    (_, Action::Approve | Action::Reject) => "; it must be submitted first",
                    _ => "",
                }
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_and_its_branches() {
        let s = Status::Draft.apply(Action::Submit).unwrap();
        assert_eq!(s, Status::Submitted);
        assert_eq!(s.apply(Action::Approve).unwrap(), Status::Approved);
        assert_eq!(s.apply(Action::Reject).unwrap(), Status::Rejected);
        assert_eq!(
            Status::Approved.apply(Action::Expire).unwrap(),
            Status::Expired
        );
        assert_eq!(
            Status::Rejected.apply(Action::Submit).unwrap(),
            Status::Submitted
        );
        for s in Status::ALL {
            assert_eq!(s.apply(Action::Revise).unwrap(), Status::Draft);
        }
    }

    #[test]
    fn every_other_move_is_refused_with_a_reason() {
        let allowed = [
            (Status::Draft, Action::Submit),
            (Status::Rejected, Action::Submit),
            (Status::Submitted, Action::Approve),
            (Status::Submitted, Action::Reject),
            (Status::Approved, Action::Expire),
        ];
        for s in Status::ALL {
            for a in [
                Action::Submit,
                Action::Approve,
                Action::Reject,
                Action::Expire,
            ] {
                let r = s.apply(a);
                assert_eq!(r.is_ok(), allowed.contains(&(s, a)), "{s:?} {a:?}");
                if let Err(e) = r {
                    assert!(e.0.contains(s.as_str()), "{e}");
                }
            }
        }
        let e = Status::Draft.apply(Action::Approve).unwrap_err();
        assert!(e.0.contains("submitted first"), "{e}");
    }

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("archived"), None);
    }
}
