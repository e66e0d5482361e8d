//! Model-based property test of the drivers with the in-memory host (R5,
//! R8–R41): the engine's model test (`engine_model.rs`) run again through
//! [`Driver`], [`MemoryStore`], [`MemoryNotifier`] and [`MemoryDirectory`],
//! with faults in the store and in delivery, and two more invariants; and
//! the same again through the [`AsyncDriver`] on tokio's current-thread
//! runtime, over the same parts seen through the async traits
//! (`common/hooked.rs`). The harness is generic over the driver it drives
//! (`common/drive.rs`), so both meet the same sequences, model and checks.
//!
//! Random sequences of 1 to 30 actions run against one driver and the
//! reference model of `common/model.rs`, shared with the engine's test. Each
//! action is one of the engine model's operations, done as a host does it:
//! submit an edit (R8–R14, R27, R33), accept or refuse with the actor's own
//! token, a random one, one a character off, another party's, a rotated or
//! invalidated one, a used one or one for another request (R16–R26,
//! R30–R32), let every missing confirmer accept, resend (R22, R23), cancel
//! (R28) through the driver; expire with `expire_due` (R29); move time
//! forward, sometimes exactly to a deadline or past it; toggle a customer's
//! standing in the directory (R14, R30); and, as support staff (R46), cancel
//! or resend any request, or assign contacts directly (R13, R14, R31, R32),
//! each with an operator and a reason, the outcome predicted by the model.
//! Each action also says
//!
//! - whether one of its commits fails with a store error (the store cannot
//!   say whether it happened; here it did not), or meets a conflict once
//!   (someone else wrote first; the driver decides again, R31), and
//! - which messages the notifier fails: those to one customer, every
//!   confirmation request, every other news, or all of them.
//!
//! A customer's inbox is what the host got for them: the messages the
//! notifier delivered and those the driver reported undelivered (which the
//! host retries). The tokens presented come from there.
//!
//! Besides the store, the driver holds a second service that no action
//! touches, so the indexes and listings hold more than one service.
//!
//! After every driver call (what it wrote and sent) and every action (the
//! whole state), the engine test's checks hold for what the store holds and
//! what was sent (see `common/model.rs`): the
//! outcome the rules predict, or one of the errors they allow; contacts change
//! only when the last confirmer accepted, each with their own current token
//! (R20, R24); a terminal request never changes (and is never written again);
//! a token works once, for its owner, on its request (R18, R23–R26); at most
//! one live request per role and what each customer may propose (R15, R27);
//! exactly the messages the rules say, each confirmation request to its
//! token's owner (R18, R36–R39); the history grows by the call's events, each
//! write at the next version (R31, R34); no `Debug`, `Display` or JSON of an
//! outcome, error, request, message or listing contains a token (R40). And two
//! more:
//!
//! 1. the store's indexes agree with a full scan ([`MemoryStore::audit`]),
//!    and the driver's "my contacts" (R6) and "my requests" (R35) agree with
//!    a scan of every service and request, for every customer;
//! 2. no message is delivered for a state that was not committed (R41): a
//!    call whose commit failed leaves the store as it was and delivers
//!    nothing; every message a call sends is about a request that call wrote
//!    and describes it as it now stands in the store: a confirmation
//!    request's token verifies against the stored digest of its recipient and
//!    of no one else; "applied" and "replaced" only for a request stored as
//!    applied whose service shows the new holder; "refused", "cancelled",
//!    "expired", "failed" only for a request stored in that state (with that
//!    reason). Failed deliveries are exactly those the notifier was told to
//!    fail, each reported to the caller once, and lose nothing. The news of
//!    an operator's assignment is about the assignment this call recorded,
//!    as stored, and the stored service shows each new holder;
//! 3. the service's history (R47), read page by page through the driver,
//!    holds every request and assignment stored, newest first, and every
//!    change of the contacts since the last check is explained by one new
//!    entry: a request applied with every confirmer's confirmation, or an
//!    assignment with its operator and reason, that moved exactly the roles
//!    that changed, from the holder it names (`model::explain_changes`).
//!
//! `generator_reaches_every_outcome` checks that the generator keeps reaching
//! each of these situations, faults included.
//! `expire_due_failing_part_way_loses_no_message` replays the shrunk sequence
//! of the one bug this test found (R41, in `Driver::expire_due`, fixed: a
//! sweep now goes on past a request it cannot expire and reports it).
//!
//! Run: `cargo test --all-features --test driver_model` (2,000 sequences
//! through the blocking driver, 1,000 through the async one, and the 1,000
//! of `generator_reaches_every_outcome` through the async one).

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use proptest::prelude::*;
use proptest::sample::Index;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ActError, Actor, AssignError, Assignment, AsyncDriver, ChangeRequest, Changes, CommitError,
    Config, ConfirmerStatus, Contacts, CustomerId, DeliveryFailed, Driver, DriverError, Edit,
    Event, EventKind, HistoryEntry, MemoryDirectory, MemoryNotifier, MemoryStore, Message,
    MessageKind, OperatorAct, Outcome, PageSize, Part, Refusal, RequestFilter, RequestId,
    RequestState, RequestSummary, Roles, Service, ServiceName, StateName, Store, SubmitError,
    Version,
};

use common::drive::{Drive, contacts_pages, history_pages, requests_pages};
use common::hooked::Hooked;

#[path = "common/model.rs"]
mod model;

use model::{
    Counted, Expected, Incoming, MState, Model, Op, Outcomes, POOL, RolePick, Secrets, Subject,
    Tag, Target, TokenCheck, TokenPick, Who, check_assigned_messages, check_contacts,
    check_first_write, check_messages, check_moves, check_rewrite, check_state, compare_request,
    config, expect_acted, expect_events, explain_changes, fail, failed_event, op_with_operators,
    pool, reach_every_outcome, sequences, with_trace,
};

// ----- the host, with faults -----

/// The store error a commit is made to fail with.
#[derive(Debug, thiserror::Error)]
#[error("disk on fire")]
struct DiskOnFire;

/// What the commits of an action meet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Fault {
    /// Every commit goes through.
    #[default]
    None,
    /// The action's n-th commit (from 0) fails with a store error and writes
    /// nothing.
    StoreError(usize),
    /// The action's n-th commit meets a conflict, once (R31: the driver
    /// decides again).
    Conflict(usize),
}

/// The faults of the current action, and what became of them.
#[derive(Debug, Default)]
struct Plan {
    fault: Fault,
    /// Commits asked for since the action began.
    commits: usize,
    /// The writes of the commit made to fail, until a call collects them.
    failed: Option<Changes>,
    /// Whether the conflict was met, until a call collects it.
    conflicted: bool,
}

/// A [`MemoryStore`] whose commits can be made to fail.
#[derive(Debug, Default)]
struct FaultyStore {
    inner: MemoryStore,
    plan: Mutex<Plan>,
}

impl FaultyStore {
    fn plan(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

impl Store for FaultyStore {
    type Error = DiskOnFire;

    fn service(&self, name: &ServiceName) -> Result<Option<Service>, DiskOnFire> {
        Ok(infallible(self.inner.service(name)))
    }

    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, DiskOnFire> {
        Ok(infallible(self.inner.request(id)))
    }

    forward_listings!(inner, DiskOnFire, common::never);
    fn commit(&self, changes: Changes) -> Result<(), CommitError<DiskOnFire>> {
        let mut plan = self.plan();
        let n = plan.commits;
        plan.commits += 1;
        match plan.fault {
            Fault::StoreError(k) if k == n => {
                plan.failed = Some(changes);
                return Err(CommitError::Store(DiskOnFire));
            }
            Fault::Conflict(k) if k == n => {
                plan.conflicted = true;
                return Err(CommitError::Conflict);
            }
            _ => {}
        }
        drop(plan);
        self.inner.commit(changes).map_err(|e| match e {
            CommitError::Conflict => CommitError::Conflict,
            CommitError::Store(never) => match never {},
        })
    }
}

/// Which messages the notifier fails during an action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mail {
    /// None: everything is delivered.
    #[default]
    Delivered,
    /// Every message to this customer of the pool (a wrong address, R22).
    FailTo(usize),
    /// Every confirmation request.
    FailTokens,
    /// Every message other than a confirmation request.
    FailNews,
    /// Every message.
    FailAll,
}

impl Mail {
    fn fails(self, pool: &[CustomerId; POOL], m: &Message) -> bool {
        match self {
            Mail::Delivered => false,
            Mail::FailTo(n) => m.to() == pool[n],
            Mail::FailTokens => m.token().is_some(),
            Mail::FailNews => m.token().is_none(),
            Mail::FailAll => true,
        }
    }
}

/// One step of a sequence: an operation of the engine model, done through
/// the driver, with the faults it meets.
#[derive(Clone, Debug)]
struct Action {
    op: Op,
    fault: Fault,
    mail: Mail,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        10 => Just(Fault::None),
        3 => Just(Fault::StoreError(0)),
        // A later commit: only `expire_due` and "everyone accepts" make
        // several in one action.
        3 => (1..3usize).prop_map(Fault::StoreError),
        1 => (0..2usize).prop_map(Fault::Conflict),
    ]
}

fn mail() -> impl Strategy<Value = Mail> {
    prop_oneof![
        8 => Just(Mail::Delivered),
        3 => (0..POOL).prop_map(Mail::FailTo),
        1 => Just(Mail::FailTokens),
        2 => Just(Mail::FailNews),
        1 => Just(Mail::FailAll),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    (op_with_operators(), fault(), mail()).prop_map(|(op, fault, mail)| Action { op, fault, mail })
}

// ----- the driver and what a call did -----

/// The parts a harness's driver is built on: the harness keeps a hand on
/// each.
type Parts = (Arc<FaultyStore>, Arc<MemoryNotifier>, Arc<MemoryDirectory>);

/// A driver over the harness's parts, as the harness drives it.
trait TestDriver:
    Drive<StoreError = DiskOnFire, NotifierError = DeliveryFailed, DirectoryError = Infallible>
    + fmt::Debug
{
    /// The driver over `parts`.
    fn build(parts: Parts, config: Config) -> Self;
}

/// The blocking driver.
type Blocking = Driver<Arc<FaultyStore>, Arc<MemoryNotifier>, Arc<MemoryDirectory>>;

impl TestDriver for Blocking {
    fn build((store, notifier, directory): Parts, config: Config) -> Self {
        Driver::with_config(store, notifier, directory, config)
    }
}

/// The async driver, over the same parts seen through the async traits
/// (each call answered at once by the blocking part).
type Async = AsyncDriver<Hooked<Arc<FaultyStore>>, Arc<MemoryNotifier>, Arc<MemoryDirectory>>;

impl TestDriver for Async {
    fn build((store, notifier, directory): Parts, config: Config) -> Self {
        AsyncDriver::with_config(Hooked::new(store, ()), notifier, directory, config)
    }
}

type DErr = DriverError<DiskOnFire, Infallible>;
type Answer<T> = Result<Outcome<T, DeliveryFailed>, DErr>;

/// Everything the store holds.
#[derive(Clone, Debug, PartialEq)]
struct Dump {
    /// Sorted by name.
    services: Vec<Service>,
    requests: HashMap<RequestId, ChangeRequest>,
    /// Operators' assignments of every service, newest first (R46).
    assignments: Vec<Assignment>,
}

impl Dump {
    fn service(&self, name: &ServiceName) -> Option<&Service> {
        self.services.iter().find(|s| s.name() == name)
    }
}

/// What one driver call did, seen from outside.
struct Seen {
    before: Dump,
    after: Dump,
    /// The requests it wrote, new or at a new version, sorted.
    written: Vec<RequestId>,
    /// Whether it wrote the service.
    service_written: bool,
    /// What reached the inboxes: the messages delivered, then those reported
    /// undelivered.
    messages: Vec<Message>,
    /// Commits it asked for.
    commits: usize,
    /// The operators' assignments it recorded (R46).
    assignments: Vec<Assignment>,
}

impl Seen {
    fn request(&self, id: RequestId) -> &ChangeRequest {
        &self.after.requests[&id]
    }
}

struct Harness<D> {
    driver: D,
    /// The driver's parts.
    store: Arc<FaultyStore>,
    notifier: Arc<MemoryNotifier>,
    directory: Arc<MemoryDirectory>,
    /// Where the driver's futures run (the blocking driver's are ready at
    /// once).
    runtime: tokio::runtime::Runtime,
    rng: ChaCha20Rng,
    pool: [CustomerId; POOL],
    /// The service the actions edit.
    name: ServiceName,
    /// The service no action touches, as ordered.
    bystander: Service,
    model: Model,
    /// The version the service should be at: one more for each opening and
    /// each applied change (R27, R31).
    version: Version,
    /// Terminal requests as they were when they ended.
    frozen: HashMap<RequestId, ChangeRequest>,
    /// Every token text ever issued (R40).
    secrets: Secrets,
    /// Tokens whose message the notifier failed: the host has them from
    /// `Outcome::undelivered`.
    undelivered_tokens: HashSet<String>,
    /// The faults of the current action.
    fault: Fault,
    mail: Mail,
    /// What happened, step by step, for the failure report.
    trace: Vec<String>,
    /// How often each kind of outcome happened.
    outcomes: Outcomes,
    /// The history events the last call added, per request (R34).
    added: HashMap<RequestId, Vec<Event>>,
    /// The assignment the current action recorded, if any (R46).
    assigned: Option<Assignment>,
    /// The service's history (R47) and contacts at the last check.
    history_seen: Vec<HistoryEntry>,
    contacts_seen: Contacts,
}

impl<D: TestDriver> Subject for Harness<D> {
    fn model(&self) -> &Model {
        &self.model
    }

    fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    fn pool(&self) -> [CustomerId; POOL] {
        self.pool
    }

    /// The service as stored.
    fn service(&self) -> Service {
        infallible(self.store.inner.service(&self.name)).expect("the service exists")
    }

    fn trace(&mut self, line: String) {
        self.trace.push(line);
    }

    fn note(&mut self, outcome: &'static str) {
        *self.outcomes.entry(outcome).or_default() += 1;
    }

    fn added(&self) -> &HashMap<RequestId, Vec<Event>> {
        &self.added
    }

    /// The directory follows the model.
    fn standing_changed(&mut self, customer: CustomerId, good: bool) {
        self.directory.set_good_standing(customer, good);
    }

    /// Checked after every action (and between the calls of one).
    fn check_all(&mut self) -> Result<(), TestCaseError> {
        let now = self.model.now;
        // New invariant 1: the indexes agree with a full scan.
        if let Err(e) = self.store.inner.audit() {
            return Err(fail(format!(
                "the store's indexes disagree with a scan: {e}"
            )));
        }
        let dump = self.dump();
        let service = dump.service(&self.name).expect("the service exists");
        prop_assert_eq!(
            service.version(),
            self.version,
            "R27, R31: the service's version (one step per opening and per change)"
        );
        // The engine model's checks, on what the store holds; R15 through
        // the driver.
        check_state(
            &self.model,
            &self.pool,
            service,
            &dump.requests,
            &self.frozen,
            |customer| {
                self.runtime
                    .block_on(self.driver.proposable(&self.name, customer, now))
                    .map_err(|e| fail(format!("proposable: {e:?}")))
            },
        )?;
        // R45: every listing read a page at a time, with a page size and a
        // filter that change from step to step, against a scan.
        let step = self.trace.len();
        let size = PageSize::new(1 + step % 3).expect("a page size");
        let filters = filters(&self.name);
        for (i, customer) in self.pool.into_iter().enumerate() {
            // R6: "my contacts" is a scan of every service, sorted by name.
            let mine = self
                .runtime
                .block_on(contacts_pages(&self.driver, customer, size))
                .map_err(|e| fail(format!("my_contacts: {e:?}")))?;
            let scan: Vec<(ServiceName, Roles)> = dump
                .services
                .iter()
                .map(|s| (s.name().clone(), s.roles_of(customer)))
                .filter(|(_, roles)| !roles.is_empty())
                .collect();
            prop_assert_eq!(mine, scan, "R6: my contacts of {} against a scan", customer);
            // R35: "my requests" is a scan of every request where the
            // customer is a party that the filter lists, most recently opened
            // first.
            for filter in [
                RequestFilter::all(),
                filters[(step + i) % filters.len()].clone(),
            ] {
                let rows = self
                    .runtime
                    .block_on(requests_pages(&self.driver, customer, &filter, now, size))
                    .map_err(|e| fail(format!("my_requests: {e:?}")))?;
                let mut scan: Vec<&ChangeRequest> = dump
                    .requests
                    .values()
                    .filter(|r| filter.matches(r, customer, now))
                    .collect();
                scan.sort_by(|a, b| b.opened_at().cmp(&a.opened_at()).then(a.id().cmp(&b.id())));
                let expected: Vec<RequestSummary> = scan
                    .iter()
                    .map(|r| RequestSummary::of(r, customer, now))
                    .collect();
                prop_assert_eq!(
                    &rows,
                    &expected,
                    "R35, R45: my requests of {} with {:?}, {} a page, against a scan",
                    customer,
                    filter,
                    size.get()
                );
                for (row, r) in rows.iter().zip(scan) {
                    // R29: past its deadline it shows as expired.
                    prop_assert_eq!(row.state, r.state_name_at(now));
                    prop_assert_eq!(row.waits_for_me, r.waits_for(customer, now));
                }
                self.leak("my requests' Debug", &format!("{rows:?}"))?;
            }
        }
        // R13: no account, no listing.
        let ghost: CustomerId = "ZZ9-OVH".parse().expect("valid identifier");
        prop_assert!(matches!(
            self.runtime
                .block_on(self.driver.my_contacts(ghost, None, size)),
            Err(DriverError::Refused(Refusal::UnknownCustomer(c))) if c == ghost
        ));
        prop_assert!(matches!(
            self.runtime.block_on(self.driver.my_requests(
                ghost,
                &RequestFilter::all(),
                now,
                None,
                size
            )),
            Err(DriverError::Refused(Refusal::UnknownCustomer(c))) if c == ghost
        ));
        self.leak("the driver's Debug", &format!("{:?}", self.driver))?;
        self.check_history(&dump, service, step)
    }

    // ----- actions -----

    /// R8–R14, R16, R27, R33, R36.
    fn submit(&mut self, edit: &Edit, actor: CustomerId) -> Result<(), TestCaseError> {
        let proposed: Vec<String> = edit.iter().map(|(r, c)| format!("{r}→{c}")).collect();
        let expected = self.model.predict_submit(edit, actor);
        let now = self.model.now;
        let (result, seen) = self.call(
            &format!("submit by {actor}: {}", proposed.join(", ")),
            true,
            async |d: &D, rng| d.submit(edit, actor, now, rng).await,
        )?;
        match (result, expected) {
            (Ok(ids), Ok(groups)) => {
                self.note(if ids.len() > 1 {
                    "submit: two requests (R33)"
                } else {
                    "submit: opened"
                });
                self.opened(&ids, &seen, actor, &groups)
            }
            (Err(DriverError::Store(_)), Ok(_)) => {
                // `call` saw that nothing changed and nothing was sent.
                self.note("submit: commit failed, nothing opened (R41)");
                Ok(())
            }
            (Err(DriverError::Refused(Refusal::Submit(e))), Err(allowed)) => {
                self.note(match e {
                    SubmitError::NoChange => "submit: no change (R12)",
                    SubmitError::NotPermitted { .. } => "submit: not permitted (R11)",
                    SubmitError::Conflict { .. } => "submit: conflict (R27)",
                    SubmitError::NotInGoodStanding { .. } => "submit: behind with payments (R14)",
                    SubmitError::UnknownCustomer { .. } => "submit: unknown customer (R13)",
                    _ => "submit: refused",
                });
                prop_assert!(
                    allowed.contains(&e),
                    "expected one of {:?}, got {:?}",
                    allowed,
                    e
                );
                unchanged(&seen, "a refused edit")
            }
            (result, expected) => Err(fail(format!(
                "the rules say {expected:?}, the driver answered {:?}",
                result.map(|_| "ok")
            ))),
        }
    }

    /// Accept or refuse request `idx` as `actor` with the token `pick`
    /// chooses from the inboxes.
    fn confirm_at(
        &mut self,
        idx: usize,
        actor: CustomerId,
        pick: &TokenPick,
        accept: bool,
    ) -> Result<Option<usize>, TestCaseError> {
        let id = self.model.requests[idx].id;
        let now = self.model.now;
        let text = self.model.pick_token(pick, idx, actor);
        let check = self.model.check_token(idx, actor, &text);
        let what = format!(
            "{} {id} as {actor} with {} ({pick:?})",
            if accept { "accept" } else { "refuse" },
            self.model.owner_of(&text),
        );
        let (result, seen) = self.call(&what, true, async |d: &D, _| {
            if accept {
                d.accept(id, actor, &text, now).await
            } else {
                d.refuse(id, actor, &text, now).await
            }
        })?;
        if now == self.model.requests[idx].deadline {
            self.note("token: exactly at the deadline");
        }
        if matches!(check, TokenCheck::Valid) && self.undelivered_tokens.contains(&text) {
            self.note("token: from a message reported undelivered (R41)");
        }
        match (check, result) {
            (TokenCheck::Closed(state), Err(DriverError::Refused(Refusal::Act(e)))) => {
                self.note(if state == StateName::Expired {
                    "token: request past its deadline"
                } else {
                    "token: request ended"
                });
                // R25, R29: the request's state is reported plainly.
                prop_assert_eq!(e, ActError::Closed { state });
                unchanged(&seen, "a token for a closed request")?;
                Ok(None)
            }
            (TokenCheck::Invalid(counted), Err(DriverError::Refused(Refusal::Act(e)))) => {
                self.note("bad token (R24, R25)");
                // R25: one error for every bad token.
                prop_assert_eq!(e, ActError::InvalidToken, "R25");
                self.failed_attempt(idx, actor, counted, &seen)?;
                Ok(None)
            }
            (TokenCheck::Invalid(_) | TokenCheck::Valid, Err(DriverError::Store(_))) => {
                // Nothing was written or sent (`call`); the model keeps the
                // token current and the attempt uncounted, and later steps
                // check that it still is.
                self.note("accept or refuse: commit failed, nothing changed (R41)");
                Ok(None)
            }
            (TokenCheck::Valid, Ok(request)) => {
                prop_assert_eq!(&request, seen.request(id), "the request as it now stands");
                self.confirmed(idx, actor, &text, accept, &seen)
            }
            (check, result) => Err(fail(format!(
                "the rules say {check:?}, the driver answered {:?}",
                result.map(|_| "ok")
            ))),
        }
    }

    /// R22, R23, R37.
    fn resend(&mut self, idx: usize, actor: CustomerId) -> Result<(), TestCaseError> {
        let now = self.model.now;
        let id = self.model.requests[idx].id;
        let errors = self.model.resend_errors(idx, actor);
        let (result, seen) = self.call(
            &format!("resend {id} as {actor}"),
            true,
            async |d: &D, rng| d.resend(id, actor, now, rng).await,
        )?;
        match result {
            Ok(request) if errors.is_empty() => {
                self.note("resend: sent (R23)");
                prop_assert_eq!(&request, seen.request(id));
                self.resent(idx, actor, &seen)
            }
            Err(DriverError::Store(_)) if errors.is_empty() => {
                self.note("resend: commit failed, old tokens still work (R41)");
                Ok(())
            }
            Err(DriverError::Refused(Refusal::Act(e))) if errors.contains(&e) => {
                self.note(match e {
                    ActError::TooSoon { .. } => "resend: too soon (R23)",
                    ActError::NotAConfirmer => "resend: not a confirmer (R22)",
                    _ => "resend: closed",
                });
                unchanged(&seen, "a refused resend")
            }
            result => Err(fail(format!(
                "the rules say {errors:?}, the driver answered {:?}",
                result.map(|_| "ok")
            ))),
        }
    }

    /// R28, R39.
    fn cancel(&mut self, idx: usize, actor: CustomerId) -> Result<(), TestCaseError> {
        let now = self.model.now;
        let id = self.model.requests[idx].id;
        let errors = self.model.cancel_errors(idx, actor);
        let (result, seen) = self.call(
            &format!("cancel {id} as {actor}"),
            true,
            async |d: &D, _| d.cancel(id, actor, now).await,
        )?;
        match result {
            Ok(request) if errors.is_empty() => {
                self.note("cancel: cancelled (R28)");
                prop_assert_eq!(&request, seen.request(id));
                self.model.end(idx, MState::Cancelled(actor));
                self.single(idx, &seen, &Tag::Cancelled)?;
                expect_events(&self.added, id, &[(EventKind::Cancelled, Some(actor))])
            }
            Err(DriverError::Store(_)) if errors.is_empty() => {
                self.note("cancel: commit failed, still open (R41)");
                Ok(())
            }
            Err(DriverError::Refused(Refusal::Act(e))) if errors.contains(&e) => {
                self.note(match e {
                    ActError::NotRequester => "cancel: not the requester (R28)",
                    _ => "cancel: closed",
                });
                unchanged(&seen, "a refused cancel")
            }
            result => Err(fail(format!(
                "the rules say {errors:?}, the driver answered {:?}",
                result.map(|_| "ok")
            ))),
        }
    }

    /// R29: the host asks for every request due and records it.
    fn expire(&mut self, _: &Target) -> Result<(), TestCaseError> {
        self.expire_due()
    }

    /// R46, R39, R34: an operator cancels any live request.
    fn operator_cancel(&mut self, idx: usize, act: &OperatorAct) -> Result<(), TestCaseError> {
        let now = self.model.now;
        let id = self.model.requests[idx].id;
        let errors = self.model.operator_errors(idx, false);
        let (result, seen) = self.call(
            &format!("operator {} cancels {id}", act.operator()),
            true,
            async |d: &D, _| d.cancel_by_operator(id, act, now).await,
        )?;
        match result {
            Ok(request) if errors.is_empty() => {
                self.note("operator cancel: cancelled (R46)");
                prop_assert_eq!(&request, seen.request(id));
                self.model
                    .end(idx, MState::CancelledByOperator(act.clone()));
                self.single(idx, &seen, &Tag::Cancelled)?;
                // R39: the confirmers are told who cancelled, and why.
                let operator = Actor::Operator(act.clone());
                for m in &seen.messages {
                    prop_assert!(
                        matches!(m.kind(), MessageKind::Cancelled { by } if *by == operator),
                        "R39, R46: the news does not name the operator: {:?}",
                        m.kind()
                    );
                }
                expect_acted(&self.added, id, &[(EventKind::Cancelled, Some(operator))])
            }
            Err(DriverError::Store(_)) if errors.is_empty() => {
                self.note("operator cancel: commit failed, still open (R41)");
                Ok(())
            }
            Err(DriverError::Refused(Refusal::Act(e))) if errors.contains(&e) => {
                self.note("operator cancel: closed, unchanged (R46)");
                unchanged(&seen, "a refused operator's cancel")
            }
            result => Err(fail(format!(
                "the rules say {errors:?}, the driver answered {:?}",
                result.map(|_| "ok")
            ))),
        }
    }

    /// R46, R22, R23, R37, R34: an operator sends a live request again.
    fn operator_resend(&mut self, idx: usize, act: &OperatorAct) -> Result<(), TestCaseError> {
        let now = self.model.now;
        let id = self.model.requests[idx].id;
        let errors = self.model.operator_errors(idx, true);
        let (result, seen) = self.call(
            &format!("operator {} resends {id}", act.operator()),
            true,
            async |d: &D, rng| d.resend_by_operator(id, act, now, rng).await,
        )?;
        match result {
            Ok(request) if errors.is_empty() => {
                self.note("operator resend: sent (R46, R23)");
                prop_assert_eq!(&request, seen.request(id));
                prop_assert!(!seen.service_written);
                prop_assert_eq!(&seen.written, &vec![id]);
                // R23, R37: a new token for each confirmer still missing;
                // R34: each reissue by the operator.
                let (expected, _) = self
                    .model
                    .resending(idx, self.model.requests[idx].requester);
                let events = self.model.operator_resending(idx, act);
                check_messages(&seen.messages, |id| seen.after.requests.get(&id), expected)?;
                expect_acted(&self.added, id, &events)?;
                self.model.resent(idx, &seen.messages);
                compare_request(&self.model, idx, seen.request(id))
            }
            Err(DriverError::Store(_)) if errors.is_empty() => {
                self.note("operator resend: commit failed, old tokens still work (R41)");
                Ok(())
            }
            Err(DriverError::Refused(Refusal::Act(e))) if errors.contains(&e) => {
                self.note(match e {
                    ActError::TooSoon { .. } => "operator resend: too soon (R23)",
                    _ => "operator resend: closed, unchanged (R46)",
                });
                unchanged(&seen, "a refused operator's resend")
            }
            result => Err(fail(format!(
                "the rules say {errors:?}, the driver answered {:?}",
                result.map(|_| "ok")
            ))),
        }
    }

    /// R46, R13, R14, R31, R32, R29: an operator assigns contacts directly.
    fn assign(&mut self, edit: &Edit, act: &OperatorAct) -> Result<(), TestCaseError> {
        let proposed: Vec<String> = edit.iter().map(|(r, c)| format!("{r}→{c}")).collect();
        let expected = self.model.predict_assign(edit);
        let now = self.model.now;
        let (result, seen) = self.call(
            &format!(
                "operator {} assigns {}",
                act.operator(),
                proposed.join(", ")
            ),
            true,
            async |d: &D, rng| d.assign(edit, act, now, rng).await,
        )?;
        match (result, expected) {
            (Ok(record), Ok(assigning)) => {
                self.note("assign: assigned (R46)");
                if !assigning.victims.is_empty() {
                    self.note("assign: an open request failed (R32)");
                }
                if !assigning.due.is_empty() {
                    self.note("assign: a request past its deadline expired with it (R29)");
                }
                self.assigned_as_predicted(&record, act, assigning, &seen)
            }
            (Err(DriverError::Store(_)), Ok(_)) => {
                self.note("assign: commit failed, nothing changed (R41)");
                Ok(())
            }
            (Err(DriverError::Refused(Refusal::Assign(e))), Err(allowed)) => {
                self.note(match e {
                    AssignError::EmptyEdit => "assign: empty edit",
                    AssignError::NoChange => "assign: no change",
                    AssignError::UnknownCustomer { .. } => "assign: unknown customer (R13)",
                    AssignError::NotInGoodStanding { .. } => "assign: behind with payments (R14)",
                    _ => "assign: refused",
                });
                prop_assert_eq!(e, allowed);
                unchanged(&seen, "a refused assignment")
            }
            (result, expected) => Err(fail(format!(
                "the rules say {expected:?}, the driver answered {:?}",
                result.map(|_| "ok")
            ))),
        }
    }
}

/// The filters "my requests" is checked with, one a step in turn (R45):
/// each state, each part, the service, and combinations.
fn filters(service: &ServiceName) -> Vec<RequestFilter> {
    let mut out = Vec::new();
    for state in [
        StateName::ValidatingByCustomers,
        StateName::Done,
        StateName::Refused,
        StateName::Aborted,
        StateName::Expired,
        StateName::Error,
    ] {
        out.push(RequestFilter::all().state(state));
    }
    for part in [
        Part::AskedByMe,
        Part::WaitingForMe,
        Part::ComingToMe,
        Part::TakingFromMe,
    ] {
        out.push(RequestFilter::all().part(part));
    }
    out.push(RequestFilter::all().service(service.clone()));
    out.push(
        RequestFilter::all()
            .part(Part::AskedByMe)
            .part(Part::ComingToMe)
            .state(StateName::ValidatingByCustomers)
            .state(StateName::Expired),
    );
    out.push(
        RequestFilter::all()
            .part(Part::TakingFromMe)
            .state(StateName::Done)
            .service(service.clone()),
    );
    out
}

impl<D: TestDriver> Harness<D> {
    fn new(seed: u64, max_failed_attempts: u32) -> Self {
        let pool = pool();
        let config = config(max_failed_attempts);
        let directory = Arc::new(MemoryDirectory::new());
        for customer in pool {
            directory.add(customer);
        }
        let (store, notifier) = (Arc::default(), Arc::default());
        let parts = (
            Arc::clone(&store),
            Arc::clone(&notifier),
            Arc::clone(&directory),
        );
        let driver = D::build(parts, config.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let name: ServiceName = "example.com".parse().expect("name");
        // R5: whoever orders a service holds its three roles.
        let service = runtime
            .block_on(driver.order_service(&name, pool[0]))
            .expect("ordered");
        let bystander = runtime
            .block_on(driver.order_service(&"bystander.example".parse().expect("name"), pool[1]))
            .expect("ordered");
        Harness {
            driver,
            store,
            notifier,
            directory,
            runtime,
            rng: ChaCha20Rng::seed_from_u64(seed),
            pool,
            name,
            bystander,
            model: Model::new(&pool, config),
            version: service.version(),
            frozen: HashMap::new(),
            secrets: Secrets::default(),
            undelivered_tokens: HashSet::new(),
            fault: Fault::None,
            mail: Mail::Delivered,
            trace: Vec::new(),
            outcomes: Outcomes::new(),
            added: HashMap::new(),
            assigned: None,
            history_seen: Vec::new(),
            contacts_seen: *service.contacts(),
        }
    }

    fn dump(&self) -> Dump {
        let store = &self.store.inner;
        let mut services = store.services();
        services.sort_by(|a, b| a.name().cmp(b.name()));
        let requests = store.requests().into_iter().map(|r| (r.id(), r)).collect();
        let assignments = services
            .iter()
            .flat_map(|s| infallible(store.assignments_on(s.name(), None, usize::MAX)))
            .collect();
        Dump {
            services,
            requests,
            assignments,
        }
    }

    fn run(&mut self, actions: &[Action]) -> Result<(), TestCaseError> {
        self.check_all()?;
        for action in actions {
            let before = *self.service().contacts();
            let outcome = self
                .step(action)
                .and_then(|applied| {
                    let after = *self.service().contacts();
                    match self.assigned.take() {
                        // R46: only what the operator's assignment moved.
                        Some(record) => check_assigned(&record, &before, &after),
                        None => check_contacts(&self.model, before, after, applied),
                    }
                })
                .and_then(|()| self.check_all());
            self.fault = Fault::None;
            self.mail = Mail::Delivered;
            *self.store.plan() = Plan::default();
            self.notifier.deliver_all();
            if let Err(err) = outcome {
                return Err(with_trace(&err, &self.trace));
            }
        }
        Ok(())
    }

    /// Runs one action; returns the model index of the request applied, if any.
    fn step(&mut self, action: &Action) -> Result<Option<usize>, TestCaseError> {
        self.fault = action.fault;
        self.mail = action.mail;
        *self.store.plan() = Plan {
            fault: action.fault,
            ..Plan::default()
        };
        let (pool, mail) = (self.pool, action.mail);
        self.notifier.fail_when(move |m| mail.fails(&pool, m));
        if action.fault != Fault::None || action.mail != Mail::Delivered {
            self.trace.push(format!(
                "(faults: {:?}, mail: {:?})",
                action.fault, action.mail
            ));
        }
        self.perform(&action.op)
    }

    /// Makes one driver call and checks what every call must satisfy,
    /// whatever it was: R31, R34 for what it wrote, R40 for what it returned
    /// and sent, R41 for what it delivered. `single`: the call commits at
    /// most once (all but `expire_due`).
    fn call<T: fmt::Debug>(
        &mut self,
        what: &str,
        single: bool,
        act: impl AsyncFnOnce(&D, &mut ChaCha20Rng) -> Answer<T>,
    ) -> Result<(Result<T, DErr>, Seen), TestCaseError> {
        let before = self.dump();
        let commits_before = self.store.plan().commits;
        let answer = self.runtime.block_on(act(&self.driver, &mut self.rng));
        let delivered = self.notifier.take();
        let (failed, conflicted, commits) = {
            let mut plan = self.store.plan();
            (
                plan.failed.take(),
                std::mem::take(&mut plan.conflicted),
                plan.commits - commits_before,
            )
        };
        let after = self.dump();
        let (result, messages) = self.inbox(what, answer, delivered, conflicted)?;

        // A store error is reported as such, and only when the store failed;
        // nothing else fails here. (An expiry sweep reports it per request,
        // in its result: checked by the caller.)
        if single {
            prop_assert_eq!(
                matches!(result, Err(DriverError::Store(_))),
                failed.is_some(),
                "R41: a store error is reported when, and only when, a commit failed"
            );
        } else {
            prop_assert!(
                !matches!(result, Err(DriverError::Store(_))),
                "R41: a sweep reports a failed commit per request, not as its error"
            );
        }
        prop_assert!(
            !matches!(
                result,
                Err(DriverError::Directory(_) | DriverError::Contention { .. })
            ),
            "an unexpected host failure"
        );
        let (written, service_written) = self.check_writes(&before, &after)?;
        let assignments = new_assignments(&before, &after, service_written)?;
        // R41: a failed commit writes nothing, and nothing is sent for it.
        if let Some(changes) = &failed {
            for w in &changes.requests {
                let id = w.value.id();
                prop_assert_eq!(
                    after.requests.get(&id),
                    before.requests.get(&id),
                    "R41: a failed commit wrote request {}",
                    id
                );
            }
            if !changes.services.is_empty() {
                prop_assert!(!service_written, "R41: a failed commit wrote the service");
            }
            if single {
                prop_assert!(
                    after == before,
                    "R41: the store changed though the commit failed"
                );
                prop_assert!(
                    messages.is_empty(),
                    "R41: {} message(s) sent for a state that was not committed",
                    messages.len()
                );
            }
        }
        // R41: every message is about a request this call wrote or an
        // assignment it recorded, and tells what is now committed.
        for m in &messages {
            prop_assert!(
                m.request().is_some_and(|id| written.contains(&id))
                    || m.assignment()
                        .is_some_and(|id| assignments.iter().any(|a| a.id() == id)),
                "R41: a {:?} message about request {:?} / assignment {:?}, which this call did not write",
                tag_name(m),
                m.request(),
                m.assignment()
            );
            check_committed(m, &after)?;
            self.secrets.scan_message(&self.model, m)?;
        }
        self.added.clear();
        for id in &written {
            let r = &after.requests[id];
            let old_len = before.requests.get(id).map_or(0, |r| r.history().len());
            self.added.insert(*id, r.history()[old_len..].to_vec());
            if r.state().is_terminal() {
                self.frozen.entry(*id).or_insert_with(|| r.clone());
            }
            self.secrets.scan_request(&self.model, r)?;
        }
        let seen = Seen {
            before,
            after,
            written,
            service_written,
            messages,
            commits,
            assignments,
        };
        Ok((result, seen))
    }

    /// What a call put in the inboxes (R41): the messages delivered, then
    /// those reported undelivered, each where the notifier was told to put
    /// it. Checks that the answer shows no token (R40) and records the call.
    fn inbox<T: fmt::Debug>(
        &mut self,
        what: &str,
        answer: Answer<T>,
        delivered: Vec<Message>,
        conflicted: bool,
    ) -> Result<(Result<T, DErr>, Vec<Message>), TestCaseError> {
        let mut messages = delivered;
        for m in &messages {
            prop_assert!(
                !self.mail.fails(&self.pool, m),
                "R41: the notifier failed this message, yet it counts as delivered"
            );
        }
        let mut undelivered = 0;
        if let Ok(outcome) = &answer {
            for u in &outcome.undelivered {
                prop_assert!(
                    self.mail.fails(&self.pool, &u.message),
                    "R41: a message reported undelivered was delivered"
                );
                prop_assert_eq!(u.error.to, u.message.to());
                messages.push(u.message.clone());
                undelivered += 1;
                if let Some(token) = u.message.token() {
                    self.undelivered_tokens.insert(token.reveal());
                }
            }
        }
        for m in &messages {
            self.secrets.learn(m);
        }
        let (result, shown) = match answer {
            Ok(outcome) => {
                let shown = format!("{outcome:?}");
                (Ok(outcome.value), shown)
            }
            Err(e) => {
                let shown = format!("{e:?} / {e}");
                (Err(e), shown)
            }
        };
        // R40: nothing the caller gets back contains a token.
        self.leak("a driver's answer", &shown)?;
        self.trace.push(format!(
            "{what} => {}{}{}",
            match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("{e:?}"),
            },
            if conflicted {
                " (after a conflict)"
            } else {
                ""
            },
            if undelivered > 0 {
                format!(" ({undelivered} undelivered)")
            } else {
                String::new()
            },
        ));
        if conflicted {
            self.note("conflict met, decided again (R31)");
        }
        if undelivered > 0 {
            self.note("delivery failed, reported (R41)");
        }
        Ok((result, messages))
    }

    /// R31, R34: what a call wrote, each record at its next version, the
    /// history only growing; returns the requests written (sorted) and
    /// whether the service was.
    fn check_writes(
        &self,
        before: &Dump,
        after: &Dump,
    ) -> Result<(Vec<RequestId>, bool), TestCaseError> {
        let now = self.model.now;
        let mut written = Vec::new();
        for id in before.requests.keys() {
            prop_assert!(after.requests.contains_key(id), "a request disappeared");
        }
        for (id, r) in &after.requests {
            match before.requests.get(id) {
                None => {
                    check_first_write(r, now)?;
                    prop_assert_eq!(r.service(), &self.name);
                }
                Some(old) if old == r => continue,
                Some(old) => check_rewrite(old, r, now)?,
            }
            written.push(*id);
        }
        written.sort();
        let (service_before, service_after) = (
            before.service(&self.name).expect("the service"),
            after.service(&self.name).expect("the service"),
        );
        let service_written = service_before != service_after;
        if service_written {
            prop_assert_eq!(
                service_after.version(),
                service_before.version().next(),
                "R31"
            );
        }
        prop_assert_eq!(after.services.len(), 2);
        prop_assert!(
            after.assignments.iter().all(|a| a.service() == &self.name),
            "an assignment of a service no action touches"
        );
        prop_assert_eq!(
            after.service(self.bystander.name()),
            Some(&self.bystander),
            "a service no action touches changed"
        );
        Ok((written, service_written))
    }

    // ----- what the actions did -----

    /// Checks the requests an edit opened and adds them to the model.
    fn opened(
        &mut self,
        ids: &[RequestId],
        seen: &Seen,
        actor: CustomerId,
        groups: &[(CustomerId, Roles)],
    ) -> Result<(), TestCaseError> {
        // R27, R31: opening writes the service at its next version with the
        // same contacts, so racing edits of one service conflict.
        prop_assert!(
            seen.service_written,
            "R27, R31: opening requests did not write the service"
        );
        self.version = self.version.next();
        prop_assert_eq!(
            seen.after.service(&self.name).map(Service::contacts),
            seen.before.service(&self.name).map(Service::contacts)
        );
        // R33: one request per distinct incoming customer, all opened; R29:
        // the due requests whose roles they take are expired with them; and
        // nothing else written.
        prop_assert_eq!(ids.len(), groups.len());
        let superseded = self.model.due_named();
        let mut sorted = ids.to_vec();
        sorted.extend(superseded.iter().map(|&i| self.model.requests[i].id));
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(&seen.written, &sorted, "R33: the requests written");
        let mut expected: Vec<Expected> = superseded
            .iter()
            .flat_map(|&i| self.model.requests[i].to_confirmers(&Tag::Expired))
            .collect();
        if !superseded.is_empty() {
            self.note("submit: took over a due request (R29)");
        }
        self.model.expired_with(&superseded, &self.added)?;
        for &idx in &superseded {
            let id = self.model.requests[idx].id;
            compare_request(&self.model, idx, seen.request(id))?;
        }
        let mut new = Vec::new();
        for id in ids {
            prop_assert!(!seen.before.requests.contains_key(id));
            let m = self.model.opening(seen.request(*id), actor, groups)?;
            if m.requester == m.incoming {
                self.note("submit: taking a role oneself (R8b)");
            }
            // R36: each confirmer gets a confirmation request.
            expected.extend(m.to_confirmers(&Tag::Confirm { resent: false }));
            new.push(m);
        }
        check_messages(&seen.messages, |id| seen.after.requests.get(&id), expected)?;
        for m in new {
            let id = m.id;
            // The inbox: the host has each token, delivered or to retry.
            let idx = self.model.opened(&self.added, actor, m, &seen.messages)?;
            compare_request(&self.model, idx, seen.request(id))?;
        }
        Ok(())
    }

    /// R26, R34: a wrong token presented by a confirmer is counted; nothing
    /// else changes and nothing is sent.
    fn failed_attempt(
        &mut self,
        idx: usize,
        actor: CustomerId,
        counted: Counted,
        seen: &Seen,
    ) -> Result<(), TestCaseError> {
        let id = self.model.requests[idx].id;
        prop_assert!(seen.messages.is_empty(), "a failed attempt sends nothing");
        prop_assert!(!seen.service_written);
        if seen.written.is_empty() {
            prop_assert!(
                matches!(counted, Counted::Either),
                "R26: a confirmer's failed attempt was not counted"
            );
            return Ok(());
        }
        prop_assert_eq!(&seen.written, &vec![id]);
        self.failed_attempt_recorded(idx, actor, counted)?;
        compare_request(&self.model, idx, seen.request(id))
    }

    /// The actor's own token worked.
    fn confirmed(
        &mut self,
        idx: usize,
        actor: CustomerId,
        text: &str,
        accept: bool,
        seen: &Seen,
    ) -> Result<Option<usize>, TestCaseError> {
        let id = self.model.requests[idx].id;
        self.model.use_token(idx, actor, text)?;
        if !accept {
            // R21: refused, nothing changes; R39: the confirmers are told.
            self.note("refused (R21)");
            self.model.end(idx, MState::Refused(actor));
            self.single(idx, seen, &Tag::Refused(actor))?;
            expect_events(&self.added, id, &[(EventKind::Refused, Some(actor))])?;
            return Ok(None);
        }
        if !self.model.requests[idx].missing().is_empty() {
            // R19: still waiting for the others; nothing applies yet.
            self.note("accepted, waiting for the other (R19)");
            prop_assert!(!seen.service_written);
            prop_assert_eq!(&seen.written, &vec![id]);
            check_messages(
                &seen.messages,
                |id| seen.after.requests.get(&id),
                Vec::new(),
            )?;
            expect_events(&self.added, id, &[(EventKind::Confirmed, Some(actor))])?;
            compare_request(&self.model, idx, seen.request(id))?;
            return Ok(None);
        }
        // R30: checked again before applying.
        let reasons = self.model.recheck(idx);
        if !reasons.is_empty() {
            self.note("failed when applying (R30)");
            self.model.end(idx, MState::Failed(reasons));
            self.single(idx, seen, &Tag::Failed)?;
            let failed = failed_event(seen.request(id));
            expect_events(
                &self.added,
                id,
                &[(EventKind::Confirmed, Some(actor)), failed],
            )?;
            return Ok(None);
        }
        self.note("applied (R20)");
        self.apply(idx, seen)?;
        expect_events(
            &self.added,
            id,
            &[
                (EventKind::Confirmed, Some(actor)),
                (EventKind::Applied, None),
            ],
        )?;
        Ok(Some(idx))
    }

    /// R20, R31, R32, R38: the last confirmation applied the change.
    fn apply(&mut self, idx: usize, seen: &Seen) -> Result<(), TestCaseError> {
        let application = self.model.application(idx);
        // R31: the service and the request change together.
        prop_assert!(seen.service_written, "R31: applied without the service");
        self.version = self.version.next();
        let service = seen.after.service(&self.name).expect("the service");
        prop_assert!(application.contacts.matches(service.contacts()));
        if application.replaced {
            self.note("outgoing contact told (R38)");
        }
        prop_assert_eq!(
            &seen.written,
            &application.written,
            "R32: the requests written on apply"
        );
        if !application.victims.is_empty() {
            self.note("another request failed (R32)");
        }
        check_messages(
            &seen.messages,
            |id| seen.after.requests.get(&id),
            application.expected,
        )?;
        self.model.contacts = application.contacts;
        self.model.end(idx, MState::Applied);
        let id = self.model.requests[idx].id;
        compare_request(&self.model, idx, seen.request(id))?;
        for (j, reasons) in application.victims {
            self.model.end(j, MState::Failed(reasons));
            let id = self.model.requests[j].id;
            compare_request(&self.model, j, seen.request(id))?;
            expect_events(&self.added, id, &[failed_event(seen.request(id))])?;
        }
        if !application.due.is_empty() {
            self.note("requests past their deadline expired with the change (R29)");
        }
        self.model.expired_with(&application.due, &self.added)?;
        for &j in &application.due {
            let id = self.model.requests[j].id;
            compare_request(&self.model, j, seen.request(id))?;
        }
        Ok(())
    }

    /// A call that ended one request with the same news to each confirmer.
    /// The contacts never change; a failure found when applying (R30) also
    /// writes the service at its next version, so that its verdict rests on
    /// a version the commit checked (R44).
    fn single(&mut self, idx: usize, seen: &Seen, tag: &Tag) -> Result<(), TestCaseError> {
        let id = self.model.requests[idx].id;
        prop_assert_eq!(
            seen.after.service(&self.name).map(Service::contacts),
            seen.before.service(&self.name).map(Service::contacts),
            "nothing changes (R21, R30)"
        );
        let mut expected = self.model.requests[idx].to_confirmers(tag);
        let mut written = vec![id];
        // R29: a verdict that writes the service expires the requests past
        // their deadline that it names.
        let due = if *tag == Tag::Failed {
            prop_assert!(
                seen.service_written,
                "R30, R44: the verdict wrote no service"
            );
            self.version = self.version.next();
            self.model.due_named()
        } else {
            prop_assert!(
                !seen.service_written,
                "only a verdict on applying writes the service"
            );
            Vec::new()
        };
        for &j in &due {
            expected.extend(self.model.requests[j].to_confirmers(&Tag::Expired));
            written.push(self.model.requests[j].id);
        }
        written.sort();
        prop_assert_eq!(&seen.written, &written);
        check_messages(&seen.messages, |id| seen.after.requests.get(&id), expected)?;
        self.model.expired_with(&due, &self.added)?;
        for j in due {
            let id = self.model.requests[j].id;
            compare_request(&self.model, j, seen.request(id))?;
        }
        compare_request(&self.model, idx, seen.request(id))
    }

    fn resent(&mut self, idx: usize, actor: CustomerId, seen: &Seen) -> Result<(), TestCaseError> {
        let id = self.model.requests[idx].id;
        prop_assert!(!seen.service_written);
        prop_assert_eq!(&seen.written, &vec![id]);
        // R23, R37: a new token for each confirmer still missing.
        let (expected, events) = self.model.resending(idx, actor);
        check_messages(&seen.messages, |id| seen.after.requests.get(&id), expected)?;
        expect_events(&self.added, id, &events)?;
        self.model.resent(idx, &seen.messages);
        compare_request(&self.model, idx, seen.request(id))
    }

    /// R29, R39: the host records the expiry of every request due.
    fn expire_due(&mut self) -> Result<(), TestCaseError> {
        let now = self.model.now;
        let due: Vec<usize> = (0..self.model.requests.len())
            .filter(|&i| {
                let r = &self.model.requests[i];
                r.state == MState::Awaiting && now >= r.deadline
            })
            .collect();
        let (result, seen) =
            self.call(&format!("expire_due at {now}"), false, async |d: &D, _| {
                d.expire_due(now).await
            })?;
        let due_ids: Vec<RequestId> = due.iter().map(|&i| self.model.requests[i].id).collect();
        let deadline = |id: &RequestId| seen.request(*id).deadline();
        prop_assert!(!seen.service_written);
        for id in &seen.written {
            prop_assert!(
                due_ids.contains(id),
                "R29: expire_due wrote request {}, which is not due",
                id
            );
        }
        let sweep = match result {
            Ok(sweep) => sweep,
            Err(e) => return Err(fail(format!("expire_due failed: {e:?}"))),
        };
        // R29: every request due was expired or is reported as failed, and
        // what was written is exactly what was expired, earliest deadline
        // first.
        let failed: Vec<RequestId> = sweep.failed.iter().map(|(id, _)| *id).collect();
        let mut accounted: Vec<RequestId> = sweep.expired.iter().chain(&failed).copied().collect();
        accounted.sort();
        let mut expected_ids = due_ids.clone();
        expected_ids.sort();
        prop_assert_eq!(
            &accounted,
            &expected_ids,
            "R29: every request due accounted for"
        );
        let mut written = seen.written.clone();
        written.sort();
        let mut expired_sorted = sweep.expired.clone();
        expired_sorted.sort();
        prop_assert_eq!(&written, &expired_sorted, "R29: the requests written");
        prop_assert!(
            sweep
                .expired
                .windows(2)
                .all(|w| deadline(&w[0]) <= deadline(&w[1])),
            "R29: earliest deadline first"
        );
        // R41: a request fails only through the store fault of this step, and
        // stays as it was (still due, for the next sweep).
        for (id, err) in &sweep.failed {
            prop_assert!(
                matches!(err, DriverError::Store(_)),
                "R41: {} failed with {:?}",
                id,
                err
            );
            prop_assert!(
                matches!(self.fault, Fault::StoreError(_)),
                "a store error with no store fault"
            );
        }
        self.note(match (sweep.expired.len(), failed.len()) {
            (0, 0) => "expire_due: nothing due",
            (1, 0) => "expire_due: expired one (R29)",
            (_, 0) => "expire_due: expired several (R29)",
            (0, _) => "expire_due: commit failed, nothing expired (R41)",
            _ => "expire_due: failed part-way, the others expired (R41)",
        });
        let expired: Vec<usize> = due
            .into_iter()
            .filter(|&i| seen.written.contains(&self.model.requests[i].id))
            .collect();
        let expected: Vec<Expected> = expired
            .iter()
            .flat_map(|&i| self.model.requests[i].to_confirmers(&Tag::Expired))
            .collect();
        // R41: the news of every expiry reaches the inboxes: delivered, or
        // reported undelivered so the host can retry.
        for (id, to, _) in &expected {
            let reached = seen
                .messages
                .iter()
                .any(|m| m.request() == Some(*id) && m.to() == *to);
            prop_assert!(
                reached,
                "R41: request {} stands as expired, but the message to {} was neither \
                 delivered nor reported undelivered",
                id,
                to
            );
        }
        check_messages(&seen.messages, |id| seen.after.requests.get(&id), expected)?;
        for idx in expired {
            self.model.end(idx, MState::Expired);
            let id = self.model.requests[idx].id;
            compare_request(&self.model, idx, seen.request(id))?;
            expect_events(&self.added, id, &[(EventKind::Expired, None)])?;
        }
        Ok(())
    }

    /// R46, R31, R32, R29: the assignment `record` landed as the model
    /// predicted: the service and the record in one commit, each overtaken
    /// request failed at the operator's hand, each due one expired, and the
    /// news to every old and new holder and to the ended requests' parties.
    fn assigned_as_predicted(
        &mut self,
        record: &Assignment,
        act: &OperatorAct,
        assigning: model::Assigning,
        seen: &Seen,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(record.changes(), assigning.changes.as_slice());
        prop_assert_eq!(record.by(), act);
        prop_assert_eq!(record.at(), self.model.now);
        prop_assert_eq!(record.service(), &self.name);
        prop_assert_eq!(&seen.assignments, &vec![record.clone()], "R31: the record");
        prop_assert!(seen.service_written, "R31: assigned without the service");
        self.version = self.version.next();
        let service = seen.after.service(&self.name).expect("the service");
        prop_assert!(assigning.contacts.matches(service.contacts()));
        prop_assert_eq!(
            &seen.written,
            &assigning.written,
            "R32, R29: the requests written"
        );
        let (about_requests, about_it): (Vec<&Message>, Vec<&Message>) =
            seen.messages.iter().partition(|m| m.request().is_some());
        let about_requests: Vec<Message> = about_requests.into_iter().cloned().collect();
        check_messages(
            &about_requests,
            |id| seen.after.requests.get(&id),
            assigning.expected,
        )?;
        check_assigned_messages(&about_it, record, &assigning.told)?;
        self.model.contacts = assigning.contacts;
        let operator = Actor::Operator(act.clone());
        for (j, role) in assigning.victims {
            let reason = service_contacts::FailureReason::Reassigned {
                role,
                by: record.id(),
            };
            self.model.end(j, MState::Failed(vec![reason.clone()]));
            let id = self.model.requests[j].id;
            compare_request(&self.model, j, seen.request(id))?;
            // R34, R46: failed at the operator's hand.
            expect_acted(
                &self.added,
                id,
                &[(EventKind::Failed { reason }, Some(operator.clone()))],
            )?;
        }
        self.model.expired_with(&assigning.due, &self.added)?;
        for &j in &assigning.due {
            let id = self.model.requests[j].id;
            compare_request(&self.model, j, seen.request(id))?;
        }
        self.assigned = Some(record.clone());
        Ok(())
    }

    /// New invariant 3 (R47, R20, R46): the service's history, read a page
    /// at a time through the driver, holds every request and assignment
    /// stored (`dump`), newest first, and explains every change of the
    /// contacts since the last check.
    fn check_history(
        &mut self,
        dump: &Dump,
        service: &Service,
        step: usize,
    ) -> Result<(), TestCaseError> {
        let per_page = PageSize::new([2, 3, 7, 50][step % 4]).expect("a page size");
        let history = self
            .runtime
            .block_on(history_pages(&self.driver, &self.name, per_page))
            .map_err(|e| fail(format!("history: {e:?}")))?;
        let mut listed: Vec<RequestId> = Vec::new();
        for entry in &history {
            if let HistoryEntry::Request(r) = entry {
                prop_assert_eq!(Some(r), dump.requests.get(&r.id()), "R47: as stored");
                listed.push(r.id());
            }
        }
        listed.sort();
        let mut stored: Vec<RequestId> = dump.requests.keys().copied().collect();
        stored.sort();
        prop_assert_eq!(listed, stored, "R47: every request of the service");
        let assignments: Vec<&Assignment> = history
            .iter()
            .filter_map(|e| match e {
                HistoryEntry::Assignment(a) => Some(a),
                HistoryEntry::Request(_) => None,
            })
            .collect();
        prop_assert_eq!(
            assignments,
            dump.assignments.iter().collect::<Vec<_>>(),
            "R47: every assignment of the service"
        );
        let contacts = *service.contacts();
        explain_changes(&self.history_seen, &history, &self.contacts_seen, &contacts)?;
        self.history_seen = history;
        self.contacts_seen = contacts;
        Ok(())
    }

    // ----- R40: no token in any output -----

    fn leak(&self, what: &str, text: &str) -> Result<(), TestCaseError> {
        self.secrets.leak(&self.model, what, text)
    }
}

/// R46, R31: the assignments a call recorded: at most one, with the
/// service; those recorded before never change.
fn new_assignments(
    before: &Dump,
    after: &Dump,
    service_written: bool,
) -> Result<Vec<Assignment>, TestCaseError> {
    for a in &before.assignments {
        prop_assert!(
            after.assignments.contains(a),
            "R46: assignment {} changed or vanished",
            a.id()
        );
    }
    let assignments: Vec<Assignment> = after
        .assignments
        .iter()
        .filter(|a| !before.assignments.contains(a))
        .cloned()
        .collect();
    prop_assert!(assignments.len() <= 1, "one call, one assignment at most");
    if !assignments.is_empty() {
        prop_assert!(service_written, "R31: an assignment without its service");
    }
    Ok(assignments)
}

/// R46: an operator's assignment moved exactly the roles it records, from
/// the holder it names to the new one.
fn check_assigned(
    record: &Assignment,
    before: &Contacts,
    after: &Contacts,
) -> Result<(), TestCaseError> {
    let moves: Vec<_> = record
        .changes()
        .iter()
        .map(|c| (c.role, c.from, c.to))
        .collect();
    check_moves(&moves, before, after)
}

/// A refused call commits nothing, changes nothing and sends nothing.
fn unchanged(seen: &Seen, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(seen.commits, 0, "{} asked for a commit", what);
    prop_assert!(seen.after == seen.before, "{} changed the store", what);
    prop_assert!(seen.messages.is_empty(), "{} sent messages", what);
    Ok(())
}

fn tag_name(m: &Message) -> &'static str {
    match m.kind() {
        MessageKind::ConfirmationRequested { .. } => "confirmation request",
        MessageKind::Applied => "applied",
        MessageKind::Replaced => "replaced",
        MessageKind::Refused { .. } => "refused",
        MessageKind::Cancelled { .. } => "cancelled",
        MessageKind::Expired => "expired",
        MessageKind::Failed { .. } => "failed",
        MessageKind::Assigned { .. } => "assigned",
    }
}

/// R41, R46: the news of assignment `id`: as recorded, and the stored
/// service shows each new holder.
fn check_committed_assignment(
    m: &Message,
    id: service_contacts::AssignmentId,
    after: &Dump,
) -> Result<(), TestCaseError> {
    let kind = tag_name(m);
    let Some(record) = after.assignments.iter().find(|a| a.id() == id) else {
        return Err(fail(format!(
            "R41: news of assignment {id}, which is not stored"
        )));
    };
    let MessageKind::Assigned { by, changes } = m.kind() else {
        return Err(fail(format!("R41: a {kind} message about an assignment")));
    };
    prop_assert_eq!(by, record.by());
    prop_assert_eq!(changes.as_slice(), record.changes());
    let service = after
        .service(record.service())
        .expect("the service is stored");
    for c in record.changes() {
        prop_assert_eq!(
            service.holder(c.role),
            c.to,
            "R41: news of an assignment the stored service does not show"
        );
    }
    Ok(())
}

/// New invariant 2 (R41): the message describes the state now committed,
/// read from the store alone, without the model.
fn check_committed(m: &Message, after: &Dump) -> Result<(), TestCaseError> {
    let kind = tag_name(m);
    if let Some(id) = m.assignment() {
        return check_committed_assignment(m, id, after);
    }
    let Some(r) = m.request().and_then(|id| after.requests.get(&id)) else {
        return Err(fail(format!(
            "R41: a {kind} message about request {:?}, which is not stored",
            m.request()
        )));
    };
    prop_assert_eq!(m.service(), r.service());
    prop_assert_eq!(m.requester(), Some(r.requester()));
    prop_assert_eq!(m.incoming(), Some(r.incoming()));
    let stored = r.state();
    match m.kind() {
        MessageKind::ConfirmationRequested {
            token, deadline, ..
        } => {
            let RequestState::Awaiting(a) = stored else {
                return Err(fail(format!(
                    "R41: a confirmation request for a request stored as {}",
                    stored.name()
                )));
            };
            prop_assert_eq!(*deadline, r.deadline());
            // R18: the token verifies against its recipient's stored digest
            // and no one else's.
            let text = token.reveal();
            for c in a.confirmers() {
                let verifies = match c.status() {
                    ConfirmerStatus::Pending {
                        digest: Some(d), ..
                    } => d.verify(&text),
                    ConfirmerStatus::Pending { digest: None, .. }
                    | ConfirmerStatus::Confirmed { .. } => false,
                };
                prop_assert_eq!(
                    verifies,
                    c.customer() == m.to(),
                    "R41, R18: the token sent to {} against the stored digest of {}",
                    m.to(),
                    c.customer()
                );
            }
        }
        MessageKind::Applied | MessageKind::Replaced => {
            prop_assert!(
                matches!(stored, RequestState::Applied { .. }),
                "R41: an {} message for a request stored as {}",
                kind,
                stored.name()
            );
            let service = after.service(r.service()).expect("the service is stored");
            let roles = if matches!(m.kind(), MessageKind::Replaced) {
                // R38: the roles the recipient lost.
                for role in m.roles() {
                    prop_assert_eq!(r.outgoing(role), Some(m.to()));
                }
                m.roles()
            } else {
                r.roles()
            };
            for role in roles {
                prop_assert_eq!(
                    service.holder(role),
                    r.incoming(),
                    "R41: a {} message, but the stored service shows another {} contact",
                    kind,
                    role
                );
            }
        }
        MessageKind::Refused { by } => prop_assert!(
            matches!(stored, RequestState::Refused { by: b, .. } if b == by),
            "R41: a refused message for a request stored as {}",
            stored.name()
        ),
        MessageKind::Assigned { .. } => {
            return Err(fail("R41: an assignment's news about a request"));
        }
        MessageKind::Cancelled { by } => prop_assert!(
            matches!(stored, RequestState::Cancelled { by: b, .. } if b == by),
            "R41: a cancelled message (by {}) for a request stored as {}",
            by,
            stored.name()
        ),
        MessageKind::Expired => prop_assert!(
            matches!(stored, RequestState::Expired { .. }),
            "R41: an expired message for a request stored as {}",
            stored.name()
        ),
        MessageKind::Failed { reason } => prop_assert!(
            matches!(stored, RequestState::Failed { reason: why, .. } if why == reason),
            "R41: a failed message ({}) for a request stored as {}",
            reason,
            stored.name()
        ),
    }
    Ok(())
}

/// A sequence: the generator's seed, the failed attempts allowed (R26),
/// and 1 to 30 actions.
type Sequence = (u64, u32, Vec<Action>);

fn sequence() -> impl Strategy<Value = Sequence> {
    sequences(action())
}

/// Runs `sequence` through a driver `D` and its in-memory host.
fn follows_the_rules<D: TestDriver>(sequence: &Sequence) -> Result<(), TestCaseError> {
    let (seed, max_failed_attempts, actions) = sequence;
    Harness::<D>::new(*seed, *max_failed_attempts).run(actions)
}

proptest! {
    // 2,000 sequences here and 1,000 through the async driver take about as
    // long as the 3,000 this test ran before the async driver (15 s in a
    // debug build on an idle machine): both drivers run the same actions.
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The driver, its in-memory host and the model agree on every step of
    /// random sequences with faults, and the invariants hold after each.
    #[test]
    fn driver_follows_the_rules(sequence in sequence()) {
        follows_the_rules::<Blocking>(&sequence)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// The same through the async driver, on tokio's current-thread runtime:
    /// the same sequences, model, faults and invariants.
    #[test]
    fn async_driver_follows_the_rules(sequence in sequence()) {
        follows_the_rules::<Async>(&sequence)?;
    }
}

/// A bug the random test found (R41), as its shrunk sequence: when
/// `expire_due` met a store error part-way, the news of the expiries it had
/// already committed that the notifier failed was neither delivered nor
/// reported undelivered. The sweep now goes on and reports the failure.
#[test]
fn expire_due_failing_part_way_loses_no_message() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let any_request = any::<Index>()
        .new_tree(&mut TestRunner::deterministic())
        .expect("an index")
        .current();
    let calm = |op| Action {
        op,
        fault: Fault::None,
        mail: Mail::Delivered,
    };
    let actions = [
        // AA1-OVH, who holds every role, proposes AA2-OVH as tech and
        // AA3-OVH as billing: two requests with one deadline.
        calm(Op::Submit {
            actor: Who::Anyone(0),
            roles: RolePick::Mask(0b010),
            incoming: Incoming::Pool(1),
            second: None,
        }),
        calm(Op::Submit {
            actor: Who::Anyone(0),
            roles: RolePick::Mask(0b100),
            incoming: Incoming::Pool(2),
            second: None,
        }),
        calm(Op::Advance {
            minutes: 7 * 24 * 60,
        }),
        // Both are due. The first expiry commits and its news to AA1-OVH
        // fails; the second commit fails with a store error.
        Action {
            op: Op::Expire {
                target: Target::Any(any_request),
            },
            fault: Fault::StoreError(1),
            mail: Mail::FailTo(0),
        },
    ];
    let sequence = (0, 3, actions.to_vec());
    if let Err(e) = follows_the_rules::<Blocking>(&sequence) {
        panic!("the driver: {e}");
    }
    if let Err(e) = follows_the_rules::<Async>(&sequence) {
        panic!("the async driver: {e}");
    }
}

/// Every outcome `generator_reaches_every_outcome` must see.
const OUTCOMES: &[&str] = &[
    "submit: opened",
    "submit: took over a due request (R29)",
    "requests past their deadline expired with the change (R29)",
    "submit: two requests (R33)",
    "submit: taking a role oneself (R8b)",
    "submit: no change (R12)",
    "submit: not permitted (R11)",
    "submit: conflict (R27)",
    "submit: behind with payments (R14)",
    "submit: unknown customer (R13)",
    "submit: commit failed, nothing opened (R41)",
    "token: request past its deadline",
    "token: request ended",
    "token: from a message reported undelivered (R41)",
    "bad token (R24, R25)",
    "failed attempt: counted (R26)",
    "failed attempt: token invalidated (R26)",
    "accept or refuse: commit failed, nothing changed (R41)",
    "refused (R21)",
    "accepted, waiting for the other (R19)",
    "failed when applying (R30)",
    "applied (R20)",
    "outgoing contact told (R38)",
    "another request failed (R32)",
    "resend: sent (R23)",
    "resend: too soon (R23)",
    "resend: not a confirmer (R22)",
    "resend: commit failed, old tokens still work (R41)",
    "cancel: cancelled (R28)",
    "cancel: not the requester (R28)",
    "cancel: commit failed, still open (R41)",
    "expire_due: nothing due",
    "expire_due: expired one (R29)",
    "expire_due: expired several (R29)",
    "expire_due: commit failed, nothing expired (R41)",
    "expire_due: failed part-way, the others expired (R41)",
    "conflict met, decided again (R31)",
    "delivery failed, reported (R41)",
    "operator cancel: cancelled (R46)",
    "operator cancel: closed, unchanged (R46)",
    "operator cancel: commit failed, still open (R41)",
    "operator resend: sent (R46, R23)",
    "operator resend: too soon (R23)",
    "operator resend: closed, unchanged (R46)",
    "operator resend: commit failed, old tokens still work (R41)",
    "assign: assigned (R46)",
    "assign: an open request failed (R32)",
    "assign: a request past its deadline expired with it (R29)",
    "assign: empty edit",
    "assign: no change",
    "assign: unknown customer (R13)",
    "assign: behind with payments (R14)",
    "assign: commit failed, nothing changed (R41)",
];

/// Every outcome the test is meant to exercise, faults included, happens in
/// a few hundred sequences drawn from a fixed seed, so a change to the
/// generator cannot quietly stop testing one of them. They run through the
/// async driver, so that this also shows its harness meets every situation
/// (store errors and conflicts through the async store included).
#[test]
fn generator_reaches_every_outcome() {
    reach_every_outcome(
        "the async driver",
        action(),
        |seed, max_failed_attempts, actions| {
            let mut harness = Harness::<Async>::new(seed, max_failed_attempts);
            let result = harness.run(actions);
            (result, harness.outcomes)
        },
        OUTCOMES,
        "DRIVER_MODEL_STATS",
    );
}
