//! Markdown to HTML for text we did not write ourselves: policies (edited by members,
//! drafted by models) and the assistant's answers. Raw HTML is shown as text, images
//! as their description, and links only when they are http(s), mailto or relative,
//! so nothing in the text can run script, load a resource, or style the page.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// Safe HTML for `markdown`.
#[must_use]
pub fn to_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut in_image = 0usize;
    let mut dropped_links = Vec::new();
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Some(Event::Text(text)),
        Event::Start(Tag::Image { .. }) => {
            in_image += 1;
            None
        }
        Event::End(TagEnd::Image) => {
            in_image = in_image.saturating_sub(1);
            None
        }
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            if safe_url(&dest_url) {
                dropped_links.push(false);
                Some(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }))
            } else {
                dropped_links.push(true);
                None
            }
        }
        Event::End(TagEnd::Link) => {
            if dropped_links.pop().unwrap_or(true) {
                None
            } else {
                Some(Event::End(TagEnd::Link))
            }
        }
        other => Some(other),
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: &CowStr<'_>) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    match lower.split_once(':') {
        // A colon before any slash is a scheme.
        Some((scheme, _)) if !scheme.contains('/') => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => !lower.starts_with("//"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_html_and_dangerous_links_are_inert() {
        let html = to_html(
            "# Title\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) \
             [ok](https://ruleiq.dev) [rel](/policies) ![x](https://evil.example/p.png)\n\n\
             <img src=x onerror=alert(1)>",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains(r#"<a href="https://ruleiq.dev">ok</a>"#),
            "{html}"
        );
        assert!(html.contains(r#"<a href="/policies">rel</a>"#), "{html}");
        assert!(
            html.contains("click"),
            "the text of a dropped link stays: {html}"
        );
        assert!(html.contains("<h1>Title</h1>"));
    }

    #[test]
    fn tables_render() {
        let html = to_html("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(
            html.contains("<table>") && html.contains("<td>2</td>"),
            "{html}"
        );
    }
}
