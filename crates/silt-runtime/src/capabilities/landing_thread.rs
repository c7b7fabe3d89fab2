//! The threads that write downloads into the cache: one that drains a
//! queue, and more that join it only while writes wait.
//!
//! Why not tokio's blocking pool: each `spawn_blocking` wakes an idle pool
//! thread and sends it back to sleep afterwards (futex calls and context
//! switches on both sides), and most downloads are one such write. On full
//! hydration the client spent about 90 µs more CPU per file that way than
//! with the write done on the runtime's own thread (docs/performance.md, *Lazy
//! hydration*). A thread that is already running takes the next write
//! from the queue without anyone being woken. Another is woken (or
//! started, up to [`MAX_THREADS`]) when more than [`BACKLOG`] writes wait,
//! because creating files is CPU-bound in the kernel on some file systems
//! (docs/performance.md, on this machine's disk) and one thread would cap a pull
//! at one core's worth of it; and when every running thread has been on
//! its write longer than [`STUCK`], so that one write blocked on a stalled
//! file system does not hold up the others while a thread is left.
//!
//! Why not the runtime's own threads: a write that blocks would hold a
//! worker, and with every worker held nothing polls the call's deadline.
//! Here it holds a landing thread: the call still ends at its deadline.
//! Writes that blocked for good keep their threads (as they kept tokio's);
//! once all [`MAX_THREADS`] are held, later writes wait with their calls'
//! deadlines for an end.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// At most this many landing threads, however many cores.
const MAX_THREADS: usize = 4;

/// Writes waiting before another thread joins the ones running.
const BACKLOG: usize = 8;

/// A write running longer than this may be stuck: the next one to come
/// gets another thread. (A write of up to 2 MiB to a local disk takes
/// milliseconds.)
const STUCK: Duration = Duration::from_millis(50);

/// The queue and who serves it.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// When each started thread (they never end) began the write it is
    /// on; `None` while it waits for work.
    busy_since: Vec<Option<Instant>>,
    /// Callers of [`wait_settled`] waiting: only then does a thread going
    /// idle wake anyone (a wake is a system call).
    settle_waiters: usize,
}

impl Queue {
    fn idle(&self) -> usize {
        self.busy_since
            .iter()
            .filter(|since| since.is_none())
            .count()
    }

    /// No write waiting or running.
    fn settled(&self) -> bool {
        self.jobs.is_empty() && self.busy_since.iter().all(Option::is_none)
    }

    /// Whether a queued write should get a thread that is not running now.
    fn wants_another_thread(&self) -> bool {
        let mut running = self.busy_since.iter().flatten().peekable();
        running.peek().is_none()
            || self.jobs.len() > BACKLOG
            || running.all(|since| since.elapsed() > STUCK)
    }
}

struct Landings {
    queue: Mutex<Queue>,
    /// A write was queued for the idle threads.
    work: Condvar,
    /// A thread went idle (for [`wait_settled`]).
    idled: Condvar,
}

fn landings() -> &'static Landings {
    static LANDINGS: OnceLock<Landings> = OnceLock::new();
    LANDINGS.get_or_init(|| Landings {
        queue: Mutex::new(Queue::default()),
        work: Condvar::new(),
        idled: Condvar::new(),
    })
}

impl Landings {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Writes run outside the lock, so a poisoned lock still holds a
        // whole queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Thread `number` serves the queue for good.
    fn serve(&self, number: usize) {
        let mut queue = self.lock();
        loop {
            match queue.jobs.pop_front() {
                Some(job) => {
                    queue.busy_since[number] = Some(Instant::now());
                    drop(queue);
                    run_caught(job);
                    queue = self.lock();
                }
                None => {
                    queue.busy_since[number] = None;
                    if queue.settle_waiters > 0 {
                        self.idled.notify_all();
                    }
                    queue = self
                        .work
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

/// Runs a write; one that panics drops its answer (its receiver sees an
/// error, its file is removed), and the thread serves on.
fn run_caught(job: Job) {
    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
}

/// Runs `write` on a landing thread; its result arrives on the receiver
/// (dropped there, on that thread, when the receiver is gone by then).
/// The receiver reports an error only if `write` panicked. A download's
/// writes keep their order: it waits for one before it sends the next.
/// `write` must not wait for another landing.
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
    if !queue.wants_another_thread() {
        return receiver;
    }
    if queue.idle() > 0 {
        shared.work.notify_one();
        return receiver;
    }
    let number = queue.busy_since.len();
    if number == MAX_THREADS {
        return receiver;
    }
    // Started under the lock (a rare, short wait for the others), so that
    // its slot exists before it looks at the queue.
    let started = std::thread::Builder::new()
        .name(format!("silt-landing-{number}"))
        .spawn(move || landings().serve(number));
    match started {
        Ok(_) => queue.busy_since.push(None),
        Err(err) if number == 0 => {
            // No thread to serve it: write here, on the caller's thread,
            // rather than never.
            let job = queue.jobs.pop_back().expect("just queued");
            drop(queue);
            tracing::warn!("cannot start a download-writing thread ({err}); writing in place");
            run_caught(job);
        }
        // The threads running serve it in turn.
        Err(_) => {}
    }
    receiver
}

/// Waits up to `timeout` for every queued and running download write to
/// end; false when some had not. A command calls it before it exits: a
/// write whose download was dropped (at its call's deadline) removes its
/// temporary file when it ends, and exiting first would leave the file.
pub fn wait_settled(timeout: Duration) -> bool {
    let shared = landings();
    let mut queue = shared.lock();
    queue.settle_waiters += 1;
    let (mut queue, _) = shared
        .idled
        .wait_timeout_while(queue, timeout, |queue| !queue.settled())
        .unwrap_or_else(PoisonError::into_inner);
    queue.settle_waiters -= 1;
    queue.settled()
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
        assert!(wait_settled(Duration::from_secs(10)));
        assert!((1..=MAX_THREADS).contains(&landings().lock().busy_since.len()));
    }

    #[tokio::test]
    async fn a_stuck_write_does_not_hold_up_the_next() {
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let (began, beginning) = std::sync::mpsc::channel::<()>();
        let held = run(move || {
            began.send(()).unwrap();
            stuck.recv().is_ok()
        });
        // Stuck once it has run longer than STUCK (counted from its start,
        // which a loaded machine may delay).
        beginning
            .recv_timeout(Duration::from_secs(10))
            .expect("the stuck write started");
        std::thread::sleep(STUCK * 2);
        // One write waiting, far below the backlog: it still gets a thread.
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), run(|| 7))
                .await
                .expect("a write queued behind a stuck one ran")
                .unwrap(),
            7
        );
        assert!(!wait_settled(Duration::from_millis(20)), "one is stuck");
        release.send(()).unwrap();
        assert!(held.await.unwrap());
        assert!(wait_settled(Duration::from_secs(10)));
    }
}
