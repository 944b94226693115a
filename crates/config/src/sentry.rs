//! `SENTRY_DSN`, parsed once at start-up so that a mistyped value stops the process with
//! the reason instead of silently losing every error report.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// Where error reports go: a Sentry (or Sentry-compatible) project.
///
/// A DSN has the shape `https://PUBLIC_KEY@HOST[:PORT][/PATH]/PROJECT_ID`. The public
/// key authenticates the reports; it is not a password, but it lets anyone send events
/// to the project, so it is kept out of logs like any other secret.
#[derive(Clone)]
pub struct SentryDsn {
    envelope_url: url::Url,
    public_key: SecretString,
    project_id: String,
}

impl SentryDsn {
    /// Parses a DSN.
    ///
    /// # Errors
    /// A sentence naming what is missing, for the settings error.
    pub fn parse(dsn: &str) -> Result<Self, String> {
        const SHAPE: &str =
            "is not a DSN such as https://PUBLIC_KEY@o0.ingest.sentry.io/PROJECT_ID";
        let url = url::Url::parse(dsn.trim()).map_err(|_| SHAPE.to_owned())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(SHAPE.to_owned());
        }
        if url.username().is_empty() {
            return Err(format!("{SHAPE} (the public key before the @ is missing)"));
        }
        let path = url.path().trim_end_matches('/');
        let (prefix, project_id) = path.rsplit_once('/').unwrap_or(("", path));
        if project_id.is_empty() {
            return Err(format!("{SHAPE} (the project id at the end is missing)"));
        }
        let mut envelope_url = url.clone();
        // Cannot fail: the URL has a host, and the parts were checked above.
        let _ = envelope_url.set_username("");
        let _ = envelope_url.set_password(None);
        envelope_url.set_query(None);
        envelope_url.set_fragment(None);
        envelope_url.set_path(&format!("{prefix}/api/{project_id}/envelope/"));
        Ok(Self {
            envelope_url,
            public_key: SecretString::from(url.username().to_owned()),
            project_id: project_id.to_owned(),
        })
    }

    /// Where envelopes are posted: `…/api/PROJECT_ID/envelope/`.
    #[must_use]
    pub fn envelope_url(&self) -> &url::Url {
        &self.envelope_url
    }

    /// The key sent in `X-Sentry-Auth`.
    #[must_use]
    pub fn public_key(&self) -> &str {
        self.public_key.expose_secret()
    }

    /// The project the reports belong to.
    #[must_use]
    pub fn project_id(&self) -> &str {
        &self.project_id
    }
}

impl fmt::Debug for SentryDsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryDsn")
            .field("envelope_url", &self.envelope_url.as_str())
            .field("public_key", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_gives_the_envelope_address_and_key() {
        let dsn = SentryDsn::parse("https://abc123@o42.ingest.sentry.io/4507").unwrap();
        assert_eq!(
            dsn.envelope_url().as_str(),
            "https://o42.ingest.sentry.io/api/4507/envelope/"
        );
        assert_eq!(dsn.public_key(), "abc123");
        assert_eq!(dsn.project_id(), "4507");
        // A self-hosted Sentry under a path, on a port.
        let dsn = SentryDsn::parse("http://k@127.0.0.1:9000/sentry/7").unwrap();
        assert_eq!(
            dsn.envelope_url().as_str(),
            "http://127.0.0.1:9000/sentry/api/7/envelope/"
        );
        assert!(!format!("{dsn:?}").contains("k@"));
    }

    #[test]
    fn what_is_not_a_dsn_is_refused_with_the_reason() {
        for (bad, reason) in [
            ("not a url", "is not a DSN"),
            ("ftp://k@host/1", "is not a DSN"),
            ("https://sentry.example.com/1", "public key"),
            ("https://k@sentry.example.com/", "project id"),
            ("https://k@sentry.example.com", "project id"),
        ] {
            let err = SentryDsn::parse(bad).unwrap_err();
            assert!(err.contains(reason), "{bad}: {err}");
        }
    }
}
