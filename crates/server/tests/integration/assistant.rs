//! The assistant and AI costs over HTTP: answers with citations from the offline
//! engine and from a remote provider (a local server speaking OpenAI's wire format),
//! streamed over SSE, recorded in the ledger at exact cost, held to the budget, kept
//! within the organisation; and the bad input.

use reqwest::{Method, StatusCode};
use ruleiq_test_support::{TestApp, text};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{body_string_contains, header, method, path},
};

use crate::{
    assessments::send,
    evidence::upload,
    members::{Member, call, join, owner},
};

async fn conversation(app: &TestApp, m: &Member) -> String {
    let (status, c) = send(
        app,
        Method::POST,
        "/chat/conversations",
        &m.token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["title"], "New conversation");
    c["id"].as_str().unwrap().to_owned()
}

async fn ask(app: &TestApp, m: &Member, conversation: &str, question: &str) -> (StatusCode, Value) {
    send(
        app,
        Method::POST,
        &format!("/chat/conversations/{conversation}/messages"),
        &m.token,
        Some(json!({ "content": question })),
    )
    .await
}

/// Server-sent events of a response body: (event, data) pairs.
fn events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_owned());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            event.map(|e| (e, data))
        })
        .collect()
}

#[tokio::test]
async fn offline_answers_cite_the_library_stream_and_keep_history() {
    let app = TestApp::spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let c = conversation(&app, &ann).await;

    let (status, answer) = ask(
        &app,
        &ann,
        &c,
        "How should we protect accounts with multi-factor authentication?",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["provider"], "offline");
    assert_eq!(answer["status"], "complete");
    assert_eq!(answer["usage"]["cost_usd"], 0.0);
    let citations = answer["citations"].as_array().unwrap();
    assert!(!citations.is_empty(), "{answer}");
    assert!(
        citations.iter().all(|c| c["kind"] == "control"),
        "{citations:?}"
    );
    // Every marker in the text names one of the citations.
    let content = answer["content"].as_str().unwrap();
    for n in 1..=20 {
        if content.contains(&format!("[{n}]")) {
            assert!(
                n <= citations.len(),
                "[{n}] but {} citations: {content}",
                citations.len()
            );
        }
    }

    // Nothing to go on: said plainly, nothing cited.
    let (_, none) = ask(&app, &ann, &c, "xylophone zeppelin quasar").await;
    assert!(none["citations"].as_array().unwrap().is_empty(), "{none}");
    assert!(
        none["content"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("could not find"),
        "{none}"
    );

    // Streamed: tokens, then the stored message.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/chat/conversations/{c}/messages")))
        .bearer_auth(&ann.token)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "What must a backup policy say about restore tests?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = res.text().await.unwrap();
    let evs = events(&body);
    let tokens: String = evs
        .iter()
        .filter(|(e, _)| e == "token")
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let (last, done) = evs.last().unwrap();
    assert_eq!(last, "done", "{body}");
    let done: Value = serde_json::from_str(done).unwrap();
    assert!(
        evs.iter().filter(|(e, _)| e == "token").count() > 3,
        "{body}"
    );
    assert_eq!(done["status"], "complete");
    assert!(!tokens.is_empty());

    // The history, oldest first, and the title from the first question.
    let (_, conv) = send(
        &app,
        Method::GET,
        &format!("/chat/conversations/{c}"),
        &ann.token,
        None,
    )
    .await;
    let messages = conv["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 6, "{conv}");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[5]["id"], done["id"]);
    assert!(
        conv["title"]
            .as_str()
            .unwrap()
            .starts_with("How should we protect"),
        "{conv}"
    );
    let (_, list) = send(&app, Method::GET, "/chat/conversations", &ann.token, None).await;
    assert_eq!(list["items"][0]["id"], c.as_str());

    // The ledger: three offline calls, no cost.
    let (_, summary) = send(
        &app,
        Method::GET,
        "/ai/cost/daily-summary",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(summary["requests"], 3, "{summary}");
    assert_eq!(summary["total_cost_usd"], 0.0);
    assert_eq!(summary["by_feature"][0]["key"], "assistant");
    assert_eq!(summary["budget"]["status"], "ok");

    // Help with one assessment question cites that question's controls.
    let (_, a) = send(
        &app,
        Method::POST,
        "/assessments",
        &ann.token,
        Some(json!({"framework_id": "cyber-essentials"})),
    )
    .await;
    let aid = a["id"].as_str().unwrap();
    let (_, qs) = send(
        &app,
        Method::GET,
        &format!("/assessments/{aid}/questions"),
        &ann.token,
        None,
    )
    .await;
    let q = &qs["items"][0];
    let (status, help) = send(
        &app,
        Method::POST,
        &format!("/ai/assessments/{aid}/help"),
        &ann.token,
        Some(json!({"question_id": q["id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{help}");
    assert!(!help["content"].as_str().unwrap().is_empty());
    let refs: Vec<&str> = help["citations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["ref"].as_str())
        .collect();
    assert!(!refs.is_empty(), "{help}");

    // Delete.
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("/chat/conversations/{c}"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(
        &app,
        Method::GET,
        &format!("/chat/conversations/{c}"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

/// Waits for an evidence item's text to be extracted.
async fn extracted(app: &TestApp, m: &Member, id: &str) {
    for _ in 0..200 {
        let (_, item) = send(app, Method::GET, &format!("/evidence/{id}"), &m.token, None).await;
        if item["extraction"] == "done" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("extraction of {id} never finished");
}

/// A chat completion in OpenAI's response format.
fn completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_764_000_000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1234, "completion_tokens": 567, "total_tokens": 1801}
    })
}

#[tokio::test]
async fn a_remote_provider_is_grounded_costed_budgeted_and_never_sees_another_tenant() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            "Use multi-factor authentication on every account [1]. See also [9].",
        )))
        .mount(&mock)
        .await;
    let base = format!("{}/v1", mock.uri());
    let app = TestApp::spawn_with(|raw| {
        raw.openai_api_key = Some(text("sk-test-key"));
        raw.openai_base_url = Some(text(&base));
        raw.ai_max_retries = 0;
    })
    .await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let eve = owner(&app, "eve@example.org", "Eve Ltd").await;
    // Eve's evidence holds a word only she has.
    let (status, item) = upload(
        &app,
        &eve,
        "secret.txt",
        b"Our vault code word is zanzibarquokka and nobody else knows it.",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    extracted(&app, &eve, item["id"].as_str().unwrap()).await;

    let c = conversation(&app, &ann).await;
    let (status, answer) = ask(
        &app,
        &ann,
        &c,
        "What is the zanzibarquokka code word for multi-factor authentication?",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["provider"], "openai");
    assert_eq!(answer["model"], "gpt-4o-mini");
    // [9] named no source and is gone; [1] is a real one.
    let content = answer["content"].as_str().unwrap();
    assert!(!content.contains("[9]"), "{content}");
    assert!(content.contains("[1]"), "{content}");
    assert_eq!(answer["citations"].as_array().unwrap().len(), 1, "{answer}");
    // 1234 input and 567 output tokens at $0.15 and $0.60 a million: exactly $0.0005253.
    assert_eq!(answer["usage"]["input_tokens"], 1234);
    assert_eq!(answer["usage"]["output_tokens"], 567);
    assert_eq!(answer["usage"]["cost_usd"], 0.0005253);

    // What was sent: a system prompt with fenced sources, and nothing of Eve's.
    let sent: Vec<Request> = mock.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&sent[0].body).to_string();
    assert!(
        !body.contains("vault code word"),
        "another tenant's evidence reached the prompt"
    );
    let request: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(request["model"], "gpt-4o-mini");
    assert_eq!(request["messages"][0]["role"], "system");

    // Eve, asking the same, is given her own evidence.
    let ce = conversation(&app, &eve).await;
    let (_, hers) = ask(&app, &eve, &ce, "What is the zanzibarquokka code word?").await;
    assert!(
        hers["citations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "evidence"),
        "{hers}"
    );

    // An identical request is answered from the cache, at no cost: help with one
    // assessment question, asked twice.
    let (_, a) = send(
        &app,
        Method::POST,
        "/assessments",
        &ann.token,
        Some(json!({"framework_id": "cyber-essentials"})),
    )
    .await;
    let aid = a["id"].as_str().unwrap().to_owned();
    let (_, qs) = send(
        &app,
        Method::GET,
        &format!("/assessments/{aid}/questions"),
        &ann.token,
        None,
    )
    .await;
    let question = json!({"question_id": qs["items"][0]["id"]});
    let (status, first) = send(
        &app,
        Method::POST,
        &format!("/ai/assessments/{aid}/help"),
        &ann.token,
        Some(question.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["provider"], "openai");
    let calls = mock.received_requests().await.unwrap().len();
    let (_, second) = send(
        &app,
        Method::POST,
        &format!("/ai/assessments/{aid}/help"),
        &ann.token,
        Some(question),
    )
    .await;
    assert_eq!(second["content"], first["content"]);
    assert_eq!(second["usage"]["cost_usd"], 0.0, "{second}");
    assert_eq!(
        mock.received_requests().await.unwrap().len(),
        calls,
        "no second call"
    );
    let (_, summary) = send(
        &app,
        Method::GET,
        "/ai/cost/daily-summary",
        &ann.token,
        None,
    )
    .await;
    // Two paid calls at exactly $0.0005253 each, and one cache hit.
    assert_eq!(summary["total_cost_usd"], 0.0010506, "{summary}");
    assert_eq!(summary["requests"], 3);
    assert_eq!(summary["cache_hits"], 1);
    assert_eq!(summary["by_provider"][0]["key"], "openai");
    let features: Vec<&str> = summary["by_feature"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert_eq!(features, ["assessment_help", "assistant"]);

    // A hard budget already spent sends the next answer offline, saying why.
    let (status, budget) = send(
        &app,
        Method::PUT,
        "/ai/budget",
        &ann.token,
        Some(json!({"daily_limit_usd": 0.0001, "monthly_limit_usd": null, "warning_threshold_percent": 80, "hard_limit": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{budget}");
    let before = mock.received_requests().await.unwrap().len();
    let (_, capped) = ask(&app, &ann, &c, "How often must we review access rights?").await;
    assert_eq!(capped["provider"], "offline", "{capped}");
    assert!(
        capped["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("daily AI budget")),
        "{capped}"
    );
    assert_eq!(
        mock.received_requests().await.unwrap().len(),
        before,
        "no remote call"
    );
    let (_, summary) = send(
        &app,
        Method::GET,
        "/ai/cost/daily-summary",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(summary["budget"]["status"], "exceeded", "{summary}");
    let (_, usage) = send(
        &app,
        Method::GET,
        "/ai/cost/usage?group_by=provider",
        &ann.token,
        None,
    )
    .await;
    let keys: Vec<&str> = usage["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert!(
        keys.contains(&"openai") && keys.contains(&"offline"),
        "{usage}"
    );

    // A policy tailored by the model keeps its provenance; the requester may not
    // approve it.
    let tailored = format!(
        "## Purpose\n\n{}\n\n## Rules\n\n{}\n",
        "Ann Ltd keeps access to what each role needs. ".repeat(40),
        "Accounts must use multi-factor authentication. ".repeat(40)
    );
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("Adapt the draft policy"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(&tailored)))
        .with_priority(1)
        .mount(&mock)
        .await;
    let (status, _) = send(
        &app,
        Method::PUT,
        "/ai/budget",
        &ann.token,
        Some(json!({"daily_limit_usd": null, "hard_limit": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let p = crate::policies::generate(&app, &ann, "access_control").await;
    assert_eq!(p["generated_by"]["provider"], "openai", "{p}");
    assert_eq!(p["generated_by"]["model"], "gpt-4o-mini");
    assert!(
        p["content_markdown"]
            .as_str()
            .unwrap()
            .contains("Accounts must use multi-factor")
    );
    let sent = mock.received_requests().await.unwrap();
    let last = String::from_utf8_lossy(&sent.last().unwrap().body).to_string();
    assert!(
        last.contains("Ann Ltd"),
        "the draft, filled from the profile, was sent"
    );
    let id = p["id"].as_str().unwrap();
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/policies/{id}/submit"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/policies/{id}/approve"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the member who asked for it may not approve it"
    );

    // Eve's ledger is her own.
    let (_, theirs) = send(
        &app,
        Method::GET,
        "/ai/cost/daily-summary",
        &eve.token,
        None,
    )
    .await;
    assert_eq!(
        theirs["by_provider"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["key"] == "openai")
            .count(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_key_and_a_dropped_stream_still_answer_and_say_so() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}
        })))
        .mount(&mock)
        .await;
    let base = format!("{}/v1", mock.uri());
    let app = TestApp::spawn_with(|raw| {
        raw.openai_api_key = Some(text("sk-wrong"));
        raw.openai_base_url = Some(text(&base));
    })
    .await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let c = conversation(&app, &ann).await;
    let (status, answer) = ask(&app, &ann, &c, "How do we manage passwords?").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["provider"], "offline");
    let notices = answer["notices"].as_array().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n.as_str().unwrap().contains("openai")),
        "{answer}"
    );
    assert!(
        !answer.to_string().contains("sk-wrong"),
        "the key never leaks"
    );
    // The ledger keeps the failure with the call the offline engine answered.
    let (_, summary) = send(
        &app,
        Method::GET,
        "/ai/cost/daily-summary",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(summary["errors"], 1, "{summary}");
    assert_eq!(summary["by_provider"][0]["key"], "offline");
    let (_, providers) = send(&app, Method::GET, "/ai/providers", &ann.token, None).await;
    let openai = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap();
    assert_eq!(openai["configured"], true);
    assert_eq!(openai["state"], "open", "{providers}");
    let offline = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "offline")
        .unwrap();
    assert_eq!(offline["state"], "closed");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("ruleiq_ai_provider_state{provider=\"openai\",configured=\"true\"} 2"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_stream_cut_off_part_way_is_stored_as_cut_short() {
    // A server that sends two tokens of an OpenAI stream and hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                let chunk = |t: &str| {
                    format!(
                        "data: {}\n\n",
                        json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":t},"finish_reason":null}]})
                    )
                };
                let body = format!("{}{}", chunk("Keep backups "), chunk("offline and "));
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket
                    .write_all(format!("{:x}\r\n{body}\r\n", body.len()).as_bytes())
                    .await;
                let _ = socket.flush().await;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                drop(socket);
            });
        }
    });
    let base = format!("http://{addr}/v1");
    let app = TestApp::spawn_with(|raw| {
        raw.openai_api_key = Some(text("sk-test"));
        raw.openai_base_url = Some(text(&base));
        raw.ai_max_retries = 0;
    })
    .await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let c = conversation(&app, &ann).await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/chat/conversations/{c}/messages")))
        .bearer_auth(&ann.token)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "How should we keep backups?"}))
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    let evs = events(&body);
    let (last, done) = evs.last().unwrap();
    assert_eq!(last, "done", "{body}");
    let done: Value = serde_json::from_str(done).unwrap();
    assert_eq!(done["status"], "cut_short", "{done}");
    assert_eq!(done["provider"], "openai");
    assert!(
        done["content"]
            .as_str()
            .unwrap()
            .starts_with("Keep backups offline and"),
        "{done}"
    );
    assert!(
        done["notices"][0].as_str().unwrap().contains("cut short"),
        "{done}"
    );
    let (_, conv) = send(
        &app,
        Method::GET,
        &format!("/chat/conversations/{c}"),
        &ann.token,
        None,
    )
    .await;
    assert_eq!(conv["messages"][1]["status"], "cut_short");
    app.stop().await;
}

#[tokio::test]
async fn bad_assistant_input_is_refused() {
    let app = TestApp::spawn().await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let bob = join(&app, &ann, "bob@example.co.uk", "compliance_manager").await;
    let eve = owner(&app, "eve@example.org", "Eve Ltd").await;
    let c = conversation(&app, &ann).await;

    for content in ["", "   \n  "] {
        let (status, p) = ask(&app, &ann, &c, content).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    }
    let (status, p) = ask(&app, &ann, &c, &"why ".repeat(3_000)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("8000"), "{p}");
    let res = call(
        &app,
        Method::POST,
        &format!("/chat/conversations/{c}/messages"),
        &ann.token,
        Some(json!({"content": "x".repeat(3 * 1024 * 1024)})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/chat/conversations/{c}/messages"),
        &ann.token,
        Some(json!({"text": "hi"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing was stored.
    let (_, conv) = send(
        &app,
        Method::GET,
        &format!("/chat/conversations/{c}"),
        &ann.token,
        None,
    )
    .await;
    assert!(conv["messages"].as_array().unwrap().is_empty(), "{conv}");

    // Another organisation's, or another member's, conversation does not exist.
    for who in [&eve, &bob] {
        let (status, p) = ask(&app, who, &c, "hello").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
        let (status, _) = send(
            &app,
            Method::GET,
            &format!("/chat/conversations/{c}"),
            &who.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = send(
            &app,
            Method::DELETE,
            &format!("/chat/conversations/{c}"),
            &who.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = send(
        &app,
        Method::POST,
        "/chat/conversations",
        &ann.token,
        Some(json!({"title": "t".repeat(300)})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Budgets: negative, absurd, wrong threshold.
    for body in [
        json!({"daily_limit_usd": -1, "hard_limit": true}),
        json!({"monthly_limit_usd": 5_000_000}),
        json!({"daily_limit_usd": 1, "warning_threshold_percent": 0}),
        json!({"daily_limit_usd": "lots"}),
    ] {
        let (status, p) = send(
            &app,
            Method::PUT,
            "/ai/budget",
            &ann.token,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
    }
    let (_, budget) = send(&app, Method::GET, "/ai/budget", &ann.token, None).await;
    assert!(
        budget["daily_limit_usd"].is_null(),
        "nothing was saved: {budget}"
    );
    // Only those who manage AI may set it.
    let viewer = join(&app, &ann, "vic@example.co.uk", "viewer").await;
    let (status, _) = send(
        &app,
        Method::PUT,
        "/ai/budget",
        &viewer.token,
        Some(json!({"daily_limit_usd": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Help: another organisation's assessment, an unknown question.
    let (_, a) = send(
        &app,
        Method::POST,
        "/assessments",
        &ann.token,
        Some(json!({"framework_id": "cyber-essentials"})),
    )
    .await;
    let aid = a["id"].as_str().unwrap();
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/ai/assessments/{aid}/help"),
        &eve.token,
        Some(json!({"question_id": uuid::Uuid::now_v7()})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/ai/assessments/{aid}/help"),
        &ann.token,
        Some(json!({"question_id": uuid::Uuid::now_v7()})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/ai/assessments/{aid}/help"),
        &ann.token,
        Some(json!({"question_id": "nope"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(
        &app,
        Method::GET,
        "/ai/cost/usage?from=2026-02-01&to=2026-01-01",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(
        &app,
        Method::GET,
        "/ai/cost/daily-summary?date=yesterday",
        &ann.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

#[tokio::test]
async fn the_ai_rate_limit_applies_per_member() {
    let app = TestApp::spawn_with(|raw| {
        raw.ai_rate_limit_per_minute = 2;
    })
    .await;
    let ann = owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let c = conversation(&app, &ann).await;
    let (status, _) = ask(&app, &ann, &c, "What is a risk register?").await;
    assert_eq!(status, StatusCode::CREATED);
    let res = call(
        &app,
        Method::POST,
        &format!("/chat/conversations/{c}/messages"),
        &ann.token,
        Some(json!({"content": "And another?"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    app.stop().await;
}
