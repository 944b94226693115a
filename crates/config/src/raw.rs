//! The settings as they arrive from files and the environment, before validation.
//!
//! Field names are the lower-cased environment variable names of the deployment
//! roadmap, so that `DATABASE_URL`, `database_url` in `ruleiq.toml` and the error
//! message naming either are the same word.

use serde::{Deserialize, Deserializer, Serialize, de};
use std::fmt;

/// Every environment variable the server reads. Anything else in the environment is
/// ignored, so an unrelated `PORT`-like variable of another program cannot leak in
/// under a different name.
pub const KNOWN_KEYS: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET_KEY",
    "JWT_ALGORITHM",
    "JWT_ACCESS_TOKEN_EXPIRE_MINUTES",
    "SECRET_KEY",
    "ALLOWED_ORIGINS",
    "CORS_ALLOW_CREDENTIALS",
    "API_V1_PREFIX",
    "OPENAI_API_KEY",
    "GOOGLE_API_KEY",
    "ANTHROPIC_API_KEY",
    "SENTRY_DSN",
    "ENVIRONMENT",
    "DEBUG",
    "LOG_LEVEL",
    "WORKERS",
    "MAX_UPLOAD_SIZE",
    "ALLOWED_EXTENSIONS",
    "RATE_LIMIT_ENABLED",
    "RATE_LIMIT_PER_MINUTE",
    "AI_RATE_LIMIT_PER_MINUTE",
    "AUTH_RATE_LIMIT_PER_MINUTE",
    "ENABLE_PERFORMANCE_MONITORING",
    "ENABLE_DATABASE_MONITORING",
    "MONITORING_INTERVAL_SECONDS",
    "PORT",
    "BIND_ADDRESS",
    "DATA_DIR",
    "RUN_MIGRATIONS",
    "EMBEDDED_WORKER",
    "REQUEST_TIMEOUT_SECONDS",
    "MAX_CONCURRENT_REQUESTS",
    "SESSION_CACHE_MS",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "MAX_JSON_BODY_SIZE",
    "DATABASE_CONNECT_TIMEOUT_SECONDS",
    "DATABASE_MAX_CONNECTIONS",
    "SQLITE_CACHE_KIB",
    "JOB_QUEUE_NAME",
    "SMTP_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "SMTP_TLS",
    "MAIL_FROM",
    "PUBLIC_URL",
    "TRUSTED_PROXIES",
    "S3_BUCKET",
    "S3_ENDPOINT",
    "S3_REGION",
    "REPORT_RETENTION_DAYS",
    "OPENAI_MODEL",
    "OPENAI_BASE_URL",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_BASE_URL",
    "GEMINI_MODEL",
    "GEMINI_BASE_URL",
    "OLLAMA_URL",
    "OLLAMA_MODEL",
    "AI_PROVIDERS",
    "AI_TIMEOUT_SECONDS",
    "AI_MAX_RETRIES",
    "AI_PRICES",
];

/// Raw, unvalidated settings. Defaults here are the development defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSettings {
    pub database_url: Option<Text>,
    pub redis_url: Option<Text>,
    pub jwt_secret_key: Option<Text>,
    pub jwt_algorithm: Text,
    pub jwt_access_token_expire_minutes: u32,
    pub secret_key: Option<Text>,
    pub allowed_origins: List,
    pub cors_allow_credentials: Flag,
    pub api_v1_prefix: Text,
    pub openai_api_key: Option<Text>,
    pub google_api_key: Option<Text>,
    pub anthropic_api_key: Option<Text>,
    pub sentry_dsn: Option<Text>,
    pub environment: Text,
    pub debug: Flag,
    pub log_level: Text,
    pub workers: Option<usize>,
    pub max_upload_size: u64,
    pub allowed_extensions: List,
    pub rate_limit_enabled: Flag,
    pub rate_limit_per_minute: u32,
    pub ai_rate_limit_per_minute: u32,
    pub auth_rate_limit_per_minute: u32,
    pub enable_performance_monitoring: Flag,
    pub enable_database_monitoring: Flag,
    pub monitoring_interval_seconds: u64,
    pub port: u16,
    pub bind_address: Text,
    pub data_dir: Text,
    pub run_migrations: Flag,
    pub embedded_worker: Flag,
    pub request_timeout_seconds: u64,
    pub max_concurrent_requests: Option<usize>,
    pub session_cache_ms: u64,
    pub shutdown_timeout_seconds: u64,
    pub max_json_body_size: u64,
    pub database_connect_timeout_seconds: u64,
    pub database_max_connections: Option<u32>,
    pub sqlite_cache_kib: u32,
    pub job_queue_name: Text,
    pub smtp_url: Option<Text>,
    pub smtp_host: Option<Text>,
    pub smtp_port: Option<u16>,
    pub smtp_username: Option<Text>,
    pub smtp_password: Option<Text>,
    pub smtp_from: Option<Text>,
    pub smtp_tls: Option<Text>,
    /// The older name of `SMTP_FROM`, still read.
    pub mail_from: Option<Text>,
    pub public_url: Option<Text>,
    pub trusted_proxies: List,
    pub s3_bucket: Option<Text>,
    pub s3_endpoint: Option<Text>,
    pub s3_region: Option<Text>,
    pub report_retention_days: u32,
    pub openai_model: Option<Text>,
    pub openai_base_url: Option<Text>,
    pub anthropic_model: Option<Text>,
    pub anthropic_base_url: Option<Text>,
    pub gemini_model: Option<Text>,
    pub gemini_base_url: Option<Text>,
    pub ollama_url: Option<Text>,
    pub ollama_model: Option<Text>,
    pub ai_providers: List,
    pub ai_timeout_seconds: u64,
    pub ai_max_retries: u32,
    pub ai_prices: Option<Text>,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            database_url: None,
            redis_url: None,
            jwt_secret_key: None,
            jwt_algorithm: Text("HS256".into()),
            jwt_access_token_expire_minutes: 30,
            secret_key: None,
            allowed_origins: List(vec![
                "http://localhost:8000".into(),
                "http://127.0.0.1:8000".into(),
            ]),
            cors_allow_credentials: Flag(true),
            api_v1_prefix: Text("/api/v1".into()),
            openai_api_key: None,
            google_api_key: None,
            anthropic_api_key: None,
            sentry_dsn: None,
            environment: Text("development".into()),
            debug: Flag(false),
            log_level: Text("info".into()),
            workers: None,
            max_upload_size: 10 * 1024 * 1024,
            allowed_extensions: List(
                ["pdf", "doc", "docx", "txt", "csv", "xlsx"]
                    .map(String::from)
                    .to_vec(),
            ),
            rate_limit_enabled: Flag(true),
            rate_limit_per_minute: 100,
            ai_rate_limit_per_minute: 20,
            auth_rate_limit_per_minute: 5,
            enable_performance_monitoring: Flag(true),
            enable_database_monitoring: Flag(true),
            monitoring_interval_seconds: 30,
            port: 8000,
            bind_address: Text("127.0.0.1".into()),
            data_dir: Text("./data".into()),
            run_migrations: Flag(true),
            embedded_worker: Flag(true),
            request_timeout_seconds: 30,
            max_concurrent_requests: None,
            session_cache_ms: 2_000,
            shutdown_timeout_seconds: 20,
            max_json_body_size: 2 * 1024 * 1024,
            database_connect_timeout_seconds: 30,
            database_max_connections: None,
            sqlite_cache_kib: crate::DatabaseSettings::DEFAULT_SQLITE_CACHE_KIB,
            job_queue_name: Text("ruleiq".into()),
            smtp_url: None,
            smtp_host: None,
            smtp_port: None,
            smtp_username: None,
            smtp_password: None,
            smtp_from: None,
            smtp_tls: None,
            mail_from: None,
            public_url: None,
            trusted_proxies: List(Vec::new()),
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: None,
            report_retention_days: 30,
            openai_model: None,
            openai_base_url: None,
            anthropic_model: None,
            anthropic_base_url: None,
            gemini_model: None,
            gemini_base_url: None,
            ollama_url: None,
            ollama_model: None,
            ai_providers: List(
                ["openai", "anthropic", "gemini", "ollama"]
                    .map(String::from)
                    .to_vec(),
            ),
            ai_timeout_seconds: 30,
            ai_max_retries: 2,
            ai_prices: None,
        }
    }
}

/// A text value. Environment values such as `JWT_SECRET_KEY=12345` or `DEBUG=1` are
/// typed by figment as numbers; a setting that is text takes them as written.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets pass through this type before they are wrapped; never print values.
        f.write_str("Text(..)")
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_char<E: de::Error>(self, v: char) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A yes/no value: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case, because
/// the roadmap's Python origin wrote `DEBUG=False` as often as `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                match v {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                match v {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(Flag(true)),
                    "false" | "0" | "no" | "off" => Ok(Flag(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A list given either as comma-separated text (the environment's form) or as a list
/// (the TOML file's form). Blank items are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct List(pub Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = List;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a comma-separated list")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<List, E> {
                Ok(List(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                ))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                let mut out = Vec::new();
                while let Some(Text(item)) = seq.next_element::<Text>()? {
                    let item = item.trim();
                    if !item.is_empty() {
                        out.push(item.to_owned());
                    }
                }
                Ok(List(out))
            }
        }
        d.deserialize_any(V)
    }
}
