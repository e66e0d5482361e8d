//! Attacks on the paged and filtered listings (R6, R29, R35, R45), from an
//! independent review: random worlds read page by page on `MemoryStore`
//! against full scans (the harness is `listings/mod.rs`, which the `SQLite`
//! crate runs on its store too), cursor text that must never panic, sweeps
//! across page ends, and imports that must keep the holder index in name
//! order.

#[macro_use]
mod common;
mod listings;

use listings::{PEOPLE, T0, check_listings, cid, directory, op, play, sname};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    ChangeRequest, Changes, CommitError, Contacts, Cursor, Driver, Edit, MemoryDirectory,
    MemoryNotifier, MemoryStore, RequestId, Role, Service, ServiceName, Store,
};
use time::OffsetDateTime;

// ---------------------------------------------------------------------------
// Differential: random worlds, every listing page by page == full scan.
// ---------------------------------------------------------------------------

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
