//! Talking to the ruleIQ API as a simulated user: signing in, sending a request that
//! the report groups under its route template, and reading the JSON answer.
//!
//! Every request below fails its transaction on anything but a 2xx answer, so that a
//! step which needs an id from the one before never runs on a missing one. Goose has
//! already counted the failed request by its status code; the answer's body goes to
//! the debug log (`--debug-log`) to say why.

use std::sync::{Arc, OnceLock};

use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where the API lives below the host (the server's `API_V1_PREFIX`).
pub const PREFIX: &str = "/api/v1";

/// The passphrase of the accounts the onboarding users register: long, and not a
/// common password, so the server's checks accept it.
pub const NEW_ACCOUNT_PASSWORD: &str = "heron compass lantern quarry";

/// The existing account the signed-in scenarios share.
#[derive(Debug, Clone)]
pub struct Account {
    email: String,
    password: String,
}

static ACCOUNT: OnceLock<Account> = OnceLock::new();

impl Account {
    /// The account named by `RULEIQ_LOAD_EMAIL` and `RULEIQ_LOAD_PASSWORD`.
    ///
    /// # Errors
    ///
    /// A message naming the variable that is missing or empty.
    pub fn from_env() -> Result<Self, String> {
        let read = |name: &str| match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(value),
            _ => Err(format!(
                "{name} is not set: the signed-in scenarios need an existing account \
                 (RULEIQ_LOAD_EMAIL and RULEIQ_LOAD_PASSWORD), such as the one \
                 `ruleiq demo --email … --password-stdin` makes"
            )),
        };
        Ok(Self {
            email: read("RULEIQ_LOAD_EMAIL")?,
            password: read("RULEIQ_LOAD_PASSWORD")?,
        })
    }

    /// Makes this the account `sign_in` uses. Goose calls transactions as plain
    /// functions, so the account is process-wide; it is set once, before the attack.
    pub fn install(self) {
        // A second call keeps the first account; there is only ever one.
        let _ = ACCOUNT.set(self);
    }
}

/// An access token. Cloned into each request, so shared rather than copied.
#[derive(Debug, Clone)]
pub struct Token(Arc<str>);

impl Token {
    fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a request sends.
pub enum Body {
    Empty,
    Json(serde_json::Value),
    Form(Form),
}

/// A `multipart/form-data` body, encoded by hand: the server reads it like any
/// browser's, and it keeps reqwest's multipart feature (and its extra dependencies)
/// out of the build.
pub struct Form {
    boundary: String,
    bytes: Vec<u8>,
}

impl Form {
    pub fn new() -> Self {
        Self {
            boundary: format!("ruleiq-load-{:016x}", rand::random::<u64>()),
            bytes: Vec::new(),
        }
    }

    /// A text field; repeat the name for a list (`control_ids`).
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.bytes.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self
    }

    /// A file field.
    pub fn file(mut self, name: &str, file_name: &str, content_type: &str, data: &[u8]) -> Self {
        self.bytes.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.bytes.extend_from_slice(data);
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    fn finish(mut self) -> (String, Vec<u8>) {
        self.bytes
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.bytes,
        )
    }
}

/// A successful answer: its metric (to mark it failed if its body is wrong) and body.
pub struct Answer {
    request: GooseRequestMetric,
    body: Vec<u8>,
}

impl Answer {
    /// The body as `T`; a body that is not is a failure of this request.
    ///
    /// # Errors
    ///
    /// The request, marked failed, when the body does not parse as `T`.
    pub fn json<T: DeserializeOwned>(
        mut self,
        user: &mut GooseUser,
    ) -> Result<T, Box<TransactionError>> {
        match serde_json::from_slice(&self.body) {
            Ok(value) => Ok(value),
            Err(e) => {
                let body = String::from_utf8_lossy(&self.body).into_owned();
                user.set_failure(
                    &format!("unexpected answer: {e}"),
                    &mut self.request,
                    None,
                    Some(&body),
                )?;
                Err(Box::new(TransactionError::RequestFailed {
                    raw_request: Box::new(self.request),
                }))
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

/// Sends `method path` (below the prefix) with `token` as the bearer, reported under
/// `route`, the path's template (`/frameworks/{slug}/controls`), so that the summary
/// has one row per route rather than one per id.
///
/// # Errors
///
/// The failed request when there is no answer or it is not a 2xx; a transaction
/// error when the request cannot be built.
pub async fn send(
    user: &mut GooseUser,
    token: Option<&Token>,
    method: GooseMethod,
    route: &str,
    path: &str,
    body: Body,
) -> Result<Answer, Box<TransactionError>> {
    let mut builder = user.get_request_builder(&method, &format!("{PREFIX}{path}"))?;
    if let Some(token) = token {
        builder = builder.bearer_auth(token.as_str());
    }
    builder = match body {
        Body::Empty => builder,
        Body::Json(value) => builder.json(&value),
        Body::Form(form) => {
            let (content_type, bytes) = form.finish();
            builder.header("content-type", content_type).body(bytes)
        }
    };
    let request = GooseRequest::builder()
        .method(method)
        .name(route)
        .set_request_builder(builder)
        .build();
    let goose = user.request(request).await?;
    let request = goose.request;
    let failed = |request: GooseRequestMetric| {
        Box::new(TransactionError::RequestFailed {
            raw_request: Box::new(request),
        })
    };
    let Ok(response) = goose.response else {
        // No answer at all (refused, reset, timed out): Goose counted it already.
        return Err(failed(request));
    };
    let status = response.status();
    // The body is read to its end either way, so the connection goes back to the pool.
    let body: Vec<u8> = match response.bytes().await {
        Ok(bytes) => bytes.into(),
        Err(e) => {
            let mut request = request;
            user.set_failure(
                &format!("reading the answer: {e}"),
                &mut request,
                None,
                None,
            )?;
            return Err(failed(request));
        }
    };
    if !status.is_success() {
        // Not `set_failure`, which also logs every failure to the console: under
        // overload that is thousands of lines a second.
        let text = String::from_utf8_lossy(&body);
        user.log_debug(&status.to_string(), Some(&request), None, Some(&text))?;
        return Err(failed(request));
    }
    Ok(Answer { request, body })
}

/// `GET path`, reported under `route`.
///
/// # Errors
///
/// As [`send`].
pub async fn get(
    user: &mut GooseUser,
    token: &Token,
    route: &str,
    path: &str,
) -> Result<Answer, Box<TransactionError>> {
    send(
        user,
        Some(token),
        GooseMethod::Get,
        route,
        path,
        Body::Empty,
    )
    .await
}

/// `GET path` read as `T`.
///
/// # Errors
///
/// As [`send`] and [`Answer::json`].
pub async fn get_json<T: DeserializeOwned>(
    user: &mut GooseUser,
    token: &Token,
    route: &str,
    path: &str,
) -> Result<T, Box<TransactionError>> {
    get(user, token, route, path).await?.json(user)
}

/// `method path` with a JSON body, its answer read as `T`.
///
/// # Errors
///
/// As [`send`] and [`Answer::json`].
pub async fn send_json<T: DeserializeOwned>(
    user: &mut GooseUser,
    token: Option<&Token>,
    method: GooseMethod,
    route: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<T, Box<TransactionError>> {
    send(user, token, method, route, path, Body::Json(body))
        .await?
        .json(user)
}

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
}

/// The token every user shares when `RULEIQ_LOAD_SHARED_LOGIN=1`, made before the
/// run by [`sign_in_for_all`].
static SHARED: OnceLock<Token> = OnceLock::new();

/// Signs in as the installed account (`POST /auth/login`), or takes the shared token
/// when the run made one.
///
/// # Errors
///
/// A transaction error when no account was installed; the failed request when the
/// server refuses.
pub async fn sign_in(user: &mut GooseUser) -> Result<Token, Box<TransactionError>> {
    if let Some(token) = SHARED.get() {
        return Ok(token.clone());
    }
    let account = ACCOUNT
        .get()
        .ok_or("no account: set RULEIQ_LOAD_EMAIL and RULEIQ_LOAD_PASSWORD")?;
    let body = serde_json::json!({ "email": account.email, "password": account.password });
    let tokens: Tokens = send_json(
        user,
        None,
        GooseMethod::Post,
        "/auth/login",
        "/auth/login",
        body,
    )
    .await?;
    Ok(token(tokens.access_token))
}

/// Signs in once, before any user starts (Goose's `test_start`), for every user to
/// share. A capacity measurement wants this: each sign-in writes the organisation's
/// audit log, which makes the server recompute its dashboard and readiness summary,
/// so thirty-two sign-ins inside the measured window put seconds of recomputation
/// into its tail. Goose ignores what this returns, so a failure is printed here;
/// the users then sign in for themselves.
///
/// # Errors
///
/// As [`sign_in`].
pub async fn sign_in_for_all(user: &mut GooseUser) -> TransactionResult {
    match sign_in(user).await {
        Ok(token) => {
            // Only ever set here, once, before the users start.
            let _ = SHARED.set(token);
            Ok(())
        }
        Err(e) => {
            eprintln!("ruleiq-load: the shared sign-in failed ({e}); each user signs in");
            Err(e)
        }
    }
}

/// An access token the server gave.
pub fn token(access_token: String) -> Token {
    Token(Arc::from(access_token))
}

/// This user's state of type `S`, which its `on_start` transaction stored.
///
/// # Errors
///
/// A transaction error when there is none: signing in failed (under overload, a
/// 429). The user first pauses for a second. Without the pause, a scenario with no
/// wait time fails its transactions in a loop that never awaits, and Goose's
/// unbounded metrics channel grew by gigabytes in seconds until the kernel killed it.
pub async fn state<S: Clone + Send + Sync + 'static>(
    user: &GooseUser,
) -> Result<S, Box<TransactionError>> {
    if let Some(state) = user.get_session_data::<S>() {
        return Ok(state.clone());
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    Err("not signed in: the on_start transaction failed".into())
}

/// A page of a list endpoint (`{items, next_cursor}`).
#[derive(Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
}

/// Anything with an id.
#[derive(Deserialize)]
pub struct Id {
    pub id: String,
}

/// The frameworks the organisation has assessed, best known first: slugs from
/// `/compliance/status`, or the whole library from `/frameworks` when none is.
///
/// # Errors
///
/// As [`send`]; a transaction error when there is no framework at all.
pub async fn framework_slugs(
    user: &mut GooseUser,
    token: &Token,
) -> Result<Vec<String>, Box<TransactionError>> {
    #[derive(Deserialize)]
    struct Readiness {
        framework: Slugged,
    }
    #[derive(Deserialize)]
    struct Status {
        frameworks: Vec<Readiness>,
    }
    #[derive(Deserialize)]
    struct Slugged {
        slug: String,
    }
    let status: Status = get_json(user, token, "/compliance/status", "/compliance/status").await?;
    let mut slugs: Vec<String> = status
        .frameworks
        .into_iter()
        .map(|r| r.framework.slug)
        .collect();
    if slugs.is_empty() {
        let library: Page<Slugged> = get_json(user, token, "/frameworks", "/frameworks").await?;
        slugs = library.items.into_iter().map(|f| f.slug).collect();
    }
    if slugs.is_empty() {
        return Err("the server has no frameworks: run `ruleiq seed`".into());
    }
    Ok(slugs)
}

/// One of `items`, chosen at random.
pub fn pick<T>(items: &[T]) -> Option<&T> {
    if items.is_empty() {
        None
    } else {
        items.get(rand::random_range(0..items.len()))
    }
}
