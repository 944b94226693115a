//! The vocabulary of the framework library: how much a control matters, and how two
//! controls of different frameworks relate.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// How much a gap against a control matters (content/README.md defines each level).
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
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    Low,
    Medium,
    High,
    Critical,
}

impl Criticality {
    pub const ALL: [Self; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Criticality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Criticality {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

/// How the scope of one control compares with another's (the source's view).
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
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// Meeting one meets the other.
    Equal,
    /// The source asks for part of what the target asks.
    Subset,
    /// The source asks for more than the target.
    Superset,
    /// They overlap; neither contains the other.
    Intersect,
}

impl Relation {
    pub const ALL: [Self; 4] = [Self::Equal, Self::Subset, Self::Superset, Self::Intersect];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "equal",
            Self::Subset => "subset",
            Self::Superset => "superset",
            Self::Intersect => "intersect",
        }
    }

    /// The same relation read from the target's side.
    #[must_use]
    pub fn reversed(self) -> Self {
        match self {
            Self::Subset => Self::Superset,
            Self::Superset => Self::Subset,
            other => other,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Relation {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

/// A stored value outside its enumeration (a CHECK constraint keeps these out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_reverse_and_parse() {
        assert_eq!(Relation::Subset.reversed(), Relation::Superset);
        assert_eq!(Relation::Superset.reversed(), Relation::Subset);
        assert_eq!(Relation::Equal.reversed(), Relation::Equal);
        assert_eq!("intersect".parse::<Relation>(), Ok(Relation::Intersect));
        assert!("overlaps".parse::<Relation>().is_err());
        assert_eq!("critical".parse::<Criticality>(), Ok(Criticality::Critical));
        assert!("urgent".parse::<Criticality>().is_err());
    }
}
