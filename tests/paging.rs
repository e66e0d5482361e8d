//! Listings page by key and stay stable while other commits land; bad
//! cursors are refused, specifically (R6, R35, R45).

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};

use common::{T0, all_contacts, all_requests};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    Contacts, Cursor, CursorError, CustomerId, Driver, DriverError, Edit, Listing, MemoryDirectory,
    MemoryNotifier, MemoryStore, PageSize, Part, Refusal, RequestFilter, RequestId, RequestSummary,
    Role, Roles, ServiceName,
};
use time::Duration;

type TestDriver = Driver<MemoryStore, MemoryNotifier, MemoryDirectory>;

fn id(text: &str) -> CustomerId {
    text.parse().expect("a valid customer id")
}

fn name(text: &str) -> ServiceName {
    text.parse().expect("a valid service name")
}

/// The customer whose listings are read.
fn me() -> CustomerId {
    id("ME1-OVH")
}

/// Others, who hold services and take part in requests.
const OTHERS: [&str; 3] = ["OT2-OVH", "OT3-OVH", "OT4-OVH"];

fn driver() -> TestDriver {
    let directory = MemoryDirectory::new();
    directory.add(me());
    for other in OTHERS {
        directory.add(id(other));
    }
    Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory)
}

/// What lands between two page reads.
#[derive(Clone, Debug)]
enum Op {
    /// A service named `n` (sorting anywhere among the others) is ordered,
    /// held by me or by someone else.
    Order { n: u16, mine: bool },
    /// On service `s`, its admin proposes someone as tech.
    Open { s: usize, to: usize },
    /// Request `r` is cancelled by its requester.
    Cancel { r: usize },
    /// Service `s` is removed.
    Remove { s: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u16..400, any::<bool>()).prop_map(|(n, mine)| Op::Order { n, mine }),
        (0usize..64, 0usize..4).prop_map(|(s, to)| Op::Open { s, to }),
        (0usize..64).prop_map(|r| Op::Cancel { r }),
        (0usize..64).prop_map(|s| Op::Remove { s }),
    ]
}

/// A world: services held by me or others, some requests.
struct World {
    driver: TestDriver,
    services: Vec<ServiceName>,
    requests: Vec<RequestId>,
    rng: ChaCha20Rng,
}

impl World {
    fn new(seed: u64, services: u16) -> World {
        let mut world = World {
            driver: driver(),
            services: Vec::new(),
            requests: Vec::new(),
            rng: ChaCha20Rng::seed_from_u64(seed),
        };
        for n in 0..services {
            world.apply(&Op::Order {
                n: n * 7 % 400,
                mine: n % 3 != 0,
            });
            world.apply(&Op::Open {
                s: usize::from(n),
                to: (usize::from(n) + 1) % 4,
            });
        }
        world
    }

    fn customer(to: usize) -> CustomerId {
        if to == 0 { me() } else { id(OTHERS[to - 1]) }
    }

    /// Applies `op`; refusals are part of the game (a name taken, a role
    /// locked, a request closed).
    fn apply(&mut self, op: &Op) {
        let now = T0 + Duration::minutes(1);
        match *op {
            Op::Order { n, mine } => {
                let service = name(&format!("s{n:03}.example"));
                let owner = if mine {
                    me()
                } else {
                    id(OTHERS[usize::from(n) % 3])
                };
                let tech = if n % 4 == 0 {
                    me()
                } else {
                    id(OTHERS[usize::from(n + 1) % 3])
                };
                let holders = Contacts::new(owner, tech, owner);
                if self
                    .driver
                    .import_services([(service.clone(), holders)])
                    .is_ok()
                {
                    self.services.push(service);
                }
            }
            Op::Open { s, to } => {
                let Some(service) = self.services.get(s % self.services.len().max(1)) else {
                    return;
                };
                let Ok(stored) = self.driver.service(service) else {
                    return;
                };
                let edit = Edit::new(service.clone()).with(Role::Tech, World::customer(to));
                if let Ok(outcome) =
                    self.driver
                        .submit(&edit, stored.holder(Role::Admin), now, &mut self.rng)
                {
                    self.requests.extend(outcome.value);
                }
            }
            Op::Cancel { r } => {
                if let Some(request) = self.requests.get(r % self.requests.len().max(1))
                    && let Ok(status) = self.driver.request(*request, now)
                {
                    let _ = self
                        .driver
                        .cancel(*request, status.request.requester(), now);
                }
            }
            Op::Remove { s } => {
                if let Some(service) = self.services.get(s % self.services.len().max(1)) {
                    let _ = self.driver.remove_service(service, now);
                }
            }
        }
        let _ = self.driver.notifier().take();
    }

    /// The version of every record: what tells a row that stayed the same.
    fn versions(&self) -> HashMap<String, u64> {
        let store = self.driver.store();
        let services = store
            .services()
            .into_iter()
            .map(|s| (s.name().to_string(), s.version().get()));
        let requests = store
            .requests()
            .into_iter()
            .map(|r| (r.id().to_string(), r.version().get()));
        services.chain(requests).collect()
    }
}

/// Rows listed once each, in strictly increasing order of `key`, and every
/// row of `before` whose record kept its version (`unchanged`) among them.
fn check_stable<T: PartialEq + std::fmt::Debug, K: Ord + std::fmt::Debug>(
    read: &[T],
    before: &[T],
    unchanged: impl Fn(&T) -> bool,
    key: impl Fn(&T) -> K,
) -> Result<(), TestCaseError> {
    for pair in read.windows(2) {
        prop_assert!(
            key(&pair[0]) < key(&pair[1]),
            "R45: out of order or repeated: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    for row in before.iter().filter(|row| unchanged(row)) {
        prop_assert!(
            read.contains(row),
            "R45: {:?} did not change, yet the pages skipped it",
            row
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn pages_stay_stable_while_commits_land(
        seed in any::<u64>(),
        services in 4u16..40,
        size in 1usize..5,
        between in proptest::collection::vec(proptest::collection::vec(op(), 0..4), 1..30),
    ) {
        // R6, R35, R45: commits land between every two page reads; no row
        // that stayed the same is skipped or listed twice, in either listing.
        let mut world = World::new(seed, services);
        let size = PageSize::new(size).unwrap();
        let now = T0 + Duration::minutes(1);
        let all = RequestFilter::all();
        let versions_before = world.versions();
        let contacts_before = all_contacts(&world.driver, me(), PageSize::default()).unwrap();
        let requests_before = all_requests(&world.driver, me(), &all, now, PageSize::default()).unwrap();

        let mut contacts: Vec<(ServiceName, Roles)> = Vec::new();
        let mut requests: Vec<RequestSummary> = Vec::new();
        let (mut contacts_after, mut requests_after) = (None::<Cursor>, None::<Cursor>);
        let (mut contacts_done, mut requests_done) = (false, false);
        for ops in between.iter().cycle().take(200) {
            if !contacts_done {
                let page = world.driver.my_contacts(me(), contacts_after.as_ref(), size).unwrap();
                prop_assert!(page.items.len() <= size.get());
                contacts.extend(page.items);
                contacts_done = page.next.is_none();
                contacts_after = page.next;
            }
            if !requests_done {
                let page = world.driver.my_requests(me(), &all, now, requests_after.as_ref(), size).unwrap();
                prop_assert!(page.items.len() <= size.get());
                requests.extend(page.items);
                requests_done = page.next.is_none();
                requests_after = page.next;
            }
            if contacts_done && requests_done {
                break;
            }
            for op in ops {
                world.apply(op);
            }
        }
        prop_assert!(contacts_done && requests_done, "the pages never ended");
        let versions_end = world.versions();
        let same = |key: String| versions_before.get(&key) == versions_end.get(&key);
        check_stable(
            &contacts,
            &contacts_before,
            |(name, _)| same(name.to_string()),
            |(name, _)| name.clone(),
        )?;
        check_stable(
            &requests,
            &requests_before,
            |r| same(r.id.to_string()),
            |r| (std::cmp::Reverse(r.opened_at), r.id),
        )?;
        world.driver.store().audit().map_err(TestCaseError::fail)?;
    }
}

#[test]
fn every_page_holds_at_most_its_size_and_the_size_is_capped() {
    // R45: the crate caps a page at 500 rows, and a page holds no more than
    // asked.
    assert!(PageSize::new(PageSize::MAX).is_ok());
    assert_eq!(PageSize::new(501).unwrap_err().rows, 501);
    assert_eq!(PageSize::new(0).unwrap_err().rows, 0);
    let world = World::new(1, 30);
    let now = T0 + Duration::minutes(1);
    for size in [1, 2, 7, 500] {
        let size = PageSize::new(size).unwrap();
        let page = world.driver.my_contacts(me(), None, size).unwrap();
        assert!(page.items.len() <= size.get());
        let page = world
            .driver
            .my_requests(me(), &RequestFilter::all(), now, None, size)
            .unwrap();
        assert!(page.items.len() <= size.get());
    }
}

#[test]
fn bad_cursors_get_specific_errors_and_no_rows() {
    // R45, bad input: garbage, a cut cursor, another listing's cursor and
    // another customer's cursor are each refused with their own error;
    // nothing panics and no one else's rows are listed.
    let world = World::new(2, 12);
    let now = T0 + Duration::minutes(1);
    let size = PageSize::new(2).unwrap();
    let all = RequestFilter::all();
    let contacts = world.driver.my_contacts(me(), None, size).unwrap();
    let contacts_cursor = contacts.next.expect("more than one page");
    let requests = world
        .driver
        .my_requests(me(), &all, now, None, size)
        .unwrap();
    let requests_cursor = requests.next.expect("more than one page");
    let other = id(OTHERS[0]);
    let refused = |err: DriverError<_, _>| match err {
        DriverError::Refused(Refusal::Cursor(cursor)) => cursor,
        other => panic!("{other:?}"),
    };

    // Garbage and cut text.
    for text in ["", "!!!", "not a cursor", "A", &"A".repeat(600)] {
        let err = text.parse::<Cursor>().unwrap_err();
        assert!(
            matches!(err, CursorError::NotACursor | CursorError::Truncated),
            "{text:?}: {err}"
        );
    }
    let text = requests_cursor.to_string();
    for cut in [4, 8, text.len() - 4] {
        let err = text[..cut].parse::<Cursor>().unwrap_err();
        assert!(
            matches!(err, CursorError::Truncated | CursorError::NotACursor),
            "{cut}: {err}"
        );
    }
    assert_eq!(
        "AgE".parse::<Cursor>().unwrap_err(),
        CursorError::UnknownVersion(2)
    );

    // Another listing's cursor.
    let err = refused(
        world
            .driver
            .my_requests(me(), &all, now, Some(&contacts_cursor), size)
            .unwrap_err(),
    );
    assert_eq!(
        err,
        CursorError::WrongListing {
            expected: Listing::Requests,
            found: Listing::Contacts
        }
    );
    assert_eq!(
        err.to_string(),
        "a cursor of my contacts, not of my requests"
    );
    let err = refused(
        world
            .driver
            .my_contacts(me(), Some(&requests_cursor), size)
            .unwrap_err(),
    );
    assert!(matches!(err, CursorError::WrongListing { .. }));
    let err = refused(
        world
            .driver
            .expire_due_page(now, Some(&contacts_cursor), size)
            .unwrap_err(),
    );
    assert!(matches!(err, CursorError::WrongListing { .. }));

    // Another customer's cursor: refused, not their rows.
    let err = refused(
        world
            .driver
            .my_contacts(other, Some(&contacts_cursor), size)
            .unwrap_err(),
    );
    assert_eq!(err, CursorError::OtherCustomer);
    let err = refused(
        world
            .driver
            .my_requests(other, &all, now, Some(&requests_cursor), size)
            .unwrap_err(),
    );
    assert_eq!(err, CursorError::OtherCustomer);

    // A cursor parsed back from its text continues where it left off.
    let again: Cursor = requests_cursor.to_string().parse().unwrap();
    let page = world
        .driver
        .my_requests(me(), &all, now, Some(&again), size)
        .unwrap();
    assert!(page.items.iter().all(|r| !requests.items.contains(r)));
}

#[test]
fn filters_compose_the_way_a_list_page_asks() {
    // R35, R45: "sent" and "received", by state, by service, and combined.
    let world = World::new(3, 20);
    let now = T0 + Duration::minutes(1);
    let size = PageSize::default();
    let sent = RequestFilter::all().part(Part::AskedByMe);
    let received = RequestFilter::all().part(Part::ComingToMe);
    let mine = all_requests(&world.driver, me(), &RequestFilter::all(), now, size).unwrap();
    let sent_rows = all_requests(&world.driver, me(), &sent, now, size).unwrap();
    let received_rows = all_requests(&world.driver, me(), &received, now, size).unwrap();
    assert!(!sent_rows.is_empty() && !received_rows.is_empty());
    assert!(sent_rows.iter().all(|r| r.requester == me()));
    assert!(received_rows.iter().all(|r| r.incoming == me()));
    let both = all_requests(
        &world.driver,
        me(),
        &RequestFilter::all()
            .part(Part::AskedByMe)
            .part(Part::ComingToMe),
        now,
        size,
    )
    .unwrap();
    let mut expected: HashSet<RequestId> = HashSet::new();
    for row in sent_rows.iter().chain(&received_rows) {
        expected.insert(row.id);
    }
    assert_eq!(
        both.len(),
        expected.len(),
        "a request in both parts is listed once"
    );
    assert!(both.len() <= mine.len());
    let service = &sent_rows[0].service;
    let on_service = all_requests(
        &world.driver,
        me(),
        &sent.clone().service(service.clone()),
        now,
        size,
    )
    .unwrap();
    assert!(
        on_service
            .iter()
            .all(|r| &r.service == service && r.requester == me())
    );
    assert!(on_service.iter().any(|r| r.id == sent_rows[0].id));
}
