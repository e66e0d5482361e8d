//! The races of `concurrency.rs` through the [`AsyncDriver`]: eight tokio
//! tasks on a multi-threaded runtime share one in-memory store and race
//! (conflicting edits of one role, both confirmers accepting at once, accept
//! against cancel, accept against expiry; R27, R28, R29, R31).
//!
//! The race is certain, not left to the scheduler: the store the async
//! driver sees holds the first commit of every racer at a
//! [`tokio::sync::Barrier`] and lets them through together once all eight
//! are there, so every racer has read and decided on the same state before
//! any of them commits. Afterwards exactly one of each conflicting set took
//! effect, no update was lost, and the indexes agree with a full scan (the
//! checks of `common/races.rs`, shared with `concurrency.rs`).

mod common;
#[path = "common/races.rs"]
mod races;

use std::sync::{Arc, Mutex, PoisonError};

use common::hooked::{Call, Hook, Hooked};
use races::{RETRIES, Race, Runner, THREADS, World};
use service_contacts::{AsyncDriver, MemoryDirectory, MemoryNotifier, MemoryStore};
use tokio::runtime::Runtime;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

const ROUNDS: u32 = 300;

/// Once armed for `n` commits, holds each of the next `n` at a barrier
/// until all `n` are there; lets every other commit through.
#[derive(Debug, Default)]
struct CommitGate {
    armed: Mutex<Armed>,
}

#[derive(Debug, Default)]
struct Armed {
    barrier: Option<Arc<Barrier>>,
    /// Commits still to hold.
    left: usize,
}

impl CommitGate {
    fn armed(&self) -> std::sync::MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn arm(&self, n: usize) {
        *self.armed() = Armed {
            barrier: Some(Arc::new(Barrier::new(n))),
            left: n,
        };
    }

    /// The barrier a commit arriving now waits at, if it is held.
    fn hold(&self) -> Option<Arc<Barrier>> {
        let mut armed = self.armed();
        if armed.left == 0 {
            return None;
        }
        armed.left -= 1;
        armed.barrier.clone()
    }

    fn left(&self) -> usize {
        self.armed().left
    }
}

impl Hook for CommitGate {
    async fn before(&self, call: Call) {
        if call == Call::Commit
            && let Some(barrier) = self.hold()
        {
            barrier.wait().await;
        }
    }
}

type Racer = AsyncDriver<
    Hooked<Arc<MemoryStore>, Arc<CommitGate>>,
    Arc<MemoryNotifier>,
    Arc<MemoryDirectory>,
>;

/// The racers are tokio tasks on a multi-threaded runtime, each calling the
/// async driver, whose commits the gate holds until all have decided.
struct Tasks {
    runtime: Runtime,
    driver: Arc<Racer>,
    gate: Arc<CommitGate>,
}

impl Tasks {
    fn new(world: &World) -> Tasks {
        let gate = Arc::new(CommitGate::default());
        let store = Hooked::new(Arc::clone(&world.store), Arc::clone(&gate));
        let driver = AsyncDriver::new(
            store,
            Arc::clone(&world.notifier),
            Arc::clone(world.driver.directory()),
        )
        .with_retries(RETRIES);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .expect("a runtime");
        Tasks {
            runtime,
            driver: Arc::new(driver),
            gate,
        }
    }
}

impl Runner for Tasks {
    fn run<R: Race>(&mut self, race: &Arc<R>) -> Vec<R::Won> {
        self.gate.arm(THREADS);
        let gate = &self.gate;
        let won = self.runtime.block_on(async {
            let mut tasks = JoinSet::new();
            for t in 0..THREADS {
                let (race, driver) = (Arc::clone(race), Arc::clone(&self.driver));
                tasks.spawn(async move { (t, race.racer(&*driver, t).await) });
            }
            let mut won: Vec<Option<R::Won>> = (0..THREADS).map(|_| None).collect();
            while let Some(done) = tasks.join_next().await {
                let (t, report) =
                    done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                // A racer ends only after its commit passed the barrier, so
                // every racer's commit was held: had one ended without
                // committing, the others would wait for ever.
                assert_eq!(
                    gate.left(),
                    0,
                    "racer {t} ended before every racer had reached its commit"
                );
                won[t] = Some(report);
            }
            won
        });
        won.into_iter()
            .map(|w| w.expect("every racer reported"))
            .collect()
    }
}

// R27, R28, R29, R31: with every racer's read and decision made before any
// commit, exactly one of each conflicting set takes effect.
#[test]
fn racing_tasks_take_effect_once() {
    let world = World::new();
    let mut tasks = Tasks::new(&world);
    races::play(&world, &mut tasks, ROUNDS);
    // Every commit of the last race went through the gate: it holds nothing
    // more.
    assert_eq!(tasks.gate.left(), 0);
}
