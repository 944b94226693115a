//! The framework browser: the library, a framework's headings and controls, a control
//! with its guidance, questions and mappings, a side-by-side comparison, and search
//! (results as you type with a small script; a plain form without it).

use askama::Template;
use axum::{
    Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use ruleiq_services::{
    frameworks::{Comparison, ControlFilter, ControlView, FrameworkSummary},
    search::SearchHit,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, Viewer};
use crate::{api::search::SearchParams, problem::ApiError, state::AppState};

const SEARCH_JS: &str = include_str!("../../static/search.js");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/frameworks", get(library))
        .route("/frameworks/compare", get(compare))
        .route("/frameworks/{slug}", get(framework))
        .route("/controls/{id}", get(control))
        .route("/search", get(search))
        .route("/static/search.js", get(script))
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SEARCH_JS,
    )
        .into_response()
}

fn sign_in_first(viewer: &Viewer) -> Response {
    viewer.redirect("/sign-in", Some("Please sign in first."), None)
}

fn org(viewer: &Viewer) -> Option<Uuid> {
    viewer
        .account
        .as_ref()
        .map(|a| a.principal.organization_id.as_uuid())
}

#[derive(Template)]
#[template(path = "frameworks/not_found.html")]
struct NotFoundPage {
    chrome: Chrome,
    what: String,
}

fn not_found(viewer: &Viewer, what: &str) -> Response {
    viewer.page(
        StatusCode::NOT_FOUND,
        &NotFoundPage {
            chrome: viewer.chrome(),
            what: what.to_owned(),
        },
    )
}

fn failed(e: impl std::fmt::Display) -> Response {
    ApiError::internal(e).into_response()
}

#[derive(Template)]
#[template(path = "frameworks/library.html")]
struct LibraryPage {
    chrome: Chrome,
    frameworks: Vec<FrameworkSummary>,
}

async fn library(State(state): State<AppState>, viewer: Viewer) -> Response {
    if viewer.account.is_none() {
        return sign_in_first(&viewer);
    }
    match state.catalog.list(org(&viewer)).await {
        Ok(frameworks) => viewer.page(
            StatusCode::OK,
            &LibraryPage {
                chrome: viewer.chrome(),
                frameworks,
            },
        ),
        Err(e) => failed(e),
    }
}

/// A heading with its controls, for the framework page.
struct Section {
    reference: String,
    name: String,
    depth: usize,
    control_count: i64,
    controls: Vec<ControlView>,
}

#[derive(Template)]
#[template(path = "frameworks/framework.html")]
struct FrameworkPage {
    chrome: Chrome,
    framework: FrameworkSummary,
    sections: Vec<Section>,
    loose: Vec<ControlView>,
}

async fn framework(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Response {
    if viewer.account.is_none() {
        return sign_in_first(&viewer);
    }
    let org = org(&viewer);
    let framework = match state.catalog.get(org, &slug).await {
        Ok(Some(f)) => f,
        Ok(None) => return not_found(&viewer, "That framework is not in the library."),
        Err(e) => return failed(e),
    };
    let filter = ControlFilter {
        limit: 20_000, // the importer's bound on a catalog's controls
        ..ControlFilter::default()
    };
    let controls = match state.catalog.controls(org, &framework, &filter).await {
        Ok((c, _)) => c,
        Err(e) => return failed(e),
    };
    let depth_of = |reference: &str| {
        let mut depth = 0;
        let mut at = framework.domains.iter().find(|d| d.reference == reference);
        while let Some(d) = at.and_then(|d| d.parent.as_ref()) {
            depth += 1;
            at = framework.domains.iter().find(|x| &x.reference == d);
            if depth > 8 {
                break;
            }
        }
        depth
    };
    let mut sections: Vec<Section> = framework
        .domains
        .iter()
        .map(|d| Section {
            reference: d.reference.clone(),
            name: d.name.clone(),
            depth: depth_of(&d.reference),
            control_count: d.control_count,
            controls: Vec::new(),
        })
        .collect();
    let mut loose = Vec::new();
    for c in controls {
        match sections
            .iter_mut()
            .find(|s| Some(&s.reference) == c.domain.as_ref())
        {
            Some(s) => s.controls.push(c),
            None => loose.push(c),
        }
    }
    viewer.page(
        StatusCode::OK,
        &FrameworkPage {
            chrome: viewer.chrome(),
            framework,
            sections,
            loose,
        },
    )
}

#[derive(Template)]
#[template(path = "frameworks/control.html")]
struct ControlPage {
    chrome: Chrome,
    control: ControlView,
    framework_name: String,
}

async fn control(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    if viewer.account.is_none() {
        return sign_in_first(&viewer);
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&viewer, "No control has that address.");
    };
    let org = org(&viewer);
    let control = match state.catalog.control(org, id).await {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(&viewer, "No control has that address."),
        Err(e) => return failed(e),
    };
    let framework_name = match state.catalog.get(org, &control.framework_slug).await {
        Ok(Some(f)) => f.name,
        Ok(None) => control.framework_slug.clone(),
        Err(e) => return failed(e),
    };
    viewer.page(
        StatusCode::OK,
        &ControlPage {
            chrome: viewer.chrome(),
            control,
            framework_name,
        },
    )
}

#[derive(Debug, Deserialize)]
struct CompareParams {
    a: Option<String>,
    b: Option<String>,
}

#[derive(Template)]
#[template(path = "frameworks/compare.html")]
struct ComparePage {
    chrome: Chrome,
    frameworks: Vec<FrameworkSummary>,
    a: String,
    b: String,
    error: Option<String>,
    comparison: Option<Comparison>,
}

async fn compare(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<CompareParams>,
) -> Response {
    if viewer.account.is_none() {
        return sign_in_first(&viewer);
    }
    let org = org(&viewer);
    let frameworks = match state.catalog.list(org).await {
        Ok(f) => f,
        Err(e) => return failed(e),
    };
    let a = params.a.unwrap_or_default();
    let b = params.b.unwrap_or_default();
    let pick = |slug: &str| frameworks.iter().find(|f| f.slug == slug).cloned();
    let (mut error, mut comparison, mut status) = (None, None, StatusCode::OK);
    if !a.is_empty() || !b.is_empty() {
        match (pick(&a), pick(&b)) {
            (Some(fa), Some(fb)) if fa.id != fb.id => match state.catalog.compare(fa, fb).await {
                Ok(c) => comparison = Some(c),
                Err(e) => return failed(e),
            },
            (Some(_), Some(_)) => {
                error = Some("Choose two different frameworks.".to_owned());
                status = StatusCode::UNPROCESSABLE_ENTITY;
            }
            _ => {
                error = Some("Choose two frameworks from the lists.".to_owned());
                status = StatusCode::UNPROCESSABLE_ENTITY;
            }
        }
    }
    viewer.page(
        status,
        &ComparePage {
            chrome: viewer.chrome(),
            frameworks,
            a,
            b,
            error,
            comparison,
        },
    )
}

#[derive(Debug, Deserialize)]
struct SearchPageParams {
    q: Option<String>,
    /// `1`: only the results, for the script that updates them as you type.
    partial: Option<String>,
}

#[derive(Template)]
#[template(path = "frameworks/results.html")]
struct Results {
    q: String,
    hits: Vec<SearchHit>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "frameworks/search.html")]
struct SearchPage {
    chrome: Chrome,
    results: Results,
}

async fn search(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<SearchPageParams>,
) -> Response {
    let Some(org) = org(&viewer) else {
        if params.partial.is_some() {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        return sign_in_first(&viewer);
    };
    let q = params.q.unwrap_or_default();
    let mut results = Results {
        q: q.clone(),
        hits: Vec::new(),
        error: None,
    };
    let mut status = StatusCode::OK;
    if !q.trim().is_empty() {
        let query = SearchParams {
            q: Some(q),
            kind: None,
            limit: Some(30),
        };
        match crate::api::search::run(&state, org, &query).await {
            Ok((hits, _)) => results.hits = hits,
            Err(ApiError::Validation { detail, .. }) => {
                let detail = detail.trim_start_matches("q: ");
                let mut sentence = detail[..1].to_uppercase() + &detail[1..];
                sentence.push('.');
                results.error = Some(sentence);
                status = StatusCode::UNPROCESSABLE_ENTITY;
            }
            Err(e) => return e.into_response(),
        }
    }
    if params.partial.as_deref() == Some("1") {
        return match results.render() {
            Ok(html) => {
                let mut response = (status, Html(html)).into_response();
                viewer.finish(&mut response);
                response
            }
            Err(e) => failed(e),
        };
    }
    viewer.page(
        status,
        &SearchPage {
            chrome: viewer.chrome(),
            results,
        },
    )
}
