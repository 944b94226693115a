//! Password rules and hashing.
//!
//! Rules (API.md): 10–128 characters, not the e-mail address, and not guessable — the
//! zxcvbn estimator, told the account's own e-mail and names, must score it at least 3
//! of 4 ("safely unguessable"), which rejects common passwords and their variants.
//!
//! Hashing is Argon2id at OWASP's minimum for Argon2id: 19 MiB of memory, 2 passes,
//! 1 lane. It costs tens of milliseconds of CPU, so it always runs on the blocking
//! pool, never on the async threads that serve other requests.

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use std::sync::OnceLock;

/// Memory cost in KiB (19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Passes over memory.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Lanes.
pub const ARGON2_PARALLELISM: u32 = 1;

/// Shortest accepted password.
pub const MIN_LEN: usize = 10;
/// Longest accepted password (hashing cost is bounded by it).
pub const MAX_LEN: usize = 128;
/// Lowest accepted zxcvbn score.
pub const MIN_SCORE: u8 = 3;

/// Why a password was refused, phrased for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("use at least {MIN_LEN} characters")]
    TooShort,
    #[error("use at most {MAX_LEN} characters")]
    TooLong,
    #[error("do not use your e-mail address as your password")]
    IsEmail,
    #[error("this password is too easy to guess{0}")]
    Guessable(String),
}

/// Checks a new password against the rules.
///
/// # Errors
/// [`WeakPassword`] saying what to change.
pub fn check(password: &str, email: &str, other_inputs: &[&str]) -> Result<(), WeakPassword> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(WeakPassword::TooShort);
    }
    if len > MAX_LEN {
        return Err(WeakPassword::TooLong);
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(WeakPassword::IsEmail);
    }
    // The estimator matches user inputs as whole words: give it every word of the
    // address and names, so "adalovelace1815" counts as built from them.
    let words: Vec<String> = std::iter::once(email)
        .chain(other_inputs.iter().copied())
        .flat_map(|s| {
            s.split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.chars().count() >= 3)
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .collect();
    let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if u8::from(estimate.score()) < MIN_SCORE {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(": {w}"))
            .unwrap_or_else(|| "; a few uncommon words together work well".to_owned());
        return Err(WeakPassword::Guessable(hint));
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within Argon2's limits; construction cannot fail.
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (PHC string format) on the blocking pool.
///
/// # Errors
/// When hashing fails, which it does only on resource exhaustion.
pub async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Whether `password` matches `hash`, checked on the blocking pool. A malformed stored
/// hash never matches.
pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Spends the same effort as checking a real password, for an e-mail address with no
/// account, so response time does not reveal which addresses have accounts.
pub async fn verify_dummy(password: String) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = match DUMMY.get() {
        Some(h) => h.clone(),
        None => {
            let h = hash("ruleiq-dummy-password-for-timing".to_owned())
                .await
                .unwrap_or_default();
            DUMMY.get_or_init(|| h).clone()
        }
    };
    let _ = verify(password, stored).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_refuse_short_long_email_and_common_passwords() {
        let email = "ada@example.co.uk";
        assert_eq!(check("short", email, &[]), Err(WeakPassword::TooShort));
        assert_eq!(
            check(&"x".repeat(129), email, &[]),
            Err(WeakPassword::TooLong)
        );
        assert_eq!(
            check("Ada@Example.co.uk", email, &[]),
            Err(WeakPassword::IsEmail)
        );
        for common in ["password123", "qwertyuiop", "1234567890", "Password1!"] {
            assert!(
                matches!(check(common, email, &[]), Err(WeakPassword::Guessable(_))),
                "{common}"
            );
        }
        assert!(matches!(
            check("lovelaceada", email, &["Ada Lovelace"]),
            Err(WeakPassword::Guessable(_))
        ));
        assert_eq!(check("otter lantern quarry velvet", email, &[]), Ok(()));
    }

    #[tokio::test]
    async fn hashes_verify_and_salts_differ() {
        let a = hash("otter lantern quarry velvet".into()).await.unwrap();
        let b = hash("otter lantern quarry velvet".into()).await.unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert!(verify("otter lantern quarry velvet".into(), a.clone()).await);
        assert!(!verify("otter lantern quarry velvex".into(), a).await);
        assert!(!verify("anything".into(), "not a hash".into()).await);
    }
}
