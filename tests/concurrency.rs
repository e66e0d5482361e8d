//! Eight threads share one in-memory store through the blocking driver and
//! race: conflicting edits of one role, both confirmers accepting at once,
//! accept against cancel, accept against expiry (R27, R31).
//!
//! Afterwards exactly one of each conflicting set took effect, no update was
//! lost (each service's version counts exactly its opened edits and applied
//! changes), every request is consistent and the indexes agree with a full
//! scan. The races and their checks are in `common/races.rs`, shared with
//! `async_concurrency.rs`, which runs them through the async driver.

mod common;
#[path = "common/races.rs"]
mod races;

use std::sync::Arc;

use common::drive::now;
use races::{Blocking, Race, Runner, THREADS, World};

const ROUNDS: u32 = 300;

/// The racers are threads, released together by a barrier, each calling the
/// blocking driver.
struct Threads<'a>(&'a Blocking);

impl Runner for Threads<'_> {
    fn run<R: Race>(&mut self, race: &Arc<R>) -> Vec<R::Won> {
        common::race(THREADS, |t| now(race.racer(self.0, t)))
    }
}

// R27, R28, R29, R31.
#[test]
fn racing_actions_take_effect_once() {
    let world = World::new();
    races::play(&world, &mut Threads(&world.driver), ROUNDS);
}
