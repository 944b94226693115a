//! The framework library: frameworks, domains, controls, questions, mappings.
//!
//! Every read takes the caller's organisation and sees the library (rows with no
//! organisation) plus that organisation's own imports, never another's.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use std::collections::HashMap;
use uuid::Uuid;

use crate::entities::{
    content_import, control, control_mapping, framework, framework_domain, question,
    question_control,
};

/// Rows per multi-row INSERT: well under SQLite's bound-variable limit.
const BATCH: usize = 200;

/// A statement written with `?` placeholders, numbered for PostgreSQL.
pub(crate) fn sql(backend: DbBackend, text: &str, values: Vec<Value>) -> Statement {
    if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(text.len() + 16);
        let mut n = 0;
        for ch in text.chars() {
            if ch == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(ch);
            }
        }
        Statement::from_sql_and_values(backend, out, values)
    } else {
        Statement::from_sql_and_values(backend, text, values)
    }
}

/// `?, ?, ?` for `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The scope key of an organisation's imports, or of the library.
#[must_use]
pub fn scope_of(organization_id: Option<Uuid>) -> String {
    organization_id.map_or_else(|| "library".to_owned(), |o| o.to_string())
}

/// The hash of the content last loaded under `name`.
///
/// # Errors
/// On a database error.
pub async fn content_hash<C: ConnectionTrait>(db: &C, name: &str) -> Result<Option<String>, DbErr> {
    Ok(content_import::Entity::find_by_id(name.to_owned())
        .one(db)
        .await?
        .map(|r| r.hash))
}

/// Records the hash of the content just loaded under `name`.
///
/// # Errors
/// On a database error.
pub async fn set_content_hash<C: ConnectionTrait>(
    db: &C,
    name: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    content_import::Entity::insert(content_import::ActiveModel {
        name: Set(name.to_owned()),
        hash: Set(hash.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(content_import::Column::Name)
            .update_columns([
                content_import::Column::Hash,
                content_import::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The name under which the revision of what `organization_id` (or, for `None`,
/// the shared library beyond its built-in content) has imported is recorded.
#[must_use]
pub fn imports_revision_name(organization_id: Option<Uuid>) -> String {
    organization_id.map_or_else(|| "library-imports".to_owned(), |o| format!("org:{o}"))
}

/// Marks that the frameworks (or search documents) of a scope changed, so every
/// server instance's caches of that scope are stale.
///
/// # Errors
/// On a database error.
pub async fn bump_revision<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let name = imports_revision_name(organization_id);
    set_content_hash(db, &name, &Uuid::now_v7().simple().to_string(), now).await?;
    announce_catalog_change(db).await
}

/// Holds the revision row of a scope for the rest of the transaction (PostgreSQL
/// locks the row; SQLite takes its write lock) and returns its value, if any. Writers
/// that then set the revision are serialised per scope, so what they number in this
/// order commits in this order.
///
/// # Errors
/// On a database error.
pub async fn hold_revision<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    let name = imports_revision_name(organization_id);
    content_import::Entity::update_many()
        .col_expr(content_import::Column::UpdatedAt, Expr::value(now))
        .filter(content_import::Column::Name.eq(name.clone()))
        .exec(db)
        .await?;
    content_hash(db, &name).await
}

/// Sets a scope's revision to `value` (the caller made it), announcing the change.
///
/// # Errors
/// On a database error.
pub async fn set_revision<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
    value: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    set_content_hash(db, &imports_revision_name(organization_id), value, now).await?;
    announce_catalog_change(db).await
}

/// The PostgreSQL channel catalogue changes are announced on.
pub const CATALOG_CHANNEL: &str = "ruleiq_catalog";

/// Tells every instance listening on PostgreSQL that the catalogue changed (delivered
/// when the surrounding transaction commits). Nothing to do on SQLite.
///
/// # Errors
/// On a database error.
pub async fn announce_catalog_change<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_notify('{CATALOG_CHANNEL}', '')"),
        ))
        .await?;
    }
    Ok(())
}

/// The current revision of everything an organisation can read from the catalogue:
/// the library's content, the library's imports and the organisation's own. One
/// indexed read; equal strings mean nothing changed.
///
/// # Errors
/// On a database error.
pub async fn revision<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
) -> Result<Revision, DbErr> {
    let mut names = vec!["library".to_owned(), imports_revision_name(None)];
    if organization_id.is_some() {
        names.push(imports_revision_name(organization_id));
    }
    let rows: Vec<(String, String)> = content_import::Entity::find()
        .select_only()
        .column(content_import::Column::Name)
        .column(content_import::Column::Hash)
        .filter(content_import::Column::Name.is_in(names))
        .into_tuple()
        .all(db)
        .await?;
    let mut out = Revision::default();
    for (name, hash) in rows {
        match name.as_str() {
            "library" => out.library = hash,
            "library-imports" => out.library_imports = hash,
            _ => out.organization = hash,
        }
    }
    Ok(out)
}

/// The revisions a cache of catalogue reads is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Revision {
    /// The built-in content's hash.
    pub library: String,
    /// Changes with every catalog imported into the shared library.
    pub library_imports: String,
    /// Changes with every import, deletion or indexing in the organisation.
    pub organization: String,
}

impl Revision {
    /// The whole revision as one string.
    #[must_use]
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.library, self.library_imports, self.organization
        )
    }
}

/// Inserts a framework, or updates the one with the same scope and slug in place
/// (keeping its id, so everything linked to it stays linked). Returns its id.
///
/// # Errors
/// On a database error.
pub async fn upsert_framework<C: ConnectionTrait>(
    db: &C,
    row: framework::Model,
) -> Result<Uuid, DbErr> {
    use framework::Column as F;
    let (scope, slug) = (row.scope.clone(), row.slug.clone());
    let active: framework::ActiveModel = row.into();
    framework::Entity::insert(active)
        .on_conflict(
            OnConflict::columns([F::Scope, F::Slug])
                .update_columns([
                    F::Name,
                    F::Version,
                    F::Publisher,
                    F::Jurisdiction,
                    F::Url,
                    F::Description,
                    F::Source,
                    F::ContentVersion,
                    F::ContentHash,
                    F::SourceUuid,
                    F::Oscal,
                    F::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    framework::Entity::find()
        .filter(F::Scope.eq(scope))
        .filter(F::Slug.eq(slug))
        .one(db)
        .await?
        .map(|f| f.id)
        .ok_or_else(|| DbErr::RecordNotFound("framework just written".into()))
}

/// Inserts a new framework; a clash on scope and slug is an error (for imports, where
/// two requests must never merge into one framework).
///
/// # Errors
/// On a database error, including the unique-constraint violation of a clash.
pub async fn insert_framework<C: ConnectionTrait>(
    db: &C,
    row: framework::Model,
) -> Result<Uuid, DbErr> {
    let id = row.id;
    framework::Entity::insert(framework::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    Ok(id)
}

/// Replaces a framework's headings (nothing links to a heading by id).
///
/// # Errors
/// On a database error.
pub async fn replace_domains<C: ConnectionTrait>(
    db: &C,
    framework_id: Uuid,
    rows: Vec<framework_domain::Model>,
) -> Result<(), DbErr> {
    framework_domain::Entity::delete_many()
        .filter(framework_domain::Column::FrameworkId.eq(framework_id))
        .exec(db)
        .await?;
    for chunk in rows.chunks(BATCH) {
        framework_domain::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(framework_domain::ActiveModel::from),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Inserts controls, or updates existing ones in place by `(framework, ref)`; a
/// control no longer listed is retired, not deleted, so answers and evidence linked
/// to it survive. Returns every current ref's id.
///
/// # Errors
/// On a database error.
pub async fn upsert_controls<C: ConnectionTrait>(
    db: &C,
    framework_id: Uuid,
    rows: Vec<control::Model>,
    now: DateTime<Utc>,
) -> Result<HashMap<String, Uuid>, DbErr> {
    use control::Column as K;
    let refs: Vec<String> = rows.iter().map(|r| r.reference.clone()).collect();
    for chunk in rows.chunks(BATCH) {
        control::Entity::insert_many(chunk.iter().cloned().map(control::ActiveModel::from))
            .on_conflict(
                OnConflict::columns([K::FrameworkId, K::Reference])
                    .update_columns([
                        K::ParentRef,
                        K::DomainRef,
                        K::Title,
                        K::Description,
                        K::Guidance,
                        K::Criticality,
                        K::EffortHalfDays,
                        K::EvidenceExamples,
                        K::Oscal,
                        K::Position,
                        K::RetiredAt,
                        K::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    let current: Vec<(Uuid, String)> = control::Entity::find()
        .select_only()
        .column(K::Id)
        .column(K::Reference)
        .filter(K::FrameworkId.eq(framework_id))
        .into_tuple()
        .all(db)
        .await?;
    let listed: std::collections::HashSet<&str> = refs.iter().map(String::as_str).collect();
    let gone: Vec<Uuid> = current
        .iter()
        .filter(|(_, r)| !listed.contains(r.as_str()))
        .map(|(id, _)| *id)
        .collect();
    for chunk in gone.chunks(BATCH) {
        control::Entity::update_many()
            .col_expr(K::RetiredAt, Expr::value(now))
            .filter(K::Id.is_in(chunk.to_vec()))
            .filter(K::RetiredAt.is_null())
            .exec(db)
            .await?;
    }
    Ok(current
        .into_iter()
        .filter(|(_, r)| listed.contains(r.as_str()))
        .map(|(id, r)| (r, id))
        .collect())
}

/// Inserts questions, or updates them in place by `key`. Returns each key's id.
///
/// # Errors
/// On a database error.
pub async fn upsert_questions<C: ConnectionTrait>(
    db: &C,
    rows: Vec<question::Model>,
) -> Result<HashMap<String, Uuid>, DbErr> {
    use question::Column as Q;
    let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    for chunk in rows.chunks(BATCH) {
        question::Entity::insert_many(chunk.iter().cloned().map(question::ActiveModel::from))
            .on_conflict(
                OnConflict::column(Q::Key)
                    .update_columns([
                        Q::Text,
                        Q::Help,
                        Q::Shared,
                        Q::Position,
                        Q::RetiredAt,
                        Q::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(BATCH) {
        let found: Vec<(Uuid, String)> = question::Entity::find()
            .select_only()
            .column(Q::Id)
            .column(Q::Key)
            .filter(Q::Key.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(found.into_iter().map(|(id, k)| (k, id)));
    }
    Ok(out)
}

/// Retires the content's questions (no organisation, and `owned` by the content: the
/// shared bank and the built-in frameworks' own) that are not in `keep`. Questions of
/// catalogs an operator imported into the library are not the content's to retire.
///
/// # Errors
/// On a database error.
pub async fn retire_library_questions_except<C: ConnectionTrait>(
    db: &C,
    keep: &std::collections::HashSet<Uuid>,
    owned: impl Fn(&str, bool) -> bool,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use question::Column as Q;
    let all: Vec<(Uuid, String, bool)> = question::Entity::find()
        .select_only()
        .column(Q::Id)
        .column(Q::Key)
        .column(Q::Shared)
        .filter(Q::OrganizationId.is_null())
        .filter(Q::RetiredAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    let gone: Vec<Uuid> = all
        .into_iter()
        .filter(|(id, key, shared)| !keep.contains(id) && owned(key, *shared))
        .map(|(id, _, _)| id)
        .collect();
    let mut n = 0;
    for chunk in gone.chunks(BATCH) {
        n += question::Entity::update_many()
            .col_expr(Q::RetiredAt, Expr::value(now))
            .filter(Q::Id.is_in(chunk.to_vec()))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(n)
}

/// Sets the controls each of `questions` evidences, replacing what was there.
///
/// # Errors
/// On a database error.
pub async fn replace_question_links<C: ConnectionTrait>(
    db: &C,
    questions: &[Uuid],
    links: Vec<(Uuid, Uuid)>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for chunk in questions.chunks(BATCH) {
        question_control::Entity::delete_many()
            .filter(question_control::Column::QuestionId.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
    }
    for chunk in links.chunks(BATCH) {
        question_control::Entity::insert_many(chunk.iter().map(|(q, c)| {
            question_control::ActiveModel {
                question_id: Set(*q),
                control_id: Set(*c),
                created_at: Set(now),
            }
        }))
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Replaces every mapping from a control of `source` to a control of `target`.
///
/// # Errors
/// On a database error.
pub async fn replace_mappings<C: ConnectionTrait>(
    db: &C,
    source: Uuid,
    target: Uuid,
    pairs: Vec<(Uuid, Uuid, &'static str)>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute_raw(sql(
        backend,
        "DELETE FROM control_mappings WHERE source_control_id IN \
         (SELECT id FROM controls WHERE framework_id = ?) AND target_control_id IN \
         (SELECT id FROM controls WHERE framework_id = ?)",
        vec![source.into(), target.into()],
    ))
    .await?;
    insert_mappings(db, pairs, now).await
}

/// Adds mappings; a pair already present keeps its relation.
///
/// # Errors
/// On a database error.
pub async fn insert_mappings<C: ConnectionTrait>(
    db: &C,
    pairs: Vec<(Uuid, Uuid, &'static str)>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for chunk in pairs.chunks(BATCH) {
        control_mapping::Entity::insert_many(chunk.iter().map(|(s, t, r)| {
            control_mapping::ActiveModel {
                id: Set(Uuid::now_v7()),
                source_control_id: Set(*s),
                target_control_id: Set(*t),
                relation: Set((*r).to_owned()),
                created_at: Set(now),
                updated_at: Set(now),
            }
        }))
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Frameworks the organisation can see: the library and its own imports.
///
/// # Errors
/// On a database error.
pub async fn visible<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
) -> Result<Vec<framework::Model>, DbErr> {
    let mut q = framework::Entity::find();
    q = match organization_id {
        Some(org) => q.filter(
            framework::Column::OrganizationId
                .is_null()
                .or(framework::Column::OrganizationId.eq(org)),
        ),
        None => q.filter(framework::Column::OrganizationId.is_null()),
    };
    q.order_by_asc(framework::Column::OrganizationId)
        .order_by_asc(framework::Column::Name)
        .all(db)
        .await
}

/// One visible framework by id or slug (the organisation's own import wins a slug
/// tie, which import rules prevent anyway).
///
/// # Errors
/// On a database error.
pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
    id_or_slug: &str,
) -> Result<Option<framework::Model>, DbErr> {
    let by = match id_or_slug.parse::<Uuid>() {
        Ok(id) => framework::Column::Id.eq(id),
        Err(_) => framework::Column::Slug.eq(id_or_slug),
    };
    let scope = match organization_id {
        Some(org) => framework::Column::OrganizationId
            .is_null()
            .or(framework::Column::OrganizationId.eq(org)),
        None => framework::Column::OrganizationId.is_null(),
    };
    let found = framework::Entity::find()
        .filter(by)
        .filter(scope)
        .all(db)
        .await?;
    // Engines sort NULLs differently; pick the organisation's own explicitly.
    let own = found.iter().position(|f| f.organization_id.is_some());
    Ok(match own {
        Some(i) => found.into_iter().nth(i),
        None => found.into_iter().next(),
    })
}

/// Headings of a framework, in published order.
///
/// # Errors
/// On a database error.
pub async fn domains<C: ConnectionTrait>(
    db: &C,
    framework_ids: &[Uuid],
) -> Result<Vec<framework_domain::Model>, DbErr> {
    framework_domain::Entity::find()
        .filter(framework_domain::Column::FrameworkId.is_in(framework_ids.to_vec()))
        .order_by_asc(framework_domain::Column::Position)
        .all(db)
        .await
}

/// Current (not retired) control count per framework and heading.
///
/// # Errors
/// On a database error.
pub async fn control_counts<C: ConnectionTrait>(
    db: &C,
    framework_ids: &[Uuid],
) -> Result<Vec<(Uuid, Option<String>, i64)>, DbErr> {
    control::Entity::find()
        .select_only()
        .column(control::Column::FrameworkId)
        .column(control::Column::DomainRef)
        .column_as(control::Column::Id.count(), "n")
        .filter(control::Column::FrameworkId.is_in(framework_ids.to_vec()))
        .filter(control::Column::RetiredAt.is_null())
        .group_by(control::Column::FrameworkId)
        .group_by(control::Column::DomainRef)
        .into_tuple()
        .all(db)
        .await
}

/// A page of a framework's current controls in published order, after `after`
/// (a position), optionally under one heading or its sub-headings.
///
/// # Errors
/// On a database error.
pub async fn controls<C: ConnectionTrait>(
    db: &C,
    framework_id: Uuid,
    domains: Option<&[String]>,
    after: Option<i32>,
    limit: u64,
) -> Result<Vec<control::Model>, DbErr> {
    let mut q = control::Entity::find()
        .filter(control::Column::FrameworkId.eq(framework_id))
        .filter(control::Column::RetiredAt.is_null());
    if let Some(domains) = domains {
        q = q.filter(control::Column::DomainRef.is_in(domains.to_vec()));
    }
    if let Some(after) = after {
        q = q.filter(control::Column::Position.gt(after));
    }
    q.order_by_asc(control::Column::Position)
        .limit(limit)
        .all(db)
        .await
}

/// Every current control of the frameworks, in order (for comparison and export).
///
/// # Errors
/// On a database error.
pub async fn all_controls<C: ConnectionTrait>(
    db: &C,
    framework_ids: &[Uuid],
) -> Result<Vec<control::Model>, DbErr> {
    control::Entity::find()
        .filter(control::Column::FrameworkId.is_in(framework_ids.to_vec()))
        .filter(control::Column::RetiredAt.is_null())
        .order_by_asc(control::Column::FrameworkId)
        .order_by_asc(control::Column::Position)
        .all(db)
        .await
}

/// One control by id, if its framework is visible to the organisation.
///
/// # Errors
/// On a database error.
pub async fn find_control<C: ConnectionTrait>(
    db: &C,
    organization_id: Option<Uuid>,
    id: Uuid,
) -> Result<Option<(control::Model, framework::Model)>, DbErr> {
    let Some(c) = control::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let Some(f) = framework::Entity::find_by_id(c.framework_id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let visible = f.organization_id.is_none() || f.organization_id == organization_id;
    Ok(visible.then_some((c, f)))
}

/// A question with the control it was asked for.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ControlQuestion {
    pub control_id: Uuid,
    pub id: Uuid,
    pub key: String,
    pub text: String,
    pub help: Option<String>,
    pub shared: bool,
}

/// The current questions of each control: its own first, then shared ones.
///
/// # Errors
/// On a database error.
pub async fn questions_for<C: ConnectionTrait>(
    db: &C,
    control_ids: &[Uuid],
) -> Result<Vec<ControlQuestion>, DbErr> {
    if control_ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let text = format!(
        "SELECT qc.control_id, q.id, q.key, q.text, q.help, q.shared \
         FROM question_controls qc JOIN questions q ON q.id = qc.question_id \
         WHERE qc.control_id IN ({}) AND q.retired_at IS NULL \
         ORDER BY q.shared, q.position",
        placeholders(control_ids.len())
    );
    ControlQuestion::find_by_statement(sql(
        backend,
        &text,
        control_ids.iter().map(|id| (*id).into()).collect(),
    ))
    .all(db)
    .await
}

/// A stored mapping with both ends resolved.
#[derive(Debug, Clone, FromQueryResult)]
pub struct MappingRow {
    pub source_id: Uuid,
    pub target_id: Uuid,
    pub relation: String,
    pub source_ref: String,
    pub target_ref: String,
    pub source_slug: String,
    pub target_slug: String,
    pub source_framework: Uuid,
    pub target_framework: Uuid,
    pub source_org: Option<Uuid>,
    pub target_org: Option<Uuid>,
}

const MAPPING_SELECT: &str = "SELECT m.source_control_id AS source_id, m.target_control_id AS target_id, \
     m.relation, sc.ref AS source_ref, tc.ref AS target_ref, sf.slug AS source_slug, \
     tf.slug AS target_slug, sf.id AS source_framework, tf.id AS target_framework, \
     sf.organization_id AS source_org, tf.organization_id AS target_org \
     FROM control_mappings m \
     JOIN controls sc ON sc.id = m.source_control_id \
     JOIN controls tc ON tc.id = m.target_control_id \
     JOIN frameworks sf ON sf.id = sc.framework_id \
     JOIN frameworks tf ON tf.id = tc.framework_id \
     WHERE sc.retired_at IS NULL AND tc.retired_at IS NULL AND ";

/// Every mapping touching one of the controls, either way round.
///
/// # Errors
/// On a database error.
pub async fn mappings_for<C: ConnectionTrait>(
    db: &C,
    control_ids: &[Uuid],
) -> Result<Vec<MappingRow>, DbErr> {
    if control_ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let p = placeholders(control_ids.len());
    let text =
        format!("{MAPPING_SELECT}(m.source_control_id IN ({p}) OR m.target_control_id IN ({p}))");
    let mut values: Vec<Value> = control_ids.iter().map(|id| (*id).into()).collect();
    values.extend(control_ids.iter().map(|id| Value::from(*id)));
    MappingRow::find_by_statement(sql(backend, &text, values))
        .all(db)
        .await
}

/// Every mapping between two frameworks, either way round.
///
/// # Errors
/// On a database error.
pub async fn mappings_between<C: ConnectionTrait>(
    db: &C,
    a: Uuid,
    b: Uuid,
) -> Result<Vec<MappingRow>, DbErr> {
    let backend = db.get_database_backend();
    let text = format!("{MAPPING_SELECT}((sf.id = ? AND tf.id = ?) OR (sf.id = ? AND tf.id = ?))");
    MappingRow::find_by_statement(sql(
        backend,
        &text,
        vec![a.into(), b.into(), b.into(), a.into()],
    ))
    .all(db)
    .await
}

/// Deletes a framework and everything under it (cascades), scoped to its owner.
///
/// # Errors
/// On a database error.
pub async fn delete_imported<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<bool, DbErr> {
    let n = framework::Entity::delete_many()
        .filter(framework::Column::Id.eq(id))
        .filter(framework::Column::OrganizationId.eq(organization_id))
        .exec(db)
        .await?
        .rows_affected;
    Ok(n > 0)
}

/// The frameworks with these ids, in no particular order.
///
/// # Errors
/// On a database error.
pub async fn by_ids<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> Result<Vec<crate::entities::framework::Model>, DbErr> {
    use crate::entities::framework;
    framework::Entity::find()
        .filter(framework::Column::Id.is_in(ids.to_vec()))
        .all(db)
        .await
}
