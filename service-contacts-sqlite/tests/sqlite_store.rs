//! The `SQLite` store against the core's `Store` contract: the conformance
//! suite, the query plans of the listings, keyset paging under every filter
//! while commits land, random worlds whose every listing agrees with a full
//! scan, requests surviving a reopen, four connections racing on one file,
//! busy locks, interrupted commits, bad files and rows, operators'
//! assignments and a service's history paged (R6, R26, R27, R29, R31, R34,
//! R35, R45, R46, R47).

// The core's test helpers and its listing harness, included rather than
// copied.
#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/listings/mod.rs"]
mod listings;
use common::{last_token, open_tech, race};
// The store's own shared helpers.
#[path = "common/sqlite.rs"]
mod sqlite;
use sqlite::{TempDir, all_contacts, all_requests, opened_key, read_pages};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::slice;
use std::time::Duration as StdDuration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rusqlite::Connection;
use service_contacts::columns::{RequestColumns, ServiceColumns, part_code};
use service_contacts::testing::{CASES, run_store_suite};
use service_contacts::{
    ActError, Actor, Assignment, ChangeRequest, Changes, CommitError, Contacts, CustomerId, Driver,
    DriverError, Edit, Event, EventKind, FailureReason, HistoryEntry, HistoryKey, MemoryDirectory,
    MemoryNotifier, MemoryStore, Message, OperatorAct, PageSize, Part, Refusal, RequestFilter,
    RequestId, RequestKey, RequestState, Role, Roles, Service, ServiceName, StateName, Store,
    SubmitError, Version, Write,
};
use service_contacts_sqlite::{APPLICATION_ID, Options, SqliteStore, SqliteStoreError};
use time::{Duration, OffsetDateTime, macros::datetime};

type TestDriver<'a> = Driver<&'a SqliteStore, &'a MemoryNotifier, &'a MemoryDirectory>;

// ----- fixtures -----

fn id(n: u32) -> CustomerId {
    format!("CU{n}-OVH").parse().unwrap()
}

fn name(text: &str) -> ServiceName {
    text.parse().unwrap()
}

fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A directory where customers 0..100 exist in good standing.
fn directory() -> MemoryDirectory {
    let directory = MemoryDirectory::new();
    for n in 0..100 {
        directory.add(id(n));
    }
    directory
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The names in a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The requests due at `now`, read `page` at a time (R29, R45).
fn all_due(store: &SqliteStore, now: OffsetDateTime, page: usize) -> Vec<ChangeRequest> {
    read_pages(page, |last: Option<&ChangeRequest>, n| {
        let after = last.map(|r| RequestKey {
            at: r.deadline(),
            id: r.id(),
        });
        store.due_for_expiry(now, after, n)
    })
}

// ----- the contract -----

#[test]
fn conforms_to_the_store_suite() {
    // R31 (versions, all or nothing, racing commits), R6, R35, R29 (the
    // indexed listings): every case on a fresh file.
    let dir = TempDir::new("suite");
    let mut n = 0;
    let report = run_store_suite(|| {
        n += 1;
        SqliteStore::open(dir.file(&format!("case-{n}.db"))).unwrap()
    });
    report.assert_passed();
    assert_eq!(report.passed, CASES);
}

#[test]
fn listings_are_served_by_indexes() {
    // R6, R35, R29, R45, R47: "my contacts", "my requests" (with and without
    // filters), "due for expiry" and a service's history (its requests, its
    // assignments, R46) cost in proportion to one page: each
    // query starts at its cursor (every listing query binds one; the first
    // page binds a position before everything) inside an index, reads it in
    // the listing's order (no temporary B-tree to sort, so `LIMIT` stops the
    // search) and never scans a table.
    let dir = TempDir::new("plans");
    let store = SqliteStore::open(dir.file("plans.db")).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    // 2000 services in one commit, 40 holders; then 100 requests.
    let services: Vec<Write<Service>> = (0..2000u32)
        .map(|n| {
            let contacts = Contacts::new(id(n % 40), id((n + 1) % 40), id((n + 2) % 40));
            Write {
                value: Service::new(name(&format!("s{n}.example")), contacts, Version::FIRST),
                expected: None,
            }
        })
        .collect();
    store
        .commit(Changes {
            services,
            ..Changes::default()
        })
        .unwrap();
    for n in 0..100u32 {
        let service = name(&format!("s{n}.example"));
        let _ = open_tech(&driver, &service, id(50 + n % 40), t0(), u64::from(n));
    }
    // And 100 operators' assignments, 4 on each of 25 services whose
    // holders are customers 30 to 32 (R46).
    let act = OperatorAct::new("jane@support".parse().unwrap(), "plans".parse().unwrap());
    for n in 0..100u32 {
        let service = name(&format!("s{}.example", 110 + n % 25 * 40));
        let edit = Edit::new(service).with(Role::Billing, id(60 + n % 40));
        let at = t0() + Duration::seconds(i64::from(n));
        let _ = driver
            .assign(&edit, &act, at, &mut rng(u64::from(n)))
            .unwrap();
    }
    let before = store.query_plans().unwrap();
    // With the statistics a long-running database gathers, too.
    Connection::open(store.path())
        .unwrap()
        .execute_batch("ANALYZE")
        .unwrap();
    let reopened = SqliteStore::open(store.path()).unwrap();
    let after = reopened.query_plans().unwrap();
    // The searches a filter makes: every (part, recorded state) for no
    // filter; only the `waiting` rows, of requests recorded as awaiting, for
    // "waiting for me"; one; the requester and incoming rows of expired and
    // awaiting requests. The sample filters stand for every number of
    // searches in between, one statement each.
    for (filter, searches) in [
        (RequestFilter::all(), 19),
        (RequestFilter::all().part(Part::WaitingForMe), 1),
        (
            RequestFilter::all()
                .part(Part::AskedByMe)
                .state(StateName::Done),
            1,
        ),
        (
            RequestFilter::all()
                .part(Part::AskedByMe)
                .part(Part::ComingToMe)
                .state(StateName::Expired),
            4,
        ),
    ] {
        assert_eq!(filter.index_ranges().len(), searches, "{filter:?}");
    }
    let arms: Vec<(String, RequestFilter, usize)> = service_contacts_sqlite::sample_filters()
        .into_iter()
        .map(|(name, filter)| {
            let searches = filter.index_ranges().len();
            (name, filter, searches)
        })
        .collect();
    let searches: Vec<usize> = arms.iter().map(|(_, _, n)| *n).collect();
    assert_eq!(searches.first(), Some(&1));
    assert_eq!(searches.last(), Some(&19));
    for plans in [before, after] {
        let plans: BTreeMap<&str, Vec<String>> = plans
            .iter()
            .map(|(name, lines)| (name.as_str(), lines.clone()))
            .collect();
        assert_plans(&plans, &arms);
    }
    // And the listings answer on this database, page by page.
    let customer = id(3);
    let contacts = all_contacts(&reopened, customer, 7);
    assert_eq!(contacts.len(), 150);
    assert!(contacts.windows(2).all(|w| w[0].0 < w[1].0));
    let incoming = id(53);
    assert_eq!(
        all_requests(&reopened, incoming, &RequestFilter::all(), t0(), 1).len(),
        3
    );
    assert_eq!(all_due(&reopened, t0() + Duration::days(7), 9).len(), 100);
    let history = read_pages(3, |last: Option<&Assignment>, n| {
        reopened.assignments_on(&name("s150.example"), last.map(Assignment::key), n)
    });
    assert_eq!(history.len(), 4);
    let requests = read_pages(1, |last: Option<&ChangeRequest>, n| {
        let after = last.map(|r| HistoryEntry::Request(r.clone()).key());
        reopened.requests_on(&name("s7.example"), after, n)
    });
    assert_eq!(requests.len(), 1);
}

/// The tokens mailed to each recipient for each request.
type Tokens = BTreeMap<(CustomerId, RequestId), String>;

/// A reseller's world in `store`: the reseller (customer 1) holds every
/// role of 1,000 services and asked for 3,000 changes on them, all
/// confirmed by them and waiting for their incoming contacts, opened a
/// second apart; among them (at times of their own) 5 requests of customer
/// 60 give the reseller a role and wait for both. The 5 (oldest first) and
/// the tokens mailed for them.
fn reseller_world(store: &SqliteStore) -> (Vec<RequestId>, Tokens) {
    let (reseller, owner) = (id(1), id(60));
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    // Built in memory (fast), then copied into the file in one commit.
    let memory = MemoryStore::new();
    let built = Driver::new(&memory, &notifier, &directory);
    let mailed = || -> Tokens {
        notifier
            .take()
            .into_iter()
            .filter_map(|m| Some(((m.to(), m.request()?), m.token()?.reveal().clone())))
            .collect()
    };
    let resold = |n: u32| name(&format!("r{n}.example"));
    let of_owner = |n: u32| name(&format!("w{n}.example"));
    built
        .import_services((0..1000).map(|n| (resold(n), Contacts::all(reseller))))
        .unwrap();
    built
        .import_services((0..5).map(|n| (of_owner(n), Contacts::all(owner))))
        .unwrap();
    let mut seeds = rng(5);
    let (mut waiting_for_reseller, mut tokens) = (Vec::new(), BTreeMap::new());
    for n in 0..1000u32 {
        for (k, role) in (0u32..).zip(Role::ALL) {
            let at = t0() + Duration::seconds(i64::from(n * 3 + k));
            let edit = Edit::new(resold(n)).with(role, id(2 + n % 50));
            let request = built.submit(&edit, reseller, at, &mut seeds).unwrap().value[0];
            let token = mailed().remove(&(reseller, request)).unwrap();
            let confirmed = built.accept(request, reseller, &token, at).unwrap();
            assert!(confirmed.all_delivered());
        }
        if n % 200 == 100 {
            let at = t0() + Duration::seconds(i64::from(n * 3));
            let request = open_tech(&built, &of_owner(n / 200), reseller, at, u64::from(n));
            waiting_for_reseller.push(request);
            tokens.extend(mailed());
        }
    }
    let changes = Changes {
        services: memory
            .services()
            .into_iter()
            .map(|value| Write {
                value,
                expected: None,
            })
            .collect(),
        requests: memory
            .requests()
            .into_iter()
            .map(|value| Write {
                value,
                expected: None,
            })
            .collect(),
        ..Changes::default()
    };
    store.commit(changes).unwrap();
    (waiting_for_reseller, tokens)
}

#[test]
fn waiting_for_me_reads_only_what_waits() {
    // R35, R45: "waiting for me" searches the customer's own `waiting` rows,
    // one per request that still waits for them, so its cost follows what
    // it lists, not what the customer sits in: a reseller with 3,000 open
    // requests they already confirmed (each still waiting for its incoming
    // contact) and 5 that wait for them reads 5 party rows for the whole
    // listing and none for an empty page, where a search of their awaiting
    // requester and incoming rows would read 3,005. Confirming removes the
    // row in the commit that records it; a terminal request has none.
    // (Counted rows, not timings: the count is what a page costs.)
    let (reseller, owner) = (id(1), id(60));
    let store_dir = TempDir::new("waiting");
    let store = SqliteStore::open(store_dir.file("waiting.db")).unwrap();
    let (mut waiting_for_reseller, tokens) = reseller_world(&store);
    store.audit().unwrap();
    let raw = Connection::open(store.path()).unwrap();
    let count = |sql: &str| -> i64 {
        raw.query_row(sql, [reseller.as_str()], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        count(
            "SELECT count(*) FROM request_parties WHERE customer = ?1 \
             AND part IN ('requester', 'incoming') AND state = 'validatingByCustomers'"
        ),
        3005
    );
    assert_eq!(
        count("SELECT count(*) FROM request_parties WHERE customer = ?1 AND part = 'waiting'"),
        5
    );

    let waiting = RequestFilter::all().part(Part::WaitingForMe);
    let now = t0() + Duration::hours(2);
    let rows_read = |list: &dyn Fn() -> Vec<ChangeRequest>| {
        let before = store.party_rows_read();
        let listed = list();
        (listed, store.party_rows_read() - before)
    };
    waiting_for_reseller.reverse(); // newest first
    // The whole listing, one page.
    let (listed, read) = rows_read(&|| all_requests(&store, reseller, &waiting, now, 10));
    assert_eq!(
        listed.iter().map(ChangeRequest::id).collect::<Vec<_>>(),
        waiting_for_reseller
    );
    assert_eq!(read, 5);
    // An empty page, after the last: no row read.
    let last = opened_key(&listed[4]);
    let (empty, read) = rows_read(&|| {
        store
            .requests_of(reseller, &waiting, now, Some(last), 10)
            .unwrap()
    });
    assert!(empty.is_empty());
    assert_eq!(read, 0);
    // Past their deadline the requests no longer wait: the rows are read,
    // and the filter's final check lists none.
    let late = t0() + Duration::days(8);
    let (expired, read) = rows_read(&|| all_requests(&store, reseller, &waiting, late, 10));
    assert!(expired.is_empty());
    assert_eq!(read, 5);
    // The other listings still see the 3,000: "asked by me, awaiting".
    let asked = RequestFilter::all()
        .part(Part::AskedByMe)
        .state(StateName::ValidatingByCustomers);
    assert_eq!(all_requests(&store, reseller, &asked, now, 500).len(), 3000);

    // The reseller confirms the five: each commit removes their row (the
    // request still waits for its owner); the owner's confirmation applies
    // the change and removes the last.
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    for (k, request) in waiting_for_reseller.iter().enumerate() {
        let token = &tokens[&(reseller, *request)];
        let confirmed = driver.accept(*request, reseller, token, now).unwrap();
        assert!(confirmed.all_delivered());
        let (left, read) = rows_read(&|| all_requests(&store, reseller, &waiting, now, 10));
        assert_eq!(left.len(), 4 - k);
        assert_eq!(usize::try_from(read).unwrap(), 4 - k);
    }
    assert_eq!(all_requests(&store, owner, &waiting, now, 10).len(), 5);
    let first = waiting_for_reseller[0];
    let done = driver
        .accept(first, owner, &tokens[&(owner, first)], now)
        .unwrap();
    assert_eq!(done.value.state().name(), StateName::Done);
    assert_eq!(all_requests(&store, owner, &waiting, now, 10).len(), 4);
    assert_eq!(
        count("SELECT count(*) FROM request_parties WHERE customer = ?1 AND part = 'waiting'"),
        0
    );
    store.audit().unwrap();
}

// ----- paging (R45) -----

/// The customers of the paging world.
const PAGING_CUSTOMERS: u32 = 5;

/// A world for paging: six services of three owners, and requests opened on
/// them over fifteen minutes (several in the same minute, so opening times
/// tie), each left open, applied, refused or cancelled at random; then those
/// opened in the first five minutes recorded as expired. At [`paging_now`],
/// those opened before minute 10 and still recorded as awaiting read as
/// expired, the later ones as awaiting.
fn paging_world(driver: &TestDriver<'_>, notifier: &MemoryNotifier, seed: u64) {
    let mut rng = rng(seed);
    for k in 0..6u32 {
        driver
            .order_service(&name(&format!("s{k}.example")), id(1 + k % 3))
            .unwrap();
    }
    for n in 0..60u32 {
        let at = t0() + Duration::minutes(i64::from(n / 4));
        let _ = random_request(driver, notifier, &mut rng, at);
    }
    let _ = driver
        .expire_due(t0() + Duration::days(7) + Duration::minutes(5))
        .unwrap();
}

/// When the paging world is listed.
fn paging_now() -> OffsetDateTime {
    t0() + Duration::days(7) + Duration::minutes(10)
}

/// Opens a random edit at `at` (refusals are skipped) and gives it a random
/// fate: left open, applied, refused or cancelled.
fn random_request(
    driver: &TestDriver<'_>,
    notifier: &MemoryNotifier,
    rng: &mut ChaCha20Rng,
    at: OffsetDateTime,
) -> Option<RequestId> {
    let service = name(&format!("s{}.example", rng.next_u32() % 6));
    let role = Role::ALL[rng.next_u32() as usize % 3];
    let incoming = id(1 + rng.next_u32() % PAGING_CUSTOMERS);
    let held = driver.store().service(&service).unwrap()?;
    // The admin, or the role's own holder asking for their replacement.
    let requester = if rng.next_u32().is_multiple_of(2) {
        held.holder(Role::Admin)
    } else {
        held.holder(role)
    };
    let edit = Edit::new(service).with(role, incoming);
    let request = driver.submit(&edit, requester, at, rng).ok()?.value[0];
    let opened = driver.store().request(request).unwrap()?;
    match rng.next_u32() % 5 {
        0 | 1 => {}
        2 => {
            for who in opened.confirmers() {
                let token = last_token(notifier, who, request);
                let _ = driver.accept(request, who, &token, at);
            }
        }
        3 => {
            let token = last_token(notifier, opened.incoming(), request);
            let _ = driver.refuse(request, opened.incoming(), &token, at);
        }
        _ => {
            let _ = driver.cancel(request, requester, at);
        }
    }
    Some(request)
}

/// Every filter the paging tests try: each set of parts, with no state,
/// each single state and two pairs, on every service or on one.
fn paging_filters() -> Vec<RequestFilter> {
    let parts = [
        Part::AskedByMe,
        Part::WaitingForMe,
        Part::ComingToMe,
        Part::TakingFromMe,
    ];
    let states: Vec<Vec<StateName>> = vec![
        vec![],
        vec![StateName::ValidatingByCustomers],
        vec![StateName::Done],
        vec![StateName::Refused],
        vec![StateName::Aborted],
        vec![StateName::Expired],
        vec![StateName::Error],
        vec![StateName::ValidatingByCustomers, StateName::Expired],
        vec![
            StateName::Done,
            StateName::Refused,
            StateName::Aborted,
            StateName::Error,
        ],
    ];
    let mut filters = Vec::new();
    for service in [None, Some(name("s0.example")), Some(name("s4.example"))] {
        for chosen in &states {
            for mask in 0..16usize {
                let mut filter = RequestFilter::all();
                for (bit, part) in parts.iter().enumerate() {
                    if mask & (1 << bit) != 0 {
                        filter = filter.part(*part);
                    }
                }
                for state in chosen {
                    filter = filter.state(*state);
                }
                if let Some(service) = &service {
                    filter = filter.service(service.clone());
                }
                filters.push(filter);
            }
        }
    }
    filters
}

/// `requests` that `filter` lists for `customer` at `now`, in the listing's
/// order: the definition, on a full scan.
fn scan(
    requests: &[ChangeRequest],
    customer: CustomerId,
    filter: &RequestFilter,
    now: OffsetDateTime,
) -> Vec<ChangeRequest> {
    let mut listed: Vec<ChangeRequest> = requests
        .iter()
        .filter(|r| filter.matches(r, customer, now))
        .cloned()
        .collect();
    listed.sort_by_key(|r| (Reverse(r.opened_at()), r.id()));
    listed
}

#[test]
fn request_pages_agree_with_a_filtered_scan() {
    // R35, R45: for every filter (432 of them) and every customer, "my
    // requests" read one row a page, three a page or all at once is exactly
    // the full scan filtered by `RequestFilter::matches`, in its order; the
    // same for "my contacts" (R6) and "due for expiry" (R29).
    let dir = TempDir::new("pages");
    let store = SqliteStore::open(dir.file("pages.db")).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    paging_world(&driver, &notifier, 7);
    store.audit().unwrap();
    let requests = store.requests().unwrap();
    let now = paging_now();
    // The world has what the filters tell apart.
    let states: BTreeSet<StateName> = requests.iter().map(|r| r.state_name_at(now)).collect();
    for state in [
        StateName::ValidatingByCustomers,
        StateName::Done,
        StateName::Refused,
        StateName::Aborted,
        StateName::Expired,
    ] {
        assert!(states.contains(&state), "no request is {state}: {states:?}");
    }
    assert!(
        requests
            .iter()
            .any(|r| r.is_due(now) && r.state().name() == StateName::ValidatingByCustomers),
        "no request is due but unrecorded"
    );
    let mut times = BTreeMap::<OffsetDateTime, usize>::new();
    for request in &requests {
        *times.entry(request.opened_at()).or_default() += 1;
    }
    assert!(
        times.values().any(|n| *n > 1),
        "no two requests opened together"
    );

    let (mut listings, mut rows) = (0, 0);
    for filter in paging_filters() {
        for customer in (1..=PAGING_CUSTOMERS).map(id) {
            let expected = scan(&requests, customer, &filter, now);
            for page in [1, 3, 500] {
                let listed = all_requests(&store, customer, &filter, now, page);
                assert_eq!(listed, expected, "{customer} {filter:?}, pages of {page}");
            }
            listings += 1;
            rows += expected.len();
        }
    }
    assert_eq!(listings, 432 * 5);
    assert!(rows > 2000, "the filters listed only {rows} rows");

    for customer in (0..=PAGING_CUSTOMERS).map(id) {
        let expected: Vec<(ServiceName, Roles)> = store
            .services()
            .unwrap()
            .iter()
            .filter(|s| !s.roles_of(customer).is_empty())
            .map(|s| (s.name().clone(), s.roles_of(customer)))
            .collect();
        for page in [1, 2, 500] {
            assert_eq!(all_contacts(&store, customer, page), expected, "{customer}");
        }
    }
    for minutes in [0, 5, 9, 10, 14, 15] {
        let at = t0() + Duration::days(7) + Duration::minutes(minutes);
        let mut expected: Vec<&ChangeRequest> = requests.iter().filter(|r| r.is_due(at)).collect();
        expected.sort_by_key(|r| (r.deadline(), r.id()));
        for page in [1, 2, 500] {
            let due = all_due(&store, at, page);
            assert_eq!(
                due.iter().collect::<Vec<_>>(),
                expected,
                "due at +{minutes}"
            );
        }
    }
}

#[test]
fn request_pages_stay_stable_while_commits_land() {
    // R45: between the pages of a listing, one row a page, other commits
    // land: new requests (opened at times that sort before, among and after
    // the rows not read yet), cancels, applies, refusals and recorded
    // expiries that move requests between states. No row comes twice, the
    // rows come in order, each matches the filter as it was read, and every
    // request no commit touched during the listing is listed exactly when
    // the filter lists it.
    let dir = TempDir::new("pages-stable");
    let store = SqliteStore::open(dir.file("pages.db")).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    paging_world(&driver, &notifier, 11);
    let now = paging_now();
    let mut rng = rng(12);
    let filters = paging_filters();
    let (mut listings, mut changed_during, mut untouched_listed) = (0, 0, 0);
    for round in 0..120 {
        let filter = &filters[rng.next_u32() as usize % filters.len()];
        let customer = id(1 + rng.next_u32() % PAGING_CUSTOMERS);
        let before: BTreeMap<RequestId, Version> = store
            .requests()
            .unwrap()
            .iter()
            .map(|r| (r.id(), r.version()))
            .collect();
        let mut listed: Vec<ChangeRequest> = Vec::new();
        loop {
            let page = store
                .requests_of(customer, filter, now, listed.last().map(opened_key), 1)
                .unwrap();
            assert!(page.len() <= 1);
            let Some(row) = page.into_iter().next() else {
                break;
            };
            if let Some(last) = listed.last() {
                assert!(
                    (Reverse(last.opened_at()), last.id()) < (Reverse(row.opened_at()), row.id()),
                    "round {round}: {} listed after {}",
                    row.id(),
                    last.id()
                );
            }
            assert!(
                filter.matches(&row, customer, now),
                "round {round}: {} listed but not matching",
                row.id()
            );
            listed.push(row);
            commit_something(&driver, &notifier, &mut rng, now);
        }
        let keys: Vec<(Reverse<OffsetDateTime>, RequestId)> = listed
            .iter()
            .map(|r| (Reverse(r.opened_at()), r.id()))
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "round {round}: rows repeated or out of order: {keys:?}"
        );
        let after = store.requests().unwrap();
        let listed_ids: BTreeSet<RequestId> = listed.iter().map(ChangeRequest::id).collect();
        for request in &after {
            if before.get(&request.id()) != Some(&request.version()) {
                changed_during += 1;
                continue;
            }
            let expected = filter.matches(request, customer, now);
            assert_eq!(
                listed_ids.contains(&request.id()),
                expected,
                "round {round}: untouched request {} {} with {filter:?} for {customer}",
                request.id(),
                if expected { "skipped" } else { "listed" }
            );
            if expected {
                untouched_listed += 1;
            }
        }
        listings += 1;
    }
    store.audit().unwrap();
    assert_eq!(listings, 120);
    assert!(
        changed_during > 50,
        "only {changed_during} requests changed during listings"
    );
    assert!(
        untouched_listed > 100,
        "only {untouched_listed} untouched rows listed"
    );
}

/// One commit by someone else: a new request at a random time among the
/// world's, or a cancel, a refusal or an apply of a random open request, or
/// the recorded expiry of those due at `now`.
fn commit_something(
    driver: &TestDriver<'_>,
    notifier: &MemoryNotifier,
    rng: &mut ChaCha20Rng,
    now: OffsetDateTime,
) {
    let open: Vec<ChangeRequest> = driver
        .store()
        .requests()
        .unwrap()
        .into_iter()
        .filter(ChangeRequest::is_open)
        .collect();
    let choice = rng.next_u32() % 4;
    if choice == 0 || open.is_empty() {
        let at = t0() + Duration::seconds(i64::from(rng.next_u32() % 1200));
        let _ = random_request(driver, notifier, rng, at);
        return;
    }
    let request = &open[rng.next_u32() as usize % open.len()];
    // Before every deadline of the world, so the request is still live.
    let at = t0() + Duration::minutes(20);
    match choice {
        1 => {
            let _ = driver.cancel(request.id(), request.requester(), at);
        }
        2 => {
            for who in request.missing_at(at) {
                let token = last_token(notifier, who, request.id());
                let _ = driver.accept(request.id(), who, &token, at);
            }
        }
        _ => {
            let _ = driver.expire_due(now).unwrap();
        }
    }
}

/// Asserts what [`listings_are_served_by_indexes`] says of each plan;
/// `arms` are the "my requests" filters with their number of searches.
fn assert_plans(plan: &BTreeMap<&str, Vec<String>>, arms: &[(String, RequestFilter, usize)]) {
    for (query, lines) in plan {
        println!("{query}:\n  {}", lines.join("\n  "));
        if query.starts_with("audit:") {
            // The audit's full scans, which read every row by design.
            continue;
        }
        for line in lines {
            let step = line.trim_start();
            assert!(!step.starts_with("SCAN"), "{query} scans: {lines:?}");
            if step.starts_with("SEARCH") {
                assert!(
                    step.contains("USING INDEX")
                        || step.contains("USING COVERING INDEX")
                        || step.contains("USING PRIMARY KEY"),
                    "{query}: {step}"
                );
            }
            if !query.starts_with("commit") {
                assert!(!step.contains("TEMP B-TREE"), "{query} sorts: {lines:?}");
            }
        }
    }
    let uses = |query: &str, what: &str| {
        assert!(
            plan[query].iter().any(|line| line.contains(what)),
            "{query} does not use {what}: {:?}",
            plan[query]
        );
    };
    // Every step of a listing searches the listing's index; `count`
    // searches in all.
    let searches_only = |query: &str, what: &str, count: usize| {
        let searches = plan[query]
            .iter()
            .filter(|line| line.trim_start().starts_with("SEARCH"));
        assert!(
            searches.clone().all(|line| line.contains(what)),
            "{query} does not search only {what}: {:?}",
            plan[query]
        );
        assert_eq!(searches.count(), count, "{query}: {:?}", plan[query]);
    };
    uses("service", "SEARCH services USING PRIMARY KEY (name=?)");
    uses(
        "request",
        "SEARCH requests USING INDEX sqlite_autoindex_requests_1 (id=?)",
    );
    for (index, role) in [
        ("services_admin", "admin"),
        ("services_tech", "tech"),
        ("services_billing", "billing"),
    ] {
        uses(
            "contacts_of",
            &format!(" INDEX {index} ({role}=? AND name>?)"),
        );
    }
    uses("contacts_of", "MERGE (UNION)");
    for (query, filter, count) in arms {
        assert_eq!(filter.index_ranges().len(), *count, "{query}");
        searches_only(
            query.as_str(),
            "SEARCH request_parties USING COVERING INDEX request_parties_listing \
             (customer=? AND part=? AND state=? AND (opened_s,opened_ns)<(?,?))",
            *count,
        );
        if *count > 1 {
            uses(query.as_str(), "MERGE (UNION ALL)");
        }
    }
    searches_only(
        "requests_of: a service",
        "SEARCH requests USING INDEX requests_service (service=? AND (opened_s,opened_ns)<(?,?))",
        1,
    );
    searches_only(
        "due_for_expiry",
        "SEARCH requests USING INDEX requests_due \
         ((deadline_s,deadline_ns,id)>(?,?,?) AND (deadline_s,deadline_ns)<(?,?))",
        1,
    );
    uses(
        "commit: update a service",
        "SEARCH services USING PRIMARY KEY (name=?)",
    );
    uses(
        "commit: update a request",
        "SEARCH requests USING INDEX sqlite_autoindex_requests_1 (id=?)",
    );
    searches_only(
        "commit: update a request's parties",
        "SEARCH request_parties USING PRIMARY KEY (request_id=?)",
        1,
    );
    searches_only(
        "commit: clear a request's waiting rows",
        "SEARCH request_parties USING PRIMARY KEY (request_id=?)",
        1,
    );
    assert_history_plans(plan);
}

/// Asserts what [`listings_are_served_by_indexes`] says of the plans of a
/// service's history (R46, R47): each listing one search of its index from
/// the cursor on (no sort: the generic checks of [`assert_plans`]).
fn assert_history_plans(plan: &BTreeMap<&str, Vec<String>>) {
    for (query, what) in [
        (
            "requests_on",
            "SEARCH requests USING INDEX requests_service (service=? AND (opened_s,opened_ns)<(?,?))",
        ),
        (
            "assignments_on",
            "SEARCH assignments USING INDEX assignments_service (service=? AND (at_s,at_ns)<(?,?))",
        ),
    ] {
        assert_eq!(plan[query], [what], "{query}");
    }
    // The insert of an assignment reads no table: `SQLite` shows no step
    // for an `INSERT ... VALUES`, whose conflict check is a probe of the
    // primary key.
    let insert = &plan["commit: insert an assignment"];
    assert!(
        insert
            .iter()
            .all(|line| line.contains("sqlite_autoindex_assignments_1")),
        "{insert:?}"
    );
}

#[test]
fn requests_survive_a_reopen() {
    // R34: a request's full state and history (failed attempts R26, a resend
    // with new tokens R23, a confirmation) are read back whole from the file,
    // and the tokens mailed before the reopen still work after it.
    let dir = TempDir::new("reopen");
    let file = dir.file("contacts.db");
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let (admin, incoming) = (id(1), id(2));
    let site = name("example.com");
    let store = SqliteStore::open(&file).unwrap();
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    driver.order_service(&site, admin).unwrap();
    let edit = Edit::new(site.clone())
        .with(Role::Tech, incoming)
        .with(Role::Billing, incoming);
    let request = driver
        .submit(&edit, admin, t0(), &mut rng(1))
        .unwrap()
        .value[0];
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert!(driver.accept(request, incoming, wrong, t0()).is_err());
    let later = t0() + Duration::minutes(10);
    let _ = driver.resend(request, admin, later, &mut rng(2)).unwrap();
    let _ = driver
        .accept(
            request,
            incoming,
            &last_token(&notifier, incoming, request),
            later,
        )
        .unwrap();
    let before = store.request(request).unwrap().unwrap();
    let kinds: Vec<&EventKind> = before.history().iter().map(Event::kind).collect();
    assert!(kinds.contains(&&EventKind::FailedAttempt));
    assert!(kinds.contains(&&EventKind::TokenReissued { to: incoming }));
    assert!(kinds.contains(&&EventKind::Confirmed));
    store.close().unwrap();

    let store = SqliteStore::open(&file).unwrap();
    assert_eq!(store.request(request).unwrap(), Some(before.clone()));
    let service = store.service(&site).unwrap().unwrap();
    assert_eq!(service.requests_to_load().collect::<Vec<_>>(), [request]);
    assert_eq!(
        all_requests(&store, incoming, &RequestFilter::all(), later, 1),
        slice::from_ref(&before)
    );
    assert_eq!(
        all_due(&store, before.deadline(), 1),
        slice::from_ref(&before)
    );
    match before.state() {
        RequestState::Awaiting(awaiting) => {
            assert_eq!(awaiting.missing().collect::<Vec<_>>(), [admin]);
        }
        other => panic!("request is {other:?}"),
    }
    // The admin's token, mailed before the reopen, applies the change (R20).
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    let done = driver
        .accept(
            request,
            admin,
            &last_token(&notifier, admin, request),
            later,
        )
        .unwrap();
    assert_eq!(done.value.state().name(), StateName::Done);
    store.close().unwrap();

    let store = SqliteStore::open(&file).unwrap();
    let after = store.request(request).unwrap().unwrap();
    assert_eq!(after, done.value);
    assert_eq!(after.history()[..before.history().len()], *before.history());
    assert_eq!(
        all_contacts(&store, incoming, 1),
        [(site.clone(), Role::Tech | Role::Billing)]
    );
    let service = store.service(&site).unwrap().unwrap();
    assert_eq!(service.holder(Role::Tech), incoming);
    assert_eq!(service.requests_to_load().collect::<Vec<_>>(), [request]);
    store.audit().unwrap();
    store.close().unwrap();
    // Section 8: only digests of tokens are stored; no token's text is in the file.
    let bytes = file_bytes(&file);
    for message in notifier.delivered() {
        if let Some(token) = message.token() {
            let text = token.reveal();
            assert!(
                !bytes.windows(text.len()).any(|w| w == text.as_bytes()),
                "a token's text is in the database file"
            );
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 6,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    #[test]
    fn listings_agree_with_full_scans(ops in proptest::collection::vec(listings::op(), 1..30)) {
        // R6, R29, R35, R45: the core's differential check (`listings`) on a
        // file: random worlds, every listing read page by page at every
        // deadline, against a full scan of what the file holds.
        let dir = TempDir::new("listings");
        let sqlite = SqliteStore::open(dir.file("listings.db")).unwrap();
        let driver = Driver::new(&sqlite, MemoryNotifier::new(), listings::directory());
        let (now, _) = listings::play(&driver, &ops);
        let fail = |err: String| proptest::test_runner::TestCaseError::fail(err);
        sqlite.audit().map_err(|err| fail(err.to_string()))?;
        let requests = sqlite.requests().unwrap();
        let services = sqlite.services().unwrap();
        listings::check_listings(&driver, &requests, &services, now, true).map_err(fail)?;
    }
}

// ----- concurrency across connections -----

const THREADS: usize = 4;
const ROUNDS: u32 = 40;

#[test]
fn racing_connections_take_effect_once() {
    // R27, R31, R16, R20, R28: four threads, each with its own connection to
    // one WAL database file, race on conflicting edits, on both confirmers
    // accepting at once and on an accept against a cancel.
    let dir = TempDir::new("race");
    let file = dir.file("race.db");
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let stores: Vec<SqliteStore> = (0..THREADS)
        .map(|_| SqliteStore::open(&file).unwrap())
        .collect();
    for store in &stores {
        assert_eq!(store.journal_mode().unwrap(), "wal");
    }
    let racers = Racers {
        drivers: stores
            .iter()
            .map(|store| Driver::new(store, &notifier, &directory).with_retries(64))
            .collect(),
        notifier: &notifier,
    };
    for round in 0..ROUNDS {
        racers.conflicting_edits(round);
        racers.both_confirmers_at_once(round);
        racers.accept_against_cancel(round);
    }
    for store in stores {
        store.close().unwrap();
    }
    // Read everything back through a fresh connection: three services and
    // three requests a round.
    let check = SqliteStore::open(&file).unwrap();
    check_consistency(&check, ROUNDS as usize * 3);
    check.close().unwrap();
}

/// One driver per thread, each on its own connection.
struct Racers<'a> {
    drivers: Vec<TestDriver<'a>>,
    notifier: &'a MemoryNotifier,
}

impl Racers<'_> {
    fn now(round: u32) -> OffsetDateTime {
        t0() + Duration::minutes(i64::from(round))
    }

    /// R27: four edits of the same role of one service; one opens.
    fn conflicting_edits(&self, round: u32) {
        let (admin, now) = (id(1), Racers::now(round));
        let service = name(&format!("edits-{round}.example"));
        self.drivers[0].order_service(&service, admin).unwrap();
        let results = race(THREADS, |t| {
            let thread = u32::try_from(t).unwrap();
            let edit = Edit::new(service.clone()).with(Role::Tech, id(10 + thread));
            let seed = u64::from(round * 1000 + thread);
            self.drivers[t].submit(&edit, admin, now, &mut rng(seed))
        });
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            winners, 1,
            "round {round}: {winners} conflicting edits opened"
        );
        for err in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(
                    err,
                    DriverError::Refused(Refusal::Submit(SubmitError::Conflict {
                        role: Role::Tech,
                        ..
                    }))
                ),
                "round {round}: {err}"
            );
        }
        let open = self.drivers[3].store().requests().unwrap();
        let open = open
            .iter()
            .filter(|r| r.service() == &service && r.is_open());
        assert_eq!(open.count(), 1);
    }

    /// R16, R20: both confirmers accept at once, each on two threads.
    fn both_confirmers_at_once(&self, round: u32) {
        let (admin, incoming, now) = (id(1), id(20), Racers::now(round));
        let service = name(&format!("both-{round}.example"));
        self.drivers[0].order_service(&service, admin).unwrap();
        let seed = u64::from(round * 1000 + 100);
        let request = open_tech(&self.drivers[0], &service, incoming, now, seed);
        let tokens = [
            last_token(self.notifier, admin, request),
            last_token(self.notifier, incoming, request),
        ];
        let results = race(THREADS, |t| {
            let who = if t % 2 == 0 { admin } else { incoming };
            self.drivers[t].accept(request, who, &tokens[t % 2], now)
        });
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 2, "round {round}: {accepted} accepts succeeded");
        for err in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(
                    err,
                    DriverError::Refused(Refusal::Act(
                        ActError::InvalidToken | ActError::Closed { .. }
                    ))
                ),
                "round {round}: {err}"
            );
        }
        let reader = self.drivers[1].store();
        let ended = reader.request(request).unwrap().unwrap();
        assert_eq!(ended.state().name(), StateName::Done);
        let holder = reader
            .service(&service)
            .unwrap()
            .unwrap()
            .holder(Role::Tech);
        assert_eq!(holder, incoming);
    }

    /// R28 against R20: the last confirmation races a cancel.
    fn accept_against_cancel(&self, round: u32) {
        let (admin, incoming, now) = (id(1), id(20), Racers::now(round));
        let service = name(&format!("cancel-{round}.example"));
        self.drivers[0].order_service(&service, admin).unwrap();
        let seed = u64::from(round * 1000 + 200);
        let request = open_tech(&self.drivers[0], &service, incoming, now, seed);
        let incoming_token = last_token(self.notifier, incoming, request);
        let _ = self.drivers[0]
            .accept(request, incoming, &incoming_token, now)
            .unwrap();
        let admin_token = last_token(self.notifier, admin, request);
        let results = race(THREADS, |t| {
            if t % 2 == 0 {
                self.drivers[t]
                    .accept(request, admin, &admin_token, now)
                    .map(|_| StateName::Done)
            } else {
                self.drivers[t]
                    .cancel(request, admin, now)
                    .map(|_| StateName::Aborted)
            }
        });
        let winners: Vec<StateName> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let reader = self.drivers[2].store();
        let ended = reader.request(request).unwrap().unwrap();
        assert_eq!(ended.state().name(), winners[0]);
        let holder = reader
            .service(&service)
            .unwrap()
            .unwrap()
            .holder(Role::Tech);
        let expected = if winners[0] == StateName::Done {
            incoming
        } else {
            admin
        };
        assert_eq!(holder, expected, "round {round}");
    }
}

/// The database agrees with itself after the races ([`sqlite::check`]),
/// `opened` requests were opened and none lost (R31), and at most one
/// change was applied per service, as each round's races allow (R20).
fn check_consistency(store: &SqliteStore, opened: usize) {
    let customers: Vec<CustomerId> = (0..100).map(id).collect();
    let (services, requests) = sqlite::check(store, &customers, t0());
    assert_eq!(requests.len(), opened);
    for service in &services {
        let applied = requests
            .iter()
            .filter(|r| r.service() == service.name())
            .filter(|r| matches!(r.state(), RequestState::Applied { .. }))
            .count();
        assert!(applied <= 1, "{}", service.name());
    }
}

#[test]
fn a_busy_database_is_a_conflict() {
    // R31: a commit that cannot take the write lock writes nothing and
    // reports the store's retryable conflict, not an error or a panic.
    let dir = TempDir::new("busy");
    let file = dir.file("busy.db");
    let options = Options {
        busy_timeout: StdDuration::ZERO,
    };
    let store = SqliteStore::open_with(&file, options).unwrap();
    let site = Service::order(name("busy.example"), id(1));
    let create = Changes {
        services: vec![Write {
            value: site.clone(),
            expected: None,
        }],
        ..Changes::default()
    };
    store.commit(create).unwrap();
    let mut contacts = *site.contacts();
    contacts.set(Role::Tech, id(2));
    let update = || Changes {
        services: vec![Write {
            value: Service::new(site.name().clone(), contacts, site.version().next()),
            expected: Some(site.version()),
        }],
        ..Changes::default()
    };

    // Another connection holds the write lock.
    let blocker = Connection::open(&file).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(matches!(store.commit(update()), Err(CommitError::Conflict)));
    // WAL: readers do not wait for the writer.
    assert_eq!(store.service(site.name()).unwrap(), Some(site.clone()));
    // Through the driver, a lock that stays busy ends in contention.
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory).with_retries(3);
    let edit = Edit::new(site.name().clone()).with(Role::Tech, id(2));
    let err = driver.submit(&edit, id(1), t0(), &mut rng(1)).unwrap_err();
    assert!(
        matches!(err, DriverError::Contention { attempts: 4 }),
        "{err}"
    );

    blocker.execute_batch("ROLLBACK").unwrap();
    store.commit(update()).unwrap();
    assert_eq!(
        store
            .service(site.name())
            .unwrap()
            .unwrap()
            .holder(Role::Tech),
        id(2)
    );
}

#[test]
fn ordering_on_a_busy_database_is_not_a_duplicate() {
    // R5 and the `CommitError::Conflict` contract ("also what a busy or
    // locked database should report"): ordering a new service while another
    // connection holds the lock must not claim the service exists.
    let dir = TempDir::new("busy-order");
    let file = dir.file("busy.db");
    let options = Options {
        busy_timeout: StdDuration::ZERO,
    };
    let store = SqliteStore::open_with(&file, options).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    let blocker = Connection::open(&file).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let result = driver.order_service(&name("new.example"), id(1));
    assert!(store.service(&name("new.example")).unwrap().is_none());
    assert!(
        !matches!(result, Err(DriverError::Refused(Refusal::ServiceExists(_)))),
        "a busy database was reported as an existing service"
    );
}

// ----- durability -----

/// The state committed before each interruption.
fn committed_state(store: &SqliteStore) -> (Vec<Service>, Vec<ChangeRequest>) {
    (store.services().unwrap(), store.requests().unwrap())
}

#[test]
fn an_interrupted_commit_leaves_nothing_half_written() {
    // R31: a commit that fails after some of its writes went in leaves none
    // of them; reopening the file shows the last committed state.
    let dir = TempDir::new("interrupted");
    let file = dir.file("contacts.db");
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let site = name("example.com");
    let store = SqliteStore::open(&file).unwrap();
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    driver.order_service(&site, id(1)).unwrap();
    let first = open_tech(&driver, &site, id(2), t0(), 1);
    let last = committed_state(&store);

    // 1. The store's own commit fails half-way: a trigger (a stand-in for a
    // full disk or an I/O error) aborts the last statement of the
    // transaction, after the service and the request rows were written.
    Connection::open(&file)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER fail_on_party BEFORE INSERT ON request_parties \
             WHEN NEW.customer = 'CU66-OVH' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
        )
        .unwrap();
    let edit = Edit::new(site.clone()).with(Role::Billing, id(66));
    let err = driver.submit(&edit, id(1), t0(), &mut rng(2)).unwrap_err();
    assert!(
        matches!(&err, DriverError::Store(SqliteStoreError::Sqlite(_)))
            && err.to_string().contains("disk on fire"),
        "{err}"
    );
    assert_eq!(committed_state(&store), last);
    store.close().unwrap();
    let store = SqliteStore::open(&file).unwrap();
    assert_eq!(committed_state(&store), last);
    store.audit().unwrap();
    store.close().unwrap();

    // 2. A transaction dropped before its commit.
    let mut raw = Connection::open(&file).unwrap();
    let tx = raw.transaction().unwrap();
    tx.execute("UPDATE services SET tech = 'CU77-OVH', version = 9", [])
        .unwrap();
    tx.execute("DELETE FROM request_parties", []).unwrap();
    drop(tx);
    // 3. A connection closed in the middle of a transaction.
    raw.execute_batch(
        "BEGIN IMMEDIATE; UPDATE services SET admin = 'CU88-OVH', version = 10; \
         UPDATE requests SET open = 0, version = 5;",
    )
    .unwrap();
    drop(raw);
    let store = SqliteStore::open(&file).unwrap();
    assert_eq!(committed_state(&store), last);
    store.audit().unwrap();
    assert_eq!(
        store.request(first).unwrap().unwrap().state().name(),
        StateName::ValidatingByCustomers
    );
    store.close().unwrap();
}

/// Set for the child process of [`a_crash_mid_transaction_loses_only_that_transaction`].
const CRASH_DB: &str = "SERVICE_CONTACTS_SQLITE_CRASH_DB";

#[test]
fn crash_helper() {
    // Only in the child process: writes more than the page cache holds in
    // one transaction, so uncommitted pages reach the WAL file, then dies
    // without committing or closing.
    let Some(path) = std::env::var_os(CRASH_DB) else {
        return;
    };
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA cache_size = 16; BEGIN IMMEDIATE; UPDATE services SET tech = 'CU99-OVH', version = version + 1;")
        .unwrap();
    let filler = "x".repeat(2000);
    for n in 0..2000 {
        conn.execute(
            "INSERT INTO requests (id, service, open, opened_s, opened_ns, deadline_s, \
             deadline_ns, version, doc) VALUES (?1, 'example.com', 1, 0, 0, 0, 0, 1, ?2)",
            rusqlite::params![format!("{n:032x}"), filler],
        )
        .unwrap();
    }
    std::process::abort();
}

#[test]
fn a_crash_mid_transaction_loses_only_that_transaction() {
    // R31: a process that dies in the middle of a transaction, with part of
    // it already in the WAL file, leaves the last committed state.
    let dir = TempDir::new("crash");
    let file = dir.file("contacts.db");
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let store = SqliteStore::open(&file).unwrap();
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    driver.order_service(&name("example.com"), id(1)).unwrap();
    let _ = open_tech(&driver, &name("example.com"), id(2), t0(), 1);
    let last = committed_state(&store);
    store.close().unwrap();
    let wal = dir.file("contacts.db-wal");
    assert!(
        !wal.exists(),
        "closing the last connection checkpoints the WAL"
    );

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_helper",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CRASH_DB, &file)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the child did not crash");
    let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(
        wal_len > 100_000,
        "uncommitted pages reached the WAL: {wal_len} bytes"
    );

    let store = SqliteStore::open(&file).unwrap();
    assert_eq!(committed_state(&store), last);
    store.audit().unwrap();
    store.close().unwrap();
}

// ----- bad input -----

/// A file in `dir` marked as a service-contacts database of schema
/// `version`, holding `tables` (SQL) and a `services` table.
fn marked_file(dir: &TempDir, version: i32, tables: &str) -> PathBuf {
    let path = dir.file(&format!("version-{version}.db"));
    Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE services (name TEXT PRIMARY KEY); {tables}
             PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {version};"
        ))
        .unwrap();
    path
}

#[test]
fn a_file_of_another_schema_is_refused_and_left_alone() {
    // Bad input: each file gives a schema error that says what was found,
    // and neither the file nor its directory changes.
    let dir = TempDir::new("schema");
    let garbage = dir.file("garbage.db");
    std::fs::write(&garbage, "this is not a database\n".repeat(400)).unwrap();
    let other = dir.file("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO customers (name) VALUES ('Alice');",
        )
        .unwrap();
    let newer = marked_file(&dir, 6, "");
    // A file of the first schema (version 1, before services named their
    // last requests): refused, not silently read without its locks.
    let older = marked_file(&dir, 1, "");
    // A file of schema version 2 (before the parties carried their part,
    // state and opening): refused, not listed from an index it lacks.
    let version_2 = marked_file(
        &dir,
        2,
        "CREATE TABLE request_parties (customer TEXT NOT NULL, request_id TEXT NOT NULL,
             PRIMARY KEY (customer, request_id)) STRICT, WITHOUT ROWID;",
    );
    // A file of schema version 3 (before the parties held a `waiting` row
    // per confirmer still waited for): refused, not listed "waiting for me"
    // from rows it never wrote.
    let version_3 = marked_file(
        &dir,
        3,
        "CREATE TABLE request_parties (customer TEXT NOT NULL, request_id TEXT NOT NULL,
             part TEXT NOT NULL CHECK (part IN ('requester', 'incoming', 'outgoing')),
             state TEXT NOT NULL, opened_s INTEGER NOT NULL, opened_ns INTEGER NOT NULL,
             PRIMARY KEY (request_id, customer, part)) STRICT, WITHOUT ROWID;",
    );
    let tampered = dir.file("tampered.db");
    SqliteStore::open(&tampered).unwrap().close().unwrap();
    Connection::open(&tampered)
        .unwrap()
        .execute_batch(
            "PRAGMA journal_mode = DELETE; DROP INDEX services_billing; \
             ALTER TABLE services DROP COLUMN billing;",
        )
        .unwrap();
    let unindexed = dir.file("unindexed.db");
    SqliteStore::open(&unindexed).unwrap().close().unwrap();
    Connection::open(&unindexed)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = DELETE; DROP INDEX requests_due;")
        .unwrap();
    let unlisted = dir.file("unlisted.db");
    SqliteStore::open(&unlisted).unwrap().close().unwrap();
    Connection::open(&unlisted)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = DELETE; DROP INDEX request_parties_listing;")
        .unwrap();

    let cases = [
        (&garbage, "the file is not a SQLite database"),
        (
            &other,
            "application id 0x0 (expected 0x53436f6e), 1 tables and indexes of another application",
        ),
        (&newer, "it has schema version 6"),
        (&older, "it has schema version 1"),
        (&version_2, "it has schema version 2"),
        (&version_3, "it has schema version 3"),
        (
            &tampered,
            "table services has columns (name, admin, tech, version, last_admin, last_tech, \
             last_billing, removed), expected (name, admin, tech, billing, version, last_admin, \
             last_tech, last_billing, removed)",
        ),
        (&unindexed, "index requests_due is missing"),
        (&unlisted, "index request_parties_listing is missing"),
    ];
    assert_refused_and_left_alone(&dir, &cases);
}

/// Asserts that opening each file gives a schema error with its detail, and
/// that neither the file nor the directory changes.
fn assert_refused_and_left_alone(dir: &TempDir, cases: &[(&PathBuf, &str)]) {
    let files = listing(&dir.0);
    for &(path, detail) in cases {
        let before = file_bytes(path);
        let err = SqliteStore::open(path).unwrap_err();
        match &err {
            SqliteStoreError::Schema { path: p, detail: d } => {
                assert_eq!(p, path);
                assert_eq!(d, detail);
            }
            other => panic!("{}: {other}", path.display()),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "{}: not a service-contacts database of schema version 4 to 5: {detail}",
                path.display()
            )
        );
        assert!(file_bytes(path) == before, "{} was written", path.display());
    }
    assert_eq!(listing(&dir.0), files, "a journal or WAL file was created");
}

/// A store with two services and an open request, and a raw connection to
/// corrupt its rows.
struct Corruptible {
    _dir: TempDir,
    store: SqliteStore,
    raw: Connection,
    notifier: MemoryNotifier,
    directory: MemoryDirectory,
    request: RequestId,
}

fn corruptible() -> Corruptible {
    let dir = TempDir::new("corrupt");
    let file = dir.file("contacts.db");
    let store = SqliteStore::open(&file).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    driver.order_service(&name("a.example"), id(1)).unwrap();
    driver.order_service(&name("b.example"), id(1)).unwrap();
    let request = open_tech(&driver, &name("a.example"), id(2), t0(), 1);
    let raw = Connection::open(&file).unwrap();
    Corruptible {
        _dir: dir,
        store,
        raw,
        notifier,
        directory,
        request,
    }
}

impl Corruptible {
    fn driver(&self) -> TestDriver<'_> {
        Driver::new(&self.store, &self.notifier, &self.directory)
    }

    /// The query of the whole row of the request.
    fn select_request(&self) -> String {
        format!("SELECT * FROM requests WHERE id = '{}'", self.request)
    }

    /// The request's stored document.
    fn doc(&self) -> String {
        self.raw
            .query_row(
                "SELECT doc FROM requests WHERE id = ?1",
                [self.request.to_string()],
                |row| row.get(0),
            )
            .unwrap()
    }

    /// Replaces the request's stored document.
    fn set_doc(&self, doc: &str) {
        self.raw
            .execute(
                "UPDATE requests SET doc = ?1 WHERE id = ?2",
                [doc.to_owned(), self.request.to_string()],
            )
            .unwrap();
    }

    fn row(&self, sql: &str) -> Vec<String> {
        let mut stmt = self.raw.prepare(sql).unwrap();
        let columns = stmt.column_count();
        stmt.query_row([], |row| {
            (0..columns)
                .map(|i| {
                    row.get::<_, rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                })
                .collect()
        })
        .unwrap()
    }
}

/// Asserts `result` is a corrupt-row error of `table` and `key` whose detail
/// contains `detail`.
fn assert_corrupt<T: std::fmt::Debug>(
    result: Result<T, SqliteStoreError>,
    table: &str,
    key: &str,
    detail: &str,
) {
    match result {
        Err(SqliteStoreError::Corrupt {
            table: t,
            key: k,
            detail: d,
        }) => {
            assert_eq!((t, k.as_str()), (table, key));
            assert!(d.contains(detail), "{d:?} does not say {detail:?}");
        }
        other => panic!("expected a corrupt row in {table} ({key}), got {other:?}"),
    }
}

#[test]
fn a_service_row_that_does_not_parse_is_reported_not_trusted() {
    // Bad input, R4, R7: a stored identifier or service name is parsed as
    // strictly as any other input; a row that fails gives a clear error
    // naming the table and the key, no panic, and nothing overwritten by
    // the actions that met it.
    let c = corruptible();
    c.raw
        .execute(
            "UPDATE services SET tech = 'not-an-id' WHERE name = 'a.example'",
            [],
        )
        .unwrap();
    let before = c.row("SELECT * FROM services WHERE name = 'a.example'");
    assert_corrupt(
        c.store.service(&name("a.example")),
        "services",
        "a.example",
        "column tech: \"not-an-id\"",
    );
    // The listings meet the row through the admin index.
    assert_corrupt(
        c.store.contacts_of(id(1), None, 10),
        "services",
        "a.example",
        "column tech",
    );
    let err = c
        .driver()
        .submit(
            &Edit::new(name("a.example")).with(Role::Billing, id(3)),
            id(1),
            t0(),
            &mut rng(2),
        )
        .unwrap_err();
    assert!(
        matches!(err, DriverError::Store(SqliteStoreError::Corrupt { .. })),
        "{err}"
    );
    let why = "not-an-id".parse::<CustomerId>().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "store error: corrupt row in services (a.example): column tech: \"not-an-id\": {why}"
        )
    );
    assert_eq!(
        c.row("SELECT * FROM services WHERE name = 'a.example'"),
        before
    );
    assert_corrupt(c.store.audit(), "services", "a.example", "column tech");

    // A valid identifier not in canonical form would hide from the indexes.
    c.raw
        .execute(
            "UPDATE services SET admin = 'cu1-ovh' WHERE name = 'b.example'",
            [],
        )
        .unwrap();
    assert_corrupt(
        c.store.service(&name("b.example")),
        "services",
        "b.example",
        "column admin: \"cu1-ovh\" is not in canonical form (CU1-OVH)",
    );
    // A name that is not a service name.
    c.raw
        .execute(
            "UPDATE services SET name = 'b example' WHERE name = 'b.example'",
            [],
        )
        .unwrap();
    c.raw
        .execute(
            "UPDATE services SET tech = 'CU1-OVH' WHERE name = 'a.example'",
            [],
        )
        .unwrap();
    assert_corrupt(
        c.store.contacts_of(id(1), None, 10),
        "services",
        "b example",
        "column name",
    );
}

#[test]
fn a_request_document_that_does_not_parse_is_reported_not_trusted() {
    // Bad input, R4, R34: a request document is validated on the way in
    // like any serialized request; one that is not a valid request gives a
    // clear error naming the table and the key, from every read, no panic,
    // and the actions that meet it write nothing.
    let c = corruptible();
    let key = c.request.to_string();
    let good = c.doc();

    // Not JSON at all.
    c.set_doc(&good[..good.len() / 2]);
    let expected = "column doc: EOF while parsing";
    assert_corrupt(c.store.request(c.request), "requests", &key, expected);
    let all = RequestFilter::all();
    assert_corrupt(
        c.store.requests_of(id(2), &all, t0(), None, 10),
        "requests",
        &key,
        expected,
    );
    let by_service = RequestFilter::all().service(name("a.example"));
    assert_corrupt(
        c.store.requests_of(id(2), &by_service, t0(), None, 10),
        "requests",
        &key,
        expected,
    );
    let later = t0() + Duration::days(30);
    assert_corrupt(
        c.store.due_for_expiry(later, None, 10),
        "requests",
        &key,
        expected,
    );
    assert_corrupt(c.store.audit(), "requests", &key, expected);
    let before = c.row(&c.select_request());
    let admin_token = last_token(&c.notifier, id(1), c.request);
    let err = c
        .driver()
        .accept(c.request, id(1), &admin_token, t0())
        .unwrap_err();
    assert!(
        matches!(err, DriverError::Store(SqliteStoreError::Corrupt { .. })),
        "{err}"
    );
    let err = c.driver().cancel(c.request, id(1), t0()).unwrap_err();
    assert!(
        matches!(err, DriverError::Store(SqliteStoreError::Corrupt { .. })),
        "{err}"
    );
    let err = c.driver().expire_due(later).unwrap_err();
    assert!(
        matches!(err, DriverError::Store(SqliteStoreError::Corrupt { .. })),
        "{err}"
    );
    assert_eq!(
        c.row(&c.select_request()),
        before,
        "a failed action wrote the row"
    );

    // JSON that is not a valid request: the crate's own checks refuse it.
    let mut doc: serde_json::Value = serde_json::from_str(&good).unwrap();
    doc["history"] = serde_json::json!([]);
    c.set_doc(&doc.to_string());
    assert_corrupt(
        c.store.request(c.request),
        "requests",
        &key,
        "column doc: a request's history starts with its opening",
    );
    let mut doc: serde_json::Value = serde_json::from_str(&good).unwrap();
    doc["requester"] = serde_json::json!("AB12-XYZ");
    c.set_doc(&doc.to_string());
    assert_corrupt(
        c.store.request(c.request),
        "requests",
        &key,
        "column doc: expected the suffix `-OVH`",
    );
}

#[test]
fn request_columns_that_disagree_are_reported_not_trusted() {
    // Bad input: a row whose key or indexed columns disagree with its
    // document (they would mislead the indexes) gives a clear error, and
    // nothing is overwritten.
    let c = corruptible();
    let key = c.request.to_string();
    let good = c.doc();

    // A document that is another request.
    let mut doc: serde_json::Value = serde_json::from_str(&good).unwrap();
    doc["id"] = serde_json::json!("0123456789abcdef0123456789abcdef");
    c.set_doc(&doc.to_string());
    assert_corrupt(
        c.store.request(c.request),
        "requests",
        &key,
        "the document is request 0123456789abcdef0123456789abcdef",
    );
    c.set_doc(&good);
    c.store.request(c.request).unwrap().unwrap();

    // A version column that is not the document's.
    c.raw
        .execute(
            "UPDATE requests SET version = 7 WHERE id = ?1",
            [key.as_str()],
        )
        .unwrap();
    assert_corrupt(
        c.store.request(c.request),
        "requests",
        &key,
        "the columns disagree with the document",
    );
    let before = c.row(&c.select_request());
    let admin_token = last_token(&c.notifier, id(1), c.request);
    let err = c
        .driver()
        .accept(c.request, id(1), &admin_token, t0())
        .unwrap_err();
    assert!(
        matches!(err, DriverError::Store(SqliteStoreError::Corrupt { .. })),
        "{err}"
    );
    assert_eq!(c.row(&c.select_request()), before);

    // A key that is not a request id (the parties' foreign key would stop
    // this edit: someone editing by hand may have turned it off).
    c.raw.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    c.raw
        .execute(
            "UPDATE requests SET version = 1, id = 'zz' WHERE id = ?1",
            [key.as_str()],
        )
        .unwrap();
    assert_corrupt(
        c.store.requests(),
        "requests",
        "zz",
        "column id: expected a request id of 32 hex digits",
    );
    assert_eq!(c.store.request(c.request).unwrap(), None);
    assert!(c.store.audit().is_err());
}

/// Edits the party rows of request `c.request`'s incoming contact (CU2-OVH,
/// who sits as `incoming` and, not having confirmed, as `waiting`) in eight
/// ways, each undone by deleting the edited rows and running `restore`: each
/// edit is reported by the listings that read the row, and by the audit.
fn assert_bad_party_rows_reported(c: &Corruptible, restore: &str, opened: &str) {
    // A party row that disagrees with its request is reported by every
    // listing that reads it and by the audit, never used: a stale state, a
    // wrong opening time, a part the customer does not have, a customer who
    // is no party or is not waited for, a request that does not exist.
    let all = RequestFilter::all();
    let waiting = RequestFilter::all().part(Part::WaitingForMe);
    let incoming = "WHERE customer = 'CU2-OVH' AND part = 'incoming'";
    let waits = "WHERE customer = 'CU2-OVH' AND part = 'waiting'";
    // (Each edit, the customer listing it, what is reported, whether "every
    // part" searches the edited row, and whether "waiting for me" does: it
    // searches awaiting `waiting` rows only, each in the `all` search too.)
    let edits = [
        (
            format!("UPDATE request_parties SET state = 'done' {incoming}"),
            "CU2-OVH",
            "the request is validatingByCustomers".to_owned(),
            true,
            false,
        ),
        (
            format!("UPDATE request_parties SET opened_ns = 5 {incoming}"),
            "CU2-OVH",
            format!("the request {opened}"),
            true,
            false,
        ),
        (
            format!("UPDATE request_parties SET part = 'outgoing' {incoming}"),
            "CU2-OVH",
            "the request has no outgoing CU2-OVH".to_owned(),
            true,
            false,
        ),
        (
            format!("UPDATE request_parties SET customer = 'CU9-OVH' {incoming}"),
            "CU9-OVH",
            "the request has no incoming CU9-OVH".to_owned(),
            true,
            false,
        ),
        // A `waiting` row recorded in another state is searched by nobody:
        // only the audit finds it.
        (
            format!("UPDATE request_parties SET state = 'done' {waits}"),
            "CU2-OVH",
            String::new(),
            false,
            false,
        ),
        (
            format!("UPDATE request_parties SET opened_ns = 5 {waits}"),
            "CU2-OVH",
            format!("the request {opened}"),
            true,
            true,
        ),
        (
            format!("UPDATE request_parties SET part = 'outgoing' {waits}"),
            "CU2-OVH",
            "the request has no outgoing CU2-OVH".to_owned(),
            true,
            false,
        ),
        // A `waiting` row for a customer the request does not wait for.
        (
            format!("UPDATE request_parties SET customer = 'CU9-OVH' {waits}"),
            "CU9-OVH",
            "the request does not wait for CU9-OVH".to_owned(),
            true,
            true,
        ),
    ];
    let rows = "SELECT count(*), group_concat(customer || part || state) FROM request_parties";
    for (edit, customer, detail, seen_all, seen_waiting) in edits {
        let before = c.row(rows);
        c.raw.execute(&edit, []).unwrap();
        let listed_by: CustomerId = customer.parse().unwrap();
        let listed = c.store.requests_of(listed_by, &all, t0(), None, 10);
        if seen_all {
            assert_corrupt(listed, "request_parties", customer, &detail);
        } else {
            assert_eq!(listed.unwrap().len(), 1, "{edit}");
        }
        let waits = c.store.requests_of(listed_by, &waiting, t0(), None, 10);
        if seen_waiting {
            assert_corrupt(waits, "request_parties", customer, &detail);
        } else {
            // The request is listed from CU2-OVH's other, intact, row, or
            // not at all for CU9-OVH or once CU2-OVH's row is gone.
            let expected = usize::from(customer == "CU2-OVH" && edit.contains("'incoming'"));
            assert_eq!(waits.unwrap().len(), expected, "{edit}");
        }
        // The audit reports the first row that differs: CU2-OVH's, listed
        // wrong or not listed.
        assert_corrupt(c.store.audit(), "request_parties", "CU2-OVH", "");
        c.raw
            .execute(
                "DELETE FROM request_parties WHERE customer IN ('CU2-OVH', 'CU9-OVH')",
                [],
            )
            .unwrap();
        c.raw.execute_batch(restore).unwrap();
        assert_eq!(c.row(rows), before);
        c.store.audit().unwrap();
    }
}

#[test]
fn party_rows_that_disagree_are_reported_not_trusted() {
    // R35, R45, bad input: `request_parties` copies each request's parties,
    // the confirmers it waits for, its state and opening time for the
    // index; a copy that disagrees with the request is reported by the
    // listing that reads it and by the audit, never used to list a request;
    // one that is missing hides the request from its listing, and the audit
    // reports it.
    let c = corruptible();
    let key = c.request.to_string();
    let (s, opened) = (
        t0().unix_timestamp(),
        format!("opened at {}.000000000", t0().unix_timestamp()),
    );
    // CU2-OVH sits as incoming and, not having confirmed yet, as waiting.
    for part in ["incoming", "waiting"] {
        let row = c.row(&format!(
            "SELECT * FROM request_parties \
             WHERE customer = 'CU2-OVH' AND request_id = '{key}' AND part = '{part}'"
        ));
        assert_eq!(
            row,
            [
                "Text(\"CU2-OVH\")".to_owned(),
                format!("Text(\"{key}\")"),
                format!("Text(\"{part}\")"),
                "Text(\"validatingByCustomers\")".to_owned(),
                format!("Integer({s})"),
                "Integer(0)".to_owned(),
            ]
        );
    }
    let all = RequestFilter::all();
    let restore = format!(
        "INSERT INTO request_parties (customer, request_id, part, state, opened_s, opened_ns) \
         VALUES ('CU2-OVH', '{key}', 'incoming', 'validatingByCustomers', {s}, 0), \
                ('CU2-OVH', '{key}', 'waiting', 'validatingByCustomers', {s}, 0);"
    );
    // A party missing from the index (R35): "my requests" cannot see it;
    // the audit names it.
    c.raw
        .execute("DELETE FROM request_parties WHERE customer = 'CU2-OVH'", [])
        .unwrap();
    assert!(
        c.store
            .requests_of(id(2), &all, t0(), None, 10)
            .unwrap()
            .is_empty()
    );
    assert_corrupt(
        c.store.audit(),
        "request_parties",
        "CU2-OVH",
        &format!("CU2-OVH as incoming of {key} (validatingByCustomers, {opened}) is not listed"),
    );
    c.raw.execute_batch(&restore).unwrap();
    c.store.audit().unwrap();
    assert_eq!(
        c.store
            .requests_of(id(2), &all, t0(), None, 10)
            .unwrap()
            .len(),
        1
    );

    assert_bad_party_rows_reported(&c, &restore, &opened);
    c.raw.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    c.raw
        .execute(
            "INSERT INTO request_parties (customer, request_id, part, state, opened_s, opened_ns) \
             VALUES ('CU2-OVH', '0123456789abcdef0123456789abcdef', 'incoming', 'done', 0, 0)",
            [],
        )
        .unwrap();
    assert_corrupt(
        c.store.requests_of(id(2), &all, t0(), None, 10),
        "request_parties",
        "CU2-OVH",
        "the request does not exist",
    );
    c.raw
        .execute(
            "DELETE FROM request_parties WHERE request_id = '0123456789abcdef0123456789abcdef'",
            [],
        )
        .unwrap();
    c.raw.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    c.store.audit().unwrap();
}

#[test]
fn a_missing_waiting_row_is_found_by_the_audit() {
    // R35, R45, bad input: a `waiting` row missing hides the request from
    // "waiting for me" only (every listing by part still shows it); the
    // audit names the row.
    let c = corruptible();
    let key = c.request.to_string();
    let s = t0().unix_timestamp();
    let waiting = RequestFilter::all().part(Part::WaitingForMe);
    let listed = |filter: &RequestFilter| {
        c.store
            .requests_of(id(2), filter, t0(), None, 10)
            .unwrap()
            .len()
    };
    assert_eq!(listed(&waiting), 1);
    c.raw
        .execute(
            "DELETE FROM request_parties WHERE customer = 'CU2-OVH' AND part = 'waiting'",
            [],
        )
        .unwrap();
    assert_eq!(listed(&waiting), 0);
    assert_eq!(listed(&RequestFilter::all().part(Part::ComingToMe)), 1);
    assert_corrupt(
        c.store.audit(),
        "request_parties",
        "CU2-OVH",
        &format!(
            "CU2-OVH as waiting of {key} (validatingByCustomers, opened at {s}.000000000) \
             is not listed"
        ),
    );
    c.raw
        .execute(
            &format!(
                "INSERT INTO request_parties \
                 (customer, request_id, part, state, opened_s, opened_ns) \
                 VALUES ('CU2-OVH', '{key}', 'waiting', 'validatingByCustomers', {s}, 0)"
            ),
            [],
        )
        .unwrap();
    c.store.audit().unwrap();
    assert_eq!(listed(&waiting), 1);
}

#[test]
fn times_with_any_offset_are_stored_in_utc() {
    // R34, R29: the engine records times in UTC whatever offset the host
    // passes, so even an offset with seconds (which RFC 3339 cannot write)
    // is stored, and reads back as the same instant.
    let dir = TempDir::new("offsets");
    let store = SqliteStore::open(dir.file("contacts.db")).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    let site = driver.order_service(&name("example.com"), id(1)).unwrap();
    let odd = datetime!(2026-11-21 10:00 +01:00:30);
    let edit = Edit::new(site.name().clone()).with(Role::Tech, id(2));
    let opened = driver.submit(&edit, id(1), odd, &mut rng(1)).unwrap();
    let request = store.request(opened.value[0]).unwrap().unwrap();
    assert_eq!(request.opened_at(), odd);
    assert_eq!(request.opened_at().offset(), time::UtcOffset::UTC);
    assert_eq!(request.deadline(), odd + time::Duration::days(7));
}

// ----- operators and a service's history (R46, R47) -----

/// An operator's act, for `reason`.
fn support(reason: &str) -> OperatorAct {
    OperatorAct::new("jane@support".parse().unwrap(), reason.parse().unwrap())
}

/// The services of [`history_world`].
fn history_services() -> [ServiceName; 2] {
    [name("h.example"), name("k.example")]
}

/// Two services' histories in `store`, through the driver: 200 actions, 5
/// per instant, at instants 0.4 s apart (so some share a second and differ
/// in nanoseconds only), each picked at random among a submission, a cancel
/// by the requester, a cancel by an operator and an operator's assignment
/// (R46), on either service. Many entries share their time: requests with
/// requests, assignments with assignments, and with each other.
fn history_world(driver: &TestDriver<'_>, seed: u64) {
    let mut rng = rng(seed);
    let services = history_services();
    for (service, owner) in services.iter().zip([id(1), id(2)]) {
        driver.order_service(service, owner).unwrap();
    }
    for step in 0..200u32 {
        let at = t0() + Duration::milliseconds(i64::from(step / 5) * 400);
        let service = &services[rng.next_u32() as usize % 2];
        let role = Role::ALL[rng.next_u32() as usize % 3];
        let to = id(1 + rng.next_u32() % 6);
        let open: Vec<ChangeRequest> = driver
            .store()
            .requests_on(service, None, 1000)
            .unwrap()
            .into_iter()
            .filter(|r| r.is_live(at))
            .collect();
        let pick = open.get(rng.next_u32() as usize % open.len().max(1));
        match (rng.next_u32() % 4, pick) {
            (1, Some(request)) => {
                let cancelled = driver.cancel(request.id(), request.requester(), at);
                assert!(cancelled.unwrap().all_delivered());
            }
            (2, Some(request)) => {
                let act = support("the customer asked by phone");
                let cancelled = driver.cancel_by_operator(request.id(), &act, at);
                assert!(cancelled.unwrap().all_delivered());
            }
            (3, _) => {
                let act = support("mailbox lost, identity checked");
                let edit = Edit::new(service.clone()).with(role, to);
                // No change (the holder already) is refused; else recorded.
                let _ = driver.assign(&edit, &act, at, &mut rng);
            }
            _ => {
                let admin = driver.store().service(service).unwrap().unwrap();
                let edit = Edit::new(service.clone()).with(role, to);
                // A role with a live request (R27), or no change: refused.
                let _ = driver.submit(&edit, admin.holder(Role::Admin), at, &mut rng);
            }
        }
    }
}

/// The key of a request in a service's history.
fn history_key(request: &ChangeRequest) -> HistoryKey {
    HistoryEntry::Request(request.clone()).key()
}

/// The history's order: newest first, ties by id bytes (R47).
fn history_sort(key: &HistoryKey) -> (Reverse<OffsetDateTime>, [u8; 16]) {
    (Reverse(key.at), key.id)
}

/// `service`'s whole history from full scans of the file, in its order.
fn scanned_history(store: &SqliteStore, service: &ServiceName) -> Vec<HistoryEntry> {
    let requests = store
        .requests()
        .unwrap()
        .into_iter()
        .map(HistoryEntry::Request);
    let assignments = store
        .assignments()
        .unwrap()
        .into_iter()
        .map(HistoryEntry::Assignment);
    let mut entries: Vec<HistoryEntry> = requests
        .chain(assignments)
        .filter(|entry| entry.service() == service)
        .collect();
    entries.sort_by_key(|entry| history_sort(&entry.key()));
    entries
}

#[test]
fn a_service_history_pages_newest_first_ties_by_id() {
    // R47, R45: `requests_on` and `assignments_on` list every request
    // (whatever its state) and every assignment (R46) of one service,
    // newest first, ties by id, strictly after the cursor, at most `limit`,
    // exactly as full scans of the file sorted say, from any cursor: one of
    // their own rows, one of the other listing's (the driver merges them
    // under one cursor), or a key between rows; and the driver's pages of
    // the merged history agree.
    let dir = TempDir::new("history");
    let store = SqliteStore::open(dir.file("history.db")).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    history_world(&driver, 11);
    store.audit().unwrap();
    for service in history_services() {
        let expected = scanned_history(&store, &service);
        let requests: Vec<ChangeRequest> = expected
            .iter()
            .filter_map(|e| match e {
                HistoryEntry::Request(r) => Some(r.clone()),
                HistoryEntry::Assignment(_) => None,
            })
            .collect();
        let assignments: Vec<Assignment> = expected
            .iter()
            .filter_map(|e| match e {
                HistoryEntry::Assignment(a) => Some(a.clone()),
                HistoryEntry::Request(_) => None,
            })
            .collect();
        // The world is what the test claims: both kinds, terminal requests,
        // and ties within each kind and across them.
        assert!(requests.len() >= 15 && assignments.len() >= 15, "{service}");
        assert!(requests.iter().any(|r| !r.is_open()));
        assert_ties(&expected);

        // Every cursor: none, each entry's key, and keys between entries (a
        // nanosecond later, the lowest and highest id at an entry's time).
        let mut cursors: Vec<Option<HistoryKey>> = vec![None];
        for entry in &expected {
            let key = entry.key();
            cursors.push(Some(key));
            cursors.push(Some(HistoryKey {
                at: key.at + Duration::nanoseconds(1),
                ..key
            }));
            cursors.push(Some(HistoryKey { id: [0; 16], ..key }));
            cursors.push(Some(HistoryKey {
                id: [0xff; 16],
                ..key
            }));
        }
        let after = |cursor: Option<HistoryKey>, key: HistoryKey| {
            cursor.is_none_or(|c| c.listed_before(&key))
        };
        for cursor in cursors {
            for limit in [0, 1, 2, 3, 1000] {
                let want: Vec<&ChangeRequest> = requests
                    .iter()
                    .filter(|r| after(cursor, history_key(r)))
                    .take(limit)
                    .collect();
                let got = store.requests_on(&service, cursor, limit).unwrap();
                assert_eq!(got.iter().collect::<Vec<_>>(), want, "{cursor:?} {limit}");
                let want: Vec<&Assignment> = assignments
                    .iter()
                    .filter(|a| after(cursor, a.key()))
                    .take(limit)
                    .collect();
                let got = store.assignments_on(&service, cursor, limit).unwrap();
                assert_eq!(got.iter().collect::<Vec<_>>(), want, "{cursor:?} {limit}");
            }
        }
        // Page by page, each page from the last row of the one before.
        for page in [1, 2, 5] {
            let listed = read_pages(page, |last: Option<&ChangeRequest>, n| {
                store.requests_on(&service, last.map(history_key), n)
            });
            assert_eq!(listed, requests);
            let listed = read_pages(page, |last: Option<&Assignment>, n| {
                store.assignments_on(&service, last.map(Assignment::key), n)
            });
            assert_eq!(listed, assignments);
        }
        // The driver's merged pages (R47).
        for size in [1, 2, 3, 50] {
            assert_eq!(history_pages(&driver, &service, size), expected, "{size}");
        }
    }
    // A name with no history lists nothing.
    assert!(
        store
            .requests_on(&name("none.example"), None, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .assignments_on(&name("none.example"), None, 10)
            .unwrap()
            .is_empty()
    );
}

/// Asserts that some entries of `history` share their time: requests with
/// requests, assignments with assignments, and with each other.
fn assert_ties(history: &[HistoryEntry]) {
    let mut by_time: BTreeMap<OffsetDateTime, (usize, usize)> = BTreeMap::new();
    for entry in history {
        let count = by_time.entry(entry.key().at).or_default();
        match entry {
            HistoryEntry::Request(_) => count.0 += 1,
            HistoryEntry::Assignment(_) => count.1 += 1,
        }
    }
    assert!(by_time.values().any(|&(r, _)| r >= 2), "no tied requests");
    assert!(
        by_time.values().any(|&(_, a)| a >= 2),
        "no tied assignments"
    );
    assert!(
        by_time.values().any(|&(r, a)| r >= 1 && a >= 1),
        "no mixed tie"
    );
}

/// `service`'s whole history through [`Driver::history`], `size` entries a
/// page; every page but the last is full.
fn history_pages(driver: &TestDriver<'_>, service: &ServiceName, size: usize) -> Vec<HistoryEntry> {
    let size = PageSize::new(size).unwrap();
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let page = driver.history(service, cursor.as_ref(), size).unwrap();
        let full = page.items.len() == size.get();
        entries.extend(page.items);
        match page.next {
            Some(next) => {
                assert!(full, "a short page with a next cursor");
                cursor = Some(next);
            }
            None => return entries,
        }
    }
}

#[test]
fn operators_assign_and_the_history_reads_back_through_the_driver() {
    // R46, R47 end to end on a file: an operator's assignment changes the
    // service, fails the live request on the role it changed (R32, at the
    // operator's hand) and records itself, in one commit (R31); an
    // operator's cancel records who and why (R34); the history lists it
    // all newest first, and reads back the same after a reopen.
    let dir = TempDir::new("assign");
    let file = dir.file("assign.db");
    let store = SqliteStore::open(&file).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    let site = name("site.example");
    driver.order_service(&site, id(1)).unwrap();
    let tech = open_tech(&driver, &site, id(2), t0(), 1);
    let billing = {
        let edit = Edit::new(site.clone()).with(Role::Billing, id(3));
        let at = t0() + Duration::minutes(1);
        driver.submit(&edit, id(1), at, &mut rng(2)).unwrap().value[0]
    };
    let _ = notifier.take();

    // The operator cancels the billing request.
    let act = support("Carol cannot receive mail");
    let at = t0() + Duration::minutes(2);
    let cancelled = driver.cancel_by_operator(billing, &act, at).unwrap().value;
    assert_eq!(
        cancelled.state(),
        &RequestState::Cancelled {
            by: Actor::Operator(act.clone()),
            at,
        }
    );
    // The operator assigns tech to customer 4, over the live request.
    let act = support("mailbox lost, identity checked by phone");
    let edit = Edit::new(site.clone()).with(Role::Tech, id(4));
    let at = t0() + Duration::minutes(3);
    let assigned = driver.assign(&edit, &act, at, &mut rng(3)).unwrap();
    assert!(assigned.all_delivered());
    let assignment = assigned.value;
    assert_eq!(assignment.by(), &act);
    assert_eq!(assignment.at(), at);
    let told: BTreeSet<CustomerId> = notifier.take().iter().map(Message::to).collect();
    assert!(told.contains(&id(1)) && told.contains(&id(4)), "{told:?}");
    // The commit wrote all three records: the service, the failed request
    // and the assignment.
    let service = store.service(&site).unwrap().unwrap();
    assert_eq!(service.holder(Role::Tech), id(4));
    assert_eq!(service.version(), Version::FIRST.next().next().next());
    let failed = store.request(tech).unwrap().unwrap();
    match failed.state() {
        RequestState::Failed { reason, .. } => assert_eq!(
            reason,
            &FailureReason::Reassigned {
                role: Role::Tech,
                by: assignment.id(),
            }
        ),
        other => panic!("the tech request is {other:?}"),
    }
    assert_eq!(
        failed.history().last().unwrap().actor(),
        Some(&Actor::Operator(act.clone()))
    );
    assert_eq!(store.assignments().unwrap(), slice::from_ref(&assignment));
    store.audit().unwrap();

    // The history, newest first: the assignment, then the requests.
    let expected = vec![
        HistoryEntry::Assignment(assignment.clone()),
        HistoryEntry::Request(cancelled),
        HistoryEntry::Request(failed),
    ];
    for size in [1, 2, 10] {
        assert_eq!(history_pages(&driver, &site, size), expected);
    }
    // As an export (feature `serde`), and back.
    let export = serde_json::to_string(&expected).unwrap();
    let back: Vec<HistoryEntry> = serde_json::from_str(&export).unwrap();
    assert_eq!(back, expected);

    // After a restart, the same.
    store.close().unwrap();
    let store = SqliteStore::open(&file).unwrap();
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    assert_eq!(history_pages(&driver, &site, 2), expected);
    // A removed service keeps its history (R47).
    let removed = driver.remove_service(&site, t0() + Duration::minutes(4));
    assert!(removed.unwrap().all_delivered());
    assert_eq!(history_pages(&driver, &site, 2), expected);
}

/// `assignment` with another id (through its stored form, which is how a
/// test makes an assignment record the engine did not).
fn with_id(assignment: &Assignment, id: &str) -> Assignment {
    let mut doc = serde_json::to_value(assignment).unwrap();
    doc["id"] = id.into();
    serde_json::from_value(doc).unwrap()
}

#[test]
fn an_assignment_written_twice_is_a_conflict_and_writes_nothing() {
    // R46, R31: an assignment is inserted once; a commit that brings an id
    // already stored, or the same id twice, is a conflict, and none of its
    // writes (the service's update before it included) is kept.
    let dir = TempDir::new("assign-twice");
    let store = SqliteStore::open(dir.file("twice.db")).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    let site = name("site.example");
    driver.order_service(&site, id(1)).unwrap();
    let edit = Edit::new(site.clone()).with(Role::Tech, id(2));
    let act = support("mailbox lost");
    let first = driver.assign(&edit, &act, t0(), &mut rng(1)).unwrap().value;
    let service = store.service(&site).unwrap().unwrap();
    let state = || (store.services().unwrap(), store.assignments().unwrap());
    let before = state();
    // The service's next version, written before the assignments.
    let update = Write {
        value: Service::new(site.clone(), *service.contacts(), service.version().next()),
        expected: Some(service.version()),
    };
    let again = Changes {
        services: vec![update.clone()],
        assignments: vec![first.clone()],
        ..Changes::default()
    };
    assert!(matches!(store.commit(again), Err(CommitError::Conflict)));
    assert_eq!(state(), before);
    // The same record twice in one batch, new or not.
    let fresh = with_id(&first, "0123456789abcdef0123456789abcdef");
    let doubled = Changes {
        services: vec![update.clone()],
        assignments: vec![fresh.clone(), fresh.clone()],
        ..Changes::default()
    };
    assert!(matches!(store.commit(doubled), Err(CommitError::Conflict)));
    assert_eq!(state(), before);
    // The second of two, after a new one: the new one is not kept either.
    let other = with_id(&first, "fedcba9876543210fedcba9876543210");
    let mixed = Changes {
        services: vec![update.clone()],
        assignments: vec![other, first.clone()],
        ..Changes::default()
    };
    assert!(matches!(store.commit(mixed), Err(CommitError::Conflict)));
    assert_eq!(state(), before);
    // A new id commits, with the service.
    let fine = Changes {
        services: vec![update],
        assignments: vec![fresh.clone()],
        ..Changes::default()
    };
    store.commit(fine).unwrap();
    let mut stored = store.assignments().unwrap();
    stored.sort_by_key(|a| history_sort(&a.key()));
    let mut want = vec![first, fresh];
    want.sort_by_key(|a| history_sort(&a.key()));
    assert_eq!(stored, want);
    store.audit().unwrap();
}

/// The columns of an `assignments` row, in order.
const ASSIGNMENT_COLUMNS: &str = "id, service, at_s, at_ns, doc";

#[test]
fn an_assignment_row_that_disagrees_is_reported_not_trusted() {
    // Bad input, R43, R47: an `assignments` row whose document does not
    // parse, is not a valid record, is another assignment's, or whose
    // columns disagree with it, is `Corrupt { table: "assignments" }` from
    // the listing that meets it, the driver's history and the audit, never
    // a panic nor a wrong page; the row is left as it was.
    let c = corruptible();
    let site = name("a.example");
    let act = support("mailbox lost");
    let edit = Edit::new(site.clone()).with(Role::Billing, id(3));
    let assignment = c
        .driver()
        .assign(&edit, &act, t0(), &mut rng(9))
        .unwrap()
        .value;
    let key = assignment.id().to_string();
    let select = format!("SELECT * FROM assignments WHERE id = '{key}'");
    let original = c.row(&select);
    let saved: Vec<rusqlite::types::Value> = c
        .raw
        .query_row(
            &format!("SELECT {ASSIGNMENT_COLUMNS} FROM assignments"),
            [],
            |row| (0..5).map(|i| row.get(i)).collect(),
        )
        .unwrap();
    let doc: String = c
        .raw
        .query_row("SELECT doc FROM assignments", [], |row| row.get(0))
        .unwrap();
    let mut invalid: serde_json::Value = serde_json::from_str(&doc).unwrap();
    invalid["changes"] = serde_json::json!([]);
    let other =
        serde_json::to_string(&with_id(&assignment, "0123456789abcdef0123456789abcdef")).unwrap();
    let cases: [(&str, String, &str, &str); 6] = [
        ("doc = ?1", "{not json".to_owned(), &key, "column doc: "),
        (
            "doc = ?1",
            invalid.to_string(),
            &key,
            "column doc: an assignment that changes no role",
        ),
        (
            "doc = ?1",
            other,
            &key,
            "the document is assignment 0123456789abcdef",
        ),
        (
            "at_ns = at_ns + ?1",
            "1".to_owned(),
            &key,
            "the columns disagree with the document",
        ),
        (
            "service = ?1",
            "b.example".to_owned(),
            &key,
            "the columns disagree with the document",
        ),
        (
            "id = ?1",
            "not-an-id".to_owned(),
            "not-an-id",
            "column id: ",
        ),
    ];
    for (set, value, row_key, detail) in cases {
        let sql = format!("UPDATE assignments SET {set}");
        c.raw.execute(&sql, [&value]).unwrap();
        let bad = c.row("SELECT * FROM assignments");
        // Found by the service the row says it is on.
        let listed_on: ServiceName = c
            .raw
            .query_row("SELECT service FROM assignments", [], |row| {
                row.get::<_, String>(0)
            })
            .unwrap()
            .parse()
            .unwrap();
        assert_corrupt(
            c.store.assignments_on(&listed_on, None, 10),
            "assignments",
            row_key,
            detail,
        );
        assert_corrupt(c.store.assignments(), "assignments", row_key, detail);
        assert_corrupt(c.store.audit(), "assignments", row_key, detail);
        match c.driver().history(&listed_on, None, PageSize::default()) {
            Err(DriverError::Store(SqliteStoreError::Corrupt { table, .. })) => {
                assert_eq!(table, "assignments");
            }
            other => panic!("{set}: the history gave {other:?}"),
        }
        assert_eq!(c.row("SELECT * FROM assignments"), bad, "{set}");
        // Put back, and all is well again.
        c.raw.execute("DELETE FROM assignments", []).unwrap();
        let insert =
            format!("INSERT INTO assignments ({ASSIGNMENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)");
        let values = rusqlite::params_from_iter(&saved);
        c.raw.execute(&insert, values).unwrap();
        assert_eq!(c.row(&select), original);
        let listed = c.store.assignments_on(&site, None, 10).unwrap();
        assert_eq!(listed, slice::from_ref(&assignment));
        c.store.audit().unwrap();
    }
}

// ----- the upgrade from schema version 4 -----

/// The schema of version 4, as the store created it until version 5
/// (`git show 0c49998:service-contacts-sqlite/src/store.rs`, `SCHEMA`),
/// copied here so that the test builds the file a host kept, whatever the
/// store's constants become.
const SCHEMA_4: &str = "
CREATE TABLE services (
    name    TEXT NOT NULL PRIMARY KEY,
    admin   TEXT NOT NULL,
    tech    TEXT NOT NULL,
    billing TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    last_admin   TEXT,
    last_tech    TEXT,
    last_billing TEXT,
    removed INTEGER NOT NULL CHECK (removed IN (0, 1))
) STRICT, WITHOUT ROWID;
CREATE INDEX services_admin ON services (admin, name) WHERE removed = 0;
CREATE INDEX services_tech ON services (tech, name) WHERE removed = 0;
CREATE INDEX services_billing ON services (billing, name) WHERE removed = 0;

CREATE TABLE requests (
    id          TEXT NOT NULL PRIMARY KEY,
    service     TEXT NOT NULL,
    open        INTEGER NOT NULL CHECK (open IN (0, 1)),
    opened_s    INTEGER NOT NULL,
    opened_ns   INTEGER NOT NULL,
    deadline_s  INTEGER NOT NULL,
    deadline_ns INTEGER NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    doc         TEXT NOT NULL
) STRICT;
CREATE INDEX requests_due ON requests (deadline_s, deadline_ns, id) WHERE open = 1;
CREATE INDEX requests_service ON requests (service, opened_s DESC, opened_ns DESC, id);

CREATE TABLE request_parties (
    customer   TEXT NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    part       TEXT NOT NULL CHECK (part IN ('requester', 'incoming', 'outgoing',
                                            'waiting')),
    state      TEXT NOT NULL CHECK (state IN ('validatingByCustomers', 'done', 'refused',
                                              'aborted', 'expired', 'error')),
    opened_s   INTEGER NOT NULL,
    opened_ns  INTEGER NOT NULL,
    PRIMARY KEY (request_id, customer, part)
) STRICT, WITHOUT ROWID;
CREATE INDEX request_parties_listing
    ON request_parties (customer, part, state, opened_s DESC, opened_ns DESC, request_id);
";

/// A file of schema version 4 at `path` holding `services` and `requests`
/// as the store of version 4 wrote them: its schema, marks and journal
/// mode; a row per service; a row per request (its columns and JSON
/// document) and a `request_parties` row per customer and part, `waiting`
/// rows included, with the request's recorded state and opening.
fn version_4_file(path: &Path, services: &[Service], requests: &[ChangeRequest]) {
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "wal", |_| Ok(()))
        .unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(SCHEMA_4).unwrap();
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .unwrap();
    tx.pragma_update(None, "user_version", 4).unwrap();
    for service in services {
        let row = ServiceColumns::of(service).unwrap();
        let [admin, tech, billing] = &row.holders;
        let [last_admin, last_tech, last_billing] = &row.last;
        tx.execute(
            "INSERT INTO services (name, admin, tech, billing, version, last_admin, last_tech, \
             last_billing, removed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                row.name,
                admin,
                tech,
                billing,
                row.version,
                last_admin,
                last_tech,
                last_billing,
                row.removed
            ],
        )
        .unwrap();
    }
    for request in requests {
        let row = RequestColumns::of(request).unwrap();
        tx.execute(
            "INSERT INTO requests (id, service, open, opened_s, opened_ns, deadline_s, \
             deadline_ns, version, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                row.id,
                row.service,
                row.open,
                row.opened.0,
                row.opened.1,
                row.deadline.0,
                row.deadline.1,
                row.version,
                serde_json::to_string(request).unwrap()
            ],
        )
        .unwrap();
        let state = request.state().name().as_str();
        for (customer, part) in request.party_entries() {
            tx.execute(
                "INSERT INTO request_parties (customer, request_id, part, state, opened_s, \
                 opened_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    customer.as_str(),
                    row.id,
                    part_code(part),
                    state,
                    row.opened.0,
                    row.opened.1
                ],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// The file's schema version.
fn user_version(path: &Path) -> i32 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

/// The file's tables and indexes (type, name, table, SQL), by name.
fn schema_of(path: &Path) -> Vec<[Option<String>; 4]> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name")
        .unwrap();
    stmt.query_map([], |row| {
        Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?])
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The paging world (requests in every state, one service removed), made
/// through the driver on a file of the current schema at `path`; its
/// services, its requests, and the notifier that holds the tokens mailed.
fn world_to_keep(path: &Path) -> (Vec<Service>, Vec<ChangeRequest>, MemoryNotifier) {
    let store = SqliteStore::open(path).unwrap();
    let (notifier, directory) = (MemoryNotifier::new(), directory());
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    paging_world(&driver, &notifier, 31);
    let removed = driver.remove_service(&name("s5.example"), paging_now());
    assert!(removed.unwrap().all_delivered());
    let (services, requests) = (store.services().unwrap(), store.requests().unwrap());
    store.close().unwrap();
    (services, requests, notifier)
}

#[test]
fn a_version_4_file_is_upgraded_in_place_and_keeps_working() {
    // A host's file of schema version 4 (before operators' assignments, R46)
    // opens with this store: upgraded in place to version 5, in one
    // transaction, to exactly the schema a new file gets; every service,
    // request and index row reads back as it was, the listings agree with
    // the same world in a new file, a token mailed before the upgrade
    // still confirms after it, and the history (R47) lists the requests
    // kept and the assignments made since.
    let dir = TempDir::new("upgrade");
    let current = dir.file("current.db");
    let (services, requests, notifier) = world_to_keep(&current);
    assert!(requests.iter().any(ChangeRequest::is_open));
    assert!(requests.iter().any(|r| !r.is_open()));
    assert!(services.iter().any(Service::is_removed));
    let kept = dir.file("kept.db");
    version_4_file(&kept, &services, &requests);
    assert_eq!(user_version(&kept), 4);

    let store = SqliteStore::open(&kept).unwrap();
    assert_eq!(user_version(&kept), 5);
    assert_eq!(schema_of(&kept), schema_of(&current));
    assert_eq!(store.journal_mode().unwrap(), "wal");
    assert_eq!(store.services().unwrap(), services);
    assert_eq!(store.requests().unwrap(), requests);
    assert!(store.assignments().unwrap().is_empty());
    store.audit().unwrap();
    let same = SqliteStore::open(&current).unwrap();
    let now = paging_now();
    for customer in (0..=PAGING_CUSTOMERS).map(id) {
        assert_eq!(
            all_contacts(&store, customer, 2),
            all_contacts(&same, customer, 2)
        );
        for filter in [
            RequestFilter::all(),
            RequestFilter::all().part(Part::WaitingForMe),
        ] {
            assert_eq!(
                all_requests(&store, customer, &filter, now, 3),
                all_requests(&same, customer, &filter, now, 3),
            );
        }
    }
    assert_eq!(
        all_due(&store, now + Duration::days(30), 4),
        all_due(&same, now + Duration::days(30), 4)
    );
    same.close().unwrap();

    // The file keeps working: a confirmation with a token mailed before.
    let directory = directory();
    let driver: TestDriver<'_> = Driver::new(&store, &notifier, &directory);
    let waiting = requests
        .iter()
        .find(|r| r.is_live(now) && !r.missing_at(now).is_empty())
        .expect("a request still waiting");
    let who = waiting.missing_at(now)[0];
    let token = last_token(&notifier, who, waiting.id());
    let accepted = driver.accept(waiting.id(), who, &token, now).unwrap();
    assert!(accepted.all_delivered());
    // And the history (R47): an operator's assignment (R46) on the
    // request's service, newest first, then the requests kept.
    let site = waiting.service().clone();
    let holder = store.service(&site).unwrap().unwrap().holder(Role::Billing);
    let to = id(if holder == id(9) { 8 } else { 9 });
    let edit = Edit::new(site.clone()).with(Role::Billing, to);
    let act = support("mailbox lost, identity checked");
    let assigned = driver.assign(&edit, &act, now, &mut rng(4)).unwrap();
    let history = history_pages(&driver, &site, 2);
    assert_eq!(history[0], HistoryEntry::Assignment(assigned.value.clone()));
    assert_eq!(history, scanned_history(&store, &site));
    let kept_requests = requests.iter().filter(|r| r.service() == &site).count();
    assert_eq!(history.len(), kept_requests + 1);
    store.audit().unwrap();

    // Opened again: version 5, nothing to upgrade, the assignment kept.
    store.close().unwrap();
    let store = SqliteStore::open(&kept).unwrap();
    assert_eq!(user_version(&kept), 5);
    assert_eq!(store.assignments().unwrap(), [assigned.value]);
    assert_eq!(schema_of(&kept), schema_of(&current));
}

#[test]
fn connections_racing_to_open_a_version_4_file_upgrade_it_once() {
    // Four connections open one file of version 4 at once: each either
    // upgrades it or, taking the write lock after another did, finds
    // version 5 and checks it; all open, and the file has one schema.
    let dir = TempDir::new("upgrade-race");
    let current = dir.file("current.db");
    let (services, requests, _) = world_to_keep(&current);
    let kept = dir.file("kept.db");
    version_4_file(&kept, &services, &requests);
    let stores = race(4, |_| SqliteStore::open(&kept).unwrap());
    for store in &stores {
        assert_eq!(store.requests().unwrap(), requests);
    }
    assert_eq!(user_version(&kept), 5);
    assert_eq!(schema_of(&kept), schema_of(&current));
    stores[0].audit().unwrap();
}

#[test]
fn a_version_4_file_upgrades_whole_or_not_at_all() {
    // The upgrade is one transaction: while another connection holds the
    // write lock, opening fails (busy) and the file stays at version 4
    // with nothing added; once the lock is released, it upgrades. A file
    // of version 4 that does not hold that schema whole, or holds what a
    // later version adds, is refused and left alone.
    let dir = TempDir::new("upgrade-busy");
    let current = dir.file("current.db");
    let (services, requests, _) = world_to_keep(&current);
    let kept = dir.file("kept.db");
    version_4_file(&kept, &services, &requests);
    let before = schema_of(&kept);
    let blocker = Connection::open(&kept).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let options = Options {
        busy_timeout: StdDuration::ZERO,
    };
    match SqliteStore::open_with(&kept, options) {
        Err(SqliteStoreError::Sqlite(err)) => assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        ),
        other => panic!("opened while another connection writes: {other:?}"),
    }
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(user_version(&kept), 4);
    assert_eq!(schema_of(&kept), before);
    let store = SqliteStore::open_with(&kept, options).unwrap();
    assert_eq!(user_version(&kept), 5);
    assert_eq!(store.requests().unwrap(), requests);

    let refused = TempDir::new("upgrade-refused");
    let partial = marked_file(&refused, 4, "");
    let crowded = refused.file("crowded.db");
    SqliteStore::open(&crowded).unwrap().close().unwrap();
    Connection::open(&crowded)
        .unwrap()
        .execute_batch(
            "PRAGMA journal_mode = DELETE; DROP INDEX assignments_service; \
             PRAGMA user_version = 4;",
        )
        .unwrap();
    assert_refused_and_left_alone(
        &refused,
        &[
            (
                &partial,
                "table services has columns (name), expected (name, admin, tech, billing, \
                 version, last_admin, last_tech, last_billing, removed)",
            ),
            (
                &crowded,
                "a table named assignments in a file of schema version 4",
            ),
        ],
    );
}
