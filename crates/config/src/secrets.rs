//! Secret generation, and the persisted development secrets.
//!
//! Outside production a missing `JWT_SECRET_KEY` or `SECRET_KEY` is generated once and
//! kept under `DATA_DIR` (mode 0600), so tokens survive a restart of a development
//! server without anyone having to configure anything.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{Rng, RngCore};
use secrecy::SecretString;
use std::{fs, io::Write, path::Path};

use crate::{ConfigError, Settings};

/// The character set of the Django-style `SECRET_KEY` in the roadmap (section 1.4).
const SECRET_KEY_ALPHABET: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*(-_=+)";

/// `n` random bytes from the operating system, URL-safe base64 without padding.
#[must_use]
pub fn token_urlsafe(n: usize) -> String {
    // ThreadRng is a CSPRNG (ChaCha) seeded from the operating system.
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A 50-character key drawn from [`SECRET_KEY_ALPHABET`].
#[must_use]
pub fn secret_key() -> String {
    let mut rng = rand::rng();
    (0..50)
        .map(|_| char::from(SECRET_KEY_ALPHABET[rng.random_range(0..SECRET_KEY_ALPHABET.len())]))
        .collect()
}

/// The three secrets `ruleiq secrets generate` prints.
#[derive(Debug)]
pub struct GeneratedSecrets {
    pub jwt_secret_key: String,
    pub secret_key: String,
    pub database_password: String,
}

/// Fresh secrets of the strength the roadmap asks for.
#[must_use]
pub fn generate() -> GeneratedSecrets {
    GeneratedSecrets {
        jwt_secret_key: token_urlsafe(32),
        secret_key: secret_key(),
        database_password: token_urlsafe(24),
    }
}

/// Fills a missing JWT secret and `SECRET_KEY` from files under `DATA_DIR`,
/// generating them on first use. Production never reaches here with either missing:
/// validation refuses that configuration first.
///
/// # Errors
/// When the data directory or a secret file cannot be created or read.
pub fn ensure_dev_secrets(settings: &mut Settings) -> Result<(), ConfigError> {
    if settings.auth.jwt_secret_key.is_none() {
        let value = persisted(&settings.data_dir, "jwt_secret", || token_urlsafe(32))?;
        settings.auth.jwt_secret_key = Some(SecretString::from(value));
    }
    if settings.auth.secret_key.is_none() {
        let value = persisted(&settings.data_dir, "secret_key", secret_key)?;
        settings.auth.secret_key = Some(SecretString::from(value));
    }
    Ok(())
}

fn persisted(dir: &Path, name: &str, make: impl FnOnce() -> String) -> Result<String, ConfigError> {
    let err = |e: std::io::Error| ConfigError::DataDir {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    fs::create_dir_all(dir).map_err(err)?;
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(existing) if existing.trim().len() >= crate::MIN_SECRET_LEN => {
            return Ok(existing.trim().to_owned());
        }
        Ok(_) | Err(_) => {}
    }
    let value = make();
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(err)?;
    file.write_all(value.as_bytes()).map_err(err)?;
    #[cfg(unix)]
    {
        // `mode` applies only when the file is created; tighten one that existed.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(value)
}
