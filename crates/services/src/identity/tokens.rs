//! Access tokens (HS256 JWTs) and refresh tokens (opaque, stored hashed).

use base64_url::encode as b64;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

mod base64_url {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    pub fn encode(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account.
    pub sub: Uuid,
    /// The organisation.
    pub org: Uuid,
    /// The role when the token was issued (the server reads the current one).
    pub role: String,
    /// This token's id.
    pub jti: Uuid,
    /// The session (refresh family) it belongs to: revoking the session ends it.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    /// Always `access`.
    pub typ: String,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(HS256)")
    }
}

impl TokenKeys {
    /// Keys from the `JWT_SECRET_KEY`.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        // Only HS256 is accepted: a token claiming `none` or any other algorithm fails.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs claims.
    ///
    /// # Errors
    /// When signing fails (it does not with an HMAC key).
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| e.to_string())
    }

    /// Checks an access token's signature, algorithm, expiry and type.
    ///
    /// # Errors
    /// A short reason, for logs only.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        self.verify_typ(token, "access")
    }

    /// Checks a token of type `typ` (`access`, or `browser` for the web UI's cookie).
    ///
    /// # Errors
    /// A short reason, for logs only.
    pub fn verify_typ(&self, token: &str, typ: &str) -> Result<Claims, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| e.to_string())?;
        if data.claims.typ != typ {
            return Err(format!(
                "not a{} {typ} token",
                if typ.starts_with('a') { "n" } else { "" }
            ));
        }
        Ok(data.claims)
    }
}

/// Builds the claims of a new access token.
#[must_use]
pub fn access_claims(
    user: Uuid,
    org: Uuid,
    role: &str,
    session: Uuid,
    now: DateTime<Utc>,
    lifetime: chrono::Duration,
) -> Claims {
    Claims {
        sub: user,
        org,
        role: role.to_owned(),
        jti: Uuid::new_v4(),
        sid: session,
        iat: now.timestamp(),
        exp: (now + lifetime).timestamp(),
        typ: "access".to_owned(),
    }
}

/// A new opaque token (refresh, reset, invitation): 32 random bytes, URL-safe.
#[must_use]
pub fn opaque_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    b64(&bytes)
}

/// The stored form of an opaque token: its SHA-256, hex.
#[must_use]
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: DateTime<Utc>, lifetime_secs: i64) -> Claims {
        access_claims(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "owner",
            Uuid::now_v7(),
            now,
            chrono::Duration::seconds(lifetime_secs),
        )
    }

    #[test]
    fn a_signed_token_verifies_with_its_key_only() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let c = claims(Utc::now(), 60);
        let token = keys.sign(&c).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), c);
        let other = TokenKeys::new(b"another-key-another-key-another-k");
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn expired_tampered_and_unsigned_tokens_fail() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let expired = keys
            .sign(&claims(Utc::now() - chrono::Duration::hours(2), 60))
            .unwrap();
        assert!(keys.verify(&expired).is_err());

        let token = keys.sign(&claims(Utc::now(), 60)).unwrap();
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut payload: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
                .unwrap(),
        )
        .unwrap();
        payload["role"] = "admin".into();
        parts[1] = b64(payload.to_string().as_bytes());
        assert!(keys.verify(&parts.join(".")).is_err(), "tampered payload");

        let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(keys.verify(&unsigned).is_err(), "alg none");
    }

    #[test]
    fn opaque_tokens_are_random_and_stored_hashed() {
        let a = opaque_token();
        assert_ne!(a, opaque_token());
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}
