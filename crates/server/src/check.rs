//! `ruleiq check --url URL`: the roadmap's final checks against a running deployment,
//! from outside, as one command — health and readiness, the security headers, a sign-in
//! round trip with the credentials given, rate-limit headers, monitoring, the AI
//! providers and response times. Each check passes, warns, fails or is skipped (no
//! credentials); the command prints a table and fails when any check fails.

use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode, header::HeaderMap};
use serde_json::Value;

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
            Self::Skip => "skipped",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Finding {
    pub check: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

fn finding(check: &'static str, verdict: Verdict, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        verdict,
        detail: detail.into(),
    }
}

/// What to check, and against what.
#[derive(Debug, Clone)]
pub struct Target {
    /// The public address, such as `https://ruleiq.example.co.uk`.
    pub url: String,
    /// `API_V1_PREFIX` of the deployment.
    pub api_prefix: String,
    /// An account to sign in with; without it, the checks that need one are skipped.
    pub credentials: Option<(String, String)>,
    /// The slowest acceptable p95 of the response-time sample.
    pub max_ms: u64,
    /// How many requests the response-time sample makes.
    pub samples: usize,
}

/// Runs every check against `target`, in order.
pub async fn run(target: &Target) -> Vec<Finding> {
    let base = target.url.trim_end_matches('/').to_owned();
    let api = format!("{base}{}", target.api_prefix);
    let client = match Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ruleiq-check/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return vec![finding("client", Verdict::Fail, e.to_string())],
    };
    let mut out = Vec::new();

    // Health: the answer a load balancer acts on.
    match get(&client, &format!("{api}/health"), None).await {
        Ok((status, headers, body)) => {
            let state = body["status"].as_str().unwrap_or("?");
            let version = body["version"].as_str().unwrap_or("?");
            let verdict = match (status, state) {
                (StatusCode::OK, "healthy") => Verdict::Pass,
                (StatusCode::OK, "degraded") => Verdict::Warn,
                _ => Verdict::Fail,
            };
            out.push(finding(
                "health",
                verdict,
                format!("{status}: {state}, version {version}{}", unwell(&body)),
            ));
            out.push(security_headers(&headers, base.starts_with("https://")));
        }
        Err(e) => {
            out.push(finding("health", Verdict::Fail, e));
            // Nothing else can answer either.
            return out;
        }
    }
    out.push(
        match get(&client, &format!("{api}/health/ready"), None).await {
            Ok((StatusCode::OK, _, _)) => finding("readiness", Verdict::Pass, "ready"),
            Ok((status, _, body)) => finding(
                "readiness",
                Verdict::Fail,
                format!(
                    "{status}: pending migrations {}",
                    body["pending_migrations"]
                ),
            ),
            Err(e) => finding("readiness", Verdict::Fail, e),
        },
    );

    let token = match &target.credentials {
        None => {
            for check in [
                "sign in",
                "rate-limit headers",
                "monitoring",
                "AI providers",
            ] {
                out.push(finding(check, Verdict::Skip, "give --email to check"));
            }
            None
        }
        Some((email, password)) => sign_in(&client, &api, email, password, &mut out).await,
    };
    if let Some(token) = &token {
        out.push(monitoring(&client, &api, token).await);
        out.push(ai_providers(&client, &api, token).await);
    }

    out.push(response_times(&client, &api, target).await);

    if let Some(token) = token {
        // Leave no session behind.
        let _ = client
            .post(format!("{api}/auth/logout"))
            .bearer_auth(token)
            .send()
            .await;
    }
    out
}

/// The components a health answer says are unwell, as ", database unhealthy".
fn unwell(body: &Value) -> String {
    body["checks"]
        .as_object()
        .map(|checks| {
            checks
                .iter()
                .filter(|(_, c)| c["status"] != "healthy")
                .map(|(name, c)| format!(", {name} {}", c["status"].as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default()
}

fn security_headers(headers: &HeaderMap, https: bool) -> Finding {
    let mut missing = Vec::new();
    let mut expect = |name: &'static str, wanted: Option<&str>| {
        let value = headers.get(name).and_then(|v| v.to_str().ok());
        let ok = match (value, wanted) {
            (Some(v), Some(w)) => v.eq_ignore_ascii_case(w),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !ok {
            missing.push(name);
        }
    };
    expect("x-content-type-options", Some("nosniff"));
    expect("x-frame-options", None);
    expect("referrer-policy", None);
    expect("cache-control", Some("no-store"));
    if https {
        expect("strict-transport-security", None);
    }
    if missing.is_empty() {
        finding(
            "security headers",
            Verdict::Pass,
            if https {
                "nosniff, frame, referrer, no-store, HSTS"
            } else {
                "nosniff, frame, referrer, no-store (HSTS only over https)"
            },
        )
    } else {
        finding(
            "security headers",
            Verdict::Fail,
            format!("missing or wrong: {}", missing.join(", ")),
        )
    }
}

async fn sign_in(
    client: &Client,
    api: &str,
    email: &str,
    password: &str,
    out: &mut Vec<Finding>,
) -> Option<String> {
    let login = client
        .post(format!("{api}/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await;
    let token = match login {
        Ok(res) if res.status() == StatusCode::OK => {
            let body: Value = res.json().await.unwrap_or(Value::Null);
            body["access_token"].as_str().map(str::to_owned)
        }
        Ok(res) => {
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            out.push(finding(
                "sign in",
                Verdict::Fail,
                format!("{status}: {}", body["detail"].as_str().unwrap_or("refused")),
            ));
            return None;
        }
        Err(e) => {
            out.push(finding("sign in", Verdict::Fail, e.to_string()));
            return None;
        }
    };
    let Some(token) = token else {
        out.push(finding(
            "sign in",
            Verdict::Fail,
            "no access token in the answer",
        ));
        return None;
    };
    match get(client, &format!("{api}/auth/me"), Some(&token)).await {
        Ok((StatusCode::OK, headers, me)) => {
            out.push(finding(
                "sign in",
                Verdict::Pass,
                format!(
                    "{} as {} of {}",
                    me["email"].as_str().unwrap_or(email),
                    me["role"].as_str().unwrap_or("?"),
                    me["organization"]["name"].as_str().unwrap_or("?")
                ),
            ));
            out.push(rate_limit_headers(&headers));
            Some(token)
        }
        Ok((status, _, _)) => {
            out.push(finding(
                "sign in",
                Verdict::Fail,
                format!("signed in, but /auth/me answered {status}"),
            ));
            None
        }
        Err(e) => {
            out.push(finding("sign in", Verdict::Fail, e));
            None
        }
    }
}

fn rate_limit_headers(headers: &HeaderMap) -> Finding {
    let read = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (
        read("x-ratelimit-limit"),
        read("x-ratelimit-remaining"),
        read("x-ratelimit-reset"),
    ) {
        (Some(limit), Some(remaining), Some(_)) => finding(
            "rate-limit headers",
            Verdict::Pass,
            format!("{remaining} of {limit} left this minute"),
        ),
        _ => finding(
            "rate-limit headers",
            Verdict::Warn,
            "no X-RateLimit-* headers: RATE_LIMIT_ENABLED=false, or a proxy strips them",
        ),
    }
}

async fn monitoring(client: &Client, api: &str, token: &str) -> Finding {
    match get(client, &format!("{api}/monitoring/status"), Some(token)).await {
        Ok((StatusCode::OK, _, body)) => finding(
            "monitoring",
            Verdict::Pass,
            format!(
                "up {} s, {} jobs queued",
                body["uptime_seconds"], body["jobs"]["queued"]
            ),
        ),
        Ok((StatusCode::FORBIDDEN, _, _)) => finding(
            "monitoring",
            Verdict::Warn,
            "this account lacks monitoring:read; check with an owner or admin",
        ),
        Ok((status, _, _)) => finding("monitoring", Verdict::Fail, format!("{status}")),
        Err(e) => finding("monitoring", Verdict::Fail, e),
    }
}

async fn ai_providers(client: &Client, api: &str, token: &str) -> Finding {
    match get(client, &format!("{api}/ai/providers"), Some(token)).await {
        Ok((StatusCode::OK, _, body)) => {
            let providers = body.as_array().cloned().unwrap_or_default();
            let configured: Vec<String> = providers
                .iter()
                .filter(|p| p["configured"] == true)
                .map(|p| {
                    format!(
                        "{} {}",
                        p["name"].as_str().unwrap_or("?"),
                        p["state"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            let failing = providers
                .iter()
                .any(|p| p["configured"] == true && p["state"] != "closed");
            finding(
                "AI providers",
                if failing {
                    Verdict::Warn
                } else {
                    Verdict::Pass
                },
                configured.join(", "),
            )
        }
        Ok((StatusCode::FORBIDDEN, _, _)) => finding(
            "AI providers",
            Verdict::Warn,
            "this account may not use AI features",
        ),
        Ok((status, _, _)) => finding("AI providers", Verdict::Fail, format!("{status}")),
        Err(e) => finding("AI providers", Verdict::Fail, e),
    }
}

/// A sequential sample of liveness probes: what a visitor waits for the server itself,
/// without the database or the network's bandwidth in it.
async fn response_times(client: &Client, api: &str, target: &Target) -> Finding {
    let mut times = Vec::with_capacity(target.samples);
    for _ in 0..target.samples.max(1) {
        let started = Instant::now();
        match client.get(format!("{api}/health/live")).send().await {
            Ok(res) if res.status().is_success() => {
                let _ = res.bytes().await;
                times.push(started.elapsed());
            }
            Ok(res) => {
                return finding(
                    "response time",
                    Verdict::Fail,
                    format!("/health/live answered {}", res.status()),
                );
            }
            Err(e) => return finding("response time", Verdict::Fail, e.to_string()),
        }
    }
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times[i.min(times.len() - 1)].as_secs_f64() * 1000.0
    };
    let (p50, p95) = (at(0.5), at(0.95));
    finding(
        "response time",
        if p95 <= target.max_ms as f64 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        format!(
            "p50 {p50:.1} ms, p95 {p95:.1} ms over {} requests (limit {} ms)",
            times.len(),
            target.max_ms
        ),
    )
}

async fn get(
    client: &Client,
    url: &str,
    token: Option<&str>,
) -> Result<(StatusCode, HeaderMap, Value), String> {
    let mut req = client.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res: Response = req.send().await.map_err(|e| {
        if e.is_connect() {
            format!("cannot connect to {url}: is the server running and the address right?")
        } else if e.is_timeout() {
            format!("{url} did not answer within 15 s")
        } else {
            format!("{url}: {e}")
        }
    })?;
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(Value::Null);
    Ok((status, headers, body))
}

/// The findings as an aligned table.
#[must_use]
pub fn table(findings: &[Finding]) -> String {
    let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(5);
    let mut out = format!("{:width$}  {:7}  detail\n", "check", "result");
    for f in findings {
        out.push_str(&format!(
            "{:width$}  {:7}  {}\n",
            f.check,
            f.verdict.label(),
            f.detail
        ));
    }
    out
}
