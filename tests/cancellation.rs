//! Every action of the [`AsyncDriver`] dropped at each of its await points
//! in turn (the client hung up): the store holds the state before a commit
//! or after it, never half (R31), and no message is delivered for a state
//! that was not committed (R41).
//!
//! The host parts are the in-memory ones behind a [`Holder`], which counts
//! the calls made to them (each call is one await point of the action) and
//! holds the N-th call pending, without waking, until released. The test
//! polls the action's future itself, once, with a waker that counts wakes:
//! the poll runs the action up to its N-th call, which is held; the future
//! is then dropped. A held call is not made at all (its blocking twin runs
//! only when the call completes), so a commit dropped while pending writes
//! nothing, as [`AsyncStore`](service_contacts::AsyncStore) requires.
//!
//! For each action, a reference run without a hold records the call made at
//! each await point and what the store and the notifier held just before
//! it. Then, for N = 0, 1, 2, ..., the action runs again from the same
//! scene with its N-th call held, until a run completes without meeting the
//! hold: so every await point is dropped at once, and their number is the
//! action's, as spelt out in each case (`calls`).

mod common;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use common::hooked::{Call, Hook, Hooked};
use common::{T0, id, last_token};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ActError, AsyncDriver, ChangeRequest, Contacts, CustomerId, Driver, DriverError, Edit,
    EventKind, MemoryDirectory, MemoryNotifier, MemoryStore, Message, Refusal, RequestId, Role,
    Service, ServiceName, Token,
};
use time::Duration;

use Call::{
    Commit, Deliver, DueForExpiry, Exists, InGoodStanding, Request as Load, Service as Read,
};

/// The cast: `id(ADMIN)` holds the admin and billing roles, `id(TECH)` the
/// tech role; `id(INCOMING)` and `id(OTHER)` are proposed.
const ADMIN: usize = 1;
const TECH: usize = 2;
const INCOMING: usize = 3;
const OTHER: usize = 4;

fn name() -> ServiceName {
    "example.com".parse().expect("a valid name")
}

// ----- the world, and what it holds -----

/// The in-memory host parts of one run.
#[derive(Default)]
struct World {
    store: MemoryStore,
    notifier: MemoryNotifier,
    directory: MemoryDirectory,
}

impl World {
    fn new() -> World {
        let world = World::default();
        for customer in [id(ADMIN), id(TECH), id(INCOMING), id(OTHER)] {
            world.directory.add(customer);
        }
        world
    }

    /// A blocking driver over the parts, to set the scene.
    fn blocking(&self) -> Driver<&MemoryStore, &MemoryNotifier, &MemoryDirectory> {
        Driver::new(&self.store, &self.notifier, &self.directory)
    }

    fn state(&self) -> State {
        let mut services = self.store.services();
        services.sort_by(|a, b| a.name().cmp(b.name()));
        let mut requests = self.store.requests();
        requests.sort_by_key(ChangeRequest::id);
        State {
            services,
            requests,
            delivered: self.notifier.delivered().iter().map(Sent::of).collect(),
        }
    }
}

/// A message as sent: recipient, request, kind and token.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    to: CustomerId,
    request: Option<RequestId>,
    kind: String,
    token: Option<String>,
}

impl Sent {
    fn of(m: &Message) -> Sent {
        Sent {
            to: m.to(),
            request: m.request(),
            kind: format!("{:?}", m.kind()),
            token: m.token().map(Token::reveal),
        }
    }
}

/// Everything the store holds, and the messages delivered so far.
#[derive(Clone, Debug, PartialEq)]
struct State {
    services: Vec<Service>,
    requests: Vec<ChangeRequest>,
    delivered: Vec<Sent>,
}

impl State {
    fn store(&self) -> (&[Service], &[ChangeRequest]) {
        (&self.services, &self.requests)
    }
}

// ----- the hold -----

/// Counts the calls of an action to its host parts and holds the
/// `hold_at`-th (from 0) pending until released; records the world's state
/// just before each call.
struct Holder<'w> {
    world: &'w World,
    hold_at: Option<usize>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    calls: Vec<Call>,
    /// The world just before each call.
    states: Vec<State>,
    /// The waker of the held call.
    waker: Option<Waker>,
    released: bool,
}

impl<'w> Holder<'w> {
    fn new(world: &'w World, hold_at: Option<usize>) -> Self {
        Holder {
            world,
            hold_at,
            seen: Mutex::default(),
        }
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn calls(&self) -> Vec<Call> {
        self.seen().calls.clone()
    }

    /// Whether the call held was made and is waiting.
    fn holding(&self) -> bool {
        let seen = self.seen();
        self.hold_at.is_some_and(|n| seen.calls.len() > n) && !seen.released
    }

    fn release(&self) {
        let waker = {
            let mut seen = self.seen();
            seen.released = true;
            seen.waker.take()
        };
        waker.expect("the held call left its waker").wake();
    }
}

impl Hook for Holder<'_> {
    async fn before(&self, call: Call) {
        let hold = {
            let state = self.world.state();
            let mut seen = self.seen();
            let n = seen.calls.len();
            seen.calls.push(call);
            seen.states.push(state);
            self.hold_at == Some(n)
        };
        if hold {
            poll_fn(|cx| {
                let mut seen = self.seen();
                if seen.released {
                    Poll::Ready(())
                } else {
                    seen.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
        }
    }
}

/// Counts the wakes of the future under test.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Wakes {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

// ----- the cases -----

/// The async driver over one run's parts, each behind the run's holder.
type Drv<'w> = AsyncDriver<
    Hooked<&'w MemoryStore, &'w Holder<'w>>,
    Hooked<&'w MemoryNotifier, &'w Holder<'w>>,
    Hooked<&'w MemoryDirectory, &'w Holder<'w>>,
>;

/// An action's future: `Ok` or the error's text.
type Run<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;

/// What a scene leaves for the action.
#[derive(Default)]
struct Scene {
    /// The request opened on the tech role, if any.
    request: Option<RequestId>,
    admin_token: String,
    incoming_token: String,
}

impl Scene {
    fn request(&self) -> RequestId {
        self.request.expect("the scene opened a request")
    }
}

/// One action, from one scene.
struct Case {
    what: &'static str,
    /// Sets the scene through the blocking driver.
    scene: fn(&World) -> Scene,
    act: for<'a> fn(&'a Drv<'a>, &'a Scene) -> Run<'a>,
    /// The call at each await point, in order: the action's await points.
    calls: &'static [Call],
    /// Whether the action succeeds (else it is refused).
    succeeds: bool,
}

fn done<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<(), String> {
    result.map(drop).map_err(|e| e.to_string())
}

/// Nothing but the accounts.
fn empty(_: &World) -> Scene {
    Scene::default()
}

/// `example.com`, imported with `id(ADMIN)` as admin and billing contact,
/// `id(TECH)` as tech contact (R42).
fn service(world: &World) -> Scene {
    world
        .blocking()
        .import_services([(name(), Contacts::new(id(ADMIN), id(TECH), id(ADMIN)))])
        .expect("imported");
    Scene::default()
}

/// The admin asks to give the tech role to `id(INCOMING)` (R8a): a request
/// awaiting the admin's and the incoming contact's confirmations.
fn open(world: &World) -> Scene {
    service(world);
    let edit = Edit::new(name()).with(Role::Tech, id(INCOMING));
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let request = world
        .blocking()
        .submit(&edit, id(ADMIN), T0, &mut rng)
        .expect("opened")
        .value[0];
    Scene {
        request: Some(request),
        admin_token: last_token(&world.notifier, id(ADMIN), request),
        incoming_token: last_token(&world.notifier, id(INCOMING), request),
    }
}

/// The same, confirmed by the incoming contact: the admin's confirmation is
/// the last one missing.
fn confirmed(world: &World) -> Scene {
    let scene = open(world);
    let _ = world
        .blocking()
        .accept(scene.request(), id(INCOMING), &scene.incoming_token, T0)
        .expect("confirmed");
    scene
}

/// The tech request, and a second one giving the billing role to
/// `id(OTHER)`.
fn two_open(world: &World) -> Scene {
    let scene = open(world);
    let edit = Edit::new(name()).with(Role::Billing, id(OTHER));
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let _ = world
        .blocking()
        .submit(&edit, id(ADMIN), T0, &mut rng)
        .expect("opened");
    scene
}

/// After the request's deadline.
fn late() -> time::OffsetDateTime {
    T0 + Duration::days(8)
}

/// An action as a [`Run`]: `$call`, a call of the driver `$d` (with the
/// scene `$s`), awaited.
macro_rules! act {
    (|$d:ident, $s:tt| $call:expr) => {
        |$d, $s| Box::pin(async move { done($call.await) })
    };
}

const CASES: &[Case] = &[
    Case {
        what: "order_service (R5)",
        scene: empty,
        act: act!(|d, _| d.order_service(&name(), id(ADMIN))),
        // The account; the name (not taken?); the commit.
        calls: &[Exists, Read, Commit],
        succeeds: true,
    },
    Case {
        what: "import_services (R42)",
        scene: empty,
        act: act!(|d, _| d.import_services([
            (name(), Contacts::new(id(ADMIN), id(TECH), id(ADMIN))),
            (
                "other.example".parse().expect("name"),
                Contacts::all(id(OTHER))
            ),
        ])),
        // Each holder's account; each name; the commit.
        calls: &[Exists, Exists, Exists, Read, Read, Commit],
        succeeds: true,
    },
    Case {
        what: "submit (R8, R36)",
        scene: service,
        act: act!(|d, _| d.submit(
            &Edit::new(name()).with(Role::Tech, id(INCOMING)),
            id(ADMIN),
            T0,
            &mut ChaCha20Rng::seed_from_u64(7)
        )),
        // The service (it names no request yet); the incoming account
        // (R13, R14); the commit; a confirmation request to each confirmer.
        calls: &[Read, Exists, InGoodStanding, Commit, Deliver, Deliver],
        succeeds: true,
    },
    Case {
        what: "accept, not the last confirmation (R19)",
        scene: open,
        act: act!(|d, s| d.accept(s.request(), id(INCOMING), &s.incoming_token, T0)),
        // The request; the commit; no news yet.
        calls: &[Load, Commit],
        succeeds: true,
    },
    Case {
        what: "accept, the last confirmation: applies (R20, R30, R31, R38)",
        scene: confirmed,
        act: act!(|d, s| d.accept(s.request(), id(ADMIN), &s.admin_token, T0)),
        // The request; the service (the request it names is the one in
        // hand: not read again); the incoming account, checked again (R30);
        // the commit; "applied" to both confirmers, "replaced" to the
        // outgoing tech contact.
        calls: &[
            Load,
            Read,
            Exists,
            InGoodStanding,
            Commit,
            Deliver,
            Deliver,
            Deliver,
        ],
        succeeds: true,
    },
    Case {
        what: "refuse (R21, R39)",
        scene: open,
        act: act!(|d, s| d.refuse(s.request(), id(INCOMING), &s.incoming_token, T0)),
        // The request; the commit; "refused" to each party.
        calls: &[Load, Commit, Deliver, Deliver],
        succeeds: true,
    },
    Case {
        what: "a failed token attempt, recorded (R25, R26)",
        scene: open,
        act: |d, s| {
            Box::pin(async move {
                let wrong = d
                    .accept(s.request(), id(INCOMING), "not-the-token", T0)
                    .await;
                assert!(
                    matches!(
                        wrong,
                        Err(DriverError::Refused(Refusal::Act(ActError::InvalidToken)))
                    ),
                    "R25: {wrong:?}"
                );
                done(wrong)
            })
        },
        // The request; the commit of the failed attempt; nothing sent.
        calls: &[Load, Commit],
        succeeds: false,
    },
    Case {
        what: "resend (R22, R23, R37)",
        scene: open,
        act: act!(|d, s| d.resend(
            s.request(),
            id(ADMIN),
            T0 + Duration::hours(1),
            &mut ChaCha20Rng::seed_from_u64(9)
        )),
        // The request; the commit; a new token to each confirmer missing.
        calls: &[Load, Commit, Deliver, Deliver],
        succeeds: true,
    },
    Case {
        what: "cancel (R28, R39)",
        scene: open,
        act: act!(|d, s| d.cancel(s.request(), id(ADMIN), T0)),
        // The request; the commit; "cancelled" to each party.
        calls: &[Load, Commit, Deliver, Deliver],
        succeeds: true,
    },
    Case {
        what: "remove_service (R39)",
        scene: open,
        act: act!(|d, _| d.remove_service(&name(), T0)),
        // The service and the request it names; the commit (the open
        // request fails with it); "failed" to each party.
        calls: &[Read, Load, Commit, Deliver, Deliver],
        succeeds: true,
    },
    Case {
        what: "expire_due (R29, R39)",
        scene: two_open,
        act: act!(|d, _| d.expire_due(late())),
        // The requests due; for each: the request, the commit, "expired"
        // to each party.
        calls: &[
            DueForExpiry,
            Load,
            Commit,
            Deliver,
            Deliver,
            Load,
            Commit,
            Deliver,
            Deliver,
        ],
        succeeds: true,
    },
];

// ----- running a case -----

/// What one run did.
struct Ran {
    /// The calls made (the held one included), and the world before each.
    calls: Vec<Call>,
    states: Vec<State>,
    /// How the action ended, if it did.
    ended: Option<Result<(), String>>,
    /// The world once the action ended or was dropped.
    last: State,
}

/// An action under way, over its own world.
struct Attempt<'a> {
    world: &'a World,
    holder: &'a Holder<'a>,
    wakes: Arc<Wakes>,
    waker: Waker,
    action: Option<Run<'a>>,
}

impl Attempt<'_> {
    /// Polls the action once, with a waker that counts wakes.
    fn poll(&mut self) -> Poll<Result<(), String>> {
        let action = self.action.as_mut().expect("the action is not dropped");
        action.as_mut().poll(&mut Context::from_waker(&self.waker))
    }
}

/// Sets `case`'s scene in a new world and hands `body` the action, over
/// parts whose `hold_at`-th call is held (none if `None`), not yet polled.
fn attempt<T>(case: &Case, hold_at: Option<usize>, body: impl FnOnce(Attempt<'_>) -> T) -> T {
    let world = World::new();
    let scene = (case.scene)(&world);
    let _ = world.notifier.take();
    let holder = Holder::new(&world, hold_at);
    let driver: Drv<'_> = AsyncDriver::new(
        Hooked::new(&world.store, &holder),
        Hooked::new(&world.notifier, &holder),
        Hooked::new(&world.directory, &holder),
    );
    let wakes = Arc::new(Wakes::default());
    body(Attempt {
        world: &world,
        holder: &holder,
        waker: Waker::from(Arc::clone(&wakes)),
        wakes,
        action: Some((case.act)(&driver, &scene)),
    })
}

/// Runs `case` from its scene with the `hold_at`-th call held (none if
/// `None`): polls the action once, and if the hold was met, drops the
/// action there.
fn run(case: &Case, hold_at: Option<usize>) -> Ran {
    attempt(case, hold_at, |mut a| {
        let ended = match a.poll() {
            Poll::Ready(result) => Some(result),
            Poll::Pending => {
                // The parts answer at once and nothing conflicts: a pending
                // action is one whose call is held.
                assert!(
                    a.holder.holding(),
                    "{}: pending, but not held (call {hold_at:?})",
                    case.what
                );
                // Held: polled again it stays pending, makes no other call
                // and never wakes (a runtime would leave it asleep).
                let calls = a.holder.calls();
                assert!(a.poll().is_pending());
                assert_eq!(
                    a.holder.calls(),
                    calls,
                    "{}: a held action went on",
                    case.what
                );
                assert_eq!(a.wakes.count(), 0, "{}: a held action woke", case.what);
                a.action = None;
                None
            }
        };
        let seen = std::mem::take(&mut *a.holder.seen());
        Ran {
            calls: seen.calls,
            states: seen.states,
            ended,
            last: a.world.state(),
        }
    })
}

/// The store after each commit of the reference run, the one before them
/// first; checks that only a commit changes the store, and that nothing is
/// delivered before the first commit (R41).
fn commit_states(case: &Case, reference: &Ran) -> Vec<State> {
    let mut states = vec![reference.states[0].clone()];
    let after_each: Vec<&State> = reference.states[1..]
        .iter()
        .chain([&reference.last])
        .collect();
    for (i, call) in reference.calls.iter().enumerate() {
        let (before, after) = (&reference.states[i], after_each[i]);
        if *call == Commit {
            states.push(after.clone());
        } else {
            assert_eq!(
                before.store(),
                after.store(),
                "{}: the store changed across {call:?}",
                case.what
            );
        }
        if *call == Deliver {
            assert!(
                reference.calls[..i].contains(&Commit),
                "R41: {}: a delivery before any commit",
                case.what
            );
        }
    }
    states
}

/// Drops `case` at each await point in turn and checks what it left.
fn check_case(case: &Case) {
    let what = case.what;
    // The reference run: no hold.
    let reference = run(case, None);
    assert_eq!(
        reference.calls, case.calls,
        "{what}: the action's await points"
    );
    let ended = reference.ended.clone().expect("a run without a hold ends");
    assert_eq!(ended.is_ok(), case.succeeds, "{what}: {ended:?}");
    let committed = commit_states(case, &reference);
    assert_ne!(
        committed.first().map(State::store),
        committed.last().map(State::store),
        "{what}: the action changes the store"
    );

    let mut dropped = 0;
    for n in 0.. {
        let held = run(case, Some(n));
        if let Some(result) = held.ended {
            // Past the last await point: the action ran to its end.
            assert_eq!(result, ended, "{what}");
            assert_eq!(held.last, reference.last, "{what}");
            break;
        }
        dropped += 1;
        assert_eq!(
            held.calls,
            reference.calls[..=n],
            "{what}: the calls up to the held one"
        );
        // The world just before the held call is the one the reference
        // run had there, and dropping the action changed nothing.
        assert_eq!(held.states[n], reference.states[n], "{what}: call {n}");
        assert_eq!(held.last, held.states[n], "{what}: dropped at call {n}");
        // R31: the store is as before a commit or as after it, never half:
        // as after the commits that completed before call `n` (a commit
        // held pending wrote nothing).
        let commits = reference.calls[..n]
            .iter()
            .filter(|c| **c == Commit)
            .count();
        assert_eq!(
            held.last.store(),
            committed[commits].store(),
            "R31: {what}: dropped at call {n} ({:?}) after {commits} commit(s)",
            reference.calls[n]
        );
        // R41: delivered, exactly the messages the action delivered before
        // call `n`, which are about a committed state: none before the
        // first commit.
        let delivers = reference.calls[..n]
            .iter()
            .filter(|c| **c == Deliver)
            .count();
        assert_eq!(
            held.last.delivered,
            reference.last.delivered[..delivers],
            "R41: {what}: dropped at call {n}"
        );
        if commits == 0 {
            assert!(held.last.delivered.is_empty(), "R41: {what}: call {n}");
        }
    }
    assert_eq!(
        dropped,
        case.calls.len(),
        "{what}: dropped once at each await point"
    );
}

// R31, R41: every action, dropped at each await point.
#[test]
fn actions_dropped_at_each_await_point_leave_a_committed_state() {
    for case in CASES {
        check_case(case);
    }
}

// R26: the failed attempt the case above drops is recorded when it runs to
// its end, and only then.
#[test]
fn a_failed_attempt_is_recorded_only_when_its_commit_completes() {
    let case = CASES
        .iter()
        .find(|c| c.what.starts_with("a failed token attempt"))
        .expect("the case");
    let attempts = |state: &State| {
        state.requests[0]
            .history()
            .iter()
            .filter(|e| matches!(e.kind(), EventKind::FailedAttempt))
            .count()
    };
    let reference = run(case, None);
    assert_eq!(attempts(&reference.states[0]), 0);
    assert_eq!(attempts(&reference.last), 1, "R26: the attempt is counted");
    let at_commit = case
        .calls
        .iter()
        .position(|c| *c == Commit)
        .expect("a commit");
    assert_eq!(
        attempts(&run(case, Some(at_commit)).last),
        0,
        "dropped while committing, nothing is recorded"
    );
}

// R31, R41: a commit held pending writes nothing; released, the action
// commits, then delivers, and ends as it would have.
#[test]
fn a_held_commit_writes_nothing_until_it_completes() {
    for case in CASES {
        let what = case.what;
        let reference = run(case, None);
        let at_commit = case
            .calls
            .iter()
            .position(|c| *c == Commit)
            .expect("a commit");

        attempt(case, Some(at_commit), |mut a| {
            assert!(a.poll().is_pending(), "{what}");
            assert!(a.holder.holding(), "{what}: the commit is held");
            let before = a.world.state();
            assert_eq!(before, reference.states[0], "{what}: nothing written yet");
            a.holder.release();
            assert_eq!(a.wakes.count(), 1, "{what}: released, the action is woken");
            assert_eq!(a.world.state(), before, "{what}: released, not yet polled");
            let Poll::Ready(result) = a.poll() else {
                panic!("{what}: released, the action runs to its end");
            };
            assert_eq!(Some(result), reference.ended, "{what}");
            assert_eq!(
                a.world.state(),
                reference.last,
                "{what}: committed, then delivered"
            );
        });
    }
}
