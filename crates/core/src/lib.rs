//! ruleIQ's vocabulary: identifiers, roles and permissions, the clock.
//!
//! This crate performs no I/O, so every other crate can depend on it and tests can
//! construct any value here without a database.

pub mod clock;
pub mod compliance;
pub mod email;
pub mod ids;
pub mod profile;
pub mod roles;
pub mod size;

pub use clock::{Clock, SystemClock};
pub use compliance::{Criticality, Relation};
pub use email::Email;
pub use ids::{ControlId, FrameworkId, JobId, OrganizationId, UserId};
pub use profile::BusinessProfile;
pub use roles::{Permission, Role};
pub use size::human_size;
