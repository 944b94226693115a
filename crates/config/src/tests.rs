// figment's Jail closures return its large error type by design.
#![allow(clippy::result_large_err)]

use super::*;
use figment::Jail;

fn load_in(jail: &Jail) -> Result<Settings, ConfigError> {
    let _ = jail;
    Settings::load(&Overrides::default())
}

#[test]
fn defaults_give_a_working_development_configuration() {
    Jail::expect_with(|jail| {
        let s = load_in(jail).expect("defaults load");
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.listen_addr().to_string(), "127.0.0.1:8000");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.database.url.backend(), DatabaseBackend::Sqlite);
        assert!(s.database.url.expose().ends_with("data/ruleiq.db?mode=rwc"));
        assert_eq!(s.server.api_v1_prefix, "/api/v1");
        assert_eq!(s.uploads.max_upload_size, 10_485_760);
        assert_eq!(s.rate_limits.auth_per_minute, 5);
        Ok(())
    });
}

#[test]
fn roadmap_environment_variables_are_read_under_their_own_names() {
    Jail::expect_with(|jail| {
        jail.set_env("DATABASE_URL", "postgresql://u:pw@db.example:5432/ruleiq");
        jail.set_env("PORT", "9001");
        jail.set_env("LOG_LEVEL", "INFO");
        jail.set_env("DEBUG", "False");
        jail.set_env("ALLOWED_ORIGINS", "https://a.example, https://b.example");
        jail.set_env("ALLOWED_EXTENSIONS", "pdf,.PNG");
        jail.set_env("MAX_UPLOAD_SIZE", "1048576");
        jail.set_env("JWT_SECRET_KEY", "123456");
        jail.set_env("RATE_LIMIT_ENABLED", "false");
        jail.set_env("WORKERS", "4");
        let s = load_in(jail).expect("loads");
        assert_eq!(s.database.url.backend(), DatabaseBackend::Postgres);
        assert_eq!(
            s.database.url.redacted(),
            "postgresql://u:****@db.example:5432/ruleiq"
        );
        assert_eq!(s.server.port, 9001);
        assert_eq!(s.log_level, "info");
        assert!(!s.debug);
        assert_eq!(
            s.server.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(s.uploads.allowed_extensions, ["pdf", "png"]);
        assert_eq!(s.uploads.max_upload_size, 1_048_576);
        assert_eq!(
            s.auth
                .jwt_secret_key
                .as_ref()
                .map(|k| k.expose_secret().to_owned()),
            Some("123456".to_owned()),
            "a numeric-looking secret is still text"
        );
        assert!(!s.rate_limits.enabled);
        assert_eq!(s.server.workers, Some(4));
        Ok(())
    });
}

#[test]
fn invalid_values_name_the_variable() {
    for (var, value, expect) in [
        ("DATABASE_URL", "nonsense", "DATABASE_URL"),
        ("PORT", "99999", "PORT"),
        ("MAX_UPLOAD_SIZE", "abc", "MAX_UPLOAD_SIZE"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
        ("ENVIRONMENT", "moon", "ENVIRONMENT"),
        ("JWT_ALGORITHM", "RS256", "JWT_ALGORITHM"),
        ("ALLOWED_ORIGINS", "not an origin", "ALLOWED_ORIGINS"),
        ("REDIS_URL", "http://x", "REDIS_URL"),
        ("DEBUG", "perhaps", "DEBUG"),
        ("BIND_ADDRESS", "localhost:80", "BIND_ADDRESS"),
        ("SMTP_URL", "http://mail.example", "SMTP_URL"),
        ("MAIL_FROM", "nobody", "MAIL_FROM"),
        ("SMTP_FROM", "ruleIQ <no-reply@>", "SMTP_FROM"),
        ("SMTP_HOST", "smtp.example.com:587", "SMTP_HOST"),
        ("SMTP_HOST", "smtp://smtp.example.com", "SMTP_HOST"),
        ("SMTP_PORT", "99999", "SMTP_PORT"),
        ("SMTP_PORT", "twenty-five", "SMTP_PORT"),
        ("SMTP_TLS", "starttls", "SMTP_TLS"),
        ("PUBLIC_URL", "ftp://ruleiq.example", "PUBLIC_URL"),
        ("TRUSTED_PROXIES", "10.0.0.0/33", "TRUSTED_PROXIES"),
        ("REPORT_RETENTION_DAYS", "3651", "REPORT_RETENTION_DAYS"),
        ("REPORT_RETENTION_DAYS", "-1", "REPORT_RETENTION_DAYS"),
        ("SQLITE_CACHE_KIB", "0", "SQLITE_CACHE_KIB"),
        ("SQLITE_CACHE_KIB", "2000000", "SQLITE_CACHE_KIB"),
        ("SQLITE_CACHE_KIB", "-2000", "SQLITE_CACHE_KIB"),
    ] {
        Jail::expect_with(|jail| {
            jail.set_env(var, value);
            let err = load_in(jail).expect_err(var).to_string();
            assert!(err.contains(expect), "{var}={value}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
            Ok(())
        });
    }
}

#[test]
fn the_toml_file_is_read_and_the_environment_overrides_it() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "ruleiq.toml",
            "port = 7000\nlog_level = \"debug\"\nallowed_extensions = [\"pdf\", \"txt\"]\n",
        )?;
        jail.set_env("LOG_LEVEL", "warn");
        let s = load_in(jail).expect("loads");
        assert_eq!(s.server.port, 7000);
        assert_eq!(s.log_level, "warn");
        assert_eq!(s.uploads.allowed_extensions, ["pdf", "txt"]);
        Ok(())
    });
}

#[test]
fn an_unknown_key_in_the_file_is_named() {
    Jail::expect_with(|jail| {
        jail.create_file("ruleiq.toml", "prot = 7000\n")?;
        let err = load_in(jail).expect_err("typo").to_string();
        assert!(err.contains("PROT"), "{err}");
        Ok(())
    });
}

#[test]
fn command_line_overrides_win() {
    Jail::expect_with(|jail| {
        jail.set_env("PORT", "9001");
        let s = Settings::load(&Overrides {
            port: Some(0),
            ..Overrides::default()
        })
        .expect("loads");
        assert_eq!(s.server.port, 0);
        Ok(())
    });
}

#[test]
fn production_refuses_unsafe_configurations_and_names_the_setting() {
    let strong = "x".repeat(MIN_SECRET_LEN);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "JWT_SECRET_KEY"),
        (vec![("JWT_SECRET_KEY", "short")], "JWT_SECRET_KEY"),
        (vec![("JWT_SECRET_KEY", &strong)], "SECRET_KEY"),
        (
            vec![
                ("JWT_SECRET_KEY", &strong),
                ("SECRET_KEY", &strong),
                ("DEBUG", "true"),
            ],
            "DEBUG",
        ),
        (
            vec![
                ("JWT_SECRET_KEY", &strong),
                ("SECRET_KEY", &strong),
                ("ALLOWED_ORIGINS", "*"),
                ("CORS_ALLOW_CREDENTIALS", "true"),
            ],
            "ALLOWED_ORIGINS",
        ),
    ];
    for (vars, expect) in cases {
        Jail::expect_with(|jail| {
            jail.set_env("ENVIRONMENT", "production");
            for (k, v) in &vars {
                jail.set_env(k, v);
            }
            let err = load_in(jail).expect_err(expect).to_string();
            assert!(err.contains(expect), "{vars:?}: {err}");
            Ok(())
        });
    }
    Jail::expect_with(|jail| {
        jail.set_env("ENVIRONMENT", "production");
        jail.set_env("JWT_SECRET_KEY", &strong);
        jail.set_env("SECRET_KEY", &strong);
        jail.set_env("ALLOWED_ORIGINS", "*");
        jail.set_env("CORS_ALLOW_CREDENTIALS", "false");
        load_in(jail).expect("wildcard without credentials is allowed");
        Ok(())
    });
}

#[test]
fn development_secrets_are_generated_once_and_kept_private() {
    Jail::expect_with(|jail| {
        jail.set_env("DATA_DIR", "state");
        let mut s = load_in(jail).expect("loads");
        secrets::ensure_dev_secrets(&mut s).expect("generates");
        let first = s
            .auth
            .jwt_secret_key
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        assert!(first.len() >= MIN_SECRET_LEN);
        let mut again = load_in(jail).expect("loads");
        secrets::ensure_dev_secrets(&mut again).expect("reads");
        assert_eq!(
            again.auth.jwt_secret_key.as_ref().unwrap().expose_secret(),
            first,
            "persisted across restarts"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(jail.directory().join("state/jwt_secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        Ok(())
    });
}

#[test]
fn generated_secrets_have_the_roadmap_shapes() {
    let g = secrets::generate();
    assert_eq!(g.jwt_secret_key.len(), 43, "32 bytes, base64url");
    assert_eq!(g.secret_key.len(), 50);
    assert_eq!(g.database_password.len(), 32, "24 bytes, base64url");
    assert_ne!(secrets::generate().jwt_secret_key, g.jwt_secret_key);
}

#[test]
fn address_ranges_contain_what_they_should() {
    let r = IpRange::parse("10.0.0.0/8").unwrap();
    assert!(r.contains("10.1.2.3".parse().unwrap()));
    assert!(!r.contains("11.0.0.1".parse().unwrap()));
    let one = IpRange::parse("127.0.0.1").unwrap();
    assert!(one.contains("127.0.0.1".parse().unwrap()));
    assert!(!one.contains("127.0.0.2".parse().unwrap()));
    let v6 = IpRange::parse("fd00::/8").unwrap();
    assert!(v6.contains("fd12::1".parse().unwrap()));
    assert!(!v6.contains("10.0.0.1".parse().unwrap()));
    assert!(
        IpRange::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap())
    );
    assert!(IpRange::parse("nonsense").is_err());
}

#[test]
fn files_stay_on_disk_unless_a_bucket_is_named() {
    Jail::expect_with(|jail| {
        let s = load_in(jail).expect("defaults load");
        assert_eq!(
            s.uploads.storage,
            StorageSettings::Local {
                dir: PathBuf::from("./data/files")
            }
        );
        jail.set_env("S3_BUCKET", "ruleiq-evidence");
        jail.set_env("S3_ENDPOINT", "http://127.0.0.1:9000");
        let s = load_in(jail).expect("loads");
        assert_eq!(
            s.uploads.storage,
            StorageSettings::S3 {
                bucket: "ruleiq-evidence".into(),
                region: "us-east-1".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
            }
        );
        jail.set_env("S3_BUCKET", "Not_A_Bucket");
        let err = load_in(jail).expect_err("bad bucket");
        assert!(err.to_string().contains("S3_BUCKET"), "{err}");
        jail.set_env("S3_BUCKET", "");
        let err = load_in(jail).expect_err("endpoint without bucket");
        assert!(err.to_string().contains("S3_ENDPOINT"), "{err}");
        Ok(())
    });
}

/// Loads with `vars` set, in a fresh jail.
fn load_with(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let mut out = None;
    Jail::expect_with(|jail| {
        for (k, v) in vars {
            jail.set_env(k, v);
        }
        out = Some(load_in(jail));
        Ok(())
    });
    out.expect("the jail ran")
}

#[test]
fn without_smtp_settings_mail_is_not_sent_and_from_has_a_default() {
    let s = load_with(&[]).expect("defaults load");
    assert!(s.mail.smtp.is_none());
    assert_eq!(s.mail.from, mail::DEFAULT_FROM);
}

#[test]
fn smtp_parts_are_read_with_defaults_by_tls_mode() {
    let s = load_with(&[
        ("SMTP_HOST", "smtp.example.com"),
        ("SMTP_USERNAME", "mailer"),
        ("SMTP_PASSWORD", "pass word"),
        ("SMTP_FROM", "ruleIQ <compliance@example.com>"),
    ])
    .expect("loads");
    let smtp = s.mail.smtp.clone().expect("configured");
    assert_eq!(smtp.host, "smtp.example.com");
    assert_eq!(
        smtp.tls,
        SmtpTls::StartTls,
        "STARTTLS unless told otherwise"
    );
    assert_eq!(smtp.port, 587);
    assert_eq!(smtp.username.as_deref(), Some("mailer"));
    assert_eq!(
        smtp.password.as_ref().map(ExposeSecret::expose_secret),
        Some("pass word"),
        "a password is not split or altered"
    );
    assert_eq!(s.mail.from, "ruleIQ <compliance@example.com>");
    assert!(
        !format!("{:?}", s.mail).contains("pass word"),
        "the password never reaches a log"
    );

    for (tls, port) in [("tls", 465), ("TLS", 465), ("none", 25), ("StartTLS", 587)] {
        let s = load_with(&[("SMTP_HOST", "10.0.0.25"), ("SMTP_TLS", tls)]).expect(tls);
        assert_eq!(s.mail.smtp.expect("configured").port, port, "{tls}");
    }
    let s = load_with(&[
        ("SMTP_HOST", "::1"),
        ("SMTP_PORT", "2525"),
        ("SMTP_TLS", "none"),
    ])
    .expect("an IPv6 host and an explicit port");
    let smtp = s.mail.smtp.expect("configured");
    assert_eq!((smtp.port, smtp.tls), (2525, SmtpTls::None));
    assert!(smtp.is_loopback());
}

#[test]
fn smtp_url_still_works_and_means_what_it_meant() {
    let cases = [
        ("smtp://127.0.0.1:2525", SmtpTls::None, 2525),
        ("smtp://mail.example.com", SmtpTls::None, 25),
        (
            "smtp://mail.example.com?tls=required",
            SmtpTls::StartTls,
            587,
        ),
        (
            "smtp://mail.example.com?tls=opportunistic",
            SmtpTls::Opportunistic,
            587,
        ),
        ("smtps://mail.example.com", SmtpTls::Tls, 465),
    ];
    for (url, tls, port) in cases {
        let s = load_with(&[("SMTP_URL", url)]).expect(url);
        let smtp = s.mail.smtp.expect("configured");
        assert_eq!((smtp.tls, smtp.port), (tls, port), "{url}");
        assert!(smtp.username.is_none() && smtp.password.is_none());
    }
    let s = load_with(&[(
        "SMTP_URL",
        "smtps://user%40example.com:p%2Fss@mail.example.com:4650/ruleiq.example",
    )])
    .expect("credentials");
    let smtp = s.mail.smtp.expect("configured");
    assert_eq!(smtp.username.as_deref(), Some("user@example.com"));
    assert_eq!(
        smtp.password.as_ref().map(ExposeSecret::expose_secret),
        Some("p/ss")
    );
    assert_eq!(smtp.port, 4650);
    assert_eq!(smtp.hello_name.as_deref(), Some("ruleiq.example"));
}

#[test]
fn smtp_mistakes_are_named() {
    // (variables, the setting the error must name, a word of its explanation)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &[("SMTP_URL", "smtp://a.example"), ("SMTP_HOST", "b.example")],
            "SMTP_URL",
            "SMTP_HOST",
        ),
        (
            &[("SMTP_URL", "smtp://a.example"), ("SMTP_TLS", "tls")],
            "SMTP_URL",
            "SMTP_TLS",
        ),
        (&[("SMTP_USERNAME", "mailer")], "SMTP_USERNAME", "SMTP_HOST"),
        (&[("SMTP_PORT", "587")], "SMTP_PORT", "SMTP_HOST"),
        (
            &[
                ("SMTP_HOST", "smtp.example.com"),
                ("SMTP_USERNAME", "mailer"),
            ],
            "SMTP_PASSWORD",
            "required",
        ),
        (
            &[
                ("SMTP_HOST", "smtp.example.com"),
                ("SMTP_PASSWORD", "secret"),
            ],
            "SMTP_USERNAME",
            "required",
        ),
        (
            &[("SMTP_HOST", "smtp.example.com"), ("SMTP_PORT", "0")],
            "SMTP_PORT",
            "1 to 65535",
        ),
        (
            &[("SMTP_HOST", "smtp.example.com"), ("SMTP_TLS", "ssl")],
            "SMTP_TLS",
            "starttls, tls, none",
        ),
        (
            &[("SMTP_HOST", "smtp example com")],
            "SMTP_HOST",
            "host name",
        ),
        (&[("SMTP_URL", "smtp://")], "SMTP_URL", "host"),
        (
            &[("SMTP_URL", "smtp://a.example?tls=always")],
            "SMTP_URL",
            "tls=always",
        ),
        (
            &[("SMTP_URL", "smtp://user@a.example")],
            "SMTP_URL",
            "no password",
        ),
        (
            &[
                ("SMTP_FROM", "a@example.com"),
                ("MAIL_FROM", "b@example.com"),
            ],
            "SMTP_FROM",
            "MAIL_FROM",
        ),
        (&[("SMTP_FROM", "ruleIQ")], "SMTP_FROM", "e-mail address"),
        (
            &[("SMTP_FROM", "a@example.com\r\nBcc: x@example.com")],
            "SMTP_FROM",
            "control",
        ),
    ];
    for (vars, setting, detail) in cases {
        let err = load_with(vars).expect_err(setting).to_string();
        assert!(err.contains(setting), "{vars:?}: {err}");
        assert!(err.contains(detail), "{vars:?}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn mail_from_is_still_read_and_agreeing_names_are_fine() {
    let s = load_with(&[("MAIL_FROM", "Compliance <c@example.com>")]).expect("loads");
    assert_eq!(s.mail.from, "Compliance <c@example.com>");
    let s = load_with(&[
        ("MAIL_FROM", "c@example.com"),
        ("SMTP_FROM", " c@example.com "),
    ])
    .expect("the same address under both names");
    assert_eq!(s.mail.from, "c@example.com");
}

#[test]
fn production_refuses_a_password_over_an_unencrypted_connection() {
    let strong = "x".repeat(MIN_SECRET_LEN);
    let base = [
        ("ENVIRONMENT", "production"),
        ("JWT_SECRET_KEY", strong.as_str()),
        ("SECRET_KEY", strong.as_str()),
        ("SMTP_USERNAME", "mailer"),
        ("SMTP_PASSWORD", "secret"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut vars = base.to_vec();
        vars.extend_from_slice(extra);
        load_with(&vars)
    };
    let err = with(&[("SMTP_HOST", "smtp.example.com"), ("SMTP_TLS", "none")])
        .expect_err("clear-text password")
        .to_string();
    assert!(err.contains("SMTP_TLS"), "{err}");
    with(&[("SMTP_HOST", "127.0.0.1"), ("SMTP_TLS", "none")])
        .expect("a relay on this machine is fine");
    with(&[("SMTP_HOST", "smtp.example.com")]).expect("STARTTLS is fine");
}
