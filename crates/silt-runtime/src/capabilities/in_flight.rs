//! Many futures run on the runtime's threads with at most a limit in
//! flight, their outputs answered in order, and the caller woken once: when
//! the last one ends.
//!
//! Why not a task per future, a semaphore and a `JoinSet`: every task was
//! polled once only to queue on the semaphore, and every completion woke
//! the caller. An extension's bulk `download` is awaited on the thread that
//! runs the guest, which sleeps between those wakes, so each file cost a
//! cross-thread wake-up and a context switch of that thread (about 10 µs of
//! CPU a file on this machine, README *Lazy hydration*). Here `limit`
//! runner tasks take the futures from one queue in order, and only the
//! last runner to finish wakes the caller.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use tokio::sync::Notify;

/// What the runners share with the caller.
struct Shared<Fut: Future> {
    /// Futures not started yet, in order: the one at the front answers at
    /// index `count - queue.len()`.
    queue: Mutex<VecDeque<Fut>>,
    /// Futures in all.
    count: usize,
    /// Each future's output once it ended; `None` while running or queued,
    /// and for good when it panicked.
    outputs: Mutex<Vec<Option<Fut::Output>>>,
    /// Runners not finished yet.
    running: AtomicUsize,
    /// The last runner finished.
    done: Notify,
}

/// Locks a mutex the runners share; a runner that panicked while holding
/// it (it does not: futures run outside the locks) leaves whole data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts a runner out when it ends however it ends (finished, aborted
/// with the caller, panicked), and wakes the caller after the last one.
struct RunnerEnds<Fut: Future>(Arc<Shared<Fut>>);

impl<Fut: Future> Drop for RunnerEnds<Fut> {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Stored as a permit when the caller is not waiting yet.
            self.0.done.notify_one();
        }
    }
}

/// Runs `work` with at most `limit` futures in flight (at least one) and
/// answers each one's output at its index: `None` for one that panicked
/// (the others run on). Dropping the returned future aborts the runners,
/// which drops the futures running and those not started.
pub(super) async fn run_bounded<Fut>(work: Vec<Fut>, limit: usize) -> Vec<Option<Fut::Output>>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let count = work.len();
    if count == 0 {
        return Vec::new();
    }
    let runners = limit.clamp(1, count);
    let shared = Arc::new(Shared {
        // The vector's own buffer: no second copy of every future.
        queue: Mutex::new(VecDeque::from(work)),
        count,
        outputs: Mutex::new((0..count).map(|_| None).collect()),
        running: AtomicUsize::new(runners),
        done: Notify::new(),
    });
    // Never polled: it is here to abort the runners if the caller is
    // dropped (a call's deadline).
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..runners {
        let ends = RunnerEnds(shared.clone());
        tasks.spawn(async move {
            let shared = &ends.0;
            loop {
                let next = {
                    let mut queue = lock(&shared.queue);
                    let index = shared.count - queue.len();
                    queue.pop_front().map(|future| (index, future))
                };
                let Some((index, future)) = next else { break };
                let mut future = std::pin::pin!(future);
                let output = std::future::poll_fn(|cx| {
                    match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => Poll::Pending,
                        Ok(Poll::Ready(output)) => Poll::Ready(Some(output)),
                        Err(_) => Poll::Ready(None),
                    }
                })
                .await;
                if let Some(output) = output {
                    lock(&shared.outputs)[index] = Some(output);
                }
            }
        });
    }
    shared.done.notified().await;
    // Every runner has ended: nothing is left to abort.
    drop(tasks);
    std::mem::take(&mut *lock(&shared.outputs))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outputs_come_in_order_with_the_limit_in_flight() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let work: Vec<_> = (0..50u64)
            .map(|n| {
                let (in_flight, most) = (in_flight.clone(), most.clone());
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Of each ten, the later ones end first, so the order
                    // of the answers is not the order they ended in.
                    tokio::time::sleep(Duration::from_millis(30 - 2 * (n % 10))).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    n * 2
                }
            })
            .collect();
        let outputs = run_bounded(work, 7).await;
        assert_eq!(outputs, (0..50u64).map(|n| Some(n * 2)).collect::<Vec<_>>());
        // The first seven sleep 18 ms or more: the seven runners overlap.
        assert_eq!(most.load(Ordering::SeqCst), 7, "in flight at most");
    }

    #[tokio::test]
    async fn nothing_to_run_answers_nothing_and_a_limit_of_zero_runs_one() {
        let none: Vec<std::future::Ready<u8>> = Vec::new();
        assert!(run_bounded(none, 4).await.is_empty());
        let one = vec![std::future::ready(5u8), std::future::ready(6)];
        assert_eq!(run_bounded(one, 0).await, vec![Some(5), Some(6)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_future_that_panics_answers_none_and_the_rest_run_on() {
        let work: Vec<std::pin::Pin<Box<dyn Future<Output = u32> + Send>>> = (0..10u32)
            .map(|n| -> std::pin::Pin<Box<dyn Future<Output = u32> + Send>> {
                Box::pin(async move {
                    tokio::task::yield_now().await;
                    assert!(n != 3, "a transfer that panics");
                    n
                })
            })
            .collect();
        // One runner: the panic must not end it with the queue unserved.
        let outputs = run_bounded(work, 1).await;
        let expected: Vec<_> = (0..10u32).map(|n| (n != 3).then_some(n)).collect();
        assert_eq!(outputs, expected);
    }

    /// Sets its flag when dropped.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_caller_drops_the_running_and_the_queued_futures() {
        let running = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicBool::new(false));
        let started = Arc::new(Notify::new());
        let work: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = vec![
            {
                let (flag, started) = (DropFlag(running.clone()), started.clone());
                Box::pin(async move {
                    let _flag = flag;
                    started.notify_one();
                    std::future::pending::<()>().await;
                })
            },
            {
                let flag = DropFlag(queued.clone());
                Box::pin(async move {
                    let _flag = flag;
                })
            },
        ];
        let call = tokio::spawn(run_bounded(work, 1));
        started.notified().await;
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
        for _ in 0..500 {
            if running.load(Ordering::SeqCst) && queued.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "left behind: running dropped {}, queued dropped {}",
            running.load(Ordering::SeqCst),
            queued.load(Ordering::SeqCst)
        );
    }
}
