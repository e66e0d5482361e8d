//! Worlds the benchmarks run in: in-memory hosts of chosen sizes.

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_core::TryCryptoRng;
use service_contacts::{
    AsyncDriver, Changes, Contacts, CustomerId, Driver, Edit, MemoryDirectory, MemoryNotifier,
    MemoryStore, PageSize, Part, RequestFilter, Role, Service, ServiceName, StateName, Store,
    Write,
};
use time::{Duration, OffsetDateTime, macros::datetime};

/// The in-memory driver the benchmarks use.
pub(crate) type MemoryDriver = Driver<MemoryStore, MemoryNotifier, MemoryDirectory>;

/// The async driver on the same in-memory parts.
pub(crate) type AsyncMemoryDriver = AsyncDriver<MemoryStore, MemoryNotifier, MemoryDirectory>;

/// Polls `future` to its end on this thread with a waker that does nothing:
/// the smallest executor there is, no runtime. The in-memory parts answer at
/// once, so an action is ready at its first poll (but after a commit
/// conflict, which yields once).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// The `n`th customer: `BN<n>-OVH`.
pub(crate) fn customer(n: u32) -> CustomerId {
    CustomerId::parse(&format!("BN{n}-OVH")).expect("valid bench identifier")
}

/// The `n`th service: `s<n>.example.com`.
pub(crate) fn service_name(n: u32) -> ServiceName {
    ServiceName::parse(&format!("s{n}.example.com")).expect("valid bench service name")
}

pub(crate) const NOW: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);

/// One service, its admin and the customer who becomes tech, behind the
/// blocking driver ([`LifeWorld`]) or the async one ([`AsyncLifeWorld`]).
pub(crate) struct World<D> {
    driver: D,
    site: ServiceName,
    admin: CustomerId,
    tech: CustomerId,
}

/// A world for a request's life through the blocking [`Driver`].
pub(crate) type LifeWorld = World<MemoryDriver>;

/// The same world through the [`AsyncDriver`].
pub(crate) type AsyncLifeWorld = World<AsyncMemoryDriver>;

/// A directory of two customers, a service's name and the two customers.
fn life_parts() -> (MemoryDirectory, ServiceName, CustomerId, CustomerId) {
    let (admin, tech) = (customer(1), customer(2));
    let directory = MemoryDirectory::new();
    directory.add(admin);
    directory.add(tech);
    (directory, service_name(1), admin, tech)
}

/// A full request life in `$world`: the admin proposes a new tech contact,
/// both confirm with the tokens the notifier recorded, the change applies.
/// Each action's result is awaited when `await` is given (the async
/// driver), taken as it is otherwise. The world is the value, so dropping it
/// is not timed.
macro_rules! life {
    ($world:expr, $rng:expr $(, $await:tt)?) => {{
        let world = $world;
        let edit = Edit::new(world.site.clone()).with(Role::Tech, world.tech);
        let opened = world
            .driver
            .submit(&edit, world.admin, NOW, $rng)
            $(.$await)?
            .expect("opened");
        let request = opened.value[0];
        let mail = world.driver.notifier().take();
        for who in [world.tech, world.admin] {
            let token = mail
                .iter()
                .find(|m| m.to() == who)
                .and_then(|m| m.token())
                .expect("a token for each confirmer")
                .reveal();
            let outcome = world
                .driver
                .accept(request, who, &token, NOW)
                $(.$await)?
                .expect("accepted");
            if who == world.admin {
                assert_eq!(outcome.value.state().name(), StateName::Done);
            }
        }
        world
    }};
}

impl LifeWorld {
    /// A fresh world: a directory of two customers, one service.
    pub(crate) fn new() -> LifeWorld {
        let (directory, site, admin, tech) = life_parts();
        let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory);
        driver.order_service(&site, admin).expect("ordered");
        World {
            driver,
            site,
            admin,
            tech,
        }
    }

    /// A full request life (see [`life!`]).
    pub(crate) fn one_life<R: TryCryptoRng + ?Sized>(self, rng: &mut R) -> LifeWorld {
        life!(self, rng)
    }
}

impl AsyncLifeWorld {
    /// A fresh world: a directory of two customers, one service.
    pub(crate) fn new() -> AsyncLifeWorld {
        let (directory, site, admin, tech) = life_parts();
        let driver = AsyncDriver::new(MemoryStore::new(), MemoryNotifier::new(), directory);
        block_on(driver.order_service(&site, admin)).expect("ordered");
        World {
            driver,
            site,
            admin,
            tech,
        }
    }

    /// The same life as [`LifeWorld::one_life`], its actions awaited in one
    /// future polled by [`block_on`], as a host's request handler would
    /// await them.
    pub(crate) fn one_life<R: TryCryptoRng + ?Sized>(self, rng: &mut R) -> AsyncLifeWorld {
        block_on(async move { life!(self, rng, await) })
    }
}

impl Default for LifeWorld {
    fn default() -> Self {
        LifeWorld::new()
    }
}

impl Default for AsyncLifeWorld {
    fn default() -> Self {
        AsyncLifeWorld::new()
    }
}

/// A store of `size` services where customer `k` holds all three roles of
/// services `3k`, `3k+1` and `3k+2`; returns a driver and a customer with
/// three services.
pub(crate) fn contacts_world(size: u32) -> (MemoryDriver, CustomerId) {
    let store = fill_services(size);
    let queried = customer(size / 6);
    let directory = MemoryDirectory::new();
    directory.add(queried);
    let driver = Driver::new(store, MemoryNotifier::new(), directory);
    let page = driver
        .my_contacts(queried, None, PageSize::default())
        .expect("listed");
    assert_eq!(page.items.len(), 3);
    (driver, queried)
}

/// A store of `size` services, three per customer.
pub(crate) fn fill_services(size: u32) -> MemoryStore {
    let store = MemoryStore::with_capacity(size as usize);
    for n in 0..size {
        let service = Service::order(service_name(n), customer(n / 3));
        store
            .commit(Changes {
                services: vec![Write {
                    value: service,
                    expected: None,
                }],
                requests: Vec::new(),
                assignments: Vec::new(),
            })
            .expect("new service");
    }
    store
}

/// A store with `open` open requests, one per service, each proposing a new
/// tech contact; the returned customer is the incoming contact of three of
/// them.
pub(crate) fn requests_world(open: u32) -> (MemoryDriver, CustomerId) {
    let directory = MemoryDirectory::new();
    let queried = customer(999_999_999);
    directory.add(queried);
    for n in 0..open {
        directory.add(customer(n));
    }
    let driver = Driver::new(
        MemoryStore::with_capacity(open as usize),
        MemoryNotifier::new(),
        directory,
    );
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for n in 0..open {
        let site = service_name(n);
        let owner = customer(n);
        driver.order_service(&site, owner).expect("ordered");
        let incoming = if n < 3 {
            queried
        } else {
            customer((n + 1) % open)
        };
        let edit = Edit::new(site).with(Role::Tech, incoming);
        let _ = driver.submit(&edit, owner, NOW, &mut rng).expect("opened");
        // Keep the notifier from growing with the store.
        let _ = driver.notifier().take();
    }
    let page = driver
        .my_requests(
            queried,
            &RequestFilter::all(),
            NOW,
            None,
            PageSize::default(),
        )
        .expect("listed");
    assert_eq!(page.items.len(), 3);
    (driver, queried)
}

/// A fixed customer, outside the `BN<n>-OVH` range: `<prefix>1-OVH`.
fn named(prefix: &str) -> CustomerId {
    CustomerId::parse(&format!("{prefix}1-OVH")).expect("valid bench identifier")
}

/// The customer holding roles on a tenth of the services of a
/// [`many_contacts_world`], and the one holding 100.
pub(crate) fn big_holder() -> CustomerId {
    named("BG")
}

/// See [`big_holder`].
pub(crate) fn small_holder() -> CustomerId {
    named("SM")
}

/// The names `s0.example.com` to `s<size-1>.example.com`, in name order
/// (the order of the store's holder index, so that building the index
/// appends instead of inserting in the middle).
fn names_in_order(size: u32) -> Vec<ServiceName> {
    let mut names: Vec<ServiceName> = (0..size).map(service_name).collect();
    names.sort_unstable();
    names
}

/// Commits `services` to `store` in batches of 10k (built directly, not
/// through the driver: this is set-up, not what is measured).
fn commit_in_batches(store: &MemoryStore, services: impl IntoIterator<Item = Service>) {
    let mut batch = Vec::with_capacity(10_000);
    let flush = |batch: &mut Vec<Write<Service>>| {
        store
            .commit(Changes {
                services: std::mem::take(batch),
                requests: Vec::new(),
                assignments: Vec::new(),
            })
            .expect("new services");
    };
    for service in services {
        batch.push(Write {
            value: service,
            expected: None,
        });
        if batch.len() == 10_000 {
            flush(&mut batch);
        }
    }
    if !batch.is_empty() {
        flush(&mut batch);
    }
}

/// A store of `size` services (in name order): [`big_holder`] holds all
/// three roles of every tenth one, [`small_holder`] of 100 of them, spread
/// out; everyone else holds three services.
pub(crate) fn many_contacts_world(size: u32) -> MemoryDriver {
    let (big, small) = (big_holder(), small_holder());
    let spacing = size / 10 / 100;
    let store = MemoryStore::with_capacity(size as usize);
    let services = names_in_order(size)
        .into_iter()
        .zip(0u32..)
        .map(|(name, i)| {
            let holder = if i % 10 == 0 {
                big
            } else if i % 10 == 1 && (i / 10) % spacing == 0 {
                small
            } else {
                customer(i / 3)
            };
            Service::order(name, holder)
        });
    commit_in_batches(&store, services);
    let directory = MemoryDirectory::new();
    directory.add(big);
    directory.add(small);
    let driver = Driver::new(store, MemoryNotifier::new(), directory);
    let all = PageSize::new(PageSize::MAX).expect("valid page size");
    let count = |who| {
        let (mut rows, mut after) = (0, None);
        loop {
            let page = driver
                .my_contacts(who, after.as_ref(), all)
                .expect("listed");
            rows += page.items.len();
            match page.next {
                Some(next) => after = Some(next),
                None => return rows,
            }
        }
    };
    assert_eq!(count(big), size as usize / 10);
    assert_eq!(count(small), 100);
    driver
}

/// The cursor after the first `rows` rows of `customer`'s contacts.
pub(crate) fn contacts_cursor(
    driver: &MemoryDriver,
    customer: CustomerId,
    rows: usize,
) -> service_contacts::Cursor {
    let all = PageSize::new(PageSize::MAX).expect("valid page size");
    let mut after = None;
    for _ in 0..rows / PageSize::MAX {
        after = driver
            .my_contacts(customer, after.as_ref(), all)
            .expect("listed")
            .next;
    }
    after.expect("more rows than asked to skip")
}

/// The time a [`many_requests_world`] is read at: after every request
/// opened, before any deadline.
pub(crate) const REQUESTS_READ_AT: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

/// A store where [`big_holder`] asked for 100k requests, one on each of the
/// 100k services it holds, of which nine in ten are done and one in ten
/// (spread out) still awaits confirmations; and [`small_holder`] asked for
/// 100 (50 done, 50 awaiting, alternating). Each request proposes a new
/// tech contact, one of 1,000 customers, who accepts with the requester
/// for the done ones. Built through the driver (about a second).
pub(crate) fn many_requests_world(big_requests: u32) -> MemoryDriver {
    let (big, small) = (big_holder(), small_holder());
    let directory = MemoryDirectory::new();
    directory.add(big);
    directory.add(small);
    let incoming: Vec<CustomerId> = (0..1_000).map(customer).collect();
    for who in &incoming {
        directory.add(*who);
    }
    let driver = Driver::new(
        MemoryStore::with_capacity(big_requests as usize + 100),
        MemoryNotifier::new(),
        directory,
    );
    let names = names_in_order(big_requests + 100);
    // Interleaved so neither holder's services are all at one end.
    let owners = (0u32..).map(|i| {
        if i % (big_requests / 100 + 1) == 0 {
            small
        } else {
            big
        }
    });
    let owned: Vec<(ServiceName, CustomerId)> = names.into_iter().zip(owners).collect();
    for chunk in owned.chunks(10_000) {
        let _ = driver
            .import_services(
                chunk
                    .iter()
                    .map(|(name, owner)| (name.clone(), Contacts::all(*owner))),
            )
            .expect("imported");
    }
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let (mut big_count, mut small_count) = (0u32, 0u32);
    for (i, (site, owner)) in (0u32..).zip(owned) {
        let (count, open_one_in) = if owner == big {
            (&mut big_count, 10)
        } else {
            (&mut small_count, 2)
        };
        let stays_open = *count % open_one_in == 0;
        *count += 1;
        let tech = incoming[i as usize % incoming.len()];
        let at = NOW + Duration::milliseconds(i64::from(i));
        let edit = Edit::new(site).with(Role::Tech, tech);
        let opened = driver.submit(&edit, owner, at, &mut rng).expect("opened");
        let mail = driver.notifier().take();
        let request = opened.value[0];
        // An open request has the owner's confirmation: it waits for the
        // incoming contact only, so "waiting for me" lists none of the
        // owner's (an index that walked them would cost the whole history).
        let confirmers: &[CustomerId] = if stays_open { &[owner] } else { &[tech, owner] };
        for &who in confirmers {
            let token = mail
                .iter()
                .find(|m| m.to() == who)
                .and_then(|m| m.token())
                .expect("a token for each confirmer")
                .reveal();
            let _ = driver.accept(request, who, &token, at).expect("accepted");
        }
        let _ = driver.notifier().take();
    }
    assert_eq!((big_count, small_count), (big_requests, 100));
    driver
}

/// The filters the paged "my requests" benchmarks use, with their labels,
/// and whether they fill a page for both holders.
pub(crate) fn request_filters() -> [(&'static str, RequestFilter, bool); 3] {
    [
        ("done", RequestFilter::all().state(StateName::Done), true),
        (
            "validating",
            RequestFilter::all().state(StateName::ValidatingByCustomers),
            true,
        ),
        (
            "waiting_for_me",
            RequestFilter::all().part(Part::WaitingForMe),
            false,
        ),
    ]
}

/// `size` services to import, each with three different holders (admin,
/// tech, billing) among `holders` customers; returns the directory knowing
/// them all and the batch, in the order of the numbers (not of the names).
pub(crate) fn import_batch(
    size: u32,
    holders: u32,
) -> (MemoryDirectory, Vec<(ServiceName, Contacts)>) {
    let directory = MemoryDirectory::new();
    for n in 0..holders {
        directory.add(customer(n));
    }
    let batch = (0..size)
        .map(|n| {
            let first = n % holders;
            let contacts = Contacts::new(
                customer(first),
                customer((first + 1) % holders),
                customer((first + 2) % holders),
            );
            (service_name(n), contacts)
        })
        .collect();
    (directory, batch)
}
