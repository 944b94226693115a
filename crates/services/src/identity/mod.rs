//! Identity and access: accounts, organisations, sign-in, sessions, and the types that
//! carry authorisation. Every tenant-owned query takes its organisation from a
//! [`Principal`] (through a [`Permit`]), never from request input.

mod members;
pub mod password;
pub mod principal;
mod recovery;
mod service;
pub mod sessions;
pub mod tokens;

pub use members::{AcceptInput, INVITATION_DAYS, MemberChange, NewInvitation};
pub use principal::{Forbidden, Permit, Principal, SelfApproval};
pub use recovery::RESET_MINUTES;
pub use service::{
    Account, Authenticated, Identity, IdentityError, LOCKOUT_MINUTES, LOCKOUT_THRESHOLD,
    RegisterInput, Registration, TokenPair,
};
