//! The pages. For now the landing page, which points a person who has just started
//! ruleIQ at what is running; the application's pages build on this module.

use axum::{Router, response::Html, routing::get};

use crate::state::{AppState, VERSION};

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index))
}

async fn index() -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ruleIQ</title>
</head>
<body>
<header><h1>ruleIQ</h1></header>
<main>
<p>ruleIQ {VERSION} is running.</p>
<ul>
<li><a href="/api/docs/">API documentation</a></li>
<li><a href="/api/v1/health">Health</a></li>
<li><a href="/metrics">Metrics</a></li>
</ul>
</main>
</body>
</html>
"#
    ))
}
