//! Workers: consume the queue and run each job through the jobs service.
//!
//! `ruleiq serve` runs one inside the server (unless `EMBEDDED_WORKER=false`);
//! `ruleiq worker` runs one on its own, for deployments that separate the two.

use apalis::prelude::{BackendExt, BackoffConfig, BoxDynError, Data, WorkerBuilder};
use ruleiq_services::jobs::{JobEnvelope, Jobs};
use std::{future::Future, time::Duration};

/// How often an idle worker looks for new jobs at first. Pushes from another process
/// (an API instance, `ruleiq jobs test`) are only seen by polling, so this bounds the
/// pick-up latency of a busy queue.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The longest gap between polls once the queue has been idle for a while: the worst
/// pick-up latency of a quiet queue for jobs queued by another process, and the cost of
/// idling (five indexed queries a second a worker). A job queued by this process (a
/// member asking for a policy on a `ruleiq serve` with its embedded worker) does not
/// wait for it: the push wakes the worker.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(200);

fn backoff() -> BackoffConfig {
    BackoffConfig::new(MAX_POLL_INTERVAL).with_multiplier(1.5)
}

use crate::{
    ApalisQueue,
    queue::{PushedOrDue, Storage},
};

/// The worker's task function: every delivery goes to [`Jobs::execute`].
async fn handle(envelope: JobEnvelope, jobs: Data<Jobs>) -> Result<(), BoxDynError> {
    jobs.execute(envelope).await.map_err(|e| {
        tracing::error!(error = %e, "could not record a job's outcome; the queue will deliver it again");
        BoxDynError::from(e)
    })
}

/// Runs a worker named `name` on `queue` until `shutdown` completes, then lets the job
/// in hand finish.
///
/// # Errors
/// When the queue cannot be polled.
pub async fn run(
    name: &str,
    queue: ApalisQueue,
    jobs: Jobs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BoxDynError> {
    let signal = async move {
        shutdown.await;
        Ok::<(), std::io::Error>(())
    };
    tracing::info!(worker = name, backend = %jobs.queue_backend(), "job worker started");
    // A job this process queues is taken at once; others when the poll comes round.
    let strategy = PushedOrDue::new(queue.pushed.clone(), POLL_INTERVAL, backoff());
    // Each storage is its own type, so the same builder chain is spelled once per arm.
    macro_rules! run_on {
        ($storage:expr) => {
            WorkerBuilder::new(name)
                .backend($storage.poll_with_strategy(strategy))
                .data(jobs)
                .build(handle)
                .run_until(signal)
                .await?
        };
    }
    match queue.storage {
        Storage::Sqlite(storage) => run_on!(storage),
        Storage::Postgres(storage) => run_on!(storage),
        Storage::Redis(storage) => run_on!(storage),
    }
    tracing::info!(worker = name, "job worker stopped");
    Ok(())
}
