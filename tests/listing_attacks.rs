//! Attacks on the paged and filtered listings (R6, R29, R35, R45), from an
//! independent review: random worlds read page by page on `MemoryStore` and
//! on the `SQLite` store against full scans, cursor text that must never
//! panic, sweeps across page ends, and imports that must keep the holder
//! index in name order.
#![cfg(all(feature = "serde", feature = "testing"))]

#[macro_use]
mod common;

#[path = "../examples/sqlite_store/store.rs"]
mod store;

use std::cmp::Reverse;
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ChangeRequest, Changes, CommitError, Contacts, Cursor, CustomerId, Driver, Edit,
    MemoryDirectory, MemoryNotifier, MemoryStore, PageSize, Part, RequestFilter, RequestId, Role,
    Service, ServiceName, StateName, Store,
};
use store::SqliteStore;
use time::{Duration, OffsetDateTime, macros::datetime};

const T0: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);

fn cid(text: &str) -> CustomerId {
    text.parse().unwrap()
}

fn sname(text: &str) -> ServiceName {
    text.parse().unwrap()
}

const PEOPLE: [&str; 4] = ["AA1-OVH", "BB2-OVH", "CC3-OVH", "DD4-OVH"];

fn directory() -> MemoryDirectory {
    let d = MemoryDirectory::new();
    for p in PEOPLE {
        d.add(cid(p));
    }
    d
}

fn token_of(notifier: &MemoryNotifier, to: CustomerId, request: RequestId) -> Option<String> {
    notifier
        .delivered()
        .iter()
        .rev()
        .find(|m| m.to() == to && m.request() == request && m.token().is_some())
        .and_then(|m| m.token().map(service_contacts::Token::reveal))
}

struct TempFile(std::path::PathBuf);
impl TempFile {
    fn new() -> TempFile {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "probe-listings-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempFile(dir)
    }
    fn db(&self) -> std::path::PathBuf {
        self.0.join("db.sqlite")
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Differential: random worlds, every listing page by page == full scan.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Submit {
        s: usize,
        roles: u8,
        to: usize,
        actor: usize,
    },
    Accept {
        r: usize,
        who: usize,
    },
    Refuse {
        r: usize,
        who: usize,
    },
    Cancel {
        r: usize,
    },
    Advance {
        step: u8,
    },
    Sweep,
    Remove {
        s: usize,
    },
    Reimport {
        s: usize,
        a: usize,
        t: usize,
        b: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..5, 1u8..8, 0usize..4, 0usize..6)
            .prop_map(|(s, roles, to, actor)| Op::Submit { s, roles, to, actor }),
        6 => (0usize..32, 0usize..4).prop_map(|(r, who)| Op::Accept { r, who }),
        1 => (0usize..32, 0usize..4).prop_map(|(r, who)| Op::Refuse { r, who }),
        1 => (0usize..32).prop_map(|r| Op::Cancel { r }),
        2 => (0u8..5).prop_map(|step| Op::Advance { step }),
        1 => Just(Op::Sweep),
        1 => (0usize..5).prop_map(|s| Op::Remove { s }),
        1 => (0usize..5, 0usize..4, 0usize..4, 0usize..4)
            .prop_map(|(s, a, t, b)| Op::Reimport { s, a, t, b }),
    ]
}

fn service_names() -> Vec<ServiceName> {
    ["b.example", "a.example", "c.example", "ab.example", "a"]
        .iter()
        .map(|n| sname(n))
        .collect()
}

/// Runs `ops` on a driver over `store`, returns the final `now` and the
/// times worth listing at (each deadline, just before it, now).
fn play<S: Store>(
    driver: &Driver<S, MemoryNotifier, MemoryDirectory>,
    ops: &[Op],
) -> (OffsetDateTime, Vec<RequestId>) {
    let people: Vec<CustomerId> = PEOPLE.iter().map(|p| cid(p)).collect();
    let names = service_names();
    let holders = |i: usize| Contacts::new(people[i % 4], people[(i + 1) % 4], people[i % 4]);
    driver
        .import_services(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), holders(i))),
        )
        .unwrap();
    let mut now = T0;
    let mut requests: Vec<RequestId> = Vec::new();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for op in ops {
        match *op {
            Op::Submit {
                s,
                roles,
                to,
                actor,
            } => {
                let name = &names[s];
                let Ok(service) = driver.service(name) else {
                    continue;
                };
                let mut edit = Edit::new(name.clone());
                for (bit, role) in [(1, Role::Admin), (2, Role::Tech), (4, Role::Billing)] {
                    if roles & bit != 0 {
                        edit = edit.with(role, people[to]);
                    }
                }
                let actor = if actor >= 3 {
                    service.holder(Role::Admin)
                } else {
                    people[actor]
                };
                if let Ok(out) = driver.submit(&edit, actor, now, &mut rng) {
                    requests.extend(out.value);
                }
            }
            Op::Accept { r, who } | Op::Refuse { r, who } => {
                if requests.is_empty() {
                    continue;
                }
                let id = requests[r % requests.len()];
                let who = people[who];
                let Some(token) = token_of(driver.notifier(), who, id) else {
                    continue;
                };
                let _ = if matches!(op, Op::Accept { .. }) {
                    driver.accept(id, who, &token, now)
                } else {
                    driver.refuse(id, who, &token, now)
                };
            }
            Op::Cancel { r } => {
                if requests.is_empty() {
                    continue;
                }
                let id = requests[r % requests.len()];
                if let Ok(status) = driver.request(id, now) {
                    let _ = driver.cancel(id, status.request.requester(), now);
                }
            }
            Op::Advance { step } => {
                now += match step {
                    0 => Duration::ZERO,
                    1 => Duration::hours(1),
                    2 => Duration::days(3),
                    3 => Duration::days(7),
                    _ => Duration::nanoseconds(1),
                };
            }
            Op::Sweep => {
                let _ = driver.expire_due(now);
            }
            Op::Remove { s } => {
                let _ = driver.remove_service(&names[s], now);
            }
            Op::Reimport { s, a, t, b } => {
                let _ = driver.import_services([(
                    names[s].clone(),
                    Contacts::new(people[a], people[t], people[b]),
                )]);
            }
        }
    }
    (now, requests)
}

fn filters() -> Vec<RequestFilter> {
    let states = [
        StateName::ValidatingByCustomers,
        StateName::Done,
        StateName::Refused,
        StateName::Aborted,
        StateName::Expired,
        StateName::Error,
    ];
    let parts = [
        Part::AskedByMe,
        Part::WaitingForMe,
        Part::ComingToMe,
        Part::TakingFromMe,
    ];
    let mut state_sets: Vec<Vec<StateName>> = vec![vec![]];
    state_sets.extend(states.iter().map(|s| vec![*s]));
    state_sets.push(vec![StateName::ValidatingByCustomers, StateName::Expired]);
    state_sets.push(vec![StateName::Done, StateName::Error, StateName::Refused]);
    let mut out = Vec::new();
    for st in &state_sets {
        for mask in 0u8..16 {
            for service in [None, Some(sname("a.example")), Some(sname("b.example"))] {
                let mut f = RequestFilter::all();
                for s in st {
                    f = f.state(*s);
                }
                for (i, p) in parts.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        f = f.part(*p);
                    }
                }
                if let Some(s) = service {
                    f = f.service(s);
                }
                out.push(f);
            }
        }
    }
    out
}

/// Every listing of the driver, page by page, against a full scan of
/// `all_requests` / `all_services`.
#[expect(
    clippy::too_many_lines,
    reason = "one listing after the other, each against its scan"
)]
fn check_listings<S: Store>(
    driver: &Driver<S, MemoryNotifier, MemoryDirectory>,
    all_requests: &[ChangeRequest],
    all_services: &[Service],
    now: OffsetDateTime,
    sparse: bool,
) -> Result<(), String> {
    let people: Vec<CustomerId> = PEOPLE.iter().map(|p| cid(p)).collect();
    // Times: now, every deadline and a nanosecond either side of it.
    let mut times = vec![now, now + Duration::days(8)];
    for r in all_requests {
        times.push(r.deadline());
        times.push(r.deadline() - Duration::nanoseconds(1));
    }
    times.sort();
    times.dedup();
    if sparse {
        times.truncate(6);
    }
    let filters = filters();
    for &customer in &people {
        // Contacts.
        let mut expected: Vec<(ServiceName, _)> = all_services
            .iter()
            .filter(|s| !s.is_removed() && !s.roles_of(customer).is_empty())
            .map(|s| (s.name().clone(), s.roles_of(customer)))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        for size in [1, 2, 50] {
            let size = PageSize::new(size).unwrap();
            let mut rows = Vec::new();
            let mut after: Option<Cursor> = None;
            loop {
                let page = driver
                    .my_contacts(customer, after.as_ref(), size)
                    .map_err(|e| e.to_string())?;
                rows.extend(page.items);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            if rows != expected {
                return Err(format!(
                    "contacts of {customer} by {size:?}: {rows:?} != {expected:?}"
                ));
            }
        }
        for &at in &times {
            for (fi, filter) in filters.iter().enumerate() {
                if sparse && fi % 5 != 0 {
                    continue;
                }
                let mut expected: Vec<&ChangeRequest> = all_requests
                    .iter()
                    .filter(|r| filter.matches(r, customer, at))
                    .collect();
                expected.sort_by_key(|r| (Reverse(r.opened_at()), r.id()));
                let expected: Vec<RequestId> = expected.iter().map(|r| r.id()).collect();
                for size in [1, 3] {
                    let size = PageSize::new(size).unwrap();
                    let mut rows = Vec::new();
                    let mut after: Option<Cursor> = None;
                    loop {
                        let page = driver
                            .my_requests(customer, filter, at, after.as_ref(), size)
                            .map_err(|e| e.to_string())?;
                        for row in &page.items {
                            let r = all_requests.iter().find(|r| r.id() == row.id).unwrap();
                            if row.waits_for_me != r.waits_for(customer, at)
                                || row.state != r.state_name_at(at)
                            {
                                return Err(format!("summary of {} wrong", row.id));
                            }
                        }
                        rows.extend(page.items.iter().map(|r| r.id));
                        match page.next {
                            Some(n) => after = Some(n),
                            None => break,
                        }
                    }
                    if rows != expected {
                        return Err(format!(
                            "{customer} {filter:?} at {at} by {size:?}: listed {rows:?}, expected {expected:?}"
                        ));
                    }
                }
            }
        }
    }
    // Due for expiry, through the store directly.
    for &at in &times {
        let mut expected: Vec<&ChangeRequest> =
            all_requests.iter().filter(|r| r.is_due(at)).collect();
        expected.sort_by_key(|r| (r.deadline(), r.id()));
        let expected: Vec<RequestId> = expected.iter().map(|r| r.id()).collect();
        for limit in [1, 2, 7] {
            let mut rows: Vec<RequestId> = Vec::new();
            let mut after = None;
            loop {
                let page = driver
                    .store()
                    .due_for_expiry(at, after, limit)
                    .map_err(|e| e.to_string())?;
                if page.len() > limit {
                    return Err("due page too long".into());
                }
                after = page.last().map(|r| service_contacts::RequestKey {
                    at: r.deadline(),
                    id: r.id(),
                });
                let short = page.len() < limit;
                rows.extend(page.iter().map(ChangeRequest::id));
                if short {
                    break;
                }
            }
            if rows != expected {
                return Err(format!("due at {at} by {limit}: {rows:?} != {expected:?}"));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn memory_listings_agree_with_full_scans(ops in prop::collection::vec(op(), 1..80)) {
        let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory());
        let (now, _) = play(&driver, &ops);
        driver.store().audit().map_err(TestCaseError::fail)?;
        let requests = driver.store().requests();
        if std::env::var_os("PROBE_STATS").is_some() {
            let states: Vec<_> = requests.iter().map(|r| r.state_name_at(now)).collect();
            eprintln!("{} requests {:?}", requests.len(), states);
        }
        let services = driver.store().services();
        check_listings(&driver, &requests, &services, now, false).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_listings_agree_with_full_scans(ops in prop::collection::vec(op(), 1..30)) {
        let tmp = TempFile::new();
        let sqlite = SqliteStore::open(tmp.db()).unwrap();
        let driver = Driver::new(&sqlite, MemoryNotifier::new(), directory());
        let (now, _) = play(&driver, &ops);
        sqlite.audit().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let requests = sqlite.requests().unwrap();
        let services = sqlite.services().unwrap();
        check_listings(&driver, &requests, &services, now, true).map_err(TestCaseError::fail)?;
    }
}

// ---------------------------------------------------------------------------
// Cursor text: arbitrary bytes never panic.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn cursor_text_never_panics(
        listing in 0u8..5,
        clen in 0u8..20,
        body in prop::collection::vec(any::<u8>(), 0..80),
        text in "[A-Za-z0-9_-]{0,120}",
    ) {
        let mut bytes = vec![1u8, listing, clen];
        bytes.extend(body);
        let encoded = base64url(&bytes);
        if let Ok(c) = encoded.parse::<Cursor>() {
            // A cursor that parses prints back as the same text.
            prop_assert_eq!(c.to_string(), encoded);
        }
        let _ = text.parse::<Cursor>();
    }
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=n {
            out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Sweeps: ties across EXPIRY_PAGE ends, a request that cannot expire.
// ---------------------------------------------------------------------------

fn many_services<S: Store>(
    driver: &Driver<S, MemoryNotifier, MemoryDirectory>,
    n: usize,
) -> Vec<ServiceName> {
    let owner = cid(PEOPLE[0]);
    let names: Vec<ServiceName> = (0..n).map(|i| sname(&format!("s{i:05}.example"))).collect();
    driver
        .import_services(names.iter().map(|n| (n.clone(), Contacts::all(owner))))
        .unwrap();
    names
}

/// Orders `n` services, opens a tech change on each at `T0`, and returns the
/// deadline they all share.
fn open_tech_everywhere<S: Store>(
    driver: &Driver<S, MemoryNotifier, MemoryDirectory>,
    n: usize,
    seed: u64,
) -> OffsetDateTime {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut opened = Vec::new();
    for name in many_services(driver, n) {
        let edit = Edit::new(name).with(Role::Tech, cid(PEOPLE[1]));
        opened.extend(
            driver
                .submit(&edit, cid(PEOPLE[0]), T0, &mut rng)
                .unwrap()
                .value,
        );
    }
    driver.request(opened[0], T0).unwrap().request.deadline()
}

#[test]
fn expire_due_sweeps_250_requests_sharing_one_deadline() {
    let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory());
    let deadline = open_tech_everywhere(&driver, 250, 1);
    let sweep = driver.expire_due(deadline).unwrap();
    assert!(sweep.value.failed.is_empty());
    assert_eq!(sweep.value.expired.len(), 250);
    assert!(
        driver
            .store()
            .due_for_expiry(deadline, None, 10)
            .unwrap()
            .is_empty()
    );
    driver.store().audit().unwrap();
}

/// A store whose commits of one request always fail.
struct Refusing {
    inner: MemoryStore,
    broken: std::sync::Mutex<Option<RequestId>>,
}

#[derive(Debug, thiserror::Error)]
#[error("disk on fire")]
struct Fire;

impl Store for Refusing {
    type Error = Fire;
    fn service(&self, name: &ServiceName) -> Result<Option<Service>, Fire> {
        common::never(self.inner.service(name))
    }
    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Fire> {
        common::never(self.inner.request(id))
    }
    forward_listings!(inner, Fire, common::never);
    fn commit(&self, changes: Changes) -> Result<(), CommitError<Fire>> {
        let broken = *self.broken.lock().unwrap();
        if changes
            .requests
            .iter()
            .any(|w| Some(w.value.id()) == broken)
        {
            return Err(CommitError::Store(Fire));
        }
        self.inner.commit(changes).map_err(|e| match e {
            CommitError::Conflict => CommitError::Conflict,
            CommitError::Store(never) => match never {},
        })
    }
}

#[test]
fn expire_due_goes_past_a_request_that_cannot_expire_at_a_page_end() {
    let store = Refusing {
        inner: MemoryStore::new(),
        broken: std::sync::Mutex::new(None),
    };
    let driver = Driver::new(store, MemoryNotifier::new(), directory());
    let deadline = open_tech_everywhere(&driver, 205, 2);
    // The request at position 100 (the first of the second page).
    let order = driver.store().due_for_expiry(deadline, None, 500).unwrap();
    *driver.store().broken.lock().unwrap() = Some(order[100].id());
    let sweep = driver.expire_due(deadline).unwrap();
    assert_eq!(sweep.value.failed.len(), 1);
    assert_eq!(sweep.value.expired.len(), 204);
    // A second sweep tries it again and stops.
    let again = driver.expire_due(deadline).unwrap();
    assert_eq!(again.value.failed.len(), 1);
    assert!(again.value.expired.is_empty());
}

// ---------------------------------------------------------------------------
// index_holders: batches that mix tombstones, merges and insertions.
// ---------------------------------------------------------------------------

#[test]
fn import_over_tombstones_and_interleaved_names_keeps_the_holder_index() {
    let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory());
    let [a, b, c, _d] = PEOPLE.map(cid);
    // Existing services of a, interleaved with what comes.
    driver
        .import_services(
            (0..40).map(|i| (sname(&format!("x{:03}", i * 2)), Contacts::new(a, b, a))),
        )
        .unwrap();
    // Remove some, so their names are tombstones.
    for i in (0..40).step_by(3) {
        let _ = driver
            .remove_service(&sname(&format!("x{:03}", i * 2)), T0)
            .unwrap();
    }
    driver.store().audit().unwrap();
    // A batch: tombstones replaced (a and c hold them), new names in between,
    // names sharing long prefixes, more than 16 rows per holder.
    let mut batch = Vec::new();
    for i in (0..40).step_by(3) {
        batch.push((sname(&format!("x{:03}", i * 2)), Contacts::new(c, a, b)));
    }
    for i in 0..40 {
        batch.push((sname(&format!("x{:03}", i * 2 + 1)), Contacts::new(a, c, c)));
        batch.push((sname(&format!("xxxxxxxx{i:03}")), Contacts::new(b, b, a)));
        batch.push((sname(&format!("xxxxxxxx{i:03}.y")), Contacts::new(c, a, b)));
    }
    driver.import_services(batch).unwrap();
    driver.store().audit().unwrap();
    // Then a few single changes through the insertion path.
    for i in (1..40).step_by(7) {
        let _ = driver
            .remove_service(&sname(&format!("x{:03}", i * 2 + 1)), T0)
            .unwrap();
    }
    driver
        .import_services([(sname("x003"), Contacts::new(b, b, b))])
        .unwrap();
    driver.store().audit().unwrap();
}
