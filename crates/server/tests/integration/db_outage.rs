//! The database going away under a running server: requests fail fast with 503 while
//! it is gone, and are served again once it is back, without a restart.
//!
//! The outage is a PostgreSQL server cut off behind a TCP relay the test controls, so
//! the test runs on PostgreSQL whichever engine the rest of the suite is using: an
//! embedded SQLite file cannot go away like a server can.

use crate::members::{call, owner};
use reqwest::{Method, StatusCode};
use ruleiq_test_support::{TestApp, TestDatabase};
use serde_json::Value;
use std::{net::SocketAddr, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

/// A TCP relay to PostgreSQL that can be cut and restored on the same port.
struct Relay {
    addr: SocketAddr,
    upstream: String,
    accepting: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut relay = Self {
            addr,
            upstream,
            accepting: None,
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        self.accepting = Some(tokio::spawn(async move {
            // Dropping this task (on `cut`) aborts every relayed connection with it.
            let mut links = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                links.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// Closes every relayed connection and refuses new ones.
    async fn cut(&mut self) {
        if let Some(task) = self.accepting.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Accepts connections again, on the same port.
    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn requests_get_503_while_the_database_is_gone_and_are_served_once_it_is_back() {
    let mut db = TestDatabase::on("postgres").await;
    let mut url = reqwest::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let mut relay = Relay::start(upstream).await;
    url.set_port(Some(relay.addr.port())).unwrap();
    db.url = url.to_string();
    // No session cache: every request needs the database.
    let app = TestApp::spawn_on(db, |raw| raw.session_cache_ms = 0).await;
    let ann = owner(&app, "ann@example.co.uk", "Quokka Widgets Ltd").await;
    let ok = call(&app, Method::GET, "/compliance/status", &ann.token, None).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(metric(&app, "ruleiq_db_unreachable").await, 0.0);

    relay.cut().await;
    // The request that finds the database gone is told so; so is every one after it,
    // without waiting on the pool.
    for _ in 0..5 {
        let refused = call(&app, Method::GET, "/compliance/status", &ann.token, None).await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            refused
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("2")
        );
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["status"], 503);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("cannot reach its database"),
            "{problem}"
        );
    }
    let page = app.get("/dashboard").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.text().await.unwrap().contains("Back in a moment"));
    // Health still answers, and says what is wrong.
    let ready = app.get("/api/v1/health/ready").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(metric(&app, "ruleiq_db_unreachable").await, 1.0);
    assert!(metric(&app, "ruleiq_db_unreachable_refused_total").await >= 5.0);

    relay.restore().await;
    let mut served = None;
    for _ in 0..200 {
        let res = call(&app, Method::GET, "/compliance/status", &ann.token, None).await;
        if res.status() == StatusCode::OK {
            served = Some(res);
            break;
        }
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served.is_some(),
        "served again within 20 s of the database's return"
    );
    assert_eq!(metric(&app, "ruleiq_db_unreachable").await, 0.0);
    let ready = app.get("/api/v1/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    app.stop().await;
}
