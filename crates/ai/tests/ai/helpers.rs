//! Shared fixtures: requests, settings pointing at a mock server, stream collection,
//! and a raw TCP server that sends part of a response and hangs up.

use std::time::Duration;

use futures::StreamExt;
use ruleiq_ai::{
    AiSettings, ChatRequest, EventStream, LlmError, Message, ProviderConfig, ProviderName, Source,
    StreamEvent, Task,
};
use secrecy::SecretString;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use url::Url;

pub const MAX_TOKENS: u32 = 300;
pub const INSTRUCTIONS: &str = "You are ruleIQ's compliance assistant.";

pub fn request() -> ChatRequest {
    ChatRequest {
        task: Task::Answer,
        instructions: INSTRUCTIONS.into(),
        messages: vec![
            Message::user("Do we have an access policy?"),
            Message::assistant("Yes, POL-7 [1]."),
            Message::user("How often are access rights reviewed?"),
        ],
        sources: vec![Source {
            kind: "policy".into(),
            id: "pol-7".into(),
            reference: "POL-7".into(),
            title: "Access Control Policy".into(),
            text: "Access rights are reviewed every quarter by the system owner.".into(),
            framework_slug: Some("iso27001".into()),
        }],
        draft: None,
        max_output_tokens: MAX_TOKENS,
    }
}

pub fn config(name: ProviderName, base: &str, key: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        name,
        api_key: key.map(SecretString::from),
        base_url: Url::parse(base).unwrap(),
        model: name.default_model().to_owned(),
    }
}

pub fn settings(providers: Vec<ProviderConfig>) -> AiSettings {
    AiSettings {
        providers,
        timeout: Duration::from_secs(5),
        max_retries: 2,
        breaker_failures: 3,
        breaker_cool_down: Duration::from_secs(60),
    }
}

/// Tokens joined, and how the stream ended (`None` if it ended with `Done`).
pub struct Collected {
    pub tokens: Vec<String>,
    pub done: Option<StreamEvent>,
    pub error: Option<LlmError>,
}

impl Collected {
    pub fn text(&self) -> String {
        self.tokens.concat()
    }
}

pub async fn collect(mut events: EventStream) -> Collected {
    let mut out = Collected {
        tokens: Vec::new(),
        done: None,
        error: None,
    };
    while let Some(item) = events.next().await {
        assert!(
            out.done.is_none() && out.error.is_none(),
            "nothing may follow the end of a stream, got {item:?}"
        );
        match item {
            Ok(StreamEvent::Token(t)) => out.tokens.push(t),
            Ok(done @ StreamEvent::Done { .. }) => out.done = Some(done),
            Err(e) => out.error = Some(e),
        }
    }
    out
}

/// What the raw server does after sending part of its answer.
#[derive(Debug, Clone, Copy)]
pub enum Then {
    /// Closes the connection mid-body.
    HangUp,
    /// Keeps the connection open and says nothing more.
    Stall,
}

/// Serves one connection: reads the request, writes the head and `body` as one
/// chunk of a chunked response that never gets its final zero-length chunk, then
/// does `then`. Returns the base URL.
pub async fn send_part(content_type: &'static str, body: String, then: Then) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.flush().await.unwrap();
        let wait = match then {
            // Long enough for the client to read what was sent before the drop.
            Then::HangUp => Duration::from_millis(100),
            Then::Stall => Duration::from_secs(10),
        };
        tokio::time::sleep(wait).await;
        drop(socket);
    });
    format!("http://{addr}")
}

/// Serves one connection, sending each of `frames` as its own HTTP chunk `gap`
/// apart, then ends the body properly.
pub async fn send_slowly(content_type: &'static str, frames: Vec<String>, gap: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        for frame in frames {
            tokio::time::sleep(gap).await;
            let chunk = format!("{:x}\r\n{frame}\r\n", frame.len());
            socket.write_all(chunk.as_bytes()).await.unwrap();
            socket.flush().await.unwrap();
        }
        socket.write_all(b"0\r\n\r\n").await.unwrap();
        socket.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    format!("http://{addr}")
}

/// Accepts connections, reads each request and never answers.
pub async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            read_request(&mut socket).await;
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// Reads request headers and a `content-length` body, so the client never sees a
/// reset for unread data.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed before sending its request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + length {
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&chunk[..n]);
            }
            return;
        }
    }
}
