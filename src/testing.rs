//! A conformance suite for [`Store`] and [`AsyncStore`] implementations
//! (feature `testing`).
//!
//! A host that implements [`Store`] or [`AsyncStore`] on its own database
//! runs the suite against fresh, empty stores and gets a report of every
//! contract point: version conflicts, all-or-nothing commits (operators'
//! assignments with the rest), reads that follow every commit, indexes right
//! after contacts change, due-for-expiry queries, request listings and their
//! filters, a service's history, pages that stay stable while commits land,
//! page sizes, racing commits.
//!
//! # Two runners, one suite
//!
//! | Runner | Checks | Runs | The racers of a race case |
//! |--------|--------|------|---------------------------|
//! | [`run_store_suite`] | a [`Store`] | on the calling thread, to its end | [`RACERS`] threads, released together by a barrier |
//! | [`run_async_store_suite`] | an [`AsyncStore`] | as a future the host awaits on its own runtime | [`RACERS`] commit futures, polled together in that future |
//!
//! The cases are written once, as async code over [`AsyncStore`]. The
//! blocking runner runs them over the blocking store, whose answers are
//! ready at once, and polls them to their end without a runtime; only its
//! races differ, on threads, so that a store that is not isolated between
//! threads is caught. Both runners run every case of [`CASES`] in that
//! order, each on a fresh store, and report alike ([`Report`]); a case that
//! panics is reported as failed with the panic's message.
//!
//! ```
//! use service_contacts::MemoryStore;
//! use service_contacts::testing::run_store_suite;
//!
//! // In a host's test: build a fresh, empty store for each case.
//! let report = run_store_suite(MemoryStore::new);
//! report.assert_passed();
//! assert_eq!(report.passed.len(), service_contacts::testing::CASES.len());
//! ```
//!
//! An async host awaits the async runner on its runtime (the crate depends
//! on none). Its future is `Send` when the store and the builder are, so it
//! may be spawned on a multi-threaded runtime:
//!
//! ```
//! use service_contacts::MemoryStore;
//! use service_contacts::testing::{CASES, run_async_store_suite};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), tokio::task::JoinError> {
//!     // `MemoryStore` implements `AsyncStore` too; a host builds its own.
//!     let report = tokio::spawn(run_async_store_suite(|| async { MemoryStore::new() })).await?;
//!     report.assert_passed();
//!     assert_eq!(report.passed, CASES);
//!     Ok(())
//! }
//! ```
//!
//! For a database, the builder creates a new schema or a new file per call
//! (as the tests of `service-contacts-sqlite`, in this repository, do: a new
//! file per case).
//!
//! # What each case proves
//!
//! Each case checks one point of the [`Store`] contract and compares only
//! what that point is about (a listing case that checks membership compares
//! ids; the case that checks contents compares whole records), so a failure
//! names the broken point. The crate's own tests (`tests/store_gallery.rs`)
//! keep a gallery of deliberately broken stores, run each through both
//! runners, and check that every case below is the only one to fail on at
//! least one of them (its *witness*), under each runner.
//!
//! | Case | Contract point | Broken store it rejects (witness) |
//! |------|----------------|-----------------------------------|
//! | `service_round_trip` | a service reads back whole: a name of 200 bytes (R7), three different holders (R42); an unknown name reads `None` | names cut to 64 bytes (a column too narrow) |
//! | `create_existing_service_conflicts` | `expected: None` for an existing service is a conflict, and writes nothing | a service creation that overwrites (an upsert) |
//! | `create_existing_request_conflicts` | `expected: None` for an existing request id is a conflict, and writes nothing | a request creation that overwrites |
//! | `stale_version_conflicts` | `expected: Some(v)` must be the stored version exactly, for services and requests (R31) | a version check `stored <= expected` |
//! | `update_of_missing_service_conflicts` | `expected: Some(v)` for a missing service is a conflict | an update of a missing service that creates it |
//! | `update_of_missing_request_conflicts` | `expected: Some(v)` for a missing request is a conflict | an update of a missing request that creates it |
//! | `all_or_nothing_stale_service` | a stale service write leaves the batch's good request writes (an update and a creation) unwritten, in reads and listings (R31) | one transaction per table, requests first |
//! | `all_or_nothing_stale_request` | a stale request write leaves the batch's good service write and good request creation unwritten (R31) | one transaction per table, services first |
//! | `all_or_nothing_requests_only` | a batch of request writes only (no service) is all or nothing too (R31) | batches without a service written record by record (autocommit) |
//! | `import_batch_is_all_or_nothing` | a batch creating several services (an import, R42) with one name taken writes none of them; a good batch writes all, each listed by its holders | a commit that checks only the first service write of a batch (one service per commit assumed) |
//! | `all_or_nothing_assignment` | an operator's assignment is written with the service write of its batch: of two assignments decided on one version, the one whose service write is stale leaves no assignment listed (R46, R31) | assignments checked and written in a transaction of their own, before the rest of the batch |
//! | `existing_assignment_id_conflicts` | an assignment whose id exists, or a batch that names one id twice, is a conflict and writes nothing: the service keeps its version, the stored assignment is listed as first written (R46) | an upsert of assignments; `ON CONFLICT DO NOTHING`; ids checked against the stored ones only; assignments written in a transaction after the rest |
//! | `reads_follow_every_commit` | after each commit of a request's life (create, update, open, confirm, apply) `service` and `request` answer what it wrote (R31, R44) | request reads from a cache refreshed only when a request opens or closes |
//! | `removed_service_keeps_its_versions` | a removed service reads back as its tombstone (removed, at its next version), is no longer listed by `contacts_of`, and is replaced only at the version after it: a write expecting a version from before the removal is a conflict (R44) | a removal that deletes the row (the name's versions restart); `contacts_of` listing tombstones |
//! | `contacts_of_follows_holders` | `contacts_of` lists a new holder and drops an old one right after a change of contacts, sorted by name (R6) | a holder index written only when a service is created |
//! | `contacts_of_roles_follow_changes` | `contacts_of` gives the roles held now, when roles move between two holders who both stay (R6) | `contacts_of` roles as first written |
//! | `requests_of_parties_and_order` | `requests_of` lists requester, incoming and outgoing contacts' requests, whatever the state, newest first, ties by id (R35) | requests opened at the same instant sorted by id from the highest |
//! | `requests_of_current_contents` | `requests_of` answers each request whole at its current version, after a confirmation and a cancel (R35) | `requests_of` contents as first written |
//! | `due_for_expiry_at_the_deadline` | a request is due at its deadline exactly, not a nanosecond before (R29) | `deadline < now` instead of `<=` |
//! | `due_for_expiry_order` | due requests come earliest deadline first, ties by request id, on five requests whose id order differs (R29) | due requests sorted by id |
//! | `due_for_expiry_follows_changes` | a confirmed request is due at its current version; cancelled and expired ones are not due (R29) | `due_for_expiry` contents as first written; a deadline index that keeps closed requests |
//! | `contacts_of_pages_stay_stable` | while "my contacts" is read page by page, services join before and after the cursor, one leaves before it and someone else's changes: every service that did not change is listed exactly once (R45, R6) | `contacts_of` paged by offset (its cursor counts the rows listed) |
//! | `requests_of_pages_stay_stable` | while "my requests" (open ones) is read page by page, a newer request opens, one before the cursor is cancelled, an older one opens, one after it is confirmed, someone else's is cancelled: every request that did not change is listed exactly once (R45, R35) | `requests_of` paged by offset |
//! | `due_for_expiry_pages_stay_stable` | while the due requests are read page by page, one joins before the cursor, one before it is recorded as expired, one joins after it and a request not due is cancelled: every due request that did not change is listed exactly once (R45, R29) | `due_for_expiry` paged by offset |
//! | `requests_of_every_filter` | on two services with requests in every state (one awaiting past its deadline, not swept) and five customers in every part, each customer's listing under 189 filters (states × parts × service) is, page by page, the full scan of their requests through [`RequestFilter::matches`], newest first (R45, R35, R29) | a state filter on the recorded state (an unswept request is not `expired`); "waiting for me" still listing a confirmer who confirmed; the service filter ignored |
//! | `listings_answer_at_most_limit` | every listing, asked for 0 to 5 rows a page, never answers more, even where request times tie across a page's end (and, in a service's history, those of three requests opened by one edit and of three assignments made at one instant), and the pages hold every row (R45, R47) | `requests_of` and `due_for_expiry` answering `limit` rows plus those tied with the last (`FETCH FIRST n ROWS WITH TIES`); the history listings doing the same |
//! | `history_lists_every_entry_of_its_service` | `requests_on` lists every request ever opened on the service, whatever its state (one service holds requests in all six), and `assignments_on` every assignment made on it; neither lists another service's entries, even those of a name it prefixes (`first.example.net` for `first.example`); a removed service's history is listed whole (R47, R46, R44) | `requests_on` reading an index of open requests; a history listing that ignores the service, or matches names by prefix; no history for a removed service (a join with the live services) |
//! | `history_newest_first_ties_by_id` | both history listings come newest first, ties by id (two requests opened by one edit, R33; two assignments made at one instant), on entries whose ids do not follow their times (R47) | a history listing sorted by id; ties sorted by id from the highest |
//! | `history_follows_every_commit` | after each commit of a request's life (open, confirm, apply), another opening and an assignment that fails it (R32), `requests_on` answers each request whole at its current version and `assignments_on` the assignment whole (R47, R34, R46) | `requests_on` contents as first written; assignments indexed for `assignments_on` only when the next commit begins |
//! | `history_pages_stay_stable` | while a service's requests, then its assignments, are read page by page, newest first, newer entries join before the cursor, a request before it is cancelled and older entries join after it: every entry that did not change is listed exactly once (R47, R45) | `requests_on` paged by offset; `assignments_on` paged by offset |
//! | `racing_service_writes_one_wins` | of [`RACERS`] commits of one service expecting the same version, released together, exactly one wins (R31) | service-only batches checked, then written in a second critical section |
//! | `racing_request_writes_one_wins` | the same for request writes (R31) | request-only batches checked, then written apart |
//! | `racing_mixed_writes_one_wins` | applies (service and request) racing a cancel (request only) of one request: exactly one wins, and the winner's records are stored (R31) | batches of a service and requests checked, then written apart |
//! | `racing_assignments_one_wins` | [`RACERS`] operators' assignments of one role decided on the same version of the service, each failing the request open on that role (R32): exactly one wins, and the service and the request are the winner's (R46, R31) | batches with an assignment checked, then written apart |
//!
//! The gallery has more broken stores than these witnesses (record-by-record
//! commits, a lagging replica, a party index without the outgoing contacts,
//! a cursor taken as inclusive or ignored, assignments never written, a
//! history of open requests only, ...); each is caught by one or more cases.
//!
//! The history cases read [`Store::requests_on`] and [`Store::assignments_on`]
//! directly, each on its own, not through the driver's merged history: the
//! driver drops rows of another service, or not after its cursor, so through
//! it a store that answers them would show only as rows missing from a page,
//! far from the cause.
//!
//! Every listing is read a few rows a page (two rows, or the limit a
//! case asks), each page after the last row of the one before; a page longer
//! than asked, a row listed twice or pages that never end fail the case
//! (R45).
//!
//! The race cases make the race likely on a real store: every racer decides
//! from the same read, then all commit at once. In [`run_store_suite`] the
//! racers are threads that wait at a [`std::sync::Barrier`]; in
//! [`run_async_store_suite`] their commit futures are polled in turn, again
//! each time one wakes, until all are done, as an async client with several
//! connections runs them: each racer's commit runs to its first wait (its
//! transaction begun, a statement sent) before the next racer's starts, and
//! all go on as their answers come. The async race is as concurrent as the
//! store's futures are: a store whose commit never waits commits the racers
//! one after another.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::fmt::Display;
use std::future::{Future, poll_fn};
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::Barrier;
use std::task::Poll;

use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::driver::block_on;
use crate::host::{AsyncStore, Blocking, CommitError, Store, async_impl, forwarded};
use crate::{
    AccountStatus, Accounts, Assignment, AssignmentId, ChangeRequest, Changes, Contacts,
    CustomerId, Edit, Engine, HistoryKey, OperatorAct, OperatorId, Part, Reason, RequestFilter,
    RequestId, RequestKey, Role, Roles, Service, ServiceName, Snapshot, StateName, Transition,
    Version, Write,
};

/// How many racers each race case runs (threads in [`run_store_suite`],
/// commit futures in [`run_async_store_suite`]): each commits once per
/// round.
pub const RACERS: usize = 4;

/// How many rounds each race case runs.
const ROUNDS: u32 = 3;

/// Defines [`CASES`] and the one loop that runs them, for both runners, from
/// one list of case functions.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        /// The names of the cases, in the order they run (see the module
        /// docs for what each proves).
        pub const CASES: &[&str] = &[$(stringify!($case)),*];

        /// Runs every case in the order of [`CASES`], each against a fresh
        /// store from `make`, a panic counted as the case's failure.
        async fn run_cases<S: Tested, M: Future<Output = S>>(
            mut make: impl FnMut() -> M,
        ) -> Report {
            let mut report = Report::default();
            $({
                let store = make().await;
                report.record(stringify!($case), unwound($case(&store)).await);
            })*
            report
        }
    };
}

cases![
    service_round_trip,
    create_existing_service_conflicts,
    create_existing_request_conflicts,
    stale_version_conflicts,
    update_of_missing_service_conflicts,
    update_of_missing_request_conflicts,
    all_or_nothing_stale_service,
    all_or_nothing_stale_request,
    all_or_nothing_requests_only,
    import_batch_is_all_or_nothing,
    all_or_nothing_assignment,
    existing_assignment_id_conflicts,
    reads_follow_every_commit,
    removed_service_keeps_its_versions,
    contacts_of_follows_holders,
    contacts_of_roles_follow_changes,
    requests_of_parties_and_order,
    requests_of_current_contents,
    due_for_expiry_at_the_deadline,
    due_for_expiry_order,
    due_for_expiry_follows_changes,
    contacts_of_pages_stay_stable,
    requests_of_pages_stay_stable,
    due_for_expiry_pages_stay_stable,
    requests_of_every_filter,
    listings_answer_at_most_limit,
    history_lists_every_entry_of_its_service,
    history_newest_first_ties_by_id,
    history_follows_every_commit,
    history_pages_stay_stable,
    racing_service_writes_one_wins,
    racing_request_writes_one_wins,
    racing_mixed_writes_one_wins,
    racing_assignments_one_wins,
];

/// The outcome of a run of the suite ([`run_store_suite`] or
/// [`run_async_store_suite`]).
#[derive(Debug, Default)]
pub struct Report {
    /// The cases that passed.
    pub passed: Vec<&'static str>,
    /// The cases that failed, with what went wrong.
    pub failed: Vec<(&'static str, String)>,
}

impl Report {
    /// Records one case's outcome.
    fn record(&mut self, case: &'static str, outcome: Outcome) {
        match outcome {
            Ok(()) => self.passed.push(case),
            Err(why) => self.failed.push((case, why)),
        }
    }

    /// Panics with every failure if any case failed.
    ///
    /// # Panics
    ///
    /// If a case failed.
    pub fn assert_passed(&self) {
        if !self.failed.is_empty() {
            let lines: Vec<String> = self
                .failed
                .iter()
                .map(|(case, why)| format!("  {case}: {why}"))
                .collect();
            panic!("store conformance failed:\n{}", lines.join("\n"));
        }
    }
}

/// Runs every case of the suite on a blocking [`Store`], each against a
/// fresh store from `make`.
///
/// A case that panics is reported as failed with the panic's message. The
/// race cases share the store with [`RACERS`] threads, released together by
/// a barrier.
pub fn run_store_suite<S, F>(mut make: F) -> Report
where
    S: Store + Sync,
    F: FnMut() -> S,
{
    block_on(|| run_cases(|| std::future::ready(Blocking(make()))))
}

/// Runs every case of the suite on an [`AsyncStore`], each against a fresh
/// store that `make`'s future gives (a host's store usually connects
/// asynchronously: `|| async { MyStore::connect(..).await.unwrap() }`): the
/// same cases as [`run_store_suite`], awaited on the host's own runtime (the
/// crate depends on none).
///
/// A case that panics is reported as failed with the panic's message. The
/// race cases run [`RACERS`] commits concurrently in this one future, as an
/// async client with several connections does: every racer decides from the
/// same read, then their commit futures are polled together until all are
/// done. The future is `Send` when `S` and `F` are, so it can be spawned on
/// a multi-threaded runtime.
pub fn run_async_store_suite<S, F, M>(mut make: F) -> impl Future<Output = Report>
where
    S: AsyncStore + Sync,
    F: FnMut() -> M,
    M: Future<Output = S>,
{
    run_cases(move || {
        let store = make();
        async move { Joined(store.await) }
    })
}

// ----- the two runners: the store as the cases see it -----

/// A store as the cases see it: the async traits, and the runner's way of
/// racing commits, the one thing the two runners do differently.
trait Tested: AsyncStore + Sync {
    /// Commits `batches`, one per racer, all at once: every racer has
    /// decided (the batches are built) before any commits. Returns which
    /// committed.
    fn race(&self, batches: Vec<Changes>)
    -> impl Future<Output = Result<Vec<bool>, String>> + Send;
}

/// The blocking runner's store: each racer is a thread, and a barrier
/// releases them together.
impl<S: Store + Sync> Tested for Blocking<S> {
    fn race(
        &self,
        batches: Vec<Changes>,
    ) -> impl Future<Output = Result<Vec<bool>, String>> + Send {
        let barrier = Barrier::new(batches.len());
        let store = &self.0;
        let outcomes: Vec<Result<bool, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batches
                .into_iter()
                .map(|batch| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        won(store.commit(batch))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a racer panicked".into())))
                .collect()
        });
        std::future::ready(outcomes.into_iter().collect())
    }
}

/// The async runner's store: the racers' commit futures are polled together
/// in the case's own future.
struct Joined<S>(S);

impl<S> Deref for Joined<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}

async_impl!(Store for [S: AsyncStore + Sync] Joined<S>, S::Error, forwarded);

impl<S: AsyncStore + Sync> Tested for Joined<S> {
    fn race(
        &self,
        batches: Vec<Changes>,
    ) -> impl Future<Output = Result<Vec<bool>, String>> + Send {
        let commits: Vec<_> = batches.into_iter().map(|b| self.0.commit(b)).collect();
        async move { joined(commits).await.into_iter().map(won).collect() }
    }
}

/// Whether a racer's commit won: `false` for a conflict, an error for a
/// store error.
fn won<E: Display>(result: Result<(), CommitError<E>>) -> Result<bool, String> {
    match result {
        Ok(()) => Ok(true),
        Err(CommitError::Conflict) => Ok(false),
        Err(CommitError::Store(err)) => Err(format!("store error: {err}")),
    }
}

/// Polls every one of `futures` in turn, again each time one wakes the task,
/// until all are done: their outputs, in order.
async fn joined<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none()
                && let Poll::Ready(done) = future.as_mut().poll(cx)
            {
                *output = Some(done);
            }
        }
        if outputs.iter().all(Option::is_some) {
            Poll::Ready(outputs.drain(..).flatten().collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// `case`'s outcome, or its failure if it panics: each poll runs inside
/// [`catch_unwind`], and a case that panicked is not polled again.
async fn unwound(case: impl Future<Output = Outcome>) -> Outcome {
    let mut case = pin!(case);
    poll_fn(|cx| {
        catch_unwind(AssertUnwindSafe(|| case.as_mut().poll(cx))).unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panicked".to_owned());
            Poll::Ready(Err(format!("panicked: {why}")))
        })
    })
    .await
}

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

fn host<T, E: Display>(result: Result<T, E>) -> Result<T, String> {
    result.map_err(|err| format!("store error: {err}"))
}

fn committed<E: Display>(result: Result<(), CommitError<E>>, what: &str) -> Outcome {
    match result {
        Ok(()) => Ok(()),
        Err(CommitError::Conflict) => Err(format!("{what}: unexpected conflict")),
        Err(CommitError::Store(err)) => Err(format!("{what}: store error: {err}")),
    }
}

fn conflicted<E: Display>(result: Result<(), CommitError<E>>, what: &str) -> Outcome {
    match result {
        Err(CommitError::Conflict) => Ok(()),
        Ok(()) => Err(format!("{what}: committed, expected a conflict")),
        Err(CommitError::Store(err)) => Err(format!("{what}: store error: {err}")),
    }
}

/// A deterministic generator for the suite's tokens: SHA-256 in counter
/// mode. Tokens made here guard nothing.
struct SuiteRng(u64);

impl TryRng for SuiteRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(32) {
            self.0 += 1;
            let block: [u8; 32] = Sha256::digest(self.0.to_le_bytes()).into();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for SuiteRng {}

fn id(text: &str) -> CustomerId {
    CustomerId::parse(text).expect("valid fixture identifier")
}

fn name(text: &str) -> ServiceName {
    ServiceName::parse(text).expect("valid fixture name")
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
}

/// A batch that creates `service`.
fn create(service: &Service) -> Changes {
    Changes {
        services: vec![Write {
            value: service.clone(),
            expected: None,
        }],
        requests: Vec::new(),
        assignments: Vec::new(),
    }
}

/// A batch that writes `service` over the version `expected`.
fn update(service: &Service, expected: Version) -> Changes {
    Changes {
        services: vec![Write {
            value: service.clone(),
            expected: Some(expected),
        }],
        requests: Vec::new(),
        assignments: Vec::new(),
    }
}

/// A batch of request writes alone.
fn request_writes(writes: Vec<Write<ChangeRequest>>) -> Changes {
    Changes {
        services: Vec::new(),
        requests: writes,
        assignments: Vec::new(),
    }
}

/// Creates a service ordered by `owner` (R5) and returns it.
async fn ordered<S: AsyncStore>(
    store: &S,
    service: &str,
    owner: CustomerId,
) -> Result<Service, String> {
    let service = Service::order(name(service), owner);
    committed(store.commit(create(&service)).await, "creating a service")?;
    Ok(service)
}

/// The service with `role` given to `customer`, at the next version.
fn reassigned(service: &Service, role: Role, customer: CustomerId) -> Service {
    let mut contacts = *service.contacts();
    contacts.set(role, customer);
    Service::new(service.name().clone(), contacts, service.version().next())
}

/// The rows the listing cases read a page at a time: every case that lists
/// also pages (R45).
const PAGE: usize = 2;

/// The most pages a listing case reads before it gives up on the listing.
const MAX_PAGES: usize = 1_000;

/// Reads a listing whole, `limit` rows at a time, each page starting after
/// the last row of the one before (its `cursor`); `between(n)` runs before
/// page `n` (from 1), where a case commits while the listing is read. A
/// store that answers more rows than asked, lists a row twice (by `key`), or
/// pages that never end, fails the case (R45).
async fn read_pages<T, K, C, P, B>(
    limit: usize,
    key: impl Fn(&T) -> K,
    cursor: impl Fn(&T) -> C,
    mut page: impl FnMut(Option<C>, usize) -> P,
    mut between: impl FnMut(usize) -> B,
) -> Result<Vec<T>, String>
where
    K: PartialEq + core::fmt::Debug,
    P: Future<Output = Result<Vec<T>, String>>,
    B: Future<Output = Outcome>,
{
    let mut rows: Vec<T> = Vec::new();
    for n in 0..MAX_PAGES {
        if n > 0 {
            between(n).await?;
        }
        let next = page(rows.last().map(&cursor), limit).await?;
        ensure!(
            next.len() <= limit,
            "page {n}: {} rows, at most {limit} asked",
            next.len()
        );
        let done = next.len() < limit || limit == 0;
        for row in next {
            let k = key(&row);
            ensure!(
                !rows.iter().any(|r| key(r) == k),
                "page {n}: {k:?} listed twice"
            );
            rows.push(row);
        }
        if done {
            return Ok(rows);
        }
    }
    Err("the pages never end".into())
}

/// [`read_pages`] with `PAGE` rows a page and no commit in between.
async fn read_all<T, K, C, P>(
    key: impl Fn(&T) -> K,
    cursor: impl Fn(&T) -> C,
    mut page: impl FnMut(Option<C>) -> P,
) -> Result<Vec<T>, String>
where
    K: PartialEq + core::fmt::Debug,
    P: Future<Output = Result<Vec<T>, String>>,
{
    read_pages(PAGE, key, cursor, |after, _| page(after), nothing_between).await
}

/// No commit between pages.
async fn nothing_between(_: usize) -> Outcome {
    Ok(())
}

/// The name of a "my contacts" row.
fn contact_name(row: &(ServiceName, Roles)) -> ServiceName {
    row.0.clone()
}

/// The key a "my requests" page continues after (R45).
fn opening_key(request: &ChangeRequest) -> RequestKey {
    RequestKey {
        at: request.opened_at(),
        id: request.id(),
    }
}

/// The key a "due for expiry" page continues after (R29, R45).
fn deadline_key(request: &ChangeRequest) -> RequestKey {
    RequestKey {
        at: request.deadline(),
        id: request.id(),
    }
}

/// `customer`'s contacts, every page (R6).
async fn all_contacts<S: AsyncStore>(
    store: &S,
    customer: CustomerId,
) -> Result<Vec<(ServiceName, Roles)>, String> {
    read_all(contact_name, contact_name, |after| async move {
        host(store.contacts_of(customer, after.as_ref(), PAGE).await)
    })
    .await
}

/// `customer`'s requests, unfiltered, every page (R35).
async fn all_requests<S: AsyncStore>(
    store: &S,
    customer: CustomerId,
) -> Result<Vec<ChangeRequest>, String> {
    filtered_requests(store, customer, &RequestFilter::all(), t0()).await
}

/// `customer`'s requests that `filter` lists at `now`, every page (R35, R45).
async fn filtered_requests<S: AsyncStore>(
    store: &S,
    customer: CustomerId,
    filter: &RequestFilter,
    now: OffsetDateTime,
) -> Result<Vec<ChangeRequest>, String> {
    read_all(ChangeRequest::id, opening_key, |after| async move {
        host(store.requests_of(customer, filter, now, after, PAGE).await)
    })
    .await
}

/// The requests due at `now`, every page (R29).
async fn all_due<S: AsyncStore>(
    store: &S,
    now: OffsetDateTime,
) -> Result<Vec<ChangeRequest>, String> {
    read_all(ChangeRequest::id, deadline_key, |after| async move {
        host(store.due_for_expiry(now, after, PAGE).await)
    })
    .await
}

/// The key a service's history continues after (R47): a request's opening
/// time and id.
fn history_key(request: &ChangeRequest) -> HistoryKey {
    HistoryKey {
        at: request.opened_at(),
        id: *request.id().as_bytes(),
    }
}

/// Every request ever opened on `service`, every page (R47).
async fn history_requests<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
) -> Result<Vec<ChangeRequest>, String> {
    read_all(ChangeRequest::id, history_key, |after| async move {
        host(store.requests_on(service, after, PAGE).await)
    })
    .await
}

/// Every operator's assignment made on `service`, every page (R46, R47).
async fn history_assignments<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
) -> Result<Vec<Assignment>, String> {
    read_all(Assignment::id, Assignment::key, |after| async move {
        host(store.assignments_on(service, after, PAGE).await)
    })
    .await
}

fn assignment_ids(assignments: &[Assignment]) -> Vec<AssignmentId> {
    assignments.iter().map(Assignment::id).collect()
}

async fn read_service<S: AsyncStore>(store: &S, name: &ServiceName) -> Result<Service, String> {
    host(store.service(name).await)?.ok_or_else(|| format!("service {name} is missing"))
}

/// Checks that `service` reads back as `expected`.
async fn reads_service<S: AsyncStore>(store: &S, expected: &Service, after: &str) -> Outcome {
    let loaded = host(store.service(expected.name()).await)?;
    ensure!(
        loaded.as_ref() == Some(expected),
        "after {after}: service read back {loaded:?}, expected {expected:?}"
    );
    Ok(())
}

/// Checks that request `expected.id()` reads back as `expected`.
async fn reads_request<S: AsyncStore>(store: &S, expected: &ChangeRequest, after: &str) -> Outcome {
    let loaded = host(store.request(expected.id()).await)?;
    ensure!(
        loaded.as_ref() == Some(expected),
        "after {after}: request read back {loaded:?}, expected {expected:?}"
    );
    Ok(())
}

fn ids(requests: &[ChangeRequest]) -> Vec<RequestId> {
    requests.iter().map(ChangeRequest::id).collect()
}

// ----- fixtures: every call to the engine is here -----

/// Everyone the fixtures name has an account in good standing.
fn everyone(_: CustomerId) -> AccountStatus {
    AccountStatus::GoodStanding
}

/// A request opened (or proposed) by a fixture, with each confirmer's token.
struct Opened {
    request: ChangeRequest,
    tokens: Vec<(CustomerId, String)>,
}

/// The service as stored and the requests it names as the last of its
/// roles: what the engine decides on (R27, R44).
async fn load<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
) -> Result<(Service, Vec<ChangeRequest>), String> {
    let service = host(store.service(service).await)?
        .ok_or_else(|| format!("fixture service {service} missing"))?;
    let mut named = Vec::new();
    for id in service.requests_to_load() {
        named.extend(host(store.request(id).await)?);
    }
    Ok((service, named))
}

/// The admin of `service` (as stored) proposes `incoming` for `roles` at
/// `now`: the request and the writes that open it, not committed.
async fn propose<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    incoming: CustomerId,
    roles: Roles,
    now: OffsetDateTime,
    seed: u64,
) -> Result<(Opened, Changes), String> {
    let edit: Vec<(Role, CustomerId)> = roles.into_iter().map(|role| (role, incoming)).collect();
    let transition = submit(store, service, &edit, now, seed).await?;
    let request = transition
        .requests()
        .next()
        .cloned()
        .ok_or("fixture edit opened nothing")?;
    let tokens = transition
        .messages
        .iter()
        .filter_map(|m| Some((m.to(), m.token()?.reveal())))
        .collect();
    Ok((Opened { request, tokens }, transition.changes))
}

/// The admin of `service` (as stored) submits `edit` (each role with its
/// new holder) at `now`: one request per incoming customer (R33), not
/// committed.
async fn submit<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    edit: &[(Role, CustomerId)],
    now: OffsetDateTime,
    seed: u64,
) -> Result<Transition, String> {
    // Opening a request writes the service at its next version: use the
    // stored one.
    let (service, open) = load(store, service).await?;
    let mut changes = Edit::new(service.name().clone());
    for (role, customer) in edit {
        changes.set(*role, *customer);
    }
    let snapshot = Snapshot {
        service: &service,
        requests: &open,
    };
    Engine::default()
        .submit(
            &changes,
            service.holder(Role::Admin),
            snapshot,
            &everyone,
            now,
            &mut SuiteRng(seed),
        )
        .map_err(|err| format!("fixture edit refused: {err}"))
}

/// [`submit`], committed: the requests it opened.
async fn open_each<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    edit: &[(Role, CustomerId)],
    now: OffsetDateTime,
    seed: u64,
) -> Result<Vec<ChangeRequest>, String> {
    let transition = submit(store, service, edit, now, seed).await?;
    committed(
        store.commit(transition.changes.clone()).await,
        "opening requests",
    )?;
    Ok(transition.requests().cloned().collect())
}

/// [`propose`], committed.
async fn open_request<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    incoming: CustomerId,
    roles: Roles,
    now: OffsetDateTime,
    seed: u64,
) -> Result<Opened, String> {
    let (opened, changes) = propose(store, service, incoming, roles, now, seed).await?;
    committed(store.commit(changes).await, "opening a request")?;
    Ok(opened)
}

/// [`open_request`] of the tech role for `incoming` at `now`.
async fn open_tech_for<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    incoming: CustomerId,
    now: OffsetDateTime,
    seed: u64,
) -> Result<Opened, String> {
    open_request(store, service, incoming, Role::Tech.into(), now, seed).await
}

/// [`open_tech_for`] `BB2-OVH` at the suite's start.
async fn open_tech<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    seed: u64,
) -> Result<Opened, String> {
    open_tech_for(store, service, id("BB2-OVH"), t0(), seed).await
}

/// [`open_request`] of the billing role for `CC3-OVH` at the suite's start.
async fn open_billing<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    seed: u64,
) -> Result<Opened, String> {
    open_request(
        store,
        service,
        id("CC3-OVH"),
        Role::Billing.into(),
        t0(),
        seed,
    )
    .await
}

/// `who` accepts `request` (its current version) with the token `opened`
/// gave them, at `now`; the last confirmation applies the change against the
/// service as stored. Not committed.
async fn accept<S: AsyncStore>(
    store: &S,
    opened: &Opened,
    request: &ChangeRequest,
    who: CustomerId,
    now: OffsetDateTime,
) -> Result<Transition, String> {
    accept_with(store, opened, request, who, now, &everyone).await
}

/// [`accept`], with the accounts as `accounts` answers them when the change
/// is checked again before it applies (R30).
async fn accept_with<S: AsyncStore>(
    store: &S,
    opened: &Opened,
    request: &ChangeRequest,
    who: CustomerId,
    now: OffsetDateTime,
    accounts: &(impl Accounts + ?Sized),
) -> Result<Transition, String> {
    let token = token_of(opened, who)?;
    let (service, open) = load(store, request.service()).await?;
    let snapshot = Snapshot {
        service: &service,
        requests: &open,
    };
    Engine::default()
        .accept(request, who, token, now, Some(snapshot), accounts)
        .map_err(|err| format!("fixture accept refused: {err}"))
}

/// The token `opened` gave `who`.
fn token_of(opened: &Opened, who: CustomerId) -> Result<&str, String> {
    opened
        .tokens
        .iter()
        .find(|(to, _)| *to == who)
        .map(|(_, token)| token.as_str())
        .ok_or_else(|| "fixture: no token for this confirmer".to_owned())
}

/// `who` refuses `request` with the token `opened` gave them. Not committed.
fn refuse(
    opened: &Opened,
    request: &ChangeRequest,
    who: CustomerId,
    now: OffsetDateTime,
) -> Result<Transition, String> {
    Engine::default()
        .refuse(request, who, token_of(opened, who)?, now)
        .map_err(|err| format!("fixture refusal refused: {err}"))
}

/// No account is known: a change checked against these fails (R13, R30).
fn nobody(_: CustomerId) -> AccountStatus {
    AccountStatus::Unknown
}

/// The requester cancels `request` at `now`. Not committed.
fn cancel(request: &ChangeRequest, now: OffsetDateTime) -> Result<Transition, String> {
    Engine::default()
        .cancel(request, request.requester(), now)
        .map_err(|err| format!("fixture cancel refused: {err}"))
}

/// `request` expires at `now`. Not committed.
fn expire(request: &ChangeRequest, now: OffsetDateTime) -> Result<Transition, String> {
    Engine::default()
        .expire(request, now)
        .map_err(|err| format!("fixture expiry refused: {err}"))
}

/// The operator who makes the suite's assignments, and why (R46).
fn operator() -> OperatorAct {
    OperatorAct::new(
        OperatorId::parse("suite@support").expect("valid fixture operator"),
        Reason::parse("the customer cannot receive mail").expect("valid fixture reason"),
    )
}

/// An operator gives `role` of `service` (as stored) to `to` at `now`
/// (R46), the assignment's id drawn from `seed`: the assignment and the
/// transition that makes it, not committed.
async fn decide_assignment<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    role: Role,
    to: CustomerId,
    now: OffsetDateTime,
    seed: u64,
) -> Result<(Assignment, Transition), String> {
    let (service, named) = load(store, service).await?;
    let mut edit = Edit::new(service.name().clone());
    edit.set(role, to);
    let snapshot = Snapshot {
        service: &service,
        requests: &named,
    };
    let transition = Engine::default()
        .assign(
            snapshot,
            &edit,
            &operator(),
            &everyone,
            now,
            &mut SuiteRng(seed),
        )
        .map_err(|err| format!("fixture assignment refused: {err}"))?;
    let assignment = transition
        .changes
        .assignments
        .first()
        .cloned()
        .ok_or("fixture: the assignment records nothing")?;
    Ok((assignment, transition))
}

/// [`decide_assignment`], committed.
async fn assign<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    role: Role,
    to: CustomerId,
    now: OffsetDateTime,
    seed: u64,
) -> Result<Assignment, String> {
    let (assignment, transition) = decide_assignment(store, service, role, to, now, seed).await?;
    committed(store.commit(transition.changes).await, "an assignment")?;
    Ok(assignment)
}

/// The new value of `request` that `transition` writes.
fn written(transition: &Transition, request: &ChangeRequest) -> Result<ChangeRequest, String> {
    transition
        .request(request.id())
        .cloned()
        .ok_or_else(|| "fixture: the transition does not write the request".to_owned())
}

/// The write of `request` among `changes`.
fn write_of(changes: &Changes, request: &ChangeRequest) -> Result<Write<ChangeRequest>, String> {
    changes
        .requests
        .iter()
        .find(|w| w.value.id() == request.id())
        .cloned()
        .ok_or_else(|| "fixture: the transition does not write the request".to_owned())
}

/// The service `changes` writes.
fn service_written(changes: &Changes) -> Result<Service, String> {
    changes
        .services
        .first()
        .map(|w| w.value.clone())
        .ok_or_else(|| "fixture: no service written".to_owned())
}

/// Commits `transition` and returns the new value of `request`.
async fn commit_step<S: AsyncStore>(
    store: &S,
    transition: &Transition,
    request: &ChangeRequest,
    what: &str,
) -> Result<ChangeRequest, String> {
    committed(store.commit(transition.changes.clone()).await, what)?;
    written(transition, request)
}

// ----- single records: versions -----

async fn service_round_trip<S: AsyncStore>(store: &S) -> Outcome {
    // R7: a long name (200 bytes of the 255 allowed); R42: any three holders.
    let long = format!("{}.example", "round-trip".repeat(19));
    let service = Service::new(
        name(&long),
        Contacts::new(id("AA1-OVH"), id("BB22-OVH"), id("CC333-OVH")),
        Version::FIRST,
    );
    ensure!(
        host(store.service(service.name()).await)?.is_none(),
        "an empty store has a service"
    );
    committed(store.commit(create(&service)).await, "creating a service")?;
    reads_service(store, &service, "creating it").await?;
    ensure!(
        host(store.service(&name("round-trip.example")).await)?.is_none(),
        "an unknown name reads as a service"
    );
    Ok(())
}

async fn create_existing_service_conflicts<S: AsyncStore>(store: &S) -> Outcome {
    // R31: `expected: None` means the service must not exist yet.
    let service = ordered(store, "twice.example", id("AA1-OVH")).await?;
    let other = Service::order(name("twice.example"), id("BB2-OVH"));
    conflicted(store.commit(create(&other)).await, "a second creation")?;
    reads_service(store, &service, "a refused second creation").await
}

async fn create_existing_request_conflicts<S: AsyncStore>(store: &S) -> Outcome {
    // R31: `expected: None` means the request must not exist yet.
    let admin = id("AA1-OVH");
    let one = ordered(store, "one.example", admin).await?;
    let two = ordered(store, "two.example", admin).await?;
    let opened = open_tech(store, one.name(), 1).await?;
    // The same seed draws the same id: another request under that id.
    let (other, _) = propose(
        store,
        two.name(),
        id("CC3-OVH"),
        Role::Billing.into(),
        t0(),
        1,
    )
    .await?;
    ensure!(
        other.request.id() == opened.request.id() && other.request != opened.request,
        "fixture: expected another request under the same id"
    );
    let again = request_writes(vec![Write {
        value: other.request,
        expected: None,
    }]);
    conflicted(
        store.commit(again).await,
        "a second creation of a request id",
    )?;
    reads_request(store, &opened.request, "a refused second creation").await
}

async fn stale_version_conflicts<S: AsyncStore>(store: &S) -> Outcome {
    // R31: the expected version must be the stored one, exactly.
    let service = ordered(store, "stale.example", id("AA1-OVH")).await?;
    let v2 = reassigned(&service, Role::Tech, id("BB2-OVH"));
    conflicted(
        store.commit(update(&v2, Version::new(7))).await,
        "a service update expecting a version it never had",
    )?;
    committed(
        store.commit(update(&v2, service.version())).await,
        "a service update expecting the stored version",
    )?;
    conflicted(
        store.commit(update(&v2, service.version())).await,
        "a second service update expecting the replaced version",
    )?;
    reads_service(store, &v2, "the service updates").await?;

    let opened = open_billing(store, v2.name(), 2).await?;
    let cancelled = cancel(&opened.request, t0() + Duration::minutes(1))?;
    let mut ahead = write_of(&cancelled.changes, &opened.request)?;
    ahead.expected = Some(Version::new(7));
    conflicted(
        store.commit(request_writes(vec![ahead])).await,
        "a request update expecting a version it never had",
    )?;
    let after = commit_step(store, &cancelled, &opened.request, "cancelling").await?;
    conflicted(
        store.commit(cancelled.changes).await,
        "a second request update expecting the replaced version",
    )?;
    reads_request(store, &after, "the request updates").await
}

async fn update_of_missing_service_conflicts<S: AsyncStore>(store: &S) -> Outcome {
    // R31: `expected: Some(v)` means the service must exist at `v`.
    let service = Service::order(name("missing.example"), id("AA1-OVH"));
    conflicted(
        store.commit(update(&service, Version::FIRST)).await,
        "an update of a service never created",
    )?;
    ensure!(
        host(store.service(service.name()).await)?.is_none(),
        "a refused update created a service"
    );
    Ok(())
}

async fn update_of_missing_request_conflicts<S: AsyncStore>(store: &S) -> Outcome {
    // R31: `expected: Some(v)` means the request must exist at `v`.
    let service = ordered(store, "missing.example", id("AA1-OVH")).await?;
    let (proposed, _) = propose(
        store,
        service.name(),
        id("BB2-OVH"),
        Role::Tech.into(),
        t0(),
        3,
    )
    .await?;
    let write = Write {
        value: proposed.request.clone(),
        expected: Some(Version::FIRST),
    };
    conflicted(
        store.commit(request_writes(vec![write])).await,
        "an update of a request never created",
    )?;
    ensure!(
        host(store.request(proposed.request.id()).await)?.is_none(),
        "a refused update created a request"
    );
    Ok(())
}

// ----- batches: all or nothing -----

/// Checks that nothing of a refused batch shows: the service and the
/// requests read as before, and the customer the batch would have made a
/// party of has no requests.
async fn nothing_written<S: AsyncStore>(
    store: &S,
    service: &Service,
    requests: &[&ChangeRequest],
    never_created: &ChangeRequest,
) -> Outcome {
    reads_service(store, service, "a refused batch").await?;
    for request in requests {
        reads_request(store, request, "a refused batch").await?;
    }
    ensure!(
        host(store.request(never_created.id()).await)?.is_none(),
        "after a refused batch: the request it would have created exists"
    );
    let listed = ids(&all_requests(store, never_created.incoming()).await?);
    ensure!(
        listed.is_empty(),
        "after a refused batch: the incoming contact of the request it would have created has requests {listed:?}"
    );
    Ok(())
}

async fn all_or_nothing_stale_service<S: AsyncStore>(store: &S) -> Outcome {
    // R31: a stale service write, then good request writes (an update and a
    // creation): the shape of an apply decided on an old service.
    let service = ordered(store, "atomic.example", id("AA1-OVH")).await?;
    let tech = open_tech(store, service.name(), 4).await?;
    let current = read_service(store, service.name()).await?;
    let later = t0() + Duration::minutes(1);
    let cancelled = cancel(&tech.request, later)?;
    let (billing, opening) = propose(
        store,
        service.name(),
        id("CC3-OVH"),
        Role::Billing.into(),
        later,
        5,
    )
    .await?;
    let stale = Write {
        value: reassigned(&current, Role::Admin, id("DD4-OVH")),
        expected: Some(service.version()),
    };
    let batch = Changes {
        services: vec![stale],
        requests: vec![
            write_of(&cancelled.changes, &tech.request)?,
            write_of(&opening, &billing.request)?,
        ],
        assignments: Vec::new(),
    };
    conflicted(
        store.commit(batch).await,
        "a batch with a stale service write",
    )?;
    nothing_written(store, &current, &[&tech.request], &billing.request).await
}

async fn all_or_nothing_stale_request<S: AsyncStore>(store: &S) -> Outcome {
    // R31: a good service write, then a stale request write and a good
    // request creation.
    let service = ordered(store, "atomic.example", id("AA1-OVH")).await?;
    let tech = open_tech(store, service.name(), 6).await?;
    let later = t0() + Duration::minutes(1);
    // A confirmation decided on the request before a cancel replaced it.
    let confirmed = accept(store, &tech, &tech.request, id("BB2-OVH"), later).await?;
    let cancelled = commit_step(
        store,
        &cancel(&tech.request, later)?,
        &tech.request,
        "cancelling",
    )
    .await?;
    let current = read_service(store, service.name()).await?;
    let (billing, opening) = propose(
        store,
        service.name(),
        id("CC3-OVH"),
        Role::Billing.into(),
        later,
        7,
    )
    .await?;
    let mut batch = opening;
    batch
        .requests
        .insert(0, write_of(&confirmed.changes, &tech.request)?);
    conflicted(
        store.commit(batch).await,
        "a batch with a stale request write",
    )?;
    nothing_written(store, &current, &[&cancelled], &billing.request).await
}

async fn all_or_nothing_requests_only<S: AsyncStore>(store: &S) -> Outcome {
    // R31: request writes alone, a good one then a stale one.
    let service = ordered(store, "atomic.example", id("AA1-OVH")).await?;
    let tech = open_tech(store, service.name(), 8).await?;
    let billing = open_billing(store, service.name(), 9).await?;
    let later = t0() + Duration::minutes(1);
    let stale = accept(store, &billing, &billing.request, id("CC3-OVH"), later).await?;
    let billing_now = commit_step(
        store,
        &cancel(&billing.request, later)?,
        &billing.request,
        "cancelling",
    )
    .await?;
    let good = cancel(&tech.request, later)?;
    let batch = request_writes(vec![
        write_of(&good.changes, &tech.request)?,
        write_of(&stale.changes, &billing.request)?,
    ]);
    conflicted(
        store.commit(batch).await,
        "a batch of request writes, one stale",
    )?;
    reads_request(store, &tech.request, "a refused batch").await?;
    reads_request(store, &billing_now, "a refused batch").await
}

async fn import_batch_is_all_or_nothing<S: AsyncStore>(store: &S) -> Outcome {
    // R42: an import writes several services in one commit, all or none.
    let (a, b, c) = (id("AA1-OVH"), id("BB2-OVH"), id("CC3-OVH"));
    let first = ordered(store, "taken.example", c).await?;
    let taken = reassigned(&first, Role::Tech, id("DD4-OVH"));
    committed(
        store.commit(update(&taken, first.version())).await,
        "an update",
    )?;
    let names = ["one.example", "two.example", "three.example"];
    let mut existing = Vec::new();
    for n in names {
        existing.extend(host(store.service(&name(n)).await)?);
    }
    let fresh = Engine::default()
        .import(names.map(|n| (name(n), Contacts::new(a, b, a))), &existing)
        .map_err(|err| format!("fixture import refused: {err}"))?;
    // A batch whose second write is stale (decided on a version that
    // changed since): the store refuses the whole batch.
    let mut clashing = fresh.changes.clone();
    clashing.services[1] = Write {
        value: reassigned(&first, Role::Tech, a),
        expected: Some(first.version()),
    };
    conflicted(
        store.commit(clashing).await,
        "a batch of service writes whose second is stale",
    )?;
    reads_service(store, &taken, "a refused import").await?;
    for n in ["one.example", "three.example"] {
        ensure!(
            host(store.service(&name(n)).await)?.is_none(),
            "a refused import wrote {n}"
        );
    }
    ensure!(
        all_contacts(store, a).await?.is_empty(),
        "a refused import is listed by its holders"
    );
    committed(store.commit(fresh.changes.clone()).await, "a good import")?;
    for write in &fresh.changes.services {
        reads_service(store, &write.value, "an import").await?;
    }
    let listed = all_contacts(store, b).await?;
    let expected = [
        (name("one.example"), Roles::from(Role::Tech)),
        (name("three.example"), Roles::from(Role::Tech)),
        (name("two.example"), Roles::from(Role::Tech)),
    ];
    ensure!(
        listed == expected,
        "contacts of an imported holder: {listed:?}, expected {expected:?}"
    );
    Ok(())
}

async fn all_or_nothing_assignment<S: AsyncStore>(store: &S) -> Outcome {
    // R46, R31: an operator's assignment is written with the service write
    // of its batch, or not at all.
    let service = ordered(store, "assigned.example", id("AA1-OVH")).await?;
    // Two operators decide on the same version of the service; the first
    // commits, and the second's service write is then stale.
    let (first, step) =
        decide_assignment(store, service.name(), Role::Tech, id("BB2-OVH"), t0(), 601).await?;
    let (second, stale) = decide_assignment(
        store,
        service.name(),
        Role::Billing,
        id("CC3-OVH"),
        t0(),
        602,
    )
    .await?;
    committed(store.commit(step.changes.clone()).await, "an assignment")?;
    conflicted(
        store.commit(stale.changes).await,
        "an assignment decided on a version replaced since",
    )?;
    reads_service(
        store,
        &service_written(&step.changes)?,
        "a refused assignment",
    )
    .await?;
    let listed = assignment_ids(&history_assignments(store, service.name()).await?);
    ensure!(
        listed == [first.id()],
        "assignments listed {listed:?}: expected the committed {:?} alone, not the refused {:?}",
        first.id(),
        second.id()
    );
    Ok(())
}

async fn existing_assignment_id_conflicts<S: AsyncStore>(store: &S) -> Outcome {
    // R46: an assignment is written once: a batch whose assignment id
    // exists, or that names one id twice, is a conflict and writes nothing.
    let service = ordered(store, "assigned.example", id("AA1-OVH")).await?;
    let name = service.name();
    let first = assign(store, name, Role::Tech, id("BB2-OVH"), t0(), 611).await?;
    let current = read_service(store, name).await?;
    // The same seed draws the same id: another assignment under that id.
    let later = t0() + Duration::minutes(1);
    let (other, again) =
        decide_assignment(store, name, Role::Billing, id("CC3-OVH"), later, 611).await?;
    ensure!(
        other.id() == first.id() && other != first,
        "fixture: expected another assignment under the same id"
    );
    conflicted(
        store.commit(again.changes).await,
        "an assignment under an id that exists",
    )?;
    reads_service(store, &current, "a refused assignment").await?;
    let listed = history_assignments(store, name).await?;
    ensure!(
        listed == [first.clone()],
        "after a refused assignment under an existing id: listed {listed:?}, expected the first as written"
    );
    let (twice, mut batch) =
        decide_assignment(store, name, Role::Billing, id("CC3-OVH"), later, 612).await?;
    batch.changes.assignments.push(twice);
    conflicted(
        store.commit(batch.changes).await,
        "a batch naming one assignment id twice",
    )?;
    reads_service(store, &current, "a batch naming one assignment id twice").await?;
    let listed = assignment_ids(&history_assignments(store, name).await?);
    ensure!(
        listed == [first.id()],
        "after a refused batch naming one assignment id twice: listed {listed:?}, expected {:?} alone",
        first.id()
    );
    Ok(())
}

async fn removed_service_keeps_its_versions<S: AsyncStore>(store: &S) -> Outcome {
    // R44: a removed service stays as a tombstone, so its name's versions
    // never restart and no decision about the old service lands on the new.
    let (owner, newcomer) = (id("AA1-OVH"), id("BB2-OVH"));
    let service = ordered(store, "gone.example", owner).await?;
    let (_, stale_opening) =
        propose(store, service.name(), newcomer, Role::Tech.into(), t0(), 40).await?;
    let opened = open_request(
        store,
        service.name(),
        newcomer,
        Role::Billing.into(),
        t0(),
        41,
    )
    .await?;
    let (stored, named) = load(store, service.name()).await?;
    let snapshot = Snapshot {
        service: &stored,
        requests: &named,
    };
    let removal = Engine::default()
        .remove(snapshot, t0() + Duration::minutes(1))
        .map_err(|err| format!("fixture removal refused: {err}"))?;
    let tombstone = service_written(&removal.changes)?;
    committed(
        store.commit(removal.changes.clone()).await,
        "removing a service",
    )?;
    reads_service(store, &tombstone, "removing a service").await?;
    reads_request(
        store,
        &written(&removal, &opened.request)?,
        "removing a service",
    )
    .await?;
    ensure!(
        all_contacts(store, owner).await?.is_empty(),
        "a removed service is still listed by its holders"
    );
    // Ordered again by someone else: the new service replaces the tombstone
    // at the version after it.
    let again = Engine::default()
        .import(
            [(service.name().clone(), Contacts::all(newcomer))],
            std::slice::from_ref(&tombstone),
        )
        .map_err(|err| format!("fixture import refused: {err}"))?;
    let reborn = service_written(&again.changes)?;
    ensure!(
        reborn.version() > tombstone.version(),
        "the engine restarted the versions"
    );
    committed(store.commit(again.changes).await, "ordering the name again")?;
    reads_service(store, &reborn, "ordering the name again").await?;
    // A decision made on the old service cannot commit onto the new one.
    conflicted(
        store.commit(stale_opening).await,
        "a request opened on the service before its removal",
    )?;
    reads_service(store, &reborn, "a refused stale write").await
}

// ----- reads after commits -----

async fn reads_follow_every_commit<S: AsyncStore>(store: &S) -> Outcome {
    // R31, R44: every read that starts after a commit returned sees it.
    let (admin, tech, billing) = (id("AA1-OVH"), id("BB2-OVH"), id("CC3-OVH"));
    let service = ordered(store, "fresh.example", admin).await?;
    reads_service(store, &service, "creating a service").await?;
    let v2 = reassigned(&service, Role::Billing, billing);
    committed(
        store.commit(update(&v2, service.version())).await,
        "an update",
    )?;
    reads_service(store, &v2, "updating a service").await?;

    let (opened, opening) = propose(store, v2.name(), tech, Role::Tech.into(), t0(), 10).await?;
    let v3 = service_written(&opening)?;
    committed(store.commit(opening).await, "opening a request")?;
    reads_service(store, &v3, "opening a request").await?;
    reads_request(store, &opened.request, "opening it").await?;

    let step = accept(
        store,
        &opened,
        &opened.request,
        tech,
        t0() + Duration::minutes(1),
    )
    .await?;
    let confirmed = commit_step(store, &step, &opened.request, "a confirmation").await?;
    reads_request(store, &confirmed, "a confirmation").await?;

    let step = accept(
        store,
        &opened,
        &confirmed,
        admin,
        t0() + Duration::minutes(2),
    )
    .await?;
    let applied = commit_step(store, &step, &opened.request, "the last confirmation").await?;
    let v4 = service_written(&step.changes)?;
    ensure!(
        v4.holder(Role::Tech) == tech,
        "fixture: the change did not apply"
    );
    reads_request(store, &applied, "applying").await?;
    reads_service(store, &v4, "applying").await
}

// ----- listings -----

async fn contacts_of_follows_holders<S: AsyncStore>(store: &S) -> Outcome {
    // R6: the holder index follows every change of contacts.
    let (old, new) = (id("AA1-OVH"), id("BB2-OVH"));
    let z = ordered(store, "z.example", old).await?;
    let a = ordered(store, "a.example", old).await?;
    let names = |customer| async move {
        let listed = all_contacts(store, customer).await?;
        Ok::<Vec<ServiceName>, String>(listed.into_iter().map(|(name, _)| name).collect())
    };
    let listed = names(old).await?;
    ensure!(
        listed == [a.name().clone(), z.name().clone()],
        "services of the owner, sorted by name: {listed:?}"
    );
    let z2 = reassigned(&z, Role::Tech, new);
    committed(
        store.commit(update(&z2, z.version())).await,
        "changing the tech",
    )?;
    let listed = names(new).await?;
    ensure!(
        listed == [z.name().clone()],
        "services of the new holder: {listed:?}"
    );
    let listed = names(old).await?;
    ensure!(
        listed == [a.name().clone(), z.name().clone()],
        "the old holder, still admin, is not listed: {listed:?}"
    );
    let z3 = Service::new(z.name().clone(), Contacts::all(new), z2.version().next());
    committed(
        store.commit(update(&z3, z2.version())).await,
        "changing the rest",
    )?;
    let listed = names(old).await?;
    ensure!(
        listed == [a.name().clone()],
        "the old holder of every role is still listed: {listed:?}"
    );
    ensure!(
        names(id("ZZ9-OVH")).await?.is_empty(),
        "a stranger holds services"
    );
    Ok(())
}

async fn contacts_of_roles_follow_changes<S: AsyncStore>(store: &S) -> Outcome {
    // R6: the roles listed are the roles held now.
    let (first, second) = (id("AA1-OVH"), id("BB2-OVH"));
    let service = Service::new(
        name("roles.example"),
        Contacts::new(first, first, second),
        Version::FIRST,
    );
    committed(store.commit(create(&service)).await, "creating a service")?;
    let roles = |customer| all_contacts(store, customer);
    let listed = roles(second).await?;
    ensure!(
        listed == [(service.name().clone(), Role::Billing.into())],
        "roles of the billing contact: {listed:?}"
    );
    // Both stay contacts; the tech role moves from one to the other.
    let v2 = reassigned(&service, Role::Tech, second);
    committed(
        store.commit(update(&v2, service.version())).await,
        "moving the tech role",
    )?;
    let listed = roles(first).await?;
    ensure!(
        listed == [(service.name().clone(), Role::Admin.into())],
        "roles of the admin after losing the tech role: {listed:?}"
    );
    let listed = roles(second).await?;
    ensure!(
        listed == [(service.name().clone(), Role::Tech | Role::Billing)],
        "roles of the new tech contact: {listed:?}"
    );
    Ok(())
}

async fn requests_of_parties_and_order<S: AsyncStore>(store: &S) -> Outcome {
    // R35: every party's requests, whatever their state, newest first, ties
    // by request id.
    let (admin, tech, stranger) = (id("AA1-OVH"), id("BB2-OVH"), id("ZZ9-OVH"));
    let x = Service::new(
        name("x.example"),
        Contacts::new(admin, tech, admin),
        Version::FIRST,
    );
    committed(store.commit(create(&x)).await, "creating a service")?;
    let y = ordered(store, "y.example", admin).await?;
    let z = ordered(store, "z.example", admin).await?;
    let incoming = id("CC3-OVH");
    let first = open_tech_for(store, x.name(), incoming, t0(), 11)
        .await?
        .request;
    let later = t0() + Duration::hours(1);
    let second = open_request(
        store,
        x.name(),
        id("DD4-OVH"),
        Role::Billing.into(),
        later,
        12,
    )
    .await?;
    let second = second.request;
    // Two requests opened at the same instant.
    let same = t0() + Duration::hours(2);
    let tie_y = open_tech_for(store, y.name(), id("EE5-OVH"), same, 13).await?;
    let tie_z = open_tech_for(store, z.name(), id("EE5-OVH"), same, 14).await?;
    let mut ties = vec![tie_y.request.id(), tie_z.request.id()];
    ties.sort();
    let listed =
        |customer| async move { Ok::<Vec<_>, String>(ids(&all_requests(store, customer).await?)) };
    let expected = [ties[0], ties[1], second.id(), first.id()];
    let got = listed(admin).await?;
    ensure!(
        got == expected,
        "the requester's requests, newest first, ties by id: {got:?}, expected {expected:?}"
    );
    let got = listed(id("EE5-OVH")).await?;
    ensure!(
        got == ties,
        "ties by request id: {got:?}, expected {ties:?}"
    );
    let got = listed(incoming).await?;
    ensure!(
        got == [first.id()],
        "the incoming contact's requests: {got:?}"
    );
    let got = listed(tech).await?;
    ensure!(
        got == [first.id()],
        "the outgoing contact's requests: {got:?}"
    );
    ensure!(
        listed(stranger).await?.is_empty(),
        "a stranger has requests"
    );
    // A terminal request stays listed.
    commit_step(store, &cancel(&first, later)?, &first, "cancelling").await?;
    let got = listed(tech).await?;
    ensure!(
        got == [first.id()],
        "a cancelled request left the listing: {got:?}"
    );
    Ok(())
}

async fn requests_of_current_contents<S: AsyncStore>(store: &S) -> Outcome {
    // R35: each request as it is now, whole.
    let (admin, tech) = (id("AA1-OVH"), id("BB2-OVH"));
    let service = ordered(store, "listed.example", admin).await?;
    let a = open_tech_for(store, service.name(), tech, t0(), 15).await?;
    let later = t0() + Duration::hours(1);
    let b = open_request(
        store,
        service.name(),
        id("CC3-OVH"),
        Role::Billing.into(),
        later,
        16,
    )
    .await?;
    let at = t0() + Duration::hours(2);
    let step = accept(store, &a, &a.request, tech, at).await?;
    let a_now = commit_step(store, &step, &a.request, "a confirmation").await?;
    let b_now = commit_step(store, &cancel(&b.request, at)?, &b.request, "cancelling").await?;
    let listed = all_requests(store, admin).await?;
    ensure!(
        listed == [b_now.clone(), a_now.clone()],
        "the requester's requests are not as last written: {listed:?}"
    );
    let listed = all_requests(store, tech).await?;
    ensure!(
        listed == [a_now],
        "the incoming contact's request is not as last written: {listed:?}"
    );
    Ok(())
}

async fn due_for_expiry_at_the_deadline<S: AsyncStore>(store: &S) -> Outcome {
    // R29: due at the deadline itself, not before.
    let service = ordered(store, "due.example", id("AA1-OVH")).await?;
    let early = open_tech(store, service.name(), 17).await?;
    let late_at = t0() + Duration::days(1);
    let late = open_request(
        store,
        service.name(),
        id("CC3-OVH"),
        Role::Billing.into(),
        late_at,
        18,
    )
    .await?;
    let (early, late) = (early.request, late.request);
    // Compared as sets: the order is another case's.
    let due = |now| async move {
        let mut due = ids(&all_due(store, now).await?);
        due.sort();
        Ok::<Vec<_>, String>(due)
    };
    let nano = Duration::nanoseconds(1);
    ensure!(
        due(early.deadline() - nano).await?.is_empty(),
        "due a nanosecond before the deadline"
    );
    ensure!(
        due(early.deadline()).await? == [early.id()],
        "not due at the deadline itself"
    );
    ensure!(
        due(late.deadline() - nano).await? == [early.id()],
        "due a nanosecond before the deadline, with another due"
    );
    let mut both = vec![early.id(), late.id()];
    both.sort();
    ensure!(
        due(late.deadline()).await? == both,
        "not due at the deadline itself, with another due"
    );
    Ok(())
}

async fn due_for_expiry_order<S: AsyncStore>(store: &S) -> Outcome {
    // R29: earliest deadline first, ties by request id.
    let admin = id("AA1-OVH");
    let mut opened = Vec::new();
    let plan: [(&str, Role, i64, u64); 5] = [
        ("one.example", Role::Tech, 3, 19),
        ("one.example", Role::Billing, 1, 20),
        ("two.example", Role::Tech, 2, 21),
        ("two.example", Role::Billing, 2, 22),
        ("three.example", Role::Tech, 0, 23),
    ];
    for service in ["one.example", "two.example", "three.example"] {
        ordered(store, service, admin).await?;
    }
    for (service, role, hours, seed) in plan {
        let at = t0() + Duration::hours(hours);
        let request =
            open_request(store, &name(service), id("BB2-OVH"), role.into(), at, seed).await?;
        opened.push(request.request);
    }
    let mut expected: Vec<_> = opened.iter().map(|r| (r.deadline(), r.id())).collect();
    expected.sort();
    let expected: Vec<_> = expected.into_iter().map(|(_, id)| id).collect();
    let mut by_id = expected.clone();
    by_id.sort();
    ensure!(
        by_id != expected,
        "fixture: the ids happen to follow the deadlines"
    );
    let now = t0() + Duration::days(8);
    let listed = ids(&all_due(store, now).await?);
    ensure!(
        listed == expected,
        "due requests not earliest deadline first, ties by id: {listed:?}, expected {expected:?}"
    );
    Ok(())
}

async fn due_for_expiry_follows_changes<S: AsyncStore>(store: &S) -> Outcome {
    // R29: due requests as they are now; closed ones are not due.
    let service = ordered(store, "due.example", id("AA1-OVH")).await?;
    let other = ordered(store, "other.example", id("AA1-OVH")).await?;
    let tech = id("BB2-OVH");
    let a = open_tech_for(store, service.name(), tech, t0(), 24).await?;
    let b = open_billing(store, service.name(), 25).await?;
    let c = open_tech_for(store, other.name(), tech, t0(), 26).await?;
    let at = t0() + Duration::hours(1);
    let step = accept(store, &a, &a.request, tech, at).await?;
    let a_now = commit_step(store, &step, &a.request, "a confirmation").await?;
    commit_step(store, &cancel(&b.request, at)?, &b.request, "cancelling").await?;
    let deadline = c.request.deadline();
    commit_step(
        store,
        &expire(&c.request, deadline)?,
        &c.request,
        "expiring",
    )
    .await?;
    let listed = all_due(store, deadline + Duration::seconds(1)).await?;
    ensure!(
        listed == [a_now],
        "due requests are not the open ones as last written: {listed:?}"
    );
    Ok(())
}

// ----- paging and filters (R45) -----

/// Every request a case has written, as last written: what a full scan of
/// the store would find.
type World = BTreeMap<RequestId, ChangeRequest>;

/// Commits `transition` and records every request it writes in `world`.
async fn commit_into<S: AsyncStore>(
    store: &S,
    world: &mut World,
    transition: &Transition,
    what: &str,
) -> Outcome {
    committed(store.commit(transition.changes.clone()).await, what)?;
    for write in &transition.changes.requests {
        world.insert(write.value.id(), write.value.clone());
    }
    Ok(())
}

/// [`open_request`] of one role, recorded in `world`.
async fn open_into<S: AsyncStore>(
    store: &S,
    world: &mut World,
    service: &ServiceName,
    incoming: CustomerId,
    role: Role,
    now: OffsetDateTime,
    seed: u64,
) -> Result<Opened, String> {
    let (opened, changes) = propose(store, service, incoming, role.into(), now, seed).await?;
    committed(store.commit(changes.clone()).await, "opening a request")?;
    for write in changes.requests {
        world.insert(write.value.id(), write.value);
    }
    Ok(opened)
}

/// The request `opened` as `world` last recorded it.
fn now_in<'w>(world: &'w World, opened: &Opened) -> Result<&'w ChangeRequest, String> {
    world
        .get(&opened.request.id())
        .ok_or_else(|| "fixture: a request missing from the world".to_owned())
}

/// The ids of `rows` missing from `listed`.
fn missing_from(listed: &[RequestId], rows: &[&ChangeRequest]) -> Vec<RequestId> {
    rows.iter()
        .map(|r| r.id())
        .filter(|id| !listed.contains(id))
        .collect()
}

async fn contacts_of_pages_stay_stable<S: AsyncStore>(store: &S) -> Outcome {
    // R45, R6: services join before and after the cursor, one leaves before
    // it, an unrelated one changes, between pages; every service that did
    // not change is listed exactly once.
    let (holder, other) = (id("CC3-OVH"), id("OO9-OVH"));
    let mut held = Vec::new();
    for service in [
        "b.example",
        "d.example",
        "f.example",
        "h.example",
        "j.example",
    ] {
        held.push(ordered(store, service, holder).await?);
    }
    let unrelated = ordered(store, "z.example", other).await?;
    let (leaving, unrelated) = (&held[0], &unrelated);
    let listed = read_pages(
        PAGE,
        contact_name,
        contact_name,
        |after, limit| async move { host(store.contacts_of(holder, after.as_ref(), limit).await) },
        |page| async move {
            match page {
                // After b, d: a service joins before the cursor.
                1 => ordered(store, "a.example", holder).await.map(drop),
                // After f, h: b leaves and c joins before the cursor, i joins
                // after it, someone else's service changes.
                2 => {
                    let gone = Service::new(
                        leaving.name().clone(),
                        Contacts::all(other),
                        leaving.version().next(),
                    );
                    let leaves = store.commit(update(&gone, leaving.version())).await;
                    committed(leaves, "b leaving")?;
                    ordered(store, "c.example", holder).await?;
                    ordered(store, "i.example", holder).await?;
                    let changed = reassigned(unrelated, Role::Tech, id("TT7-OVH"));
                    committed(
                        store.commit(update(&changed, unrelated.version())).await,
                        "an unrelated change",
                    )
                }
                _ => Ok(()),
            }
        },
    )
    .await?;
    let names: Vec<ServiceName> = listed.iter().map(contact_name).collect();
    for unchanged in &held[1..] {
        ensure!(
            names.contains(unchanged.name()),
            "{}, unchanged, was skipped while commits landed between pages: {names:?}",
            unchanged.name()
        );
    }
    Ok(())
}

async fn requests_of_pages_stay_stable<S: AsyncStore>(store: &S) -> Outcome {
    // R45, R35: between pages of the customer's open requests, newest
    // first, a newer request opens (before the cursor), one before the
    // cursor closes, an older one opens (after it), one after it is
    // confirmed, someone else's is cancelled; every request that did not
    // change is listed exactly once.
    let (admin, incoming, other) = (id("AA1-OVH"), id("XX1-OVH"), id("OO9-OVH"));
    let hour = |h: i64| t0() + Duration::hours(h);
    let mut opened = Vec::new();
    for (h, seed) in (1..=6).zip(300..) {
        let service = ordered(store, &format!("p{h}.example"), admin).await?;
        opened.push(open_tech_for(store, service.name(), incoming, hour(h), seed).await?);
    }
    let newer = ordered(store, "p7.example", admin).await?;
    let older = ordered(store, "p0.example", admin).await?;
    let theirs = ordered(store, "q.example", other).await?;
    let unrelated = open_tech_for(
        store,
        theirs.name(),
        id("YY2-OVH"),
        hour(3) + Duration::minutes(30),
        310,
    )
    .await?
    .request;
    // Opened at hours 1 to 6: `r(h)`.
    let r = |h: usize| &opened[h - 1].request;
    let now = t0() + Duration::days(1);
    let filter = &RequestFilter::all().state(StateName::ValidatingByCustomers);
    let (newer, older, unrelated, confirmed) = (&newer, &older, &unrelated, &opened[1]);
    let listed =
        read_pages(
            PAGE,
            ChangeRequest::id,
            opening_key,
            |after, limit| async move {
                host(store.requests_of(admin, filter, now, after, limit).await)
            },
            |page| async move {
                match page {
                    // After r6, r5: a newer request joins before the cursor.
                    1 => open_tech_for(store, newer.name(), incoming, hour(7), 307)
                        .await
                        .map(drop),
                    // After r4, r3.
                    2 => {
                        let cancelled = cancel(r(6), hour(8))?;
                        commit_step(store, &cancelled, r(6), "a cancel before").await?;
                        let step = accept(store, confirmed, r(2), incoming, hour(8)).await?;
                        commit_step(store, &step, r(2), "a confirmation after").await?;
                        let at = t0() + Duration::minutes(30);
                        open_tech_for(store, older.name(), incoming, at, 308).await?;
                        let cancelled = cancel(unrelated, hour(8))?;
                        commit_step(store, &cancelled, unrelated, "an unrelated cancel")
                            .await
                            .map(drop)
                    }
                    _ => Ok(()),
                }
            },
        )
        .await?;
    let missing = missing_from(&ids(&listed), &[r(1), r(3), r(4), r(5)]);
    ensure!(
        missing.is_empty(),
        "unchanged requests skipped while commits landed between pages: {missing:?}"
    );
    Ok(())
}

async fn due_for_expiry_pages_stay_stable<S: AsyncStore>(store: &S) -> Outcome {
    // R45, R29: between pages of the due requests, earliest deadline first,
    // one joins before the cursor, one before it is recorded as expired, one
    // joins after it, a request not due is cancelled; every due request that
    // did not change is listed exactly once.
    let (admin, incoming) = (id("AA1-OVH"), id("BB2-OVH"));
    let hour = |h: i64| t0() + Duration::hours(h);
    let mut opened = Vec::new();
    for (h, seed) in (2..=7).zip(320..) {
        let service = ordered(store, &format!("u{h}.example"), admin).await?;
        let request = open_tech_for(store, service.name(), incoming, hour(h), seed).await?;
        opened.push(request.request);
    }
    let earlier = ordered(store, "u1.example", admin).await?;
    let later = ordered(store, "u8.example", admin).await?;
    let open = ordered(store, "open.example", admin).await?;
    let not_due = open_tech_for(store, open.name(), incoming, t0() + Duration::days(5), 330)
        .await?
        .request;
    // Opened at hours 2 to 7: `u(h)`.
    let u = |h: usize| &opened[h - 2];
    let now = t0() + Duration::days(10);
    let (earlier, later, not_due) = (&earlier, &later, &not_due);
    let listed = read_pages(
        PAGE,
        ChangeRequest::id,
        deadline_key,
        |after, limit| async move { host(store.due_for_expiry(now, after, limit).await) },
        |page| async move {
            match page {
                // After u2, u3: an earlier deadline joins before the cursor.
                1 => open_tech_for(store, earlier.name(), incoming, hour(1), 328)
                    .await
                    .map(drop),
                // After u4, u5.
                2 => {
                    let expiry = expire(u(2), u(2).deadline())?;
                    commit_step(store, &expiry, u(2), "an expiry before").await?;
                    open_tech_for(store, later.name(), incoming, hour(8), 329).await?;
                    let at = t0() + Duration::days(9);
                    let cancelled = cancel(not_due, at)?;
                    commit_step(store, &cancelled, not_due, "a cancel")
                        .await
                        .map(drop)
                }
                _ => Ok(()),
            }
        },
    )
    .await?;
    let missing = missing_from(&ids(&listed), &[u(3), u(4), u(5), u(6), u(7)]);
    ensure!(
        missing.is_empty(),
        "unchanged due requests skipped while commits landed between pages: {missing:?}"
    );
    Ok(())
}

/// The state sets [`requests_of_every_filter`] tries: none, each alone, and
/// two groups.
const STATE_SETS: [&[StateName]; 9] = [
    &[],
    &[StateName::ValidatingByCustomers],
    &[StateName::Done],
    &[StateName::Refused],
    &[StateName::Aborted],
    &[StateName::Expired],
    &[StateName::Error],
    &[StateName::ValidatingByCustomers, StateName::Expired],
    &[
        StateName::Done,
        StateName::Refused,
        StateName::Aborted,
        StateName::Error,
    ],
];

/// The part sets [`requests_of_every_filter`] tries: none, each alone, and
/// two pairs.
const PART_SETS: [&[Part]; 7] = [
    &[],
    &[Part::AskedByMe],
    &[Part::WaitingForMe],
    &[Part::ComingToMe],
    &[Part::TakingFromMe],
    &[Part::AskedByMe, Part::WaitingForMe],
    &[Part::ComingToMe, Part::TakingFromMe],
];

/// A world of two services whose requests are in every state at `now`
/// (returned), one of them awaiting past its deadline with no sweep, and
/// five customers with every part in them.
async fn every_state_world<S: AsyncStore>(
    store: &S,
    [ann, bob, cat, dan, eve]: [CustomerId; 5],
) -> Result<(World, OffsetDateTime), String> {
    let first = Service::new(
        name("first.example"),
        Contacts::new(ann, bob, cat),
        Version::FIRST,
    );
    let second = Service::new(
        name("second.example"),
        Contacts::new(bob, ann, dan),
        Version::FIRST,
    );
    committed(store.commit(create(&first)).await, "creating a service")?;
    committed(store.commit(create(&second)).await, "creating a service")?;
    let (first, second) = (first.name(), second.name());
    let mut world = World::new();
    let log = &mut world;
    let hour = |hours: i64| t0() + Duration::hours(hours);
    // first.example, asked by ann; tech: refused, cancelled, expired as recorded.
    let refused = open_into(store, log, first, dan, Role::Tech, hour(1), 401).await?;
    commit_into(
        store,
        log,
        &refuse(&refused, &refused.request, dan, hour(2))?,
        "a refusal",
    )
    .await?;
    let cancelled = open_into(store, log, first, eve, Role::Tech, hour(3), 402).await?;
    commit_into(
        store,
        log,
        &cancel(&cancelled.request, hour(4))?,
        "a cancel",
    )
    .await?;
    let expired = open_into(store, log, first, dan, Role::Tech, hour(5), 403).await?;
    // Billing: applied (to eve), then failed when checked again.
    let applied = open_into(store, log, first, eve, Role::Billing, hour(6), 404).await?;
    let step = accept(store, &applied, now_in(log, &applied)?, eve, hour(7)).await?;
    commit_into(store, log, &step, "a confirmation").await?;
    let step = accept(store, &applied, now_in(log, &applied)?, ann, hour(8)).await?;
    commit_into(store, log, &step, "an apply").await?;
    let failed = open_into(store, log, first, dan, Role::Billing, hour(9), 405).await?;
    let step = accept(store, &failed, now_in(log, &failed)?, dan, hour(10)).await?;
    commit_into(store, log, &step, "a confirmation").await?;
    let step = accept_with(
        store,
        &failed,
        now_in(log, &failed)?,
        ann,
        hour(11),
        &nobody,
    )
    .await?;
    commit_into(store, log, &step, "a failed apply").await?;
    // second.example, asked by bob: tech awaiting, never swept past its
    // deadline; nothing touches second.example after that deadline.
    open_into(store, log, second, cat, Role::Tech, hour(12), 406).await?;
    // Live at `now`: opened a day later; dan has confirmed the first.
    let confirmed = open_into(store, log, first, dan, Role::Billing, hour(25), 407).await?;
    let step = accept(store, &confirmed, now_in(log, &confirmed)?, dan, hour(26)).await?;
    commit_into(store, log, &step, "a confirmation").await?;
    open_into(store, log, first, cat, Role::Admin, hour(27), 408).await?;
    open_into(store, log, second, ann, Role::Billing, hour(28), 409).await?;
    let current = now_in(log, &expired)?.clone();
    commit_into(
        store,
        log,
        &expire(&current, current.deadline())?,
        "an expiry",
    )
    .await?;
    let now = t0() + Duration::days(8);
    let states: BTreeSet<StateName> = world.values().map(|r| r.state_name_at(now)).collect();
    ensure!(
        states.len() == STATE_SETS[1..7].len(),
        "fixture: the states at `now` are {states:?}"
    );
    ensure!(
        world.values().any(|r| r.is_due(now)),
        "fixture: no request awaits past its deadline"
    );
    Ok((world, now))
}

async fn requests_of_every_filter<S: AsyncStore>(store: &S) -> Outcome {
    // R45, R35, R29: every customer's listing under each sampled filter
    // (states, parts, service) is the full scan of their requests through
    // `RequestFilter::matches`, newest first, ties by id.
    let customers = ["AA1-OVH", "BB2-OVH", "CC3-OVH", "DD4-OVH", "EE5-OVH"].map(id);
    let (world, now) = every_state_world(store, customers).await?;
    let services = [
        None,
        Some(name("first.example")),
        Some(name("second.example")),
    ];
    for customer in customers.into_iter().chain([id("ZZ9-OVH")]) {
        for states in STATE_SETS {
            for parts in PART_SETS {
                for service in &services {
                    let mut filter = RequestFilter::all();
                    for state in states {
                        filter = filter.state(*state);
                    }
                    for part in parts {
                        filter = filter.part(*part);
                    }
                    if let Some(service) = service {
                        filter = filter.service(service.clone());
                    }
                    let mut expected: Vec<&ChangeRequest> = world
                        .values()
                        .filter(|r| filter.matches(r, customer, now))
                        .collect();
                    expected.sort_by_key(|r| (Reverse(r.opened_at()), r.id()));
                    let expected: Vec<RequestId> = expected.iter().map(|r| r.id()).collect();
                    let listed = ids(&filtered_requests(store, customer, &filter, now).await?);
                    ensure!(
                        listed == expected,
                        "{customer} with {filter:?}: listed {listed:?}, expected {expected:?}"
                    );
                }
            }
        }
    }
    Ok(())
}

async fn listings_answer_at_most_limit<S: AsyncStore>(store: &S) -> Outcome {
    // R45, R47: no page holds more rows than asked, for every limit from 0,
    // even where the times of requests or assignments tie across a page's
    // end.
    let admin = id("AA1-OVH");
    let tie = t0() + Duration::hours(1);
    let plan = [
        ("k1.example", tie, 501),
        ("k2.example", tie, 502),
        ("k3.example", tie, 503),
        ("k4.example", t0() + Duration::hours(2), 504),
        ("k5.example", t0(), 505),
    ];
    let mut opened = Vec::new();
    let mut names = Vec::new();
    for (service, at, seed) in plan {
        let service = ordered(store, service, admin).await?;
        let request = open_tech_for(store, service.name(), id("BB2-OVH"), at, seed).await?;
        opened.push(request.request);
        names.push(service.name().clone());
    }
    let mut expected = ids(&opened);
    expected.sort();
    let (open_at, due_at) = (t0() + Duration::days(1), t0() + Duration::days(9));
    let history = &tied_history(store).await?;
    let filter = &RequestFilter::all();
    let sorted = |mut listed: Vec<RequestId>| {
        listed.sort();
        listed
    };
    for limit in 0..=plan.len() {
        let contacts =
            read_pages(
                limit,
                contact_name,
                contact_name,
                |after, limit| async move {
                    host(store.contacts_of(admin, after.as_ref(), limit).await)
                },
                nothing_between,
            )
            .await?;
        let requests = read_pages(
            limit,
            ChangeRequest::id,
            opening_key,
            |after, limit| async move {
                host(
                    store
                        .requests_of(admin, filter, open_at, after, limit)
                        .await,
                )
            },
            nothing_between,
        )
        .await?;
        let due = read_pages(
            limit,
            ChangeRequest::id,
            deadline_key,
            |after, limit| async move { host(store.due_for_expiry(due_at, after, limit).await) },
            nothing_between,
        )
        .await?;
        history_pages_of(store, history, limit).await?;
        let contacts: Vec<ServiceName> = contacts.iter().map(contact_name).collect();
        let (requests, due) = (sorted(ids(&requests)), sorted(ids(&due)));
        if limit == 0 {
            continue;
        }
        ensure!(
            contacts == names,
            "contacts {limit} at a time: {contacts:?}, expected {names:?}"
        );
        ensure!(
            requests == expected,
            "requests {limit} at a time: {requests:?}, expected {expected:?}"
        );
        ensure!(
            due == expected,
            "due requests {limit} at a time: {due:?}, expected {expected:?}"
        );
    }
    Ok(())
}

/// A service's history whose entries tie across a page's end, and what it
/// holds (ids sorted).
struct TiedHistory {
    service: ServiceName,
    requests: Vec<RequestId>,
    assignments: Vec<AssignmentId>,
}

/// Someone else's service for [`listings_answer_at_most_limit`]: three
/// assignments made at one instant, then three requests opened at another
/// by one edit (R33), none due in that case.
async fn tied_history<S: AsyncStore>(store: &S) -> Result<TiedHistory, String> {
    let service = ordered(store, "h.example", id("HH8-OVH")).await?;
    let name = service.name();
    let made_at = t0() + Duration::days(5);
    let mut assignments = Vec::new();
    for (to, seed) in [("HA1-OVH", 506), ("HB2-OVH", 507), ("HC3-OVH", 508)] {
        let assignment = assign(store, name, Role::Tech, id(to), made_at, seed).await?;
        assignments.push(assignment.id());
    }
    assignments.sort();
    let edit = [
        (Role::Admin, id("HX1-OVH")),
        (Role::Tech, id("HY2-OVH")),
        (Role::Billing, id("HZ3-OVH")),
    ];
    let opened_at = made_at + Duration::hours(1);
    let mut requests = ids(&open_each(store, name, &edit, opened_at, 509).await?);
    requests.sort();
    Ok(TiedHistory {
        service: name.clone(),
        requests,
        assignments,
    })
}

/// Reads both listings of `history`, `limit` rows a page, and (for a
/// limit above 0) checks that they hold every entry (R45, R47).
async fn history_pages_of<S: AsyncStore>(
    store: &S,
    history: &TiedHistory,
    limit: usize,
) -> Outcome {
    let service = &history.service;
    let requests = read_pages(
        limit,
        ChangeRequest::id,
        history_key,
        |after, limit| async move { host(store.requests_on(service, after, limit).await) },
        nothing_between,
    )
    .await?;
    let assignments = read_pages(
        limit,
        Assignment::id,
        Assignment::key,
        |after, limit| async move { host(store.assignments_on(service, after, limit).await) },
        nothing_between,
    )
    .await?;
    if limit == 0 {
        return Ok(());
    }
    let mut requests = ids(&requests);
    requests.sort();
    ensure!(
        requests == history.requests,
        "requests on {service} {limit} at a time: {requests:?}, expected {:?}",
        history.requests
    );
    let mut assignments = assignment_ids(&assignments);
    assignments.sort();
    ensure!(
        assignments == history.assignments,
        "assignments on {service} {limit} at a time: {assignments:?}, expected {:?}",
        history.assignments
    );
    Ok(())
}

// ----- a service's history (R47) -----

/// The entries (keys and ids) in the order of a service's history: newest
/// first, ties by id ([`HistoryKey::listed_before`]).
fn in_history_order<T>(mut entries: Vec<(HistoryKey, T)>) -> Vec<T> {
    entries.sort_by_key(|(key, _)| (Reverse(key.at), key.id));
    entries.into_iter().map(|(_, id)| id).collect()
}

/// Checks that `expected`, entries in history order, do not happen to be in
/// the order of their ids, so that a listing sorted by id differs.
fn ids_disagree_with_times<T: Ord + Clone>(expected: &[T], what: &str) -> Outcome {
    let mut by_id = expected.to_vec();
    by_id.sort();
    ensure!(
        by_id != expected,
        "fixture: the ids of the {what} happen to follow their times"
    );
    Ok(())
}

async fn history_lists_every_entry_of_its_service<S: AsyncStore>(store: &S) -> Outcome {
    // R47: a service's history is every request ever opened on it, whatever
    // its state, and every assignment made on it (R46); nothing of another
    // service, even one whose name it prefixes; a removed service keeps its
    // history (R44).
    let customers = ["AA1-OVH", "BB2-OVH", "CC3-OVH", "DD4-OVH", "EE5-OVH"].map(id);
    let [ann, _, _, dan, _] = customers;
    let (mut world, now) = every_state_world(store, customers).await?;
    let (first, second) = (name("first.example"), name("second.example"));
    // A name that `first.example` prefixes, with a request and an
    // assignment of its own.
    let longer = ordered(store, "first.example.net", ann).await?;
    let longer = longer.name().clone();
    open_into(store, &mut world, &longer, dan, Role::Billing, now, 421).await?;
    let later = now + Duration::minutes(1);
    let mut made = Vec::new();
    for (service, seed) in [(&first, 621), (&second, 622), (&longer, 623)] {
        let (assignment, step) =
            decide_assignment(store, service, Role::Tech, id("OP1-OVH"), later, seed).await?;
        commit_into(store, &mut world, &step, "an assignment").await?;
        made.push(assignment);
    }
    let (stored, named) = load(store, &second).await?;
    let snapshot = Snapshot {
        service: &stored,
        requests: &named,
    };
    let removal = Engine::default()
        .remove(snapshot, later + Duration::minutes(1))
        .map_err(|err| format!("fixture removal refused: {err}"))?;
    commit_into(store, &mut world, &removal, "removing a service").await?;
    // Compared as sets: the order is another case's.
    for service in [&first, &second, &longer] {
        let mut expected: Vec<RequestId> = world
            .values()
            .filter(|r| r.service() == service)
            .map(ChangeRequest::id)
            .collect();
        expected.sort();
        let mut listed = ids(&history_requests(store, service).await?);
        listed.sort();
        ensure!(
            listed == expected,
            "requests on {service}: listed {listed:?}, expected {expected:?}"
        );
        let mut expected: Vec<AssignmentId> = made
            .iter()
            .filter(|a| a.service() == service)
            .map(Assignment::id)
            .collect();
        expected.sort();
        let mut listed = assignment_ids(&history_assignments(store, service).await?);
        listed.sort();
        ensure!(
            listed == expected,
            "assignments on {service}: listed {listed:?}, expected {expected:?}"
        );
    }
    Ok(())
}

async fn history_newest_first_ties_by_id<S: AsyncStore>(store: &S) -> Outcome {
    // R47: both listings of a service's history, newest first, ties by id,
    // on entries whose ids do not follow their times. No two entries tie
    // across the end of a page (`listings_answer_at_most_limit` has those).
    let service = ordered(store, "order.example", id("AA1-OVH")).await?;
    let name = service.name();
    let hour = |h: i64| t0() + Duration::hours(h);
    // Assignments made at hours 3, 4, 4 (a tie) and 1.
    let mut made = Vec::new();
    for (h, to, seed) in [
        (3, "OA1-OVH", 631),
        (4, "OB2-OVH", 632),
        (4, "OC3-OVH", 633),
        (1, "OD4-OVH", 634),
    ] {
        let assignment = assign(store, name, Role::Tech, id(to), hour(h), seed).await?;
        made.push((assignment.key(), assignment.id()));
    }
    // Requests opened at hours 8 (then cancelled) and 9, then two at once
    // at hour 6 (one edit, two incoming customers, R33).
    let eight = open_tech_for(store, name, id("RB2-OVH"), hour(8), 641)
        .await?
        .request;
    commit_step(store, &cancel(&eight, hour(8))?, &eight, "a cancel").await?;
    let nine = open_request(store, name, id("RA1-OVH"), Role::Admin.into(), hour(9), 642)
        .await?
        .request;
    let edit = [(Role::Tech, id("RC3-OVH")), (Role::Billing, id("RD4-OVH"))];
    let six = open_each(store, name, &edit, hour(6), 643).await?;
    let opened: Vec<_> = [eight, nine]
        .iter()
        .chain(&six)
        .map(|r| (history_key(r), r.id()))
        .collect();
    let expected = in_history_order(opened);
    ids_disagree_with_times(&expected, "requests")?;
    let listed = ids(&history_requests(store, name).await?);
    ensure!(
        listed == expected,
        "requests on {name} not newest first, ties by id: {listed:?}, expected {expected:?}"
    );
    let expected = in_history_order(made);
    ids_disagree_with_times(&expected, "assignments")?;
    let listed = assignment_ids(&history_assignments(store, name).await?);
    ensure!(
        listed == expected,
        "assignments on {name} not newest first, ties by id: {listed:?}, expected {expected:?}"
    );
    Ok(())
}

async fn history_follows_every_commit<S: AsyncStore>(store: &S) -> Outcome {
    // R47, R34, R46: after each commit of a request's life, and after an
    // assignment, the service's history answers what it wrote: each request
    // whole at its current version, the assignment whole.
    let (admin, tech, billing) = (id("AA1-OVH"), id("BB2-OVH"), id("CC3-OVH"));
    let service = ordered(store, "fresh.example", admin).await?;
    let name = service.name();
    let at = |minutes: i64| t0() + Duration::minutes(minutes);
    let opened = open_tech_for(store, name, tech, at(0), 651).await?;
    lists_requests(store, name, &[&opened.request], "opening a request").await?;
    let step = accept(store, &opened, &opened.request, tech, at(1)).await?;
    let confirmed = commit_step(store, &step, &opened.request, "a confirmation").await?;
    lists_requests(store, name, &[&confirmed], "a confirmation").await?;
    let step = accept(store, &opened, &confirmed, admin, at(2)).await?;
    let applied = commit_step(store, &step, &opened.request, "the last confirmation").await?;
    lists_requests(store, name, &[&applied], "applying").await?;
    let other = open_request(store, name, billing, Role::Billing.into(), at(3), 652)
        .await?
        .request;
    lists_requests(store, name, &[&other, &applied], "opening another").await?;
    // An operator gives the billing role to someone else: the request on it
    // fails in the same commit (R32).
    let (assignment, step) =
        decide_assignment(store, name, Role::Billing, id("DD4-OVH"), at(4), 653).await?;
    committed(store.commit(step.changes.clone()).await, "an assignment")?;
    let failed = written(&step, &other)?;
    lists_requests(store, name, &[&failed, &applied], "an assignment").await?;
    let listed = history_assignments(store, name).await?;
    ensure!(
        listed == [assignment.clone()],
        "after an assignment: assignments listed {listed:?}, expected {assignment:?}"
    );
    Ok(())
}

async fn history_pages_stay_stable<S: AsyncStore>(store: &S) -> Outcome {
    // R47, R45: between pages of a service's history, newest first, newer
    // entries join before the cursor (a request opens, an assignment is
    // made), a request before it is cancelled, older entries join after it;
    // every entry that did not change is listed exactly once.
    let service = ordered(store, "paged.example", id("AA1-OVH")).await?;
    let name = service.name();
    let hour = |h: i64| t0() + Duration::hours(h);
    let mut made = Vec::new();
    for (h, seed) in (1..=6).zip(660..) {
        let to = id(&format!("AS{h}-OVH"));
        made.push(assign(store, name, Role::Tech, to, hour(h), seed).await?);
    }
    // Requests opened at hours 1 to 6, all but the last cancelled at once.
    let mut opened = Vec::new();
    for (h, seed) in (1..=6).zip(670..) {
        let to = id(&format!("RQ{h}-OVH"));
        let request = open_tech_for(store, name, to, hour(h), seed).await?.request;
        if h < 6 {
            commit_step(store, &cancel(&request, hour(h))?, &request, "a cancel").await?;
        }
        opened.push(request);
    }
    let six = &opened[5];
    let listed = read_pages(
        PAGE,
        ChangeRequest::id,
        history_key,
        |after, limit| async move { host(store.requests_on(name, after, limit).await) },
        |page| async move {
            match page {
                // After r6, r5: a newer request opens, before the cursor.
                1 => open_request(
                    store,
                    name,
                    id("NW7-OVH"),
                    Role::Billing.into(),
                    hour(7),
                    680,
                )
                .await
                .map(drop),
                // After r4, r3: r6 is cancelled, an older request opens.
                2 => {
                    commit_step(store, &cancel(six, hour(8))?, six, "a cancel before").await?;
                    let at = t0() + Duration::minutes(30);
                    open_tech_for(store, name, id("OL0-OVH"), at, 681)
                        .await
                        .map(drop)
                }
                _ => Ok(()),
            }
        },
    )
    .await?;
    let unchanged: Vec<&ChangeRequest> = opened[..5].iter().collect();
    let missing = missing_from(&ids(&listed), &unchanged);
    ensure!(
        missing.is_empty(),
        "unchanged requests on {name} skipped while commits landed between pages: {missing:?}"
    );
    let listed = read_pages(
        PAGE,
        Assignment::id,
        Assignment::key,
        |after, limit| async move { host(store.assignments_on(name, after, limit).await) },
        |page| async move {
            match page {
                // After a6, a5: a newer assignment, before the cursor.
                1 => assign(store, name, Role::Tech, id("NA7-OVH"), hour(7), 682)
                    .await
                    .map(drop),
                // After a4, a3: an older one, after it.
                2 => {
                    let at = t0() + Duration::minutes(30);
                    assign(store, name, Role::Tech, id("NA0-OVH"), at, 683)
                        .await
                        .map(drop)
                }
                _ => Ok(()),
            }
        },
    )
    .await?;
    let listed = assignment_ids(&listed);
    let missing: Vec<AssignmentId> = assignment_ids(&made)
        .into_iter()
        .filter(|id| !listed.contains(id))
        .collect();
    ensure!(
        missing.is_empty(),
        "unchanged assignments on {name} skipped while commits landed between pages: {missing:?}"
    );
    Ok(())
}

/// Checks that the history of `service` lists the `expected` requests,
/// whole, after `after`. Compared by id: the order is another case's.
async fn lists_requests<S: AsyncStore>(
    store: &S,
    service: &ServiceName,
    expected: &[&ChangeRequest],
    after: &str,
) -> Outcome {
    let mut listed = history_requests(store, service).await?;
    listed.sort_by_key(ChangeRequest::id);
    let mut expected: Vec<ChangeRequest> = expected.iter().map(|r| (*r).clone()).collect();
    expected.sort_by_key(ChangeRequest::id);
    ensure!(
        listed == expected,
        "after {after}: requests on {service} listed {listed:?}, expected {expected:?}"
    );
    Ok(())
}

// ----- races -----

/// The one racer that won, or why there is not exactly one.
fn one_winner(wins: &[bool], round: u32) -> Result<usize, String> {
    let winners: Vec<usize> = (0..wins.len()).filter(|i| wins[*i]).collect();
    match winners[..] {
        [winner] => Ok(winner),
        _ => Err(format!(
            "round {round}: {} of {} racing commits on one version succeeded",
            winners.len(),
            wins.len()
        )),
    }
}

async fn racing_service_writes_one_wins<S: Tested>(store: &S) -> Outcome {
    // R31: of the writers that read the same version, one wins.
    let service = ordered(store, "race.example", id("AA1-OVH")).await?;
    for round in 0..ROUNDS {
        let current = read_service(store, service.name()).await?;
        let candidates: Vec<Service> = (0..RACERS)
            .map(|i| {
                let racer = u8::try_from(i).unwrap_or(0);
                let holder = format!("R{}{round}-OVH", char::from(b'A' + racer));
                reassigned(&current, Role::Tech, id(&holder))
            })
            .collect();
        let batches = candidates
            .iter()
            .map(|c| update(c, current.version()))
            .collect();
        let winner = one_winner(&store.race(batches).await?, round)?;
        reads_service(store, &candidates[winner], "a race").await?;
    }
    Ok(())
}

async fn racing_request_writes_one_wins<S: Tested>(store: &S) -> Outcome {
    // R31: of the writers that read the same version of a request, one wins.
    let service = ordered(store, "race.example", id("AA1-OVH")).await?;
    for round in 0..ROUNDS {
        let at = t0() + Duration::hours(i64::from(round));
        let seed = 100 + u64::from(round);
        let opened = open_tech_for(store, service.name(), id("BB2-OVH"), at, seed).await?;
        // Each racer cancels at its own second: the winner is recognisable.
        let decisions = (0..RACERS)
            .map(|i| {
                cancel(
                    &opened.request,
                    at + Duration::seconds(i64::try_from(i).unwrap_or(0)),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batches = decisions.iter().map(|t| t.changes.clone()).collect();
        let winner = one_winner(&store.race(batches).await?, round)?;
        let expected = written(&decisions[winner], &opened.request)?;
        reads_request(store, &expected, "a race").await?;
    }
    Ok(())
}

async fn racing_mixed_writes_one_wins<S: Tested>(store: &S) -> Outcome {
    // R31: applies (service and request) race a cancel (request only) of
    // the same request; one wins, with all its writes.
    let admin = id("AA1-OVH");
    let service = ordered(store, "race.example", admin).await?;
    for round in 0..ROUNDS {
        let at = t0() + Duration::hours(i64::from(round));
        let incoming = id(&format!("IN{round}-OVH"));
        let seed = 200 + u64::from(round);
        let opened = open_tech_for(store, service.name(), incoming, at, seed).await?;
        let step = accept(store, &opened, &opened.request, incoming, at).await?;
        let waiting = commit_step(store, &step, &opened.request, "a confirmation").await?;
        // All but one racer apply (the requester's confirmation, each at its
        // own second); the last cancels.
        let mut decisions = Vec::with_capacity(RACERS);
        for i in 1..RACERS {
            let when = at + Duration::seconds(i64::try_from(i).unwrap_or(0));
            decisions.push(accept(store, &opened, &waiting, admin, when).await?);
        }
        decisions.push(cancel(&waiting, at)?);
        let batches = decisions.iter().map(|t| t.changes.clone()).collect();
        let winner = one_winner(&store.race(batches).await?, round)?;
        let decision = &decisions[winner];
        reads_request(store, &written(decision, &opened.request)?, "a race").await?;
        if let Some(write) = decision.changes.services.first() {
            reads_service(store, &write.value, "a race won by an apply").await?;
        }
    }
    Ok(())
}

async fn racing_assignments_one_wins<S: Tested>(store: &S) -> Outcome {
    // R46, R31, R32: operators' assignments of the billing role, decided on
    // the same version of the service while a request on that role is open
    // (each fails it), released together: exactly one wins, and the service
    // and the request are as the winner wrote them.
    let service = ordered(store, "race.example", id("AA1-OVH")).await?;
    let name = service.name();
    for round in 0..ROUNDS {
        let at = t0() + Duration::hours(i64::from(round));
        let seed = 700 + 10 * u64::from(round);
        let incoming = id("CC3-OVH");
        let opened = open_request(store, name, incoming, Role::Billing.into(), at, seed).await?;
        // Each racer assigns at its own second, to its own customer.
        let mut decisions = Vec::with_capacity(RACERS);
        for (i, seed) in (0..RACERS).zip(seed + 1..) {
            let racer = u8::try_from(i).unwrap_or(0);
            let holder = id(&format!("O{}{round}-OVH", char::from(b'A' + racer)));
            let when = at + Duration::seconds(i64::try_from(i).unwrap_or(0) + 1);
            let (_, decision) =
                decide_assignment(store, name, Role::Billing, holder, when, seed).await?;
            decisions.push(decision);
        }
        let batches = decisions.iter().map(|t| t.changes.clone()).collect();
        let winner = one_winner(&store.race(batches).await?, round)?;
        let decision = &decisions[winner];
        reads_service(store, &service_written(&decision.changes)?, "a race").await?;
        reads_request(store, &written(decision, &opened.request)?, "a race").await?;
    }
    Ok(())
}
