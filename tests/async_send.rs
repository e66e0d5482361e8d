//! The async driver's actions are `Send` futures (so a host can spawn them
//! on a multi-threaded runtime) over every kind of part: owned, `&T`,
//! `Arc<T>`. And the blocking driver still takes parts that are not `Sync`.
//!
//! These are compile-time checks: the test fails to build if one breaks.
//! The calls are made but never awaited.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AsyncDirectory, AsyncDriver, AsyncNotifier, AsyncStore, ChangeRequest, Changes, CommitError,
    Contacts, CustomerId, Directory, Driver, Edit, MemoryDirectory, MemoryNotifier, MemoryStore,
    PageSize, RequestFilter, RequestId, RequestKey, Role, Roles, Service, ServiceName, Store,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// Returns the future, having checked that it is `Send`.
fn send<F: Future + Send>(future: F) -> F {
    future
}

/// Calls every action of `driver` and checks that each future is `Send`.
fn every_action_is_send<S, N, D>(driver: &AsyncDriver<S, N, D>)
where
    S: AsyncStore + Sync,
    N: AsyncNotifier + Sync,
    D: AsyncDirectory + Sync,
{
    let name: ServiceName = "example.com".parse().unwrap();
    let who: CustomerId = "AB1-OVH".parse().unwrap();
    let id = RequestId::from_bytes([1; 16]);
    let now = datetime!(2026-11-21 10:00 UTC);
    let edit = Edit::new(name.clone()).with(Role::Tech, who);
    let filter = RequestFilter::default();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    drop(send(driver.order_service(&name, who)));
    drop(send(
        driver.import_services([(name.clone(), Contacts::all(who))]),
    ));
    drop(send(driver.remove_service(&name, now)));
    drop(send(driver.submit(&edit, who, now, &mut rng)));
    drop(send(driver.accept(id, who, "token", now)));
    drop(send(driver.refuse(id, who, "token", now)));
    drop(send(driver.resend(id, who, now, &mut rng)));
    drop(send(driver.cancel(id, who, now)));
    drop(send(driver.expire_due(now)));
    drop(send(driver.expire_due_page(now, None, PageSize::default())));
    drop(send(driver.my_contacts(who, None, PageSize::default())));
    drop(send(driver.my_requests(
        who,
        &filter,
        now,
        None,
        PageSize::default(),
    )));
    drop(send(driver.service(&name)));
    drop(send(driver.request(id, now)));
    drop(send(driver.proposable(&name, who, now)));
}

#[test]
fn async_actions_are_send_over_owned_borrowed_and_shared_parts() {
    let owned = AsyncDriver::new(
        MemoryStore::new(),
        MemoryNotifier::new(),
        MemoryDirectory::new(),
    );
    every_action_is_send(&owned);

    let (store, notifier, directory) = (
        MemoryStore::new(),
        MemoryNotifier::new(),
        MemoryDirectory::new(),
    );
    let borrowed = AsyncDriver::new(&store, &notifier, &directory);
    every_action_is_send(&borrowed);

    let accounts = MemoryDirectory::new();
    let customer: CustomerId = "AB1-OVH".parse().unwrap();
    accounts.add(customer);
    let shared = Arc::new(AsyncDriver::new(
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryNotifier::new()),
        Arc::new(accounts),
    ));
    every_action_is_send(&shared);

    // And one runs on another worker thread of a multi-threaded runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let handler = Arc::clone(&shared);
    let name: ServiceName = "spawned.example".parse().unwrap();
    let task = runtime.spawn(async move { handler.order_service(&name, customer).await });
    let ordered = runtime.block_on(task).unwrap().unwrap();
    // R5: ordered, the customer holds every role.
    assert_eq!(ordered.contacts(), &Contacts::all(customer));
    assert_eq!(
        Store::contacts_of(&**shared.store(), customer, None, 10).unwrap(),
        [(ordered.name().clone(), Roles::ALL)]
    );
}

/// A blocking store that is not `Sync` (a `Cell`): the blocking driver
/// never needed its parts to be shareable, and still does not.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    reads: Cell<u32>,
}

impl Store for Counting {
    type Error = Infallible;
    fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
        self.reads.set(self.reads.get() + 1);
        Store::service(&self.inner, name)
    }
    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
        Store::request(&self.inner, id)
    }
    fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<(ServiceName, Roles)>, Infallible> {
        Store::contacts_of(&self.inner, customer, after, limit)
    }
    fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        Store::requests_of(&self.inner, customer, filter, now, after, limit)
    }
    fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        Store::due_for_expiry(&self.inner, now, after, limit)
    }
    fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<service_contacts::HistoryKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, Infallible> {
        Store::requests_on(&self.inner, name, after, limit)
    }
    fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<service_contacts::HistoryKey>,
        limit: usize,
    ) -> Result<Vec<service_contacts::Assignment>, Infallible> {
        Store::assignments_on(&self.inner, name, after, limit)
    }
    fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
        Store::commit(&self.inner, changes)
    }
}

#[test]
fn the_blocking_driver_takes_parts_that_are_not_sync() {
    let directory = MemoryDirectory::new();
    let owner: CustomerId = "AB1-OVH".parse().unwrap();
    directory.add(owner);
    let driver = Driver::new(Counting::default(), MemoryNotifier::new(), directory);
    let name: ServiceName = "example.com".parse().unwrap();
    // R5: ordered, the customer holds every role.
    let service = driver.order_service(&name, owner).unwrap();
    assert_eq!(service.holder(Role::Billing), owner);
    assert_eq!(driver.service(&name).unwrap(), service);
    // The order read the name once (is it taken?), the read once more.
    assert_eq!(driver.store().reads.get(), 2);
    assert!(Directory::exists(driver.directory(), owner).unwrap());
}
