//! Typed identifiers. Every table's key is a UUID v7 (time-ordered, so inserts stay
//! local in B-tree indexes); wrapping it per entity stops a job id being passed where
//! an organisation id is expected.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered identifier.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID.
            #[must_use]
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A background job's id, also the id of its status record.
    JobId
);

id_type!(
    /// An organisation (tenant).
    OrganizationId
);

id_type!(
    /// An account.
    UserId
);

id_type!(
    /// A framework of the library, or one an organisation imported.
    FrameworkId
);

id_type!(
    /// A control (requirement) of a framework.
    ControlId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_are_time_ordered() {
        let a = JobId::new();
        let b = JobId::new();
        assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
        assert!(a < b, "v7 ids sort by creation time");
        assert!("not-a-uuid".parse::<JobId>().is_err());
    }
}
