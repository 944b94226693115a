use ruleiq_db::sea_orm::{ConnectionTrait, Statement};
use ruleiq_migration::{Migrator, MigratorTrait};
use ruleiq_test_support::{TestDatabase, backend, test_raw_settings};

/// Every table the migrations create.
const TABLES: &[&str] = &[
    "roles",
    "job_runs",
    "organizations",
    "users",
    "memberships",
    "sessions",
    "refresh_tokens",
    "audit_log",
    "audit_chain_heads",
    "invitations",
    "password_resets",
    "frameworks",
    "framework_domains",
    "controls",
    "questions",
    "question_controls",
    "control_mappings",
    "search_documents",
    "content_imports",
    "business_profiles",
    "assessments",
    "answers",
    "plans",
    "plan_tasks",
    "readiness_snapshots",
    "evidence_items",
    "evidence_versions",
    "evidence_controls",
    "evidence_events",
    "policies",
    "policy_versions",
    "policy_controls",
    "ai_usage",
    "ai_budgets",
    "chat_conversations",
    "chat_messages",
    "reports",
    "report_schedules",
    "mail_outbox",
    "mail_outbox_attachments",
    "notifications",
    "notification_preferences",
];

async fn table_exists(db: &ruleiq_db::DatabaseConnection, table: &str) -> bool {
    let sql = if backend() == "postgres" {
        format!(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'public' AND table_name = '{table}'"
        )
    } else {
        format!("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
    };
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .is_some()
}

/// How many indexes the schema has (those the engine makes for keys included).
async fn index_count(db: &ruleiq_db::DatabaseConnection) -> i64 {
    let sql = if backend() == "postgres" {
        "SELECT COUNT(*) AS n FROM pg_indexes WHERE schemaname = 'public'"
    } else {
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'index'"
    };
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

async fn connect(test_db: &TestDatabase) -> ruleiq_db::DatabaseConnection {
    let settings = ruleiq_config::Settings::from_raw(test_raw_settings(test_db)).unwrap();
    ruleiq_db::connect(&settings.database).await.unwrap()
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let test_db = TestDatabase::new().await;
    let db = connect(&test_db).await;
    Migrator::up(&db, None).await.unwrap();
    for table in TABLES {
        assert!(table_exists(&db, table).await, "{table} after up");
    }
    assert!(ruleiq_db::migrations_pending(&db).await.unwrap().is_empty());

    let all = Migrator::migrations().len() as u32;
    Migrator::down(&db, Some(all)).await.unwrap();
    for table in TABLES {
        assert!(!table_exists(&db, table).await, "{table} after down");
    }
    assert_eq!(
        ruleiq_db::migrations_pending(&db).await.unwrap().len(),
        all as usize
    );

    Migrator::up(&db, None).await.unwrap();
    for table in TABLES {
        assert!(table_exists(&db, table).await, "{table} after up again");
    }
}

#[tokio::test]
async fn each_migration_steps_down_alone() {
    let test_db = TestDatabase::new().await;
    let db = connect(&test_db).await;
    Migrator::up(&db, None).await.unwrap();
    let mut remaining = (TABLES.len(), index_count(&db).await);
    for _ in 0..Migrator::migrations().len() {
        Migrator::down(&db, Some(1)).await.unwrap();
        let mut present = 0;
        for table in TABLES {
            if table_exists(&db, table).await {
                present += 1;
            }
        }
        let now = (present, index_count(&db).await);
        assert!(
            now.0 <= remaining.0 && now.1 <= remaining.1 && now != remaining,
            "each down removes its own tables or indexes: {remaining:?} then {now:?}"
        );
        remaining = now;
    }
    assert_eq!(remaining.0, 0);
    Migrator::up(&db, Some(2)).await.unwrap();
    assert!(table_exists(&db, "job_runs").await);
    assert!(!table_exists(&db, "users").await);
}

#[tokio::test]
async fn seeding_twice_leaves_one_row_per_role_with_its_permissions() {
    let test_db = TestDatabase::new().await;
    let db = connect(&test_db).await;
    Migrator::up(&db, None).await.unwrap();
    let clock = ruleiq_core::SystemClock;
    ruleiq_services::seed::run(&db, &clock).await.unwrap();
    ruleiq_services::seed::run(&db, &clock).await.unwrap();
    let roles = ruleiq_db::repositories::roles::list(&db).await.unwrap();
    assert_eq!(roles.len(), 6);
    let owner = roles.iter().find(|r| r.name == "owner").unwrap();
    let perms: Vec<String> = serde_json::from_value(owner.permissions.clone()).unwrap();
    assert!(perms.contains(&"organization:delete".to_owned()));
    let viewer = roles.iter().find(|r| r.name == "viewer").unwrap();
    let perms: Vec<String> = serde_json::from_value(viewer.permissions.clone()).unwrap();
    assert!(!perms.contains(&"compliance:write".to_owned()));
}

#[tokio::test]
async fn the_schema_refuses_values_outside_an_enumeration() {
    let test_db = TestDatabase::new().await;
    let db = connect(&test_db).await;
    Migrator::up(&db, None).await.unwrap();
    let id = uuid::Uuid::now_v7();
    let sql = format!(
        "INSERT INTO job_runs (id, kind, status, payload, attempts, max_attempts, created_at, updated_at) \
         VALUES ('{id}', 'canary', 'exploded', '{{}}', 0, 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
    );
    let err = db.execute_unprepared(&sql).await.unwrap_err().to_string();
    assert!(err.to_lowercase().contains("check"), "{err}");
}

/// Every table's rows as text, in a stable order: `(table, row count, digest)`. Each
/// column is read as text (PostgreSQL's cast, SQLite's literal), so a change to any
/// value of any row shows as a different digest.
async fn contents(db: &ruleiq_db::DatabaseConnection) -> Vec<(String, usize, u64)> {
    use std::hash::{Hash, Hasher};
    let db_backend = db.get_database_backend();
    let mut out = Vec::new();
    for table in TABLES {
        let columns_sql = if backend() == "postgres" {
            format!(
                "SELECT column_name FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position"
            )
        } else {
            format!("SELECT name AS column_name FROM pragma_table_info('{table}') ORDER BY cid")
        };
        let columns: Vec<String> = db
            .query_all_raw(Statement::from_string(db_backend, columns_sql))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String>("", "column_name").unwrap())
            .collect();
        // SQLite's quote() writes any value, blobs included, as its SQL literal.
        let casts: Vec<String> = columns
            .iter()
            .map(|c| {
                if backend() == "postgres" {
                    format!("CAST(\"{c}\" AS TEXT)")
                } else {
                    format!("quote(\"{c}\")")
                }
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM \"{table}\" ORDER BY {}",
            casts.join(", "),
            (1..=casts.len())
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = db
            .query_all_raw(Statement::from_string(db_backend, sql))
            .await
            .unwrap();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for row in &rows {
            for i in 0..columns.len() {
                row.try_get_by_index::<Option<String>>(i)
                    .unwrap()
                    .hash(&mut hasher);
            }
        }
        out.push(((*table).to_owned(), rows.len(), hasher.finish()));
    }
    out
}

/// The roadmap's rollback drill on a database full of data: `ruleiq migrate down -n 1`
/// then `up`, on the `large` demo organisation, leaves every row of every table as it
/// was. (The newest migration's own tables are dropped and made again; the demo puts
/// nothing in them, and the operator guide says to back up before rolling back.)
#[tokio::test]
async fn rolling_back_the_newest_migration_and_forward_again_loses_nothing() {
    use crate::cli::ruleiq;
    let test_db = TestDatabase::new().await;
    for args in [
        &["migrate", "up"][..],
        &["seed"],
        &["demo", "--size", "large"],
    ] {
        let run = ruleiq(&test_db, args, &[]);
        assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
    }
    let db = connect(&test_db).await;
    let before = contents(&db).await;
    let evidence = before.iter().find(|(t, ..)| t == "evidence_items").unwrap();
    assert_eq!(evidence.1, 50_000, "the large demo's library");
    assert!(
        before.iter().filter(|(_, n, _)| *n > 0).count() > 20,
        "{before:?}"
    );

    let down = ruleiq(&test_db, &["migrate", "down", "-n", "1"], &[]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    assert!(
        down.stdout.contains("rolled back 1 migration(s)"),
        "{}",
        down.stdout
    );
    let status = ruleiq(&test_db, &["migrate", "status"], &[]);
    assert_eq!(
        status
            .stdout
            .lines()
            .filter(|l| l.starts_with("pending"))
            .count(),
        1,
        "{}",
        status.stdout
    );
    let up = ruleiq(&test_db, &["migrate", "up"], &[]);
    assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
    assert!(
        up.stdout.contains("applied 1 migration(s); 0 pending"),
        "{}",
        up.stdout
    );

    assert_eq!(contents(&db).await, before, "every table as it was");
}
