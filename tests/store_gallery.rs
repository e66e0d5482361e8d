//! A gallery of deliberately broken stores, and the cases of the conformance
//! suite that catch each (R6, R29, R31, R35, R44, R45, R46, R47).
//!
//! Every store here is one reference store (a few maps behind a mutex, with
//! listings by scan) with one fault switched on. It implements both [`Store`]
//! and [`AsyncStore`], and every store is run through both runners of the
//! suite: the blocking one ([`run_store_suite`], racers on threads) and the
//! async one ([`run_async_store_suite`], racers' commits polled together in
//! one future). The tests check, for every store and both runners, the exact
//! list of cases that fail, and that every case of the suite is the only
//! failure of at least one store: no case is dead weight, and each says
//! which contract point is broken.
#![cfg(feature = "testing")]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{Thread, ThreadId};

use service_contacts::testing::{CASES, RACERS, Report, run_async_store_suite, run_store_suite};
use service_contacts::{
    Assignment, AssignmentId, AsyncStore, ChangeRequest, Changes, CommitError, CustomerId,
    HistoryKey, Part, RequestFilter, RequestId, RequestKey, Roles, Service, ServiceName, Store,
    Version, Write,
};
use time::OffsetDateTime;

/// Service writes or request writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Service,
    Request,
}

/// Which records a partial commit writes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum First {
    Services,
    Requests,
}

/// When a store that writes operators' assignments apart writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    /// Before the rest of the batch.
    Before,
    /// After the rest of the batch.
    After,
}

/// The batches a not-isolated store writes apart from their check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Batches of service writes only.
    ServiceOnly,
    /// Batches of request writes only.
    RequestOnly,
    /// Batches of a service write and request writes, without an
    /// assignment.
    Mixed,
    /// Every batch with a service write.
    AnyService,
    /// Every batch with request writes.
    AnyRequest,
    /// Every batch with an operator's assignment.
    Assigning,
}

impl Scope {
    fn covers(self, changes: &Changes) -> bool {
        let (services, requests) = (!changes.services.is_empty(), !changes.requests.is_empty());
        let assignments = !changes.assignments.is_empty();
        match self {
            Scope::ServiceOnly => services && !requests && !assignments,
            Scope::RequestOnly => requests && !services && !assignments,
            Scope::Mixed => services && requests && !assignments,
            Scope::AnyService => services,
            Scope::AnyRequest => requests,
            Scope::Assigning => assignments,
        }
    }
}

/// What is wrong with a gallery store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Nothing: the reference store, which passes every case.
    None,
    /// Service names are cut to 64 bytes when stored and looked up (a
    /// column too narrow).
    NamesCutAt64,
    /// The store panics on a service name longer than 64 bytes (an unwrap
    /// on a column too narrow): the case fails, with the panic's message.
    PanicsOnLongNames,
    /// `expected: None` for an existing record overwrites it (an upsert).
    CreateOverwrites(Kind),
    /// `expected: Some(v)` for a missing record creates it.
    UpdateCreates(Kind),
    /// The version check is `stored <= expected`, not `stored == expected`.
    VersionAtMost(Kind),
    /// Each record is written as its own commit, stopping at the first
    /// conflict, with no rollback (operators' assignments last).
    RecordByRecord(First),
    /// One transaction per table: all of one kind checked and written, then
    /// all of the other (operators' assignments with the services: the
    /// service's partition).
    TransactionPerTable(First),
    /// A batch without a service write is written record by record (the
    /// store opens a transaction on the service's partition only).
    AutocommitWithoutService,
    /// Operators' assignments are checked and written in a transaction of
    /// their own, before or after the one of the rest of the batch.
    AssignmentsApart(When),
    /// An assignment whose id exists replaces the stored one (an upsert),
    /// and the batch commits.
    AssignmentOverwrites,
    /// An assignment whose id exists is skipped (`ON CONFLICT DO NOTHING`),
    /// and the rest of the batch commits.
    ExistingAssignmentSkipped,
    /// Assignment ids are checked against the stored ones only: a batch that
    /// names one id twice writes it.
    AssignmentTwiceInBatch,
    /// Operators' assignments are never written (a store that predates
    /// them).
    AssignmentsDropped,
    /// A commit's assignments are indexed for `assignments_on` only when the
    /// next commit begins (an indexer one commit behind).
    AssignmentsIndexedLazily,
    /// Batches in this scope are checked, then (after every racer has
    /// checked) written in a second critical section without a new check.
    NotIsolated(Scope),
    /// Each `service` or `request` read answers the value from before the
    /// last commit that wrote it, once (a lagging replica).
    LaggingReplica,
    /// `request` reads come from a cache refreshed only when a request is
    /// created or opens or closes, not when it changes and stays open.
    RequestCacheMissesOpenUpdates,
    /// The holder index is written when a service is created, never after.
    HolderIndexOnCreation,
    /// `contacts_of` gives the roles each holder had when the service was
    /// created.
    ContactRolesAsCreated,
    /// The party index holds the requester and the incoming contact only.
    OutgoingNotIndexed,
    /// `requests_of` answers each request as first written.
    RequestsOfAsCreated,
    /// `due_for_expiry` takes `deadline < now`.
    DueBeforeDeadlineOnly,
    /// `due_for_expiry` sorts by request id.
    DueById,
    /// `due_for_expiry` answers each request as first written.
    DueAsCreated,
    /// The deadline index keeps requests that closed.
    DueKeepsClosed,
    /// Only the first service write of a batch is checked (the store
    /// assumes one service per commit; an import writes several, R42).
    ChecksFirstServiceOnly,
    /// A removed service's row is deleted: the name's versions restart (R44).
    DeletesRemoved,
    /// `contacts_of` lists removed services.
    ListsRemoved,
    /// `requests_of` sorts requests opened at the same instant by id from
    /// the highest (an index on the id in descending order).
    RequestTiesByIdDescending,
    /// This listing pages by offset: its cursor counts the rows already
    /// listed, so rows that join or leave before it shift the next pages
    /// (R45).
    PagesByOffset(Listing),
    /// Every listing starts at the row it was asked to start after, not
    /// after it (`>=` for `>`).
    AfterInclusive,
    /// Every listing starts from the beginning, whatever the cursor.
    IgnoresAfter,
    /// The state filter of `requests_of` reads the recorded state: an
    /// awaiting request past its deadline that no sweep recorded is not
    /// `expired` (R29).
    StateFilterRecorded,
    /// `Part::WaitingForMe` lists every live request the customer must
    /// confirm, confirmed already or not.
    WaitingIgnoresConfirmations,
    /// The service filter of `requests_of` is ignored.
    ServiceFilterIgnored,
    /// `requests_of` and `due_for_expiry` answer `limit` rows and then every
    /// row whose time ties with the last (SQL's `FETCH FIRST n ROWS WITH
    /// TIES`).
    LimitWithTies,
    /// `requests_on` and `assignments_on` do the same.
    HistoryLimitWithTies,
    /// `requests_on` lists open requests only (it reads the index of open
    /// requests).
    HistoryOpenOnly,
    /// `requests_on` answers each request as first written.
    HistoryAsCreated,
    /// This history listing ignores the service asked.
    HistoryServiceIgnored(Listing),
    /// This history listing matches every service whose name starts with
    /// the one asked (`LIKE name || '%'`).
    HistoryServicePrefix(Listing),
    /// Both history listings answer nothing for a removed service (they join
    /// the live services).
    HistoryOfLiveServicesOnly,
    /// This history listing sorts by id alone, and pages by id.
    HistoryById(Listing),
    /// This history listing sorts entries of the same time by id from the
    /// highest.
    HistoryTiesByIdDescending(Listing),
}

/// A listing of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listing {
    /// `contacts_of`.
    Contacts,
    /// `requests_of`.
    Requests,
    /// `due_for_expiry`.
    Due,
    /// `requests_on`, a service's requests (R47).
    RequestsOn,
    /// `assignments_on`, a service's assignments (R46, R47).
    AssignmentsOn,
}

/// The cases that read a listing of more than one page: what a store that
/// repeats rows across pages fails (R45).
const EVERY_PAGED_LISTING: &[&str] = &[
    "import_batch_is_all_or_nothing",
    "contacts_of_follows_holders",
    "requests_of_parties_and_order",
    "requests_of_current_contents",
    "due_for_expiry_at_the_deadline",
    "due_for_expiry_order",
    "contacts_of_pages_stay_stable",
    "requests_of_pages_stay_stable",
    "due_for_expiry_pages_stay_stable",
    "requests_of_every_filter",
    "listings_answer_at_most_limit",
    "history_lists_every_entry_of_its_service",
    "history_newest_first_ties_by_id",
    "history_follows_every_commit",
    "history_pages_stay_stable",
];

/// Every gallery store, with the cases it must fail.
const GALLERY: &[(Fault, &[&str])] = &[
    (Fault::None, &[]),
    (Fault::NamesCutAt64, &["service_round_trip"]),
    (Fault::PanicsOnLongNames, &["service_round_trip"]),
    (
        Fault::CreateOverwrites(Kind::Service),
        &["create_existing_service_conflicts"],
    ),
    (
        Fault::CreateOverwrites(Kind::Request),
        &["create_existing_request_conflicts"],
    ),
    (
        Fault::UpdateCreates(Kind::Service),
        &["update_of_missing_service_conflicts"],
    ),
    (
        Fault::UpdateCreates(Kind::Request),
        &["update_of_missing_request_conflicts"],
    ),
    (
        Fault::VersionAtMost(Kind::Service),
        &["stale_version_conflicts"],
    ),
    (
        Fault::VersionAtMost(Kind::Request),
        &["stale_version_conflicts"],
    ),
    (
        Fault::RecordByRecord(First::Services),
        &[
            "all_or_nothing_stale_request",
            "all_or_nothing_requests_only",
            "import_batch_is_all_or_nothing",
            "existing_assignment_id_conflicts",
        ],
    ),
    (
        Fault::RecordByRecord(First::Requests),
        &[
            "all_or_nothing_stale_service",
            "all_or_nothing_requests_only",
            "import_batch_is_all_or_nothing",
            "existing_assignment_id_conflicts",
        ],
    ),
    (
        Fault::TransactionPerTable(First::Requests),
        &["all_or_nothing_stale_service"],
    ),
    (
        Fault::TransactionPerTable(First::Services),
        &["all_or_nothing_stale_request"],
    ),
    (
        Fault::AutocommitWithoutService,
        &["all_or_nothing_requests_only"],
    ),
    (
        Fault::AssignmentsApart(When::Before),
        &["all_or_nothing_assignment"],
    ),
    (
        Fault::AssignmentsApart(When::After),
        &["existing_assignment_id_conflicts"],
    ),
    (
        Fault::AssignmentOverwrites,
        &["existing_assignment_id_conflicts"],
    ),
    (
        Fault::ExistingAssignmentSkipped,
        &["existing_assignment_id_conflicts"],
    ),
    (
        Fault::AssignmentTwiceInBatch,
        &["existing_assignment_id_conflicts"],
    ),
    (
        Fault::AssignmentsDropped,
        &[
            "all_or_nothing_assignment",
            "existing_assignment_id_conflicts",
            "listings_answer_at_most_limit",
            "history_lists_every_entry_of_its_service",
            "history_newest_first_ties_by_id",
            "history_follows_every_commit",
            "history_pages_stay_stable",
        ],
    ),
    (
        Fault::NotIsolated(Scope::ServiceOnly),
        &["racing_service_writes_one_wins"],
    ),
    (
        Fault::NotIsolated(Scope::RequestOnly),
        &["racing_request_writes_one_wins"],
    ),
    (
        Fault::NotIsolated(Scope::Mixed),
        &["racing_mixed_writes_one_wins"],
    ),
    (
        Fault::NotIsolated(Scope::Assigning),
        &["racing_assignments_one_wins"],
    ),
    (
        Fault::NotIsolated(Scope::AnyService),
        &[
            "racing_service_writes_one_wins",
            "racing_mixed_writes_one_wins",
            "racing_assignments_one_wins",
        ],
    ),
    (
        Fault::NotIsolated(Scope::AnyRequest),
        &[
            "racing_request_writes_one_wins",
            "racing_mixed_writes_one_wins",
            "racing_assignments_one_wins",
        ],
    ),
    (
        Fault::LaggingReplica,
        &[
            "service_round_trip",
            "create_existing_service_conflicts",
            "create_existing_request_conflicts",
            "stale_version_conflicts",
            "update_of_missing_request_conflicts",
            "all_or_nothing_stale_service",
            "all_or_nothing_stale_request",
            "all_or_nothing_requests_only",
            "import_batch_is_all_or_nothing",
            "all_or_nothing_assignment",
            "existing_assignment_id_conflicts",
            "reads_follow_every_commit",
            "removed_service_keeps_its_versions",
            "requests_of_parties_and_order",
            "requests_of_current_contents",
            "due_for_expiry_at_the_deadline",
            "due_for_expiry_order",
            "due_for_expiry_follows_changes",
            "requests_of_pages_stay_stable",
            "due_for_expiry_pages_stay_stable",
            "requests_of_every_filter",
            "listings_answer_at_most_limit",
            "history_lists_every_entry_of_its_service",
            "history_newest_first_ties_by_id",
            "history_follows_every_commit",
            "history_pages_stay_stable",
            "racing_service_writes_one_wins",
            "racing_request_writes_one_wins",
            "racing_mixed_writes_one_wins",
            "racing_assignments_one_wins",
        ],
    ),
    (
        Fault::RequestCacheMissesOpenUpdates,
        &["reads_follow_every_commit"],
    ),
    (
        Fault::HolderIndexOnCreation,
        &["contacts_of_follows_holders"],
    ),
    (
        Fault::ContactRolesAsCreated,
        &["contacts_of_roles_follow_changes"],
    ),
    (
        Fault::OutgoingNotIndexed,
        &["requests_of_parties_and_order", "requests_of_every_filter"],
    ),
    (
        Fault::RequestsOfAsCreated,
        &["requests_of_current_contents"],
    ),
    (
        Fault::DueBeforeDeadlineOnly,
        &["due_for_expiry_at_the_deadline"],
    ),
    (Fault::DueById, &["due_for_expiry_order"]),
    (Fault::DueAsCreated, &["due_for_expiry_follows_changes"]),
    (Fault::DueKeepsClosed, &["due_for_expiry_follows_changes"]),
    (
        Fault::ChecksFirstServiceOnly,
        &["import_batch_is_all_or_nothing"],
    ),
    (
        Fault::DeletesRemoved,
        &["removed_service_keeps_its_versions"],
    ),
    (Fault::ListsRemoved, &["removed_service_keeps_its_versions"]),
    (
        Fault::RequestTiesByIdDescending,
        &["requests_of_parties_and_order"],
    ),
    (
        Fault::PagesByOffset(Listing::Contacts),
        &["contacts_of_pages_stay_stable"],
    ),
    (
        Fault::PagesByOffset(Listing::Requests),
        &["requests_of_pages_stay_stable"],
    ),
    (
        Fault::PagesByOffset(Listing::Due),
        &["due_for_expiry_pages_stay_stable"],
    ),
    (
        Fault::PagesByOffset(Listing::RequestsOn),
        &["history_pages_stay_stable"],
    ),
    (
        Fault::PagesByOffset(Listing::AssignmentsOn),
        &["history_pages_stay_stable"],
    ),
    (Fault::AfterInclusive, EVERY_PAGED_LISTING),
    (Fault::IgnoresAfter, EVERY_PAGED_LISTING),
    (Fault::StateFilterRecorded, &["requests_of_every_filter"]),
    (
        Fault::WaitingIgnoresConfirmations,
        &["requests_of_every_filter"],
    ),
    (Fault::ServiceFilterIgnored, &["requests_of_every_filter"]),
    (Fault::LimitWithTies, &["listings_answer_at_most_limit"]),
    (
        Fault::HistoryLimitWithTies,
        &["listings_answer_at_most_limit"],
    ),
    (
        Fault::HistoryOpenOnly,
        &[
            "history_lists_every_entry_of_its_service",
            "history_newest_first_ties_by_id",
            "history_follows_every_commit",
            "history_pages_stay_stable",
        ],
    ),
    (Fault::HistoryAsCreated, &["history_follows_every_commit"]),
    (
        Fault::AssignmentsIndexedLazily,
        &["history_follows_every_commit"],
    ),
    (
        Fault::HistoryServiceIgnored(Listing::RequestsOn),
        &[
            "listings_answer_at_most_limit",
            "history_lists_every_entry_of_its_service",
        ],
    ),
    (
        Fault::HistoryServiceIgnored(Listing::AssignmentsOn),
        &["history_lists_every_entry_of_its_service"],
    ),
    (
        Fault::HistoryServicePrefix(Listing::RequestsOn),
        &["history_lists_every_entry_of_its_service"],
    ),
    (
        Fault::HistoryServicePrefix(Listing::AssignmentsOn),
        &["history_lists_every_entry_of_its_service"],
    ),
    (
        Fault::HistoryOfLiveServicesOnly,
        &["history_lists_every_entry_of_its_service"],
    ),
    (
        Fault::HistoryById(Listing::RequestsOn),
        &["history_newest_first_ties_by_id"],
    ),
    (
        Fault::HistoryById(Listing::AssignmentsOn),
        &["history_newest_first_ties_by_id"],
    ),
    (
        Fault::HistoryTiesByIdDescending(Listing::RequestsOn),
        &["history_newest_first_ties_by_id"],
    ),
    (
        Fault::HistoryTiesByIdDescending(Listing::AssignmentsOn),
        &["history_newest_first_ties_by_id"],
    ),
];

// ----- the reference store, with its faults -----

#[derive(Default)]
struct Tables {
    services: BTreeMap<ServiceName, Service>,
    requests: BTreeMap<RequestId, ChangeRequest>,
    /// Each record as first written (what the stale faults answer).
    first_services: BTreeMap<ServiceName, Service>,
    first_requests: BTreeMap<RequestId, ChangeRequest>,
    /// `RequestCacheMissesOpenUpdates`: the cache.
    cache: BTreeMap<RequestId, ChangeRequest>,
    /// `LaggingReplica`: what the next read of a record answers instead.
    lag_services: BTreeMap<ServiceName, Option<Service>>,
    lag_requests: BTreeMap<RequestId, Option<ChangeRequest>>,
    /// `DueKeepsClosed`: every request that was ever open.
    ever_open: BTreeMap<RequestId, OffsetDateTime>,
    /// `PagesByOffset`: for each reading (listing, customer, filter) and the
    /// last row of a page it answered, how many rows it had listed.
    offsets: BTreeMap<(String, String), usize>,
    /// Operators' assignments, by id.
    assignments: BTreeMap<AssignmentId, Assignment>,
    /// `AssignmentsIndexedLazily`: the assignments not indexed yet.
    unindexed: BTreeSet<AssignmentId>,
}

impl Tables {
    fn put_request(&mut self, request: &ChangeRequest) {
        let id = request.id();
        let before = self.requests.insert(id, request.clone());
        let refresh = before
            .as_ref()
            .is_none_or(|b| b.is_open() != request.is_open());
        if refresh {
            self.cache.insert(id, request.clone());
        }
        self.lag_requests.insert(id, before);
        self.first_requests
            .entry(id)
            .or_insert_with(|| request.clone());
        if request.is_open() {
            self.ever_open.insert(id, request.deadline());
        }
    }
}

struct Gallery {
    fault: Fault,
    tables: Mutex<Tables>,
    /// The thread that built the store, which runs every case: a blocking
    /// commit from another thread is a racer.
    owner: ThreadId,
    rendezvous: Rendezvous,
}

impl Gallery {
    fn new(fault: Fault) -> Gallery {
        Gallery {
            fault,
            tables: Mutex::default(),
            owner: std::thread::current().id(),
            rendezvous: Rendezvous::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(&self, name: &ServiceName) -> ServiceName {
        match self.fault {
            Fault::NamesCutAt64 if name.as_str().len() > 64 => {
                ServiceName::parse(&name.as_str()[..64]).expect("a prefix of a name is a name")
            }
            Fault::PanicsOnLongNames => {
                assert!(name.as_str().len() <= 64, "a name too long for its column");
                name.clone()
            }
            _ => name.clone(),
        }
    }

    /// Whether one write finds the version it expects.
    fn expects(&self, kind: Kind, stored: Option<Version>, w: Option<Version>) -> bool {
        match (stored, w) {
            (None, None) => true,
            (Some(stored), Some(expected)) => {
                stored == expected
                    || (self.fault == Fault::VersionAtMost(kind) && stored <= expected)
            }
            (Some(_), None) => self.fault == Fault::CreateOverwrites(kind),
            (None, Some(_)) => self.fault == Fault::UpdateCreates(kind),
        }
    }

    fn service_ok(&self, tables: &Tables, write: &Write<Service>) -> bool {
        let stored = tables.services.get(&self.key(write.value.name()));
        self.expects(Kind::Service, stored.map(Service::version), write.expected)
    }

    fn request_ok(&self, tables: &Tables, write: &Write<ChangeRequest>) -> bool {
        let stored = tables.requests.get(&write.value.id());
        self.expects(
            Kind::Request,
            stored.map(ChangeRequest::version),
            write.expected,
        )
    }

    fn all_ok(
        &self,
        tables: &Tables,
        services: &[Write<Service>],
        requests: &[Write<ChangeRequest>],
    ) -> bool {
        let checked = match self.fault {
            Fault::ChecksFirstServiceOnly => &services[..services.len().min(1)],
            _ => services,
        };
        checked.iter().all(|w| self.service_ok(tables, w))
            && requests.iter().all(|w| self.request_ok(tables, w))
    }

    fn put_service(&self, tables: &mut Tables, service: &Service) {
        let key = self.key(service.name());
        let service = Service::restore(
            key.clone(),
            *service.contacts(),
            service.version(),
            service.last_requests(),
            service.is_removed(),
        );
        if self.fault == Fault::DeletesRemoved && service.is_removed() {
            tables.services.remove(&key);
            return;
        }
        let before = tables.services.insert(key.clone(), service.clone());
        tables.lag_services.insert(key.clone(), before);
        tables.first_services.entry(key).or_insert(service);
    }

    fn put_all(
        &self,
        tables: &mut Tables,
        services: &[Write<Service>],
        requests: &[Write<ChangeRequest>],
    ) {
        for w in services {
            self.put_service(tables, &w.value);
        }
        for w in requests {
            tables.put_request(&w.value);
        }
    }

    /// Whether none of `assignments` exists yet.
    fn assignments_ok(&self, tables: &Tables, assignments: &[Assignment]) -> bool {
        matches!(
            self.fault,
            Fault::AssignmentOverwrites | Fault::ExistingAssignmentSkipped
        ) || assignments
            .iter()
            .all(|a| !tables.assignments.contains_key(&a.id()))
    }

    fn put_assignments(&self, tables: &mut Tables, assignments: &[Assignment]) {
        if self.fault == Fault::AssignmentsDropped {
            return;
        }
        for a in assignments {
            let exists = tables.assignments.contains_key(&a.id());
            if !(exists && self.fault == Fault::ExistingAssignmentSkipped) {
                tables.assignments.insert(a.id(), a.clone());
            }
            if self.fault == Fault::AssignmentsIndexedLazily {
                tables.unindexed.insert(a.id());
            }
        }
    }

    /// Whether every write of `changes` finds what it expects.
    fn batch_ok(&self, tables: &Tables, changes: &Changes) -> bool {
        self.all_ok(tables, &changes.services, &changes.requests)
            && self.assignments_ok(tables, &changes.assignments)
    }

    /// Writes every record of `changes`.
    fn put_batch(&self, tables: &mut Tables, changes: &Changes) {
        self.put_all(tables, &changes.services, &changes.requests);
        self.put_assignments(tables, &changes.assignments);
    }

    /// Checks and writes, record by record, stopping at the first conflict.
    fn record_by_record(&self, tables: &mut Tables, changes: &Changes, first: First) -> bool {
        let services = |tables: &mut Tables| {
            changes.services.iter().all(|w| {
                let ok = self.service_ok(tables, w);
                if ok {
                    self.put_service(tables, &w.value);
                }
                ok
            })
        };
        let requests = |tables: &mut Tables| {
            changes.requests.iter().all(|w| {
                let ok = self.request_ok(tables, w);
                if ok {
                    tables.put_request(&w.value);
                }
                ok
            })
        };
        let assignments = |tables: &mut Tables| {
            changes.assignments.iter().all(|a| {
                let ok = self.assignments_ok(tables, std::slice::from_ref(a));
                if ok {
                    self.put_assignments(tables, std::slice::from_ref(a));
                }
                ok
            })
        };
        in_order(first, &services, &requests, tables) && assignments(tables)
    }

    /// Checks and writes one table, then the other.
    fn per_table(&self, tables: &mut Tables, changes: &Changes, first: First) -> bool {
        let services = |tables: &mut Tables| {
            let ok = self.all_ok(tables, &changes.services, &[])
                && self.assignments_ok(tables, &changes.assignments);
            if ok {
                self.put_all(tables, &changes.services, &[]);
                self.put_assignments(tables, &changes.assignments);
            }
            ok
        };
        let requests = |tables: &mut Tables| {
            let ok = self.all_ok(tables, &[], &changes.requests);
            if ok {
                self.put_all(tables, &[], &changes.requests);
            }
            ok
        };
        in_order(first, &services, &requests, tables)
    }

    /// Checks and writes the assignments in a transaction of their own,
    /// `when` the rest of the batch is written in another.
    fn assignments_apart(&self, tables: &mut Tables, changes: &Changes, when: When) -> bool {
        let rest = |tables: &mut Tables| {
            let ok = self.all_ok(tables, &changes.services, &changes.requests);
            if ok {
                self.put_all(tables, &changes.services, &changes.requests);
            }
            ok
        };
        let assignments = |tables: &mut Tables| {
            let ok = self.assignments_ok(tables, &changes.assignments);
            if ok {
                self.put_assignments(tables, &changes.assignments);
            }
            ok
        };
        let steps: [&dyn Fn(&mut Tables) -> bool; 2] = match when {
            When::Before => [&assignments, &rest],
            When::After => [&rest, &assignments],
        };
        steps.iter().all(|step| step(tables))
    }

    /// One commit in one critical section, with this store's fault.
    fn commit_locked(&self, changes: &Changes) -> bool {
        let mut tables = self.lock();
        // `AssignmentsIndexedLazily`: the indexer catches up with the
        // commits before this one.
        tables.unindexed.clear();
        match self.fault {
            Fault::RecordByRecord(first) => self.record_by_record(&mut tables, changes, first),
            Fault::TransactionPerTable(first) => self.per_table(&mut tables, changes, first),
            Fault::AutocommitWithoutService if changes.services.is_empty() => {
                self.record_by_record(&mut tables, changes, First::Requests)
            }
            Fault::AssignmentsApart(when) => self.assignments_apart(&mut tables, changes, when),
            _ => {
                let ok = self.batch_ok(&tables, changes);
                if ok {
                    self.put_batch(&mut tables, changes);
                }
                ok
            }
        }
    }

    /// A racer's commit in a not-isolated store: every racer of the round
    /// checks first; then the batches in the faulty scope are written without
    /// a new check, and only then do the others commit, each in one critical
    /// section. The interleaving that breaks the store is certain, not left
    /// to timing.
    async fn commit_racing(&self, changes: &Changes, scope: Scope, meet: Meet) -> bool {
        let apart = scope.covers(changes);
        let checked = apart && self.batch_ok(&self.lock(), changes);
        self.rendezvous.arrive(apart);
        match meet {
            Meet::Alone => {}
            Meet::Threads => self.rendezvous.all_arrived().await,
            Meet::Tasks => yield_once().await,
        }
        let ok = if apart {
            if checked {
                self.put_batch(&mut self.lock(), changes);
            }
            self.rendezvous.written();
            checked
        } else {
            self.rendezvous.writes_done().await;
            self.commit_locked(changes)
        };
        self.rendezvous.leave();
        ok
    }

    /// A commit, whether blocking or async: `meet` says how a racer of a
    /// not-isolated store meets the others of its round.
    async fn commit_as(&self, changes: Changes, meet: Meet) -> Result<(), CommitError<Infallible>> {
        // Two writes of one record in one batch: a conflict, as the contract allows.
        let mut names: Vec<&ServiceName> =
            changes.services.iter().map(|w| w.value.name()).collect();
        let mut ids: Vec<RequestId> = changes.requests.iter().map(|w| w.value.id()).collect();
        let mut assignments: Vec<AssignmentId> =
            changes.assignments.iter().map(Assignment::id).collect();
        names.sort();
        names.dedup();
        ids.sort();
        ids.dedup();
        assignments.sort();
        assignments.dedup();
        let twice = assignments.len() != changes.assignments.len()
            && self.fault != Fault::AssignmentTwiceInBatch;
        if names.len() != changes.services.len() || ids.len() != changes.requests.len() || twice {
            return Err(CommitError::Conflict);
        }
        let ok = match self.fault {
            Fault::NotIsolated(scope) => self.commit_racing(&changes, scope, meet).await,
            _ => self.commit_locked(&changes),
        };
        if ok {
            Ok(())
        } else {
            Err(CommitError::Conflict)
        }
    }
}

/// How a commit meets the others racing with it, in a not-isolated store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meet {
    /// Not a racer: a blocking commit on the thread that runs the cases, a
    /// round of one.
    Alone,
    /// A blocking commit on a racer thread: its round is the [`RACERS`]
    /// threads of a race.
    Threads,
    /// An async commit: its round is every commit that arrives before it is
    /// polled again. The async runner polls the racers' commits in turn, so
    /// all of a race arrive in the first turn; a commit outside a race is a
    /// round of one.
    Tasks,
}

/// One page asked of a listing, its cursor as the listing's sort key.
struct Paging<K> {
    listing: Listing,
    /// Which reading of the listing (customer, filter, time): what an offset
    /// cursor would be valid for.
    reading: String,
    after: Option<K>,
    limit: usize,
}

impl Gallery {
    /// The page of `rows` (sorted by `key`) that `paging` asks for, with
    /// this store's paging fault. `tie` is the time a `LimitWithTies` store
    /// extends a page by.
    fn page<T, K: Ord + std::fmt::Debug>(
        &self,
        tables: &mut Tables,
        paging: &Paging<K>,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> K,
        tie: Option<fn(&T) -> OffsetDateTime>,
    ) -> Vec<T> {
        let reading = |k: &K| {
            (
                format!("{:?} {}", paging.listing, paging.reading),
                format!("{k:?}"),
            )
        };
        let start = match (&paging.after, self.fault) {
            (None, _) | (Some(_), Fault::IgnoresAfter) => 0,
            (Some(after), Fault::PagesByOffset(listing)) if listing == paging.listing => {
                // The cursor is the count of rows listed before it.
                tables.offsets.get(&reading(after)).copied().unwrap_or(0)
            }
            (Some(after), Fault::AfterInclusive) => rows.partition_point(|r| key(r) < *after),
            (Some(after), _) => rows.partition_point(|r| key(r) <= *after),
        };
        let start = start.min(rows.len());
        let mut end = rows.len().min(start + paging.limit);
        let with_ties = match paging.listing {
            Listing::Requests | Listing::Due => self.fault == Fault::LimitWithTies,
            Listing::RequestsOn | Listing::AssignmentsOn => {
                self.fault == Fault::HistoryLimitWithTies
            }
            Listing::Contacts => false,
        };
        if let (true, Some(time)) = (with_ties, tie)
            && end > start
        {
            while end < rows.len() && time(&rows[end]) == time(&rows[end - 1]) {
                end += 1;
            }
        }
        rows.truncate(end);
        let page = rows.split_off(start);
        if let Some(last) = page.last() {
            tables.offsets.insert(reading(&key(last)), end);
        }
        page
    }

    /// Whether `filter` lists `request` (of which `customer` is a party) at
    /// `now`, with this store's filter fault.
    fn filtered(
        &self,
        filter: &RequestFilter,
        request: &ChangeRequest,
        customer: CustomerId,
        now: OffsetDateTime,
    ) -> bool {
        let state = match self.fault {
            Fault::StateFilterRecorded => request.state().name(),
            _ => request.state_name_at(now),
        };
        let part = |part: Part| match (part, self.fault) {
            (Part::WaitingForMe, Fault::WaitingIgnoresConfirmations) => {
                request.is_live(now) && request.confirmers().contains(&customer)
            }
            _ => part.of(request, customer, now),
        };
        let service = match self.fault {
            Fault::ServiceFilterIgnored => None,
            _ => filter.service_name(),
        };
        filter.states().any(|s| s == state)
            && filter.parts().any(part)
            && service.is_none_or(|s| s == request.service())
    }
}

impl Gallery {
    /// Whether the history listing `listing` takes an entry of `service`
    /// for one of `asked`, with this store's fault.
    fn on_service(&self, listing: Listing, service: &ServiceName, asked: &ServiceName) -> bool {
        match self.fault {
            Fault::HistoryServiceIgnored(l) if l == listing => true,
            Fault::HistoryServicePrefix(l) if l == listing => {
                service.as_str().starts_with(asked.as_str())
            }
            _ => service == asked,
        }
    }

    /// Whether this store answers nothing for the history of `name`.
    fn history_forgotten(&self, tables: &Tables, name: &ServiceName) -> bool {
        self.fault == Fault::HistoryOfLiveServicesOnly
            && tables
                .services
                .get(&self.key(name))
                .is_some_and(Service::is_removed)
    }

    /// The sort key of an entry (its time and id) in the history listing
    /// `listing`: newest first, ties by id, or this store's fault.
    fn history_order(
        &self,
        listing: Listing,
    ) -> impl Fn(OffsetDateTime, [u8; 16]) -> (Reverse<OffsetDateTime>, [u8; 16]) + Copy + use<>
    {
        let by_id = self.fault == Fault::HistoryById(listing);
        let descending = self.fault == Fault::HistoryTiesByIdDescending(listing);
        move |at, id| {
            let at = if by_id {
                OffsetDateTime::UNIX_EPOCH
            } else {
                at
            };
            let id = if descending { id.map(|b| !b) } else { id };
            (Reverse(at), id)
        }
    }
}

/// Runs the step for services and the step for requests, `first` first,
/// stopping at the first that fails.
fn in_order(
    first: First,
    services: &dyn Fn(&mut Tables) -> bool,
    requests: &dyn Fn(&mut Tables) -> bool,
    tables: &mut Tables,
) -> bool {
    let steps = match first {
        First::Services => [services, requests],
        First::Requests => [requests, services],
    };
    steps.iter().all(|step| step(tables))
}

/// Where a not-isolated store's racers meet: all of a round check before
/// any writes, and those that write apart go first. Racer threads and racing
/// commit futures wait here alike, on wakers.
#[derive(Default)]
struct Rendezvous {
    round: Mutex<Round>,
}

#[derive(Default)]
struct Round {
    arrived: usize,
    apart: usize,
    written: usize,
    left: usize,
    /// Who waits for the round to move.
    waiting: Vec<Waker>,
}

impl Rendezvous {
    fn lock(&self) -> MutexGuard<'_, Round> {
        self.round.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the round on and wakes everyone waiting.
    fn update(&self, change: impl FnOnce(&mut Round)) {
        let waiting = {
            let mut round = self.lock();
            change(&mut round);
            std::mem::take(&mut round.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }

    /// Waits until `done` holds. It always comes to hold: every race has
    /// [`RACERS`] racers, each arrives, and those that write apart write
    /// without waiting.
    async fn wait_until(&self, done: impl Fn(&Round) -> bool) {
        poll_fn(|cx| {
            let mut round = self.lock();
            if done(&round) {
                Poll::Ready(())
            } else {
                round.waiting.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }

    fn arrive(&self, apart: bool) {
        self.update(|round| {
            round.arrived += 1;
            round.apart += usize::from(apart);
        });
    }

    async fn all_arrived(&self) {
        self.wait_until(|round| round.arrived >= RACERS).await;
    }

    fn written(&self) {
        self.update(|round| round.written += 1);
    }

    async fn writes_done(&self) {
        self.wait_until(|round| round.written >= round.apart).await;
    }

    fn leave(&self) {
        self.update(|round| {
            round.left += 1;
            if round.left >= round.arrived {
                *round = Round::default();
            }
        });
    }
}

/// Pending once, waking its task at once: every other future its task
/// polls in the same turn runs to its own first pending point before this
/// one goes on.
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// Runs `future` to its end on this thread, parked while it waits (a racer
/// thread at the rendezvous).
fn wait_here<F: Future>(future: F) -> F::Output {
    /// Wakes a parked thread.
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

impl Store for Gallery {
    type Error = Infallible;

    fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
        let mut tables = self.lock();
        let key = self.key(name);
        if self.fault == Fault::LaggingReplica
            && let Some(before) = tables.lag_services.remove(&key)
        {
            return Ok(before);
        }
        Ok(tables.services.get(&key).cloned())
    }

    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
        let mut tables = self.lock();
        match self.fault {
            Fault::LaggingReplica => {
                if let Some(before) = tables.lag_requests.remove(&id) {
                    return Ok(before);
                }
            }
            Fault::RequestCacheMissesOpenUpdates => return Ok(tables.cache.get(&id).cloned()),
            _ => {}
        }
        Ok(tables.requests.get(&id).cloned())
    }

    fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<(ServiceName, Roles)>, Infallible> {
        let mut tables = self.lock();
        // A map by name: sorted by name.
        let rows: Vec<(ServiceName, Roles)> = tables
            .services
            .iter()
            .filter(|(name, service)| {
                let indexed = match self.fault {
                    Fault::HolderIndexOnCreation => &tables.first_services[*name],
                    _ => service,
                };
                let listed = !service.is_removed() || self.fault == Fault::ListsRemoved;
                listed && !indexed.roles_of(customer).is_empty()
            })
            .map(|(name, service)| {
                let listed = match self.fault {
                    Fault::ContactRolesAsCreated => &tables.first_services[name],
                    _ => service,
                };
                (name.clone(), listed.roles_of(customer))
            })
            .collect();
        let page = Paging {
            listing: Listing::Contacts,
            reading: format!("{customer}"),
            after: after.cloned(),
            limit,
        };
        Ok(self.page(&mut tables, &page, rows, |(name, _)| name.clone(), None))
    }

    fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        let mut tables = self.lock();
        let mut rows: Vec<ChangeRequest> = tables
            .requests
            .values()
            .filter(|r| match self.fault {
                Fault::OutgoingNotIndexed => r.requester() == customer || r.incoming() == customer,
                _ => r.is_party(customer),
            })
            .filter(|r| self.filtered(filter, r, customer, now))
            .map(|r| match self.fault {
                Fault::RequestsOfAsCreated => tables.first_requests[&r.id()].clone(),
                _ => r.clone(),
            })
            .collect();
        // Newest first, ties by id (`RequestTiesByIdDescending`: by the id's
        // complement, highest first).
        let descending = self.fault == Fault::RequestTiesByIdDescending;
        let order = move |at: OffsetDateTime, id: RequestId| {
            let id = if descending {
                RequestId::from_bytes(id.as_bytes().map(|b| !b))
            } else {
                id
            };
            (Reverse(at), id)
        };
        let key = move |r: &ChangeRequest| order(r.opened_at(), r.id());
        rows.sort_by_key(key);
        let page = Paging {
            listing: Listing::Requests,
            reading: format!("{customer} {filter:?} {now}"),
            after: after.map(|k| order(k.at, k.id)),
            limit,
        };
        Ok(self.page(
            &mut tables,
            &page,
            rows,
            key,
            Some(ChangeRequest::opened_at),
        ))
    }

    fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        let mut tables = self.lock();
        let mut due: Vec<ChangeRequest> = tables
            .requests
            .values()
            .filter(|r| {
                r.is_open()
                    || (self.fault == Fault::DueKeepsClosed
                        && tables.ever_open.contains_key(&r.id()))
            })
            .filter(|r| match self.fault {
                Fault::DueBeforeDeadlineOnly => r.deadline() < now,
                _ => r.deadline() <= now,
            })
            .map(|r| match self.fault {
                Fault::DueAsCreated => tables.first_requests[&r.id()].clone(),
                _ => r.clone(),
            })
            .collect();
        // `DueById`: an index on the id alone, paged by id.
        let by_id = self.fault == Fault::DueById;
        let key = move |r: &ChangeRequest| {
            let at = if by_id {
                OffsetDateTime::UNIX_EPOCH
            } else {
                r.deadline()
            };
            (at, r.id())
        };
        due.sort_by_key(key);
        let page = Paging {
            listing: Listing::Due,
            reading: format!("{now}"),
            after: after.map(|k| {
                if by_id {
                    (OffsetDateTime::UNIX_EPOCH, k.id)
                } else {
                    (k.at, k.id)
                }
            }),
            limit,
        };
        Ok(self.page(&mut tables, &page, due, key, Some(ChangeRequest::deadline)))
    }

    fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        let listing = Listing::RequestsOn;
        let mut tables = self.lock();
        if self.history_forgotten(&tables, name) {
            return Ok(Vec::new());
        }
        let mut rows: Vec<ChangeRequest> = tables
            .requests
            .values()
            .filter(|r| self.on_service(listing, r.service(), name))
            .filter(|r| r.is_open() || self.fault != Fault::HistoryOpenOnly)
            .map(|r| match self.fault {
                Fault::HistoryAsCreated => tables.first_requests[&r.id()].clone(),
                _ => r.clone(),
            })
            .collect();
        let order = self.history_order(listing);
        let key = move |r: &ChangeRequest| order(r.opened_at(), *r.id().as_bytes());
        rows.sort_by_key(key);
        let page = Paging {
            listing,
            reading: name.to_string(),
            after: after.map(|k| order(k.at, k.id)),
            limit,
        };
        Ok(self.page(
            &mut tables,
            &page,
            rows,
            key,
            Some(ChangeRequest::opened_at),
        ))
    }

    fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<Assignment>, Infallible> {
        let listing = Listing::AssignmentsOn;
        let mut tables = self.lock();
        if self.history_forgotten(&tables, name) {
            return Ok(Vec::new());
        }
        let mut rows: Vec<Assignment> = tables
            .assignments
            .values()
            .filter(|a| self.on_service(listing, a.service(), name))
            .filter(|a| !tables.unindexed.contains(&a.id()))
            .cloned()
            .collect();
        let order = self.history_order(listing);
        let key = move |a: &Assignment| order(a.at(), *a.id().as_bytes());
        rows.sort_by_key(key);
        let page = Paging {
            listing,
            reading: name.to_string(),
            after: after.map(|k| order(k.at, k.id)),
            limit,
        };
        Ok(self.page(&mut tables, &page, rows, key, Some(Assignment::at)))
    }

    fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
        let meet = if std::thread::current().id() == self.owner {
            Meet::Alone
        } else {
            Meet::Threads
        };
        wait_here(self.commit_as(changes, meet))
    }
}

/// The same store through the async traits: the reads answer at once, a
/// commit may wait at the rendezvous.
impl AsyncStore for Gallery {
    type Error = Infallible;

    async fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
        Store::service(self, name)
    }

    async fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
        Store::request(self, id)
    }

    async fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        Store::requests_on(self, name, after, limit)
    }

    async fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<Assignment>, Infallible> {
        Store::assignments_on(self, name, after, limit)
    }

    async fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<(ServiceName, Roles)>, Infallible> {
        Store::contacts_of(self, customer, after, limit)
    }

    async fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        Store::requests_of(self, customer, filter, now, after, limit)
    }

    async fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        Store::due_for_expiry(self, now, after, limit)
    }

    async fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
        self.commit_as(changes, Meet::Tasks).await
    }
}

// ----- the tests -----

/// The suite's two runners, which run the same cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runner {
    /// [`run_store_suite`]: racers on threads.
    Blocking,
    /// [`run_async_store_suite`] on a tokio runtime: racers' commits polled
    /// together in one future.
    Async,
}

impl Runner {
    fn run(self, fault: Fault) -> Report {
        let make = || Gallery::new(fault);
        match self {
            Runner::Blocking => run_store_suite(make),
            Runner::Async => tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime")
                .block_on(run_async_store_suite(|| std::future::ready(make()))),
        }
    }
}

/// What one gallery store failed under one runner.
struct Run {
    runner: Runner,
    fault: Fault,
    /// The cases it must fail.
    expected: &'static [&'static str],
    /// The failed cases.
    failed: Vec<&'static str>,
    /// Each failed case with the suite's reason.
    why: Vec<String>,
}

impl Run {
    /// Runs the suite on the gallery store with `fault` under `runner`.
    fn of(runner: Runner, fault: Fault, expected: &'static [&'static str]) -> Run {
        let report = runner.run(fault);
        let failed = report.failed.iter().map(|(case, _)| *case).collect();
        let why = report
            .failed
            .iter()
            .map(|(case, why)| format!("{case}: {why}"))
            .collect();
        Run {
            runner,
            fault,
            expected,
            failed,
            why,
        }
    }
}

/// Every gallery store's failures under each runner, run once for all the
/// tests, on as many threads as the machine has cores: each store is built
/// and run on one of them, and its race cases start threads of their own.
fn results() -> &'static [Run] {
    static RESULTS: OnceLock<Vec<Run>> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let jobs: Vec<(Runner, Fault, &'static [&'static str])> = [Runner::Blocking, Runner::Async]
            .into_iter()
            .flat_map(|runner| {
                GALLERY
                    .iter()
                    .map(move |(fault, expected)| (runner, *fault, *expected))
            })
            .collect();
        let next = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let mut runs: Vec<(usize, Run)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let job = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&(runner, fault, expected)) = jobs.get(job) else {
                                return done;
                            };
                            done.push((job, Run::of(runner, fault, expected)));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a gallery worker panicked"))
                .collect()
        });
        runs.sort_by_key(|(job, _)| *job);
        runs.into_iter().map(|(_, run)| run).collect()
    })
}

#[test]
fn each_broken_store_fails_exactly_its_cases() {
    // R31, R6, R29, R35, R44, R45, R46, R47: the table below is the
    // gallery, the same for both runners.
    let mut wrong = Vec::new();
    println!("{:<9} {:<42} fails", "runner", "gallery store");
    for run in results() {
        let Run {
            runner,
            fault,
            expected,
            failed,
            why,
        } = run;
        let (runner, fault) = (format!("{runner:?}"), format!("{fault:?}"));
        println!("{runner:<9} {fault:<42} {}", failed.join(", "));
        if failed != expected {
            wrong.push(format!(
                "{runner} {fault}: fails {failed:?}, expected {expected:?}\n    {}",
                why.join("\n    ")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_case_is_the_only_failure_of_some_broken_store() {
    // R44: the rules hold on every store that passes the suite, so no case
    // may be dead weight: each has a witness, a store only it catches, under
    // each runner.
    let lonely: Vec<(Runner, &str)> = [Runner::Blocking, Runner::Async]
        .into_iter()
        .flat_map(|runner| CASES.iter().map(move |case| (runner, *case)))
        .filter(|(runner, case)| {
            !results()
                .iter()
                .any(|run| run.runner == *runner && run.failed == [*case])
        })
        .collect();
    assert!(lonely.is_empty(), "cases without a witness: {lonely:?}");
}

#[test]
fn a_case_that_panics_fails_with_the_panic() {
    // R7: a store that panics on a long name fails the case that stores
    // one, under each runner, and the report says why.
    let panicked: Vec<(Runner, &[String])> = results()
        .iter()
        .filter(|run| run.fault == Fault::PanicsOnLongNames)
        .map(|run| (run.runner, run.why.as_slice()))
        .collect();
    assert_eq!(panicked.len(), 2);
    for (runner, why) in panicked {
        assert_eq!(
            why,
            ["service_round_trip: panicked: a name too long for its column"],
            "{runner:?}"
        );
    }
}
