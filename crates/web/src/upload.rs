//! Reading a `multipart/form-data` upload as it arrives: text fields are collected
//! (each small), and the one file part is handed to the evidence service while it
//! streams, so the body is never held whole in memory.
//!
//! The rules every upload route shares: exactly one part named `file`; text fields of
//! at most [`MAX_FIELD`] bytes and at most [`MAX_FIELDS`] of them; a body that breaks
//! off or has no closing boundary is a 400. A check the caller gives runs when the
//! file part begins, so a form whose CSRF token is missing or wrong is refused before
//! any of its file is stored.

use axum::{
    body::Body,
    http::{HeaderMap, header},
};
use futures::StreamExt;
use ruleiq_services::evidence::{Evidence, UploadedFile};
use std::collections::HashMap;

use crate::problem::ApiError;

/// Largest text field, in bytes.
pub const MAX_FIELD: u64 = 16 * 1024;
/// Most text fields in one upload.
pub const MAX_FIELDS: usize = 600;
/// What a multipart body may add to `MAX_UPLOAD_SIZE`: boundaries, part headers
/// and the text fields.
pub const MULTIPART_SLACK: u64 = 1024 * 1024;

/// An upload's text fields (repeatable) and its stored file.
#[derive(Debug, Default)]
pub struct Upload {
    pub fields: HashMap<String, Vec<String>>,
    pub file: Option<UploadedFile>,
}

impl Upload {
    /// The first value of a field, trimmed; `None` when absent or blank.
    #[must_use]
    pub fn text(&self, name: &str) -> Option<String> {
        self.fields
            .get(name)
            .and_then(|v| v.first())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// Every value of a repeatable field.
    #[must_use]
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields.get(name).cloned().unwrap_or_default()
    }
}

/// The boundary of a `multipart/form-data` request, or `None` for any other type.
#[must_use]
pub fn boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    multer::parse_boundary(ct).ok()
}

fn malformed(e: &multer::Error) -> ApiError {
    match e {
        multer::Error::FieldSizeExceeded { field_name, .. } => ApiError::Validation {
            detail: format!(
                "{}: at most {MAX_FIELD} bytes",
                field_name.as_deref().unwrap_or("a field")
            ),
            errors: vec![crate::problem::FieldError {
                field: field_name.clone().unwrap_or_default(),
                message: format!("at most {MAX_FIELD} bytes"),
            }],
        },
        multer::Error::StreamSizeExceeded { .. } => {
            ApiError::PayloadTooLarge("the upload is larger than MAX_UPLOAD_SIZE allows".into())
        }
        other => ApiError::BadRequest(format!(
            "the multipart body is malformed ({other}); send multipart/form-data with one part named `file`"
        )),
    }
}

/// Reads a multipart body; `before_file` runs with the fields seen so far when the
/// file part begins. The file's own size limit is the evidence service's, enforced
/// as it streams (so an oversized file is a 413, not a broken body).
///
/// # Errors
/// 400 for a malformed body, 413 past the limit, 415 for a refused file, 422 for a
/// missing or second file or an oversized field.
pub async fn read(
    evidence: &Evidence,
    boundary: String,
    body: Body,
    before_file: impl Fn(&HashMap<String, Vec<String>>) -> Result<(), ApiError>,
) -> Result<Upload, ApiError> {
    let limit = evidence.max_upload_size() + MULTIPART_SLACK;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limit)
            .per_field(limit),
    );
    let mut multipart = multer::Multipart::with_constraints(
        OneChunkAtATime::new(body.into_data_stream()),
        boundary,
        constraints,
    );
    let result = read_fields(evidence, &mut multipart, before_file).await;
    if result.is_err() {
        // Read what is left (bounded by the stream limit), so the client is still
        // listening when the refusal arrives rather than seeing its upload reset.
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    }
    result
}

async fn read_fields(
    evidence: &Evidence,
    multipart: &mut multer::Multipart<'static>,
    before_file: impl Fn(&HashMap<String, Vec<String>>) -> Result<(), ApiError>,
) -> Result<Upload, ApiError> {
    let mut upload = Upload::default();
    let mut count = 0usize;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(malformed(&e)),
        };
        count += 1;
        if count > MAX_FIELDS {
            return Err(ApiError::BadRequest(format!(
                "at most {MAX_FIELDS} form fields in one upload"
            )));
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" || field.file_name().is_some() {
            if name != "file" {
                return Err(crate::api::frameworks::invalid(
                    &name,
                    "the file part must be named `file`",
                ));
            }
            if upload.file.is_some() {
                return Err(crate::api::frameworks::invalid(
                    "file",
                    "send one file per request",
                ));
            }
            before_file(&upload.fields)?;
            let file_name = field.file_name().unwrap_or_default().to_owned();
            if file_name.is_empty() {
                // A browser sends an empty, unnamed part when no file was chosen.
                let mut field = field;
                while let Ok(Some(_)) = field.chunk().await {}
                continue;
            }
            let stored = evidence
                .store_upload(&file_name, field.map(|c| c.map_err(|e| malformed(&e))))
                .await?;
            upload.file = Some(stored);
        } else {
            let mut text = Vec::new();
            let mut field = field;
            loop {
                match field.chunk().await {
                    Ok(Some(c)) => {
                        if text.len() as u64 + c.len() as u64 > MAX_FIELD {
                            return Err(crate::api::frameworks::invalid(
                                &name,
                                &format!("at most {MAX_FIELD} bytes"),
                            ));
                        }
                        text.extend_from_slice(&c);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(malformed(&e)),
                }
            }
            let text = String::from_utf8(text)
                .map_err(|_| crate::api::frameworks::invalid(&name, "must be UTF-8 text"))?;
            upload.fields.entry(name).or_default().push(text);
        }
    }
    Ok(upload)
}

/// Hands multer one chunk per poll. multer pulls from its source until the source
/// says "not ready", so on a fast connection it would copy megabytes of a body into
/// its own buffer ahead of the file writer; answering "not ready" (and asking to be
/// polled again at once) after each chunk keeps what one upload holds to about a
/// chunk, and lets the socket push back on the client instead.
struct OneChunkAtATime<S> {
    inner: S,
    paused: bool,
}

impl<S> OneChunkAtATime<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            paused: false,
        }
    }
}

impl<S: futures::Stream + Unpin> futures::Stream for OneChunkAtATime<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.paused {
            self.paused = false;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        let next = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if next.is_ready() {
            self.paused = true;
        }
        next
    }
}
