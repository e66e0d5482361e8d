//! The four races of the concurrency tests, for either driver (R27, R28,
//! R29, R31): conflicting edits of one role, both confirmers accepting at
//! once, accept against cancel, accept against expiry.
//!
//! Each race sets its scene through a blocking driver, has [`THREADS`]
//! racers act at once (a [`Runner`] says how: threads or tasks, and what
//! holds them together), and checks that exactly one of each conflicting
//! set took effect. After every round, [`check_consistency`]: no update was
//! lost (each service's version counts exactly its opened edits and applied
//! changes), no two open requests share a role, and the indexes agree with
//! a full scan.

use std::future::Future;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ActError, CustomerId, Driver, DriverError, Edit, MemoryDirectory, MemoryNotifier, MemoryStore,
    Refusal, RequestId, Role, ServiceName, StateName, Store, SubmitError,
};
use time::{Duration, OffsetDateTime};

use crate::common::drive::Drive;
use crate::common::{T0, id, last_token, open_tech};

/// Racers in each race.
pub(crate) const THREADS: usize = 8;

/// Times an action is decided again after a conflict: more than the racers
/// that can commit before it.
pub(crate) const RETRIES: u32 = 64;

/// The blocking driver over the shared parts.
pub(crate) type Blocking = Driver<Arc<MemoryStore>, Arc<MemoryNotifier>, Arc<MemoryDirectory>>;

/// The parts the racers share, and a blocking driver over them that sets
/// each scene.
pub(crate) struct World {
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) notifier: Arc<MemoryNotifier>,
    pub(crate) driver: Blocking,
}

impl World {
    /// An empty store, and accounts for customers [`id`]`(0..100)`.
    pub(crate) fn new() -> World {
        let (store, notifier) = (Arc::<MemoryStore>::default(), Arc::default());
        let directory = Arc::new(MemoryDirectory::new());
        for n in 0..100 {
            directory.add(id(n));
        }
        let driver =
            Driver::new(Arc::clone(&store), Arc::clone(&notifier), directory).with_retries(RETRIES);
        World {
            store,
            notifier,
            driver,
        }
    }

    fn state(&self, request: RequestId) -> StateName {
        self.store
            .request(request)
            .expect("the store answers")
            .expect("the request is stored")
            .state()
            .name()
    }

    fn holder(&self, service: &ServiceName, role: Role) -> CustomerId {
        self.store
            .service(service)
            .expect("the store answers")
            .expect("the service is stored")
            .holder(role)
    }
}

/// One race: what each racer does, and what must hold once all are done.
pub(crate) trait Race: Send + Sync + 'static {
    /// What a racer reports.
    type Won: Send + 'static;

    /// Racer `t`'s action through `driver`.
    fn racer<D: Drive>(&self, driver: &D, t: usize) -> impl Future<Output = Self::Won> + Send;

    /// What must hold once every racer is done.
    fn check(&self, world: &World, won: &[Self::Won]);
}

/// Has the [`THREADS`] racers of a race act at once.
pub(crate) trait Runner {
    /// Each racer's report, in racer order.
    fn run<R: Race>(&mut self, race: &Arc<R>) -> Vec<R::Won>;
}

/// Plays `rounds` rounds of the four races, then checks the whole store.
pub(crate) fn play(world: &World, runner: &mut impl Runner, rounds: u32) {
    for round in 0..rounds {
        let seed = u64::from(round) * 1000;
        race(world, runner, ConflictingEdits::new(world, round, seed));
        race(world, runner, BothConfirmers::new(world, round, seed));
        race(world, runner, AcceptAgainstCancel::new(world, round, seed));
        race(world, runner, AcceptAgainstExpiry::new(world, round, seed));
    }
    check_consistency(&world.store);
}

fn race<R: Race>(world: &World, runner: &mut impl Runner, race: R) {
    let race = Arc::new(race);
    let won = runner.run(&race);
    assert_eq!(won.len(), THREADS, "every racer reports");
    race.check(world, &won);
}

/// The value of an action, or the refusal; any other error fails the test.
fn refusal<T, SE: std::fmt::Display, DE: std::fmt::Display, N>(
    round: u32,
    result: Result<service_contacts::Outcome<T, N>, DriverError<SE, DE>>,
) -> Result<T, Refusal> {
    match result {
        Ok(outcome) => Ok(outcome.value),
        Err(DriverError::Refused(refusal)) => Err(refusal),
        Err(err) => panic!("round {round}: unexpected error {err}"),
    }
}

/// The values of the racers that won, `winners` of them; checks that every
/// other racer was refused as `lost` admits.
fn tally<T: std::fmt::Debug>(
    round: u32,
    won: &[Result<T, Refusal>],
    winners: usize,
    lost: impl Fn(&Refusal) -> bool,
) -> Vec<&T> {
    let (ok, refused): (Vec<_>, Vec<_>) = won.iter().partition(|r| r.is_ok());
    assert_eq!(
        ok.len(),
        winners,
        "round {round}: {} racers took effect, {winners} expected: {won:?}",
        ok.len()
    );
    for refusal in refused.into_iter().filter_map(|r| r.as_ref().err()) {
        assert!(lost(refusal), "round {round}: unexpected refusal {refusal}");
    }
    ok.into_iter().filter_map(|r| r.as_ref().ok()).collect()
}

/// The name of service `what` in `round`, ordered by `admin`.
fn order(world: &World, what: &str, round: u32, admin: CustomerId) -> ServiceName {
    let name: ServiceName = format!("{what}-{round}.example")
        .parse()
        .expect("a valid name");
    world
        .driver
        .order_service(&name, admin)
        .expect("the service is ordered");
    name
}

/// R27: eight edits of the same role of one service; one opens.
struct ConflictingEdits {
    round: u32,
    seed: u64,
    service: ServiceName,
}

impl ConflictingEdits {
    fn new(world: &World, round: u32, seed: u64) -> Self {
        let service = order(world, "edits", round, id(1));
        ConflictingEdits {
            round,
            seed,
            service,
        }
    }
}

impl Race for ConflictingEdits {
    type Won = Result<(), Refusal>;

    async fn racer<D: Drive>(&self, driver: &D, t: usize) -> Self::Won {
        let edit = Edit::new(self.service.clone()).with(Role::Tech, id(10 + t));
        let mut rng = ChaCha20Rng::seed_from_u64(self.seed + t as u64);
        let submitted = driver.submit(&edit, id(1), T0, &mut rng).await;
        refusal(self.round, submitted).map(drop)
    }

    fn check(&self, world: &World, won: &[Self::Won]) {
        // The losers are told which request holds the role (R27).
        tally(self.round, won, 1, |refusal| {
            matches!(
                refusal,
                Refusal::Submit(SubmitError::Conflict {
                    role: Role::Tech,
                    ..
                })
            )
        });
        let open = world
            .store
            .requests()
            .into_iter()
            .filter(|r| r.service() == &self.service && r.is_open());
        assert_eq!(open.count(), 1, "R27: one open request on the role");
    }
}

/// A request to change the tech contact of a new service from `id(1)` to
/// `id(20)`, and both confirmers' tokens.
struct Opened {
    round: u32,
    service: ServiceName,
    request: RequestId,
    admin_token: String,
    incoming_token: String,
}

impl Opened {
    const ADMIN: usize = 1;
    const INCOMING: usize = 20;

    fn new(world: &World, what: &str, round: u32, seed: u64) -> Self {
        let (admin, incoming) = (id(Self::ADMIN), id(Self::INCOMING));
        let service = order(world, what, round, admin);
        let request = open_tech(&world.driver, &service, incoming, T0, seed);
        Opened {
            round,
            request,
            admin_token: last_token(&world.notifier, admin, request),
            incoming_token: last_token(&world.notifier, incoming, request),
            service,
        }
    }

    /// The same, with the incoming contact's confirmation in: the admin's
    /// is the last one missing.
    fn confirmed_by_incoming(world: &World, what: &str, round: u32, seed: u64) -> Self {
        let opened = Opened::new(world, what, round, seed);
        let _ = world
            .driver
            .accept(
                opened.request,
                id(Self::INCOMING),
                &opened.incoming_token,
                T0,
            )
            .expect("the incoming contact confirms");
        opened
    }

    /// R20, R31: the change applied (the request is done and the service
    /// shows the new holder), or it did not and the request ended as
    /// `otherwise`.
    fn check_applied(&self, world: &World, applied: bool, otherwise: StateName) {
        let (round, state) = (self.round, world.state(self.request));
        let holder = world.holder(&self.service, Role::Tech);
        if applied {
            assert_eq!(state, StateName::Done, "round {round}");
            assert_eq!(holder, id(Self::INCOMING), "round {round}");
        } else {
            assert_eq!(state, otherwise, "round {round}");
            assert_eq!(holder, id(Self::ADMIN), "round {round}");
        }
    }
}

/// R16, R20: both confirmers accept at once, each on four racers.
struct BothConfirmers(Opened);

impl BothConfirmers {
    fn new(world: &World, round: u32, seed: u64) -> Self {
        BothConfirmers(Opened::new(world, "both", round, seed + 100))
    }
}

impl Race for BothConfirmers {
    type Won = Result<(), Refusal>;

    async fn racer<D: Drive>(&self, driver: &D, t: usize) -> Self::Won {
        let o = &self.0;
        let (who, token) = if t.is_multiple_of(2) {
            (Opened::ADMIN, &o.admin_token)
        } else {
            (Opened::INCOMING, &o.incoming_token)
        };
        let at = T0 + Duration::minutes(1);
        let accepted = driver.accept(o.request, id(who), token, at).await;
        refusal(o.round, accepted).map(drop)
    }

    fn check(&self, world: &World, won: &[Self::Won]) {
        // One accept per confirmer; the others presented a used token, or
        // found the request applied.
        tally(self.0.round, won, 2, |refusal| {
            matches!(
                refusal,
                Refusal::Act(ActError::InvalidToken | ActError::Closed { .. })
            )
        });
        self.0.check_applied(world, true, StateName::Done);
    }
}

/// R28 against R20: the last confirmation races a cancel.
struct AcceptAgainstCancel(Opened);

impl AcceptAgainstCancel {
    fn new(world: &World, round: u32, seed: u64) -> Self {
        AcceptAgainstCancel(Opened::confirmed_by_incoming(
            world,
            "cancel",
            round,
            seed + 200,
        ))
    }
}

impl Race for AcceptAgainstCancel {
    type Won = Result<&'static str, Refusal>;

    async fn racer<D: Drive>(&self, driver: &D, t: usize) -> Self::Won {
        let (o, admin) = (&self.0, id(Opened::ADMIN));
        if t.is_multiple_of(2) {
            let accepted = driver.accept(o.request, admin, &o.admin_token, T0).await;
            refusal(o.round, accepted).map(|_| "accept")
        } else {
            let cancelled = driver.cancel(o.request, admin, T0).await;
            refusal(o.round, cancelled).map(|_| "cancel")
        }
    }

    fn check(&self, world: &World, won: &[Self::Won]) {
        // The losers find the request ended.
        let winners = tally(self.0.round, won, 1, |refusal| {
            matches!(refusal, Refusal::Act(ActError::Closed { .. }))
        });
        self.0
            .check_applied(world, *winners[0] == "accept", StateName::Aborted);
    }
}

/// R29 against R20: the last confirmation, a second before the deadline,
/// races the expiry sweep at the deadline.
struct AcceptAgainstExpiry {
    opened: Opened,
    deadline: OffsetDateTime,
}

impl AcceptAgainstExpiry {
    fn new(world: &World, round: u32, seed: u64) -> Self {
        let opened = Opened::confirmed_by_incoming(world, "expiry", round, seed + 300);
        let deadline = world
            .store
            .request(opened.request)
            .expect("the store answers")
            .expect("the request is stored")
            .deadline();
        AcceptAgainstExpiry { opened, deadline }
    }
}

impl Race for AcceptAgainstExpiry {
    /// Whether the racer's action took effect.
    type Won = bool;

    async fn racer<D: Drive>(&self, driver: &D, t: usize) -> Self::Won {
        let o = &self.opened;
        if t.is_multiple_of(2) {
            let before = self.deadline - Duration::seconds(1);
            let accepted = driver
                .accept(o.request, id(Opened::ADMIN), &o.admin_token, before)
                .await;
            refusal(o.round, accepted).is_ok()
        } else {
            let sweep = refusal(o.round, driver.expire_due(self.deadline).await)
                .unwrap_or_else(|r| panic!("round {}: the sweep was refused: {r}", o.round));
            assert!(sweep.is_complete(), "round {}: {:?}", o.round, sweep.failed);
            sweep.expired.contains(&o.request)
        }
    }

    fn check(&self, world: &World, won: &[Self::Won]) {
        let effects = won.iter().filter(|ok| **ok).count();
        assert_eq!(
            effects, 1,
            "round {}: {effects} of accept/expire took effect",
            self.opened.round
        );
        // Even racers accept, odd ones sweep.
        let accepted = won.iter().step_by(2).any(|ok| *ok);
        self.opened
            .check_applied(world, accepted, StateName::Expired);
    }
}

/// Every request is consistent with its service, no update was lost, and the
/// indexes agree with a full scan.
pub(crate) fn check_consistency(store: &MemoryStore) {
    store.audit().expect("indexes agree with a full scan");
    crate::common::records::records_agree(&store.services(), &store.requests());
}
