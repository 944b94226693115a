//! Implementation plans and their tasks. Every query takes the organisation.

use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entities::{control, plan, plan_task};

/// Records a plan and its tasks.
///
/// # Errors
/// On a database error.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: plan::Model,
    tasks: Vec<plan_task::Model>,
) -> Result<(), DbErr> {
    plan::Entity::insert(plan::ActiveModel::from(row))
        .exec_without_returning(db)
        .await?;
    for chunk in tasks.chunks(200) {
        plan_task::Entity::insert_many(chunk.iter().cloned().map(plan_task::ActiveModel::from))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// One of the organisation's plans.
///
/// # Errors
/// On a database error.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<plan::Model>, DbErr> {
    plan::Entity::find_by_id(id)
        .filter(plan::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await
}

/// The organisation's plans, newest first.
///
/// # Errors
/// On a database error.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<plan::Model>, DbErr> {
    plan::Entity::find()
        .filter(plan::Column::OrganizationId.eq(organization_id))
        .order_by_desc(plan::Column::Id)
        .all(db)
        .await
}

/// A plan's tasks in plan order.
///
/// # Errors
/// On a database error.
pub async fn tasks<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    plan_id: Uuid,
) -> Result<Vec<plan_task::Model>, DbErr> {
    plan_task::Entity::find()
        .filter(plan_task::Column::OrganizationId.eq(organization_id))
        .filter(plan_task::Column::PlanId.eq(plan_id))
        .order_by_asc(plan_task::Column::Position)
        .all(db)
        .await
}

/// How many tasks a plan has, and how many are done.
#[derive(Debug, Clone, FromQueryResult)]
pub struct TaskCount {
    pub plan_id: Uuid,
    pub status: String,
    pub count: i64,
}

/// Task counts by plan and status, for every plan of the organisation: one query.
///
/// # Errors
/// On a database error.
pub async fn task_counts<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<TaskCount>, DbErr> {
    plan_task::Entity::find()
        .select_only()
        .column(plan_task::Column::PlanId)
        .column(plan_task::Column::Status)
        .column_as(plan_task::Column::Id.count(), "count")
        .filter(plan_task::Column::OrganizationId.eq(organization_id))
        .group_by(plan_task::Column::PlanId)
        .group_by(plan_task::Column::Status)
        .into_model::<TaskCount>()
        .all(db)
        .await
}

/// One task of one of the organisation's plans.
///
/// # Errors
/// On a database error.
pub async fn find_task<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    plan_id: Uuid,
    task_id: Uuid,
) -> Result<Option<plan_task::Model>, DbErr> {
    plan_task::Entity::find_by_id(task_id)
        .filter(plan_task::Column::OrganizationId.eq(organization_id))
        .filter(plan_task::Column::PlanId.eq(plan_id))
        .one(db)
        .await
}

/// Saves the fields of `row` that differ from `before`, and only those, so two
/// people changing different fields of one task at once both keep their change.
///
/// # Errors
/// On a database error.
pub async fn update_task<C: ConnectionTrait>(
    db: &C,
    before: &plan_task::Model,
    row: plan_task::Model,
) -> Result<(), DbErr> {
    use sea_orm::ActiveValue::{NotSet, Set};
    fn changed<T: PartialEq + Into<sea_orm::Value>>(old: &T, new: T) -> sea_orm::ActiveValue<T> {
        if *old == new { NotSet } else { Set(new) }
    }
    let status_changed = before.status != row.status;
    plan_task::Entity::update_many()
        .set(plan_task::ActiveModel {
            status: changed(&before.status, row.status),
            assignee_id: changed(&before.assignee_id, row.assignee_id),
            due_date: changed(&before.due_date, row.due_date),
            notes: changed(&before.notes, row.notes),
            completed_at: if status_changed {
                Set(row.completed_at)
            } else {
                NotSet
            },
            updated_at: Set(row.updated_at),
            ..Default::default()
        })
        .filter(plan_task::Column::Id.eq(row.id))
        .filter(plan_task::Column::OrganizationId.eq(row.organization_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The organisation's unfinished tasks due on or after `from` (when given) and
/// before `before`, soonest first, at most `limit` of them.
///
/// # Errors
/// On a database error.
pub async fn open_tasks_due<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    from: Option<NaiveDate>,
    before: NaiveDate,
    limit: u64,
) -> Result<Vec<plan_task::Model>, DbErr> {
    let mut q = plan_task::Entity::find()
        .filter(plan_task::Column::OrganizationId.eq(organization_id))
        .filter(plan_task::Column::Status.ne("done"))
        .filter(plan_task::Column::DueDate.lt(before));
    if let Some(from) = from {
        q = q.filter(plan_task::Column::DueDate.gte(from));
    }
    q.order_by_asc(plan_task::Column::DueDate)
        .order_by_asc(plan_task::Column::Position)
        .limit(limit)
        .all(db)
        .await
}

/// How many of the organisation's unfinished tasks are due before `before`.
///
/// # Errors
/// On a database error.
pub async fn count_open_due_before<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    before: NaiveDate,
) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    plan_task::Entity::find()
        .filter(plan_task::Column::OrganizationId.eq(organization_id))
        .filter(plan_task::Column::Status.ne("done"))
        .filter(plan_task::Column::DueDate.lt(before))
        .count(db)
        .await
}

/// The (assessment, control) pairs whose task is done in a plan of that assessment.
///
/// # Errors
/// On a database error.
pub async fn done_controls<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
) -> Result<Vec<(Uuid, Uuid)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Done {
        assessment_id: Uuid,
        control_id: Uuid,
    }
    Ok(Done::find_by_statement(super::frameworks::sql(
        db.get_database_backend(),
        "SELECT DISTINCT p.assessment_id, t.control_id FROM plan_tasks t \
         JOIN plans p ON p.id = t.plan_id \
         WHERE t.organization_id = ? AND p.organization_id = ? AND t.status = 'done'",
        vec![organization_id.into(), organization_id.into()],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|d| (d.assessment_id, d.control_id))
    .collect())
}

/// The effort estimates of `controls`, in half days, where the content gives one.
///
/// # Errors
/// On a database error.
pub async fn control_efforts<C: ConnectionTrait>(
    db: &C,
    controls: &[Uuid],
) -> Result<Vec<(Uuid, Option<i32>)>, DbErr> {
    let mut out = Vec::with_capacity(controls.len());
    for chunk in controls.chunks(500) {
        let rows: Vec<(Uuid, Option<i32>)> = control::Entity::find()
            .select_only()
            .column(control::Column::Id)
            .column(control::Column::EffortHalfDays)
            .filter(control::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}
