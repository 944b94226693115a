//! ruleIQ's one typed `Settings`.
//!
//! Loaded once, in this order, each layer overriding the one before: built-in
//! development defaults → `ruleiq.toml` (or the file `RULEIQ_CONFIG` names) → the
//! environment variables of the deployment roadmap, unprefixed → command-line flags.
//! [`Settings::load`] parses and validates in one step, so a running server never
//! holds a setting it has not checked; every error names the setting at fault.

pub mod mail;
pub mod raw;
pub mod secrets;
pub mod sentry;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
pub use mail::{MailSettings, SmtpSettings, SmtpTls};
pub use raw::{KNOWN_KEYS, RawSettings};
pub use secrecy::{ExposeSecret, SecretString};
pub use sentry::SentryDsn;
use serde::{Deserialize, Serialize};
use std::{
    fmt,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

/// Shortest secret accepted in production. 32 bytes of entropy is what
/// `ruleiq secrets generate` produces and what HS256 wants for its key.
pub const MIN_SECRET_LEN: usize = 32;

/// Requests in hand per core before more are shed. A request here is mostly CPU with
/// short database waits (about 10 ms at full load on two cores), so at capacity some
/// 25 are in hand; 32 a core leaves room for bursts and bounds the time a request
/// can spend waiting for a core to a few tens of milliseconds.
pub const REQUESTS_PER_CORE: usize = 32;

/// Where the server runs. Production turns on the strict checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Test,
    Staging,
    Production,
}

impl Environment {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" | "local" => Some(Self::Development),
            "test" | "testing" => Some(Self::Test),
            "staging" => Some(Self::Staging),
            "production" | "prod" => Some(Self::Production),
            _ => None,
        }
    }

    /// The environment's name as logs and health responses show it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }

    /// Whether this is production.
    #[must_use]
    pub fn is_production(self) -> bool {
        self == Self::Production
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which database engine a `DATABASE_URL` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseBackend {
    Sqlite,
    Postgres,
}

impl DatabaseBackend {
    /// The backend's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A database URL that has been checked to name a supported engine.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: SecretString,
    backend: DatabaseBackend,
}

impl DatabaseUrl {
    /// Parses a `sqlite:` or `postgres://` URL.
    ///
    /// # Errors
    /// When the URL names neither engine or is not a URL.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let backend = if value.starts_with("sqlite:") {
            DatabaseBackend::Sqlite
        } else if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            url::Url::parse(value).map_err(|e| format!("not a valid PostgreSQL URL ({e})"))?;
            DatabaseBackend::Postgres
        } else {
            return Err(
                "expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
            );
        };
        Ok(Self {
            url: SecretString::from(value.to_owned()),
            backend,
        })
    }

    /// The SQLite database at `path`, created if missing.
    #[must_use]
    pub fn sqlite_file(path: &Path) -> Self {
        Self {
            url: SecretString::from(format!("sqlite://{}?mode=rwc", path.display())),
            backend: DatabaseBackend::Sqlite,
        }
    }

    /// The engine.
    #[must_use]
    pub fn backend(&self) -> DatabaseBackend {
        self.backend
    }

    /// The full URL, password included: pass it to the driver, never to a log.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// The URL with any password replaced, safe to log.
    #[must_use]
    pub fn redacted(&self) -> String {
        match url::Url::parse(self.expose()) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("****"));
                u.to_string()
            }
            _ => self.expose().to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// An address range: one address, or `address/prefix-length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `10.0.0.1`, `10.0.0.0/8` or `fd00::/8`.
    ///
    /// # Errors
    /// A message for anything else.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an address or range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has a bad prefix length"))?,
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is in the range.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind_address: IpAddr,
    pub port: u16,
    pub api_v1_prefix: String,
    pub request_timeout: Duration,
    /// Requests handled at once (`MAX_CONCURRENT_REQUESTS`); past it a request is
    /// answered 503 at once rather than queued. Unset: [`REQUESTS_PER_CORE`] per core.
    pub max_concurrent_requests: usize,
    pub shutdown_timeout: Duration,
    pub max_json_body_size: usize,
    pub allowed_origins: Vec<String>,
    pub cors_allow_credentials: bool,
    /// Worker threads of the async runtime (`WORKERS`); `None` uses one per core.
    pub workers: Option<usize>,
    pub run_migrations: bool,
    pub embedded_worker: bool,
    /// The queue jobs travel on. Deployments sharing one Redis keep apart by name.
    pub job_queue_name: String,
    /// Proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpRange>,
}

/// Database settings.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    /// How long to keep retrying an unreachable server at start-up.
    pub connect_timeout: Duration,
    pub max_connections: Option<u32>,
    /// Page cache of each pooled SQLite connection, in KiB (`SQLITE_CACHE_KIB`).
    pub sqlite_cache_kib: u32,
}

impl DatabaseSettings {
    /// SQLite's own default is about 2 MiB per connection. The pages it would hold are
    /// already in the operating system's cache, which every connection shares, so a
    /// small cache costs a read from memory rather than the disk, while eight large ones
    /// add up to a sixth of the memory target of issue 8 (docs/PERFORMANCE.md).
    pub const DEFAULT_SQLITE_CACHE_KIB: u32 = 512;
}

/// Token signing settings.
#[derive(Clone)]
pub struct AuthSettings {
    pub jwt_secret_key: Option<SecretString>,
    pub jwt_algorithm: String,
    pub access_token_expire_minutes: u32,
    pub secret_key: Option<SecretString>,
    /// How long a session lookup may be answered from memory (`SESSION_CACHE_MS`;
    /// zero: never). Changes clear it at once on every instance; this bounds a lost
    /// notification.
    pub session_cache: Duration,
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field(
                "jwt_secret_key",
                &self.jwt_secret_key.as_ref().map(|_| "****"),
            )
            .field("jwt_algorithm", &self.jwt_algorithm)
            .field(
                "access_token_expire_minutes",
                &self.access_token_expire_minutes,
            )
            .field("secret_key", &self.secret_key.as_ref().map(|_| "****"))
            .field("session_cache", &self.session_cache)
            .finish()
    }
}

/// Outbound AI providers: credentials, endpoints, models, preference and patience.
/// A provider without its key (or, for Ollama, its URL) is not used; the offline
/// engine always answers last.
#[derive(Clone, Default)]
pub struct AiSettings {
    pub openai_api_key: Option<SecretString>,
    pub google_api_key: Option<SecretString>,
    pub anthropic_api_key: Option<SecretString>,
    /// `OPENAI_MODEL`, `ANTHROPIC_MODEL`, `GEMINI_MODEL`, `OLLAMA_MODEL`: `None` keeps
    /// each provider's default.
    pub openai_model: Option<String>,
    pub anthropic_model: Option<String>,
    pub gemini_model: Option<String>,
    pub ollama_model: Option<String>,
    /// `OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`, `GEMINI_BASE_URL`: for proxies,
    /// compatible services and tests.
    pub openai_base_url: Option<url::Url>,
    pub anthropic_base_url: Option<url::Url>,
    pub gemini_base_url: Option<url::Url>,
    /// `OLLAMA_URL`: a local Ollama server; unset, Ollama is not used.
    pub ollama_url: Option<url::Url>,
    /// `AI_PROVIDERS`: the preference order.
    pub providers: Vec<String>,
    /// `AI_TIMEOUT_SECONDS`: the longest one call may take.
    pub timeout: Duration,
    /// `AI_MAX_RETRIES`: retries of a call that failed with 429, 5xx or a timeout.
    pub max_retries: u32,
    /// `AI_PRICES`: overrides of the price table, e.g.
    /// `openai:gpt-4o-mini=0.15/0.60` (USD per million input/output tokens).
    pub prices: Option<String>,
}

/// The providers `AI_PROVIDERS` may name.
pub const AI_PROVIDERS: [&str; 4] = ["openai", "anthropic", "gemini", "ollama"];

impl fmt::Debug for AiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiSettings")
            .field("openai", &self.openai_api_key.is_some())
            .field("google", &self.google_api_key.is_some())
            .field("anthropic", &self.anthropic_api_key.is_some())
            .field(
                "ollama_url",
                &self.ollama_url.as_ref().map(url::Url::as_str),
            )
            .field("providers", &self.providers)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// Upload limits.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub max_upload_size: u64,
    /// `REPORT_RETENTION_DAYS`: how long a generated report's file is kept (0 to
    /// 3650; 0 keeps it only until the next expiry run).
    pub report_retention_days: u32,
    pub allowed_extensions: Vec<String>,
    pub storage: StorageSettings,
}

/// Where evidence and report files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSettings {
    /// Under `DATA_DIR/files` (the default).
    Local { dir: PathBuf },
    /// An S3-compatible bucket (`S3_BUCKET`, `S3_REGION`, `S3_ENDPOINT`); credentials
    /// come from the usual AWS variables, read by the store itself.
    S3 {
        bucket: String,
        region: String,
        endpoint: Option<String>,
    },
}

/// Request budgets per minute.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub per_minute: u32,
    pub ai_per_minute: u32,
    pub auth_per_minute: u32,
}

/// Live measurement switches.
#[derive(Debug, Clone)]
pub struct MonitoringSettings {
    pub performance: bool,
    pub database: bool,
    pub interval: Duration,
    /// `SENTRY_DSN`: where panics and 5xx answers are reported.
    pub sentry_dsn: Option<SentryDsn>,
}

/// The validated settings of one ruleIQ process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub debug: bool,
    pub log_level: String,
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis_url: Option<SecretString>,
    pub auth: AuthSettings,
    pub ai: AiSettings,
    pub uploads: UploadSettings,
    pub rate_limits: RateLimitSettings,
    pub monitoring: MonitoringSettings,
    pub mail: MailSettings,
}

/// What went wrong loading settings. The message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting {setting}: {message}")]
    Invalid { setting: String, message: String },
    #[error("cannot read configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("unsafe production configuration: {setting} {message}")]
    Unsafe {
        setting: &'static str,
        message: String,
    },
    #[error("cannot prepare data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
}

impl ConfigError {
    fn invalid(setting: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            setting: setting.to_owned(),
            message: message.into(),
        }
    }
}

/// Values given on the command line; they override every other source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// The settings file; `RULEIQ_CONFIG`, else `ruleiq.toml` in the working directory.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
}

impl Settings {
    /// Loads from the default file locations and the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid setting.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        if let Some(path) = &overrides.config_file
            && !path.is_file()
        {
            return Err(ConfigError::File {
                path: path.clone(),
                message: "no such file".into(),
            });
        }
        Self::from_figment(Self::figment(overrides))
    }

    /// The layered sources, exposed so tests can add their own.
    #[must_use]
    pub fn figment(overrides: &Overrides) -> Figment {
        let file = overrides.config_file.clone().unwrap_or_else(|| {
            std::env::var_os("RULEIQ_CONFIG").map_or_else(|| "ruleiq.toml".into(), PathBuf::from)
        });
        Figment::from(Serialized::defaults(RawSettings::default()))
            .merge(Toml::file(file))
            .merge(Env::raw().only(KNOWN_KEYS))
            .merge(Serialized::defaults(overrides))
    }

    /// Extracts and validates settings from `figment`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid setting.
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawSettings = figment.extract().map_err(figment_error)?;
        Self::from_raw(raw)
    }

    /// Validates raw settings.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid setting.
    pub fn from_raw(raw: RawSettings) -> Result<Self, ConfigError> {
        // Read first: the checks below move fields out of `raw`.
        let ai = ai_settings(&raw)?;
        let smtp = mail::smtp_settings(&raw)?;
        let mail_from = mail::from_address(&raw)?;
        let environment = Environment::parse(&raw.environment.0).ok_or_else(|| {
            ConfigError::invalid(
                "ENVIRONMENT",
                format!(
                    "`{}` is not one of development, test, staging, production",
                    raw.environment.0
                ),
            )
        })?;
        let log_level = raw.log_level.0.trim().to_ascii_lowercase();
        if !matches!(
            log_level.as_str(),
            "trace" | "debug" | "info" | "warn" | "warning" | "error" | "critical" | "off"
        ) {
            return Err(ConfigError::invalid(
                "LOG_LEVEL",
                format!(
                    "`{}` is not one of trace, debug, info, warn, error, off",
                    raw.log_level.0
                ),
            ));
        }
        let log_level = match log_level.as_str() {
            "warning" => "warn".to_owned(),
            "critical" => "error".to_owned(),
            other => other.to_owned(),
        };
        let bind_address: IpAddr = raw.bind_address.0.trim().parse().map_err(|_| {
            ConfigError::invalid(
                "BIND_ADDRESS",
                format!(
                    "`{}` is not an IP address such as 127.0.0.1 or 0.0.0.0",
                    raw.bind_address.0
                ),
            )
        })?;
        let data_dir = PathBuf::from(raw.data_dir.0.trim());
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("DATA_DIR", "must not be empty"));
        }
        let database_url = match raw.database_url.as_ref().map(|t| t.0.trim()) {
            None | Some("") => DatabaseUrl::sqlite_file(&data_dir.join("ruleiq.db")),
            Some(url) => {
                DatabaseUrl::parse(url).map_err(|m| ConfigError::invalid("DATABASE_URL", m))?
            }
        };
        let redis_url = match non_empty(raw.redis_url) {
            None => None,
            Some(url) => {
                let parsed = url::Url::parse(&url).map_err(|e| {
                    ConfigError::invalid("REDIS_URL", format!("not a valid URL ({e})"))
                })?;
                if !matches!(parsed.scheme(), "redis" | "rediss") {
                    return Err(ConfigError::invalid(
                        "REDIS_URL",
                        "expected redis://HOST:PORT/DB or rediss://…",
                    ));
                }
                Some(SecretString::from(url))
            }
        };
        let jwt_algorithm = raw.jwt_algorithm.0.trim().to_ascii_uppercase();
        if jwt_algorithm != "HS256" {
            return Err(ConfigError::invalid(
                "JWT_ALGORITHM",
                format!("`{}` is not supported; use HS256", raw.jwt_algorithm.0),
            ));
        }
        if !(1..=24 * 60).contains(&raw.jwt_access_token_expire_minutes) {
            return Err(ConfigError::invalid(
                "JWT_ACCESS_TOKEN_EXPIRE_MINUTES",
                "must be between 1 and 1440",
            ));
        }
        let prefix = raw.api_v1_prefix.0.trim().trim_end_matches('/').to_owned();
        if !prefix.starts_with('/')
            || prefix.len() < 2
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
        {
            return Err(ConfigError::invalid(
                "API_V1_PREFIX",
                "must be a path such as /api/v1",
            ));
        }
        for origin in &raw.allowed_origins.0 {
            if origin != "*" {
                let ok = url::Url::parse(origin)
                    .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .unwrap_or(false);
                if !ok {
                    return Err(ConfigError::invalid(
                        "ALLOWED_ORIGINS",
                        format!("`{origin}` is not an origin such as https://example.com"),
                    ));
                }
            }
        }
        if raw.workers == Some(0) {
            return Err(ConfigError::invalid("WORKERS", "must be at least 1"));
        }
        if !(64..=1_048_576).contains(&raw.sqlite_cache_kib) {
            return Err(ConfigError::invalid(
                "SQLITE_CACHE_KIB",
                "must be from 64 to 1048576 KiB (the default is 512)",
            ));
        }
        if raw.max_concurrent_requests == Some(0) {
            return Err(ConfigError::invalid(
                "MAX_CONCURRENT_REQUESTS",
                "must be at least 1 (leave it unset for the default of 32 per core)",
            ));
        }
        for (name, value) in [
            ("MAX_UPLOAD_SIZE", raw.max_upload_size),
            ("MAX_JSON_BODY_SIZE", raw.max_json_body_size),
            (
                "MONITORING_INTERVAL_SECONDS",
                raw.monitoring_interval_seconds,
            ),
            ("REQUEST_TIMEOUT_SECONDS", raw.request_timeout_seconds),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(name, "must be greater than 0"));
            }
        }
        let sentry_dsn = non_empty(raw.sentry_dsn.clone())
            .map(|dsn| SentryDsn::parse(&dsn))
            .transpose()
            .map_err(|message| ConfigError::invalid("SENTRY_DSN", message))?;
        if raw.session_cache_ms > 60_000 {
            return Err(ConfigError::invalid(
                "SESSION_CACHE_MS",
                "must be at most 60000 (a minute); 0 turns the cache off",
            ));
        }
        for (name, value) in [
            ("RATE_LIMIT_PER_MINUTE", raw.rate_limit_per_minute),
            ("AI_RATE_LIMIT_PER_MINUTE", raw.ai_rate_limit_per_minute),
            ("AUTH_RATE_LIMIT_PER_MINUTE", raw.auth_rate_limit_per_minute),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    name,
                    "must be greater than 0 (set RATE_LIMIT_ENABLED=false to turn limits off)",
                ));
            }
        }
        let max_json_body_size = usize::try_from(raw.max_json_body_size)
            .map_err(|_| ConfigError::invalid("MAX_JSON_BODY_SIZE", "too large"))?;
        let allowed_extensions = raw
            .allowed_extensions
            .0
            .iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
            .collect::<Vec<_>>();
        if allowed_extensions.is_empty() {
            return Err(ConfigError::invalid(
                "ALLOWED_EXTENSIONS",
                "must name at least one extension",
            ));
        }

        let storage = storage_settings(&data_dir, raw.s3_bucket, raw.s3_region, raw.s3_endpoint)?;
        if raw.report_retention_days > 3_650 {
            return Err(ConfigError::invalid(
                "REPORT_RETENTION_DAYS",
                "must be from 0 to 3650 (ten years)",
            ));
        }

        let job_queue_name = raw.job_queue_name.0.trim().to_owned();
        if job_queue_name.is_empty()
            || job_queue_name.len() > 64
            || !job_queue_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError::invalid(
                "JOB_QUEUE_NAME",
                "must be 1–64 letters, digits, `-`, `_` or `.`",
            ));
        }

        let public_url = match non_empty(raw.public_url) {
            Some(url) => {
                let parsed = url::Url::parse(&url).map_err(|e| {
                    ConfigError::invalid("PUBLIC_URL", format!("not a valid URL ({e})"))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ConfigError::invalid("PUBLIC_URL", "must be an http(s) URL"));
                }
                url.trim_end_matches('/').to_owned()
            }
            None => format!("http://{bind_address}:{}", raw.port),
        };
        let mail = MailSettings {
            smtp,
            from: mail_from,
            public_url,
        };

        let trusted_proxies = raw
            .trusted_proxies
            .0
            .iter()
            .map(|s| IpRange::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ConfigError::invalid("TRUSTED_PROXIES", m))?;

        let settings = Settings {
            environment,
            debug: raw.debug.0,
            log_level,
            data_dir,
            server: ServerSettings {
                bind_address,
                port: raw.port,
                api_v1_prefix: prefix,
                request_timeout: Duration::from_secs(raw.request_timeout_seconds),
                max_concurrent_requests: raw.max_concurrent_requests.unwrap_or_else(|| {
                    REQUESTS_PER_CORE
                        * std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
                }),
                shutdown_timeout: Duration::from_secs(raw.shutdown_timeout_seconds),
                max_json_body_size,
                allowed_origins: raw.allowed_origins.0,
                cors_allow_credentials: raw.cors_allow_credentials.0,
                workers: raw.workers,
                run_migrations: raw.run_migrations.0,
                embedded_worker: raw.embedded_worker.0,
                job_queue_name,
                trusted_proxies,
            },
            database: DatabaseSettings {
                url: database_url,
                connect_timeout: Duration::from_secs(raw.database_connect_timeout_seconds),
                max_connections: raw.database_max_connections,
                sqlite_cache_kib: raw.sqlite_cache_kib,
            },
            redis_url,
            auth: AuthSettings {
                jwt_secret_key: non_empty(raw.jwt_secret_key).map(SecretString::from),
                jwt_algorithm,
                access_token_expire_minutes: raw.jwt_access_token_expire_minutes,
                secret_key: non_empty(raw.secret_key).map(SecretString::from),
                session_cache: Duration::from_millis(raw.session_cache_ms),
            },
            ai,
            uploads: UploadSettings {
                max_upload_size: raw.max_upload_size,
                report_retention_days: raw.report_retention_days,
                allowed_extensions,
                storage,
            },
            rate_limits: RateLimitSettings {
                enabled: raw.rate_limit_enabled.0,
                per_minute: raw.rate_limit_per_minute,
                ai_per_minute: raw.ai_rate_limit_per_minute,
                auth_per_minute: raw.auth_rate_limit_per_minute,
            },
            monitoring: MonitoringSettings {
                performance: raw.enable_performance_monitoring.0,
                database: raw.enable_database_monitoring.0,
                interval: Duration::from_secs(raw.monitoring_interval_seconds),
                sentry_dsn,
            },
            mail,
        };
        settings.check_production()?;
        Ok(settings)
    }

    /// The refusals that apply only with `ENVIRONMENT=production`.
    fn check_production(&self) -> Result<(), ConfigError> {
        if !self.environment.is_production() {
            return Ok(());
        }
        for (setting, value) in [
            ("JWT_SECRET_KEY", &self.auth.jwt_secret_key),
            ("SECRET_KEY", &self.auth.secret_key),
        ] {
            match value {
                None => {
                    return Err(ConfigError::Unsafe {
                        setting,
                        message: "is not set; generate one with `ruleiq secrets generate`".into(),
                    });
                }
                Some(s) if s.expose_secret().chars().count() < MIN_SECRET_LEN => {
                    return Err(ConfigError::Unsafe {
                        setting,
                        message: format!(
                            "is shorter than {MIN_SECRET_LEN} characters; generate one with `ruleiq secrets generate`"
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        if self.debug {
            return Err(ConfigError::Unsafe {
                setting: "DEBUG",
                message: "must be false in production".into(),
            });
        }
        if self.server.cors_allow_credentials
            && self.server.allowed_origins.iter().any(|o| o == "*")
        {
            return Err(ConfigError::Unsafe {
                setting: "ALLOWED_ORIGINS",
                message: "may not contain `*` while CORS_ALLOW_CREDENTIALS=true; list the origins"
                    .into(),
            });
        }
        mail::check_production(&self.mail)
    }

    /// The socket address to listen on.
    #[must_use]
    pub fn listen_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.server.bind_address, self.server.port)
    }
}

fn non_empty(value: Option<raw::Text>) -> Option<String> {
    value.map(|t| t.0).filter(|s| !s.trim().is_empty())
}

/// Turns figment's error into one that names the environment variable (or file key).
fn figment_error(err: figment::Error) -> ConfigError {
    let setting = if err.path.is_empty() {
        "configuration".to_owned()
    } else {
        err.path.join(".").to_ascii_uppercase()
    };
    let origin = err
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
            _ => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    if let figment::error::Kind::UnknownField(field, _) = &err.kind {
        return ConfigError::invalid(
            &field.to_ascii_uppercase(),
            format!("is not a ruleIQ setting{origin}"),
        );
    }
    ConfigError::Invalid {
        setting,
        message: format!("{}{origin}", err.kind),
    }
}

/// The AI settings, checked: URLs must be http(s), provider names known, the
/// timeout between 1 and 600 seconds and retries at most 10.
fn ai_settings(raw: &RawSettings) -> Result<AiSettings, ConfigError> {
    let url = |name: &str, v: &Option<raw::Text>| -> Result<Option<url::Url>, ConfigError> {
        let Some(text) = non_empty(v.clone()) else {
            return Ok(None);
        };
        url::Url::parse(&text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .map(Some)
            .ok_or_else(|| {
                ConfigError::invalid(
                    name,
                    format!("`{text}` is not a URL such as http://127.0.0.1:11434"),
                )
            })
    };
    let mut providers = Vec::new();
    for p in &raw.ai_providers.0 {
        let p = p.trim().to_ascii_lowercase();
        if p.is_empty() || p == "offline" {
            continue; // offline always answers last
        }
        if !AI_PROVIDERS.contains(&p.as_str()) {
            return Err(ConfigError::invalid(
                "AI_PROVIDERS",
                format!(
                    "`{p}` is not a provider; use some of {}",
                    AI_PROVIDERS.join(", ")
                ),
            ));
        }
        if !providers.contains(&p) {
            providers.push(p);
        }
    }
    if !(1..=600).contains(&raw.ai_timeout_seconds) {
        return Err(ConfigError::invalid(
            "AI_TIMEOUT_SECONDS",
            "must be from 1 to 600",
        ));
    }
    if raw.ai_max_retries > 10 {
        return Err(ConfigError::invalid("AI_MAX_RETRIES", "must be at most 10"));
    }
    Ok(AiSettings {
        openai_api_key: non_empty(raw.openai_api_key.clone()).map(SecretString::from),
        google_api_key: non_empty(raw.google_api_key.clone()).map(SecretString::from),
        anthropic_api_key: non_empty(raw.anthropic_api_key.clone()).map(SecretString::from),
        openai_model: non_empty(raw.openai_model.clone()),
        anthropic_model: non_empty(raw.anthropic_model.clone()),
        gemini_model: non_empty(raw.gemini_model.clone()),
        ollama_model: non_empty(raw.ollama_model.clone()),
        openai_base_url: url("OPENAI_BASE_URL", &raw.openai_base_url)?,
        anthropic_base_url: url("ANTHROPIC_BASE_URL", &raw.anthropic_base_url)?,
        gemini_base_url: url("GEMINI_BASE_URL", &raw.gemini_base_url)?,
        ollama_url: url("OLLAMA_URL", &raw.ollama_url)?,
        providers,
        timeout: Duration::from_secs(raw.ai_timeout_seconds),
        max_retries: raw.ai_max_retries,
        prices: non_empty(raw.ai_prices.clone()),
    })
}

/// Local files unless a bucket is named; an endpoint or region without a bucket is a
/// mistake worth stopping for, since files would silently go to disk instead.
fn storage_settings(
    data_dir: &std::path::Path,
    bucket: Option<raw::Text>,
    region: Option<raw::Text>,
    endpoint: Option<raw::Text>,
) -> Result<StorageSettings, ConfigError> {
    let (bucket, region, endpoint) = (non_empty(bucket), non_empty(region), non_empty(endpoint));
    let Some(bucket) = bucket else {
        if let Some(name) = [("S3_REGION", &region), ("S3_ENDPOINT", &endpoint)]
            .into_iter()
            .find_map(|(n, v)| v.as_ref().map(|_| n))
        {
            return Err(ConfigError::invalid(
                name,
                "is set but S3_BUCKET is not; set S3_BUCKET to store files in S3, or unset it",
            ));
        }
        return Ok(StorageSettings::Local {
            dir: data_dir.join("files"),
        });
    };
    // Bucket names: 3–63 lower-case letters, digits, dots and hyphens.
    if !(3..=63).contains(&bucket.len())
        || !bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
    {
        return Err(ConfigError::invalid(
            "S3_BUCKET",
            format!(
                "`{bucket}` is not a bucket name (3–63 lower-case letters, digits, `.` or `-`)"
            ),
        ));
    }
    if let Some(url) = &endpoint {
        let ok = url::Url::parse(url)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .unwrap_or(false);
        if !ok {
            return Err(ConfigError::invalid(
                "S3_ENDPOINT",
                format!("`{url}` is not a URL such as https://s3.example.com"),
            ));
        }
    }
    Ok(StorageSettings::S3 {
        bucket,
        region: region.unwrap_or_else(|| "us-east-1".to_owned()),
        endpoint,
    })
}

#[cfg(test)]
mod tests;
