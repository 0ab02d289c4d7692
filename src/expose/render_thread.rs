//! One thread that makes the pages (`/metrics`, its gzip copy, the status
//! page and its JSON), so that their memory is reused. glibc's malloc gives
//! each thread that allocates an arena of its own and keeps what was freed
//! there for that arena's next allocations (a freed page-sized block raises
//! its threshold for giving memory back). Pages made on whichever blocking
//! thread served the request left a page's worth in each of up to 16 arenas:
//! 40 MB grew to 226 MB after a storm of 17 MB pages, for good. Made on one
//! thread, one arena's memory is reused (BENCHMARKS.md).
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Sender};
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

/// Runs `make` on the render thread and waits for what it made; on the
/// calling thread if the render thread could not be started. A panic in
/// `make` is the caller's again.
pub fn run<T: Send + 'static>(make: impl FnOnce() -> T + Send + 'static) -> T {
    static JOBS: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    let Some(jobs) = JOBS.get_or_init(start) else { return make() };
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(make());
    });
    // The thread catches every job's panic, so it outlives them; if not, here.
    if let Err(mpsc::SendError(job)) = jobs.send(job) {
        job();
    }
    rx.recv().unwrap_or_else(|_| panic!("rendering a page panicked (logged above)"))
}

fn start() -> Option<Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new().name("render".into()).spawn(move || {
        for job in rx {
            // The panic is logged by the hook and reaches the caller as a closed channel.
            let _ = catch_unwind(AssertUnwindSafe(job));
        }
    });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            log::error!("cannot start the render thread ({e}): pages are made where they are asked for");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_one_thread_and_a_panic_is_the_callers() {
        let names: Vec<_> = (0..3).map(|_| run(|| std::thread::current().id())).collect();
        assert!(names.iter().all(|n| *n == names[0]) && names[0] != std::thread::current().id());
        assert!(std::panic::catch_unwind(|| run(|| panic!("render"))).is_err());
        assert_eq!(run(|| 7), 7, "the thread goes on after a panic");
    }
}
