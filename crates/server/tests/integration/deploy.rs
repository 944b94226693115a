//! The deployment artefacts under `deploy/` and `.github/`. Docker and App Platform
//! cannot run here, so this checks what can be checked without them: the files parse,
//! every variable they give ruleIQ is one it reads, every command they run exists, the
//! health checks point at real endpoints, and the image's health command works against
//! a running server.

use ruleiq_config::KNOWN_KEYS;
use ruleiq_test_support::TestApp;
use serde_yaml_ng::Value;
use std::{collections::BTreeSet, path::PathBuf};

/// The application variables of the deployment roadmap's environment list (its
/// section 1.2), less those for other programs (PostgreSQL's, Cloudflare's, the
/// front end's).
const ROADMAP_VARIABLES: [&str; 26] = [
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
];

/// Variables read by libraries rather than by the server's settings (the S3 client).
const LIBRARY_VARIABLES: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

fn repo_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    let mut v: Value = serde_yaml_ng::from_str(&repo_file(path))
        .unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"));
    v.apply_merge().unwrap();
    v
}

/// Runs `ruleiq ARGS --help`: succeeds only for a command the binary has.
fn command_exists(args: &[&str]) -> bool {
    std::process::Command::new(env!("CARGO_BIN_EXE_ruleiq"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap()
        .status
        .success()
}

/// The `ruleiq …` command lines in a shell line or an exec-form list.
fn ruleiq_commands(line: &str) -> Vec<Vec<String>> {
    line.replace(['"', '[', ']', ','], " ")
        .split("&&")
        .filter_map(|part| {
            let words: Vec<String> = part.split_whitespace().map(str::to_owned).collect();
            let at = words.iter().position(|w| w == "ruleiq")?;
            Some(
                words[at + 1..]
                    .iter()
                    .take_while(|w| !w.starts_with('-'))
                    .cloned()
                    .collect(),
            )
        })
        .collect()
}

fn check_commands(lines: &[String]) {
    for line in lines {
        let commands = ruleiq_commands(line);
        assert!(!commands.is_empty(), "{line:?} runs no ruleiq command");
        for c in commands {
            let args: Vec<&str> = c.iter().map(String::as_str).collect();
            assert!(
                command_exists(&args),
                "`ruleiq {}` does not exist",
                c.join(" ")
            );
        }
    }
}

fn check_variables(where_: &str, keys: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let keys: BTreeSet<String> = keys.into_iter().collect();
    for k in &keys {
        assert!(
            KNOWN_KEYS.contains(&k.as_str()) || LIBRARY_VARIABLES.contains(&k.as_str()),
            "{where_} sets {k}, which ruleIQ does not read"
        );
    }
    keys
}

#[test]
fn the_dockerfile_builds_in_stages_runs_as_a_user_and_checks_its_health() {
    let docker = repo_file("deploy/Dockerfile");
    let froms: Vec<&str> = docker.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "a multi-stage build: {froms:?}");
    // The build stage uses the toolchain the repository pins.
    let toolchain = repo_file("rust-toolchain.toml");
    let channel = toolchain
        .lines()
        .find_map(|l| l.strip_prefix("channel = "))
        .unwrap()
        .trim_matches('"');
    let minor = channel.rsplit_once('.').map_or(channel, |(m, _)| m);
    assert!(froms[0].contains(&format!("rust:{minor}")), "{}", froms[0]);
    let user = docker
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "{user}"
    );
    assert!(docker.contains("EXPOSE 8000"));
    assert!(docker.contains("PORT=8000"));
    let health = docker
        .lines()
        .find(|l| l.trim_start().starts_with("CMD [\"ruleiq\", \"health\"]"))
        .expect("HEALTHCHECK runs `ruleiq health`");
    let cmd = docker
        .lines()
        .rev()
        .find(|l| l.starts_with("CMD "))
        .unwrap();
    check_commands(&[health.to_owned(), cmd.to_owned()]);
    let env: Vec<String> = docker
        .lines()
        .filter_map(|l| {
            let l = l
                .trim()
                .trim_start_matches("ENV ")
                .trim_end_matches('\\')
                .trim();
            l.split_once('=').map(|(k, _)| k.to_owned())
        })
        .filter(|k| k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    let env = check_variables("the Dockerfile", env);
    assert!(env.contains("DATA_DIR") && env.contains("BIND_ADDRESS"));
}

#[test]
fn compose_runs_two_api_instances_and_a_worker_on_postgres_and_redis() {
    let compose = yaml("deploy/docker-compose.yml");
    let services = compose["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for n in ["postgres", "redis", "api-1", "api-2", "worker"] {
        assert!(names.contains(n), "{names:?}");
    }
    let mut commands = Vec::new();
    for name in ["api-1", "api-2", "worker"] {
        let s = &compose["services"][name];
        assert_eq!(s["build"]["dockerfile"], "deploy/Dockerfile", "{name}");
        let command: Vec<&str> = s["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        commands.push(command.join(" "));
        let env = s["environment"].as_mapping().unwrap();
        let keys = check_variables(
            &format!("compose service {name}"),
            env.keys().filter_map(|k| k.as_str().map(str::to_owned)),
        );
        for needed in ["DATABASE_URL", "REDIS_URL", "JWT_SECRET_KEY", "SECRET_KEY"] {
            assert!(keys.contains(needed), "{name} lacks {needed}");
        }
        assert!(
            env[&Value::from("DATABASE_URL")]
                .as_str()
                .unwrap()
                .starts_with("postgres://"),
            "{name} runs on PostgreSQL"
        );
    }
    check_commands(&commands);
    // Only the first instance migrates; the worker runs jobs, the API instances do not.
    assert_eq!(
        compose["services"]["api-1"]["environment"]["RUN_MIGRATIONS"],
        "true"
    );
    assert_eq!(
        compose["services"]["api-2"]["environment"]["RUN_MIGRATIONS"],
        "false"
    );
    assert_eq!(compose["services"]["worker"]["command"][1], "worker");
}

#[test]
fn the_app_spec_checks_health_autoscales_and_sets_every_roadmap_variable() {
    let app = yaml("deploy/digitalocean/app.yaml");
    let api = app["services"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "api")
        .expect("an api service");
    assert_eq!(api["health_check"]["http_path"], "/api/v1/health");
    assert_eq!(api["http_port"], 8000);
    assert!(api["autoscaling"]["min_instance_count"].as_u64().unwrap() >= 2);
    let worker = &app["workers"][0];
    let mut lines = vec![
        api["run_command"].as_str().unwrap().to_owned(),
        worker["run_command"].as_str().unwrap().to_owned(),
    ];
    lines.extend(
        app["jobs"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|j| j["run_command"].as_str().unwrap().to_owned()),
    );
    check_commands(&lines);
    let keys = check_variables(
        "app.yaml",
        api["envs"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_owned()),
    );
    assert_eq!(
        worker["envs"], api["envs"],
        "the worker has the same settings"
    );
    // Every application variable of the roadmap's environment list (section 1.2).
    for k in ROADMAP_VARIABLES {
        assert!(keys.contains(k), "app.yaml lacks the roadmap's {k}");
    }
    // Secrets are never written into the spec.
    for e in api["envs"].as_sequence().unwrap() {
        let key = e["key"].as_str().unwrap();
        if key.contains("SECRET") || key.ends_with("_API_KEY") || key.ends_with("PASSWORD") {
            assert_eq!(e["type"], "SECRET", "{key} must be a SECRET");
        }
    }
}

#[test]
fn the_workflows_run_the_same_checks_as_ci() {
    let ci = yaml(".github/workflows/ci.yml");
    let steps = ci["jobs"]["ci"]["steps"].as_sequence().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["run"].as_str().is_some_and(|r| r.contains(".ci/run"))),
        "ci.yml runs .ci/run"
    );
    let image = yaml(".github/workflows/image.yml");
    let build = image["jobs"]["image"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action"))
        })
        .expect("a build step");
    assert_eq!(build["with"]["file"], "deploy/Dockerfile");
}

/// The image's health check against a live server, and against nothing.
#[tokio::test]
async fn ruleiq_health_says_whether_the_server_is_alive() {
    let app = TestApp::spawn().await;
    let health = async |url: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ruleiq"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_LEVEL", "warn")
            .args(["health", "--url", url])
            .output()
            .await
            .unwrap()
    };
    let alive = health(&app.base).await;
    assert!(
        alive.status.success(),
        "{}",
        String::from_utf8_lossy(&alive.stderr)
    );
    assert!(String::from_utf8_lossy(&alive.stdout).contains("alive:"));
    let (code, body) = {
        let res = app
            .client
            .get(app.url("/api/v1/health"))
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    };
    assert_eq!(
        code,
        reqwest::StatusCode::OK,
        "the App Platform check: {body}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = health(&format!("http://127.0.0.1:{port}")).await;
    assert_eq!(dead.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dead.stderr).contains("/api/v1/health/live"));
    let https = health("https://example.com").await;
    assert_eq!(https.status.code(), Some(2));
    app.stop().await;
}

/// `ruleiq check --url`: the final checks from outside, as a table, failing when a
/// check fails.
#[tokio::test]
async fn ruleiq_check_runs_the_final_checks_against_a_running_server() {
    use crate::members::{PASSWORD, owner};
    let app = TestApp::spawn().await;
    owner(&app, "ann@example.co.uk", "Ann Ltd").await;
    let check = async |args: &[&str], stdin: &str| {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ruleiq"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_LEVEL", "warn")
            .arg("check")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let line = |out: &str, check: &str| {
        out.lines()
            .find(|l| l.starts_with(check))
            .unwrap_or_else(|| panic!("no {check} line in\n{out}"))
            .to_owned()
    };
    let signed_in = [
        "--url",
        &app.base,
        "--email",
        "ann@example.co.uk",
        "--password-stdin",
        "--samples",
        "5",
    ];

    let (code, out, err) = check(&signed_in, &format!("{PASSWORD}\n")).await;
    assert_eq!(code, Some(0), "{out}{err}");
    for name in [
        "health",
        "readiness",
        "security headers",
        "sign in",
        "monitoring",
    ] {
        assert!(line(&out, name).contains(" ok "), "{name}: {out}");
    }
    assert!(line(&out, "sign in").contains("ann@example.co.uk as owner of Ann Ltd"));
    assert!(
        line(&out, "AI providers").contains("offline closed"),
        "{out}"
    );
    assert!(
        line(&out, "response time").contains("over 5 requests"),
        "{out}"
    );
    assert!(
        line(&out, "rate-limit headers").contains("of 100000 left this minute"),
        "{out}"
    );

    // A threshold no server meets fails the run, and says which.
    let mut strict = signed_in.to_vec();
    strict.extend(["--max-ms", "0"]);
    let (code, out, _) = check(&strict, PASSWORD).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(line(&out, "response time").contains("FAIL"), "{out}");

    let (code, out, _) = check(&signed_in, "not the password\n").await;
    assert_eq!(code, Some(1), "{out}");
    assert!(line(&out, "sign in").contains("FAIL"), "{out}");

    // Without credentials the account checks are skipped, not failed.
    let (code, out, _) = check(&["--url", &app.base, "--samples", "2"], "").await;
    assert_eq!(code, Some(0), "{out}");
    assert!(line(&out, "monitoring").contains("skipped"), "{out}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (code, out, _) = check(&["--url", &format!("http://127.0.0.1:{port}")], "").await;
    assert_eq!(code, Some(1), "{out}");
    assert!(line(&out, "health").contains("cannot connect"), "{out}");
    let (code, _, err) = check(&["--url", "ftp://example.com"], "").await;
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = check(&["--url", &app.base, "--email", "a@b.example"], "").await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--password-stdin"), "{err}");
    app.stop().await;
}

/// The executable's relative relocations are packed (`crates/server/build.rs`): as RELA
/// entries they were 4.6 MB that the loader reads at start and that stay resident.
/// Read from the ELF section headers: a `.relr.dyn` section, and no large `.rela.dyn`.
#[cfg(packed_relocations)]
#[test]
fn the_executable_packs_its_relative_relocations() {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(env!("CARGO_BIN_EXE_ruleiq")).expect("the executable");
    let mut read_at = |offset: u64, len: usize| -> Vec<u8> {
        let mut buf = vec![0; len];
        file.seek(SeekFrom::Start(offset)).expect("seek");
        file.read_exact(&mut buf).expect("read");
        buf
    };
    let header = read_at(0, 64);
    assert_eq!(&header[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let u16_at = |b: &[u8], at: usize| u64::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&header, 0x28),
        u16_at(&header, 0x3a),
        u16_at(&header, 0x3c),
        u16_at(&header, 0x3e),
    );
    let sections = read_at(shoff, usize::try_from(shentsize * shnum).unwrap());
    let section = |i: u64| &sections[usize::try_from(i * shentsize).unwrap()..][..64];
    let strtab = section(shstrndx);
    let names = read_at(
        u64_at(strtab, 0x18),
        usize::try_from(u64_at(strtab, 0x20)).unwrap(),
    );
    let sizes: Vec<(String, u64)> = (0..shnum)
        .map(|i| {
            let s = section(i);
            let at = usize::try_from(u32::from_le_bytes(s[..4].try_into().unwrap())).unwrap();
            let end = names[at..].iter().position(|&b| b == 0).unwrap_or(0);
            (
                String::from_utf8_lossy(&names[at..at + end]).into_owned(),
                u64_at(s, 0x20),
            )
        })
        .collect();
    let size_of = |name: &str| sizes.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    assert!(size_of(".relr.dyn").is_some(), "{sizes:?}");
    assert!(size_of(".rela.dyn").unwrap_or(0) < 64 * 1024, "{sizes:?}");
}
