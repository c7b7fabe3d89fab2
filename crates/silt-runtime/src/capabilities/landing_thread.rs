//! The threads that write downloads into the cache: one that drains a
//! queue, and more that join it only while a backlog builds.
//!
//! Why not tokio's blocking pool: each `spawn_blocking` wakes an idle pool
//! thread and sends it back to sleep afterwards (futex calls and context
//! switches on both sides), and most downloads are one such write. On full
//! hydration the client spent about 90 µs more CPU per file that way than
//! with the write done on the runtime's own thread (README, *Lazy
//! hydration*). A thread that is already running takes the next write
//! from the queue without anyone being woken; another is woken (or
//! started, up to [`MAX_THREADS`]) only when more than [`BACKLOG`] writes
//! wait, because creating files is CPU-bound in the kernel on some file
//! systems (see the README on this machine's disk), and one thread would
//! then cap a pull at one core's worth of file creation.
//!
//! Why not the runtime's own threads: a write that blocks (a stalled
//! network file system under the working copy) would hold a worker, and
//! with every worker held nothing polls the call's deadline. Here it holds
//! a landing thread only: the call still ends at its deadline.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// At most this many landing threads, however many cores.
const MAX_THREADS: usize = 4;

/// Writes waiting before another thread joins the ones running.
const BACKLOG: usize = 8;

/// The queue and who serves it.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads started (they never end).
    threads: usize,
    /// Of those, waiting for work.
    idle: usize,
}

struct Landings {
    queue: Mutex<Queue>,
    work: Condvar,
}

fn landings() -> &'static Landings {
    static LANDINGS: OnceLock<Landings> = OnceLock::new();
    LANDINGS.get_or_init(|| Landings {
        queue: Mutex::new(Queue::default()),
        work: Condvar::new(),
    })
}

impl Landings {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A job runs outside the lock, so a poisoned lock holds a whole
        // queue still.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves the queue for good.
    fn serve(&self) {
        let mut queue = self.lock();
        loop {
            match queue.jobs.pop_front() {
                Some(job) => {
                    drop(queue);
                    // A panicking write drops its answer (its receiver sees
                    // an error); the thread serves on.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    queue = self.lock();
                }
                None => {
                    queue.idle += 1;
                    queue = self
                        .work
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                    queue.idle -= 1;
                }
            }
        }
    }
}

/// Runs `write` on a landing thread; its result arrives on the receiver
/// (dropped there, on that thread, when the receiver is gone by then).
/// The receiver reports an error only if `write` panicked. A download's
/// writes keep their order: it waits for one before it sends the next.
pub(super) fn run<R: Send + 'static>(
    write: impl FnOnce() -> R + Send + 'static,
) -> oneshot::Receiver<R> {
    let (answer, receiver) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = answer.send(write());
    });
    let shared = landings();
    let mut queue = shared.lock();
    queue.jobs.push_back(job);
    let running = queue.threads - queue.idle;
    let wanted = running == 0 || queue.jobs.len() > BACKLOG;
    if !wanted {
        return receiver;
    }
    if queue.idle > 0 {
        shared.work.notify_one();
    } else if queue.threads < MAX_THREADS {
        let number = queue.threads;
        let started = std::thread::Builder::new()
            .name(format!("silt-landing-{number}"))
            .spawn(|| landings().serve());
        match started {
            Ok(_) => queue.threads += 1,
            Err(err) if queue.threads == 0 => {
                // No thread to serve it: write here rather than never.
                let job = queue.jobs.pop_back().expect("just queued");
                drop(queue);
                tracing::warn!("cannot start a download-writing thread ({err}); writing in place");
                job();
            }
            Err(_) => {}
        }
    }
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_answer_and_a_panic_answers_an_error() {
        let failed = run(|| -> u32 { panic!("a write that panics") });
        assert!(failed.await.is_err());
        // The threads serve on after it, a backlog included.
        let answers: Vec<_> = (0..4 * BACKLOG).map(|n| run(move || n)).collect();
        for (n, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.await.unwrap(), n);
        }
        let queue = landings().lock();
        assert!((1..=MAX_THREADS).contains(&queue.threads));
    }
}
