//! Worlds the benchmarks run in: in-memory hosts of chosen sizes.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_core::TryCryptoRng;
use service_contacts::{
    Changes, CustomerId, Driver, Edit, MemoryDirectory, MemoryNotifier, MemoryStore, Role, Service,
    ServiceName, StateName, Store, Write,
};
use time::{OffsetDateTime, macros::datetime};

/// The in-memory driver the benchmarks use.
pub(crate) type MemoryDriver = Driver<MemoryStore, MemoryNotifier, MemoryDirectory>;

/// The `n`th customer: `BN<n>-OVH`.
pub(crate) fn customer(n: u32) -> CustomerId {
    CustomerId::parse(&format!("BN{n}-OVH")).expect("valid bench identifier")
}

/// The `n`th service: `s<n>.example.com`.
pub(crate) fn service_name(n: u32) -> ServiceName {
    ServiceName::parse(&format!("s{n}.example.com")).expect("valid bench service name")
}

const NOW: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);

/// One service, its admin and the customer who becomes tech.
pub(crate) struct LifeWorld {
    driver: MemoryDriver,
    site: ServiceName,
    admin: CustomerId,
    tech: CustomerId,
}

impl LifeWorld {
    /// A fresh world: a directory of two customers, one service.
    pub(crate) fn new() -> LifeWorld {
        let (admin, tech) = (customer(1), customer(2));
        let directory = MemoryDirectory::new();
        directory.add(admin);
        directory.add(tech);
        let driver = Driver::new(MemoryStore::new(), MemoryNotifier::new(), directory);
        let site = service_name(1);
        driver.order_service(&site, admin).expect("ordered");
        LifeWorld {
            driver,
            site,
            admin,
            tech,
        }
    }

    /// A full request life: the admin proposes a new tech contact, both
    /// confirm with the tokens the notifier recorded, the change applies.
    /// Returns the world, so dropping it is not timed.
    pub(crate) fn one_life<R: TryCryptoRng + ?Sized>(self, rng: &mut R) -> LifeWorld {
        let edit = Edit::new(self.site.clone()).with(Role::Tech, self.tech);
        let opened = self
            .driver
            .submit(&edit, self.admin, NOW, rng)
            .expect("opened");
        let request = opened.value[0];
        let mail = self.driver.notifier().take();
        for who in [self.tech, self.admin] {
            let token = mail
                .iter()
                .find(|m| m.to() == who)
                .and_then(|m| m.token())
                .expect("a token for each confirmer")
                .reveal();
            let outcome = self
                .driver
                .accept(request, who, &token, NOW)
                .expect("accepted");
            if who == self.admin {
                assert_eq!(outcome.value.state().name(), StateName::Done);
            }
        }
        self
    }
}

impl Default for LifeWorld {
    fn default() -> Self {
        LifeWorld::new()
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
    assert_eq!(driver.my_contacts(queried).expect("listed").len(), 3);
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
    assert_eq!(driver.my_requests(queried, NOW).expect("listed").len(), 3);
    (driver, queried)
}
