//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use std::sync::Barrier;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    CustomerId, Directory, Driver, Edit, MemoryNotifier, Notifier, PageSize, RequestFilter,
    RequestId, RequestSummary, Role, ServiceName, Store, Token,
};
use time::{OffsetDateTime, macros::datetime};

pub(crate) mod drive;
pub(crate) mod hooked;
pub(crate) mod records;

/// The listings of a test store that forwards them to the `MemoryStore` in
/// field `$inner`, turning its result with `$lift` (`Ok`-wrapping for a store
/// whose error is not `Infallible`, see [`never`]).
#[allow(unused_macros, reason = "each test file uses a part of the helpers")]
macro_rules! forward_listings {
    ($inner:tt, $error:ty, $lift:expr) => {
        fn contacts_of(
            &self,
            customer: service_contacts::CustomerId,
            after: Option<&service_contacts::ServiceName>,
            limit: usize,
        ) -> Result<Vec<(service_contacts::ServiceName, service_contacts::Roles)>, $error> {
            $lift(self.$inner.contacts_of(customer, after, limit))
        }
        fn requests_of(
            &self,
            customer: service_contacts::CustomerId,
            filter: &service_contacts::RequestFilter,
            now: time::OffsetDateTime,
            after: Option<service_contacts::RequestKey>,
            limit: usize,
        ) -> Result<Vec<service_contacts::ChangeRequest>, $error> {
            $lift(self.$inner.requests_of(customer, filter, now, after, limit))
        }
        fn due_for_expiry(
            &self,
            now: time::OffsetDateTime,
            after: Option<service_contacts::RequestKey>,
            limit: usize,
        ) -> Result<Vec<service_contacts::ChangeRequest>, $error> {
            $lift(self.$inner.due_for_expiry(now, after, limit))
        }
        fn requests_on(
            &self,
            name: &service_contacts::ServiceName,
            after: Option<service_contacts::HistoryKey>,
            limit: usize,
        ) -> Result<Vec<service_contacts::ChangeRequest>, $error> {
            $lift(self.$inner.requests_on(name, after, limit))
        }
        fn assignments_on(
            &self,
            name: &service_contacts::ServiceName,
            after: Option<service_contacts::HistoryKey>,
            limit: usize,
        ) -> Result<Vec<service_contacts::Assignment>, $error> {
            $lift(self.$inner.assignments_on(name, after, limit))
        }
    };
}

/// A result that cannot be an error, as one with any error type.
#[expect(
    clippy::unnecessary_wraps,
    reason = "it adapts a store's result to the wrapping store's error type"
)]
pub(crate) fn never<T, E>(result: Result<T, std::convert::Infallible>) -> Result<T, E> {
    match result {
        Ok(value) => Ok(value),
        Err(never) => match never {},
    }
}

/// Every page of `customer`'s contacts (R6, R45), `size` rows a page.
pub(crate) fn all_contacts<S: Store + Sync, N: Notifier + Sync, D: Directory + Sync>(
    driver: &Driver<S, N, D>,
    customer: CustomerId,
    size: PageSize,
) -> Result<Vec<(ServiceName, service_contacts::Roles)>, service_contacts::DriverErrorFor<S, D>> {
    drive::now(drive::contacts_pages(driver, customer, size))
}

/// Every page of `customer`'s requests that `filter` lists at `now` (R35,
/// R45), `size` rows a page.
pub(crate) fn all_requests<S: Store + Sync, N: Notifier + Sync, D: Directory + Sync>(
    driver: &Driver<S, N, D>,
    customer: CustomerId,
    filter: &RequestFilter,
    now: OffsetDateTime,
    size: PageSize,
) -> Result<Vec<RequestSummary>, service_contacts::DriverErrorFor<S, D>> {
    drive::now(drive::requests_pages(driver, customer, filter, now, size))
}

/// The customer `CU<n>-OVH`.
pub(crate) fn id(n: usize) -> CustomerId {
    format!("CU{n}-OVH").parse().expect("a valid identifier")
}

/// The time tests start at.
pub(crate) const T0: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);

/// The text of the last token `to` received for `request`.
///
/// # Panics
///
/// If no confirmation request reached `to` for `request`.
pub(crate) fn last_token(notifier: &MemoryNotifier, to: CustomerId, request: RequestId) -> String {
    notifier
        .delivered()
        .iter()
        .rev()
        .find(|m| m.to() == to && m.request() == Some(request) && m.token().is_some())
        .and_then(|m| m.token().map(Token::reveal))
        .expect("a confirmation request was delivered")
}

/// Runs `work(thread)` on `threads` threads released together by a barrier,
/// and returns their results in thread order.
pub(crate) fn race<T: Send>(threads: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (barrier, work) = (&barrier, &work);
                scope.spawn(move || {
                    barrier.wait();
                    work(thread)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a racing thread panicked"))
            .collect()
    })
}

/// Opens a change of `service`'s tech contact to `incoming`, asked by its
/// admin, with a generator seeded from `seed`.
///
/// # Panics
///
/// If the service is missing or the edit is refused.
pub(crate) fn open_tech<S: Store, N: Notifier, D: Directory>(
    driver: &Driver<S, N, D>,
    service: &ServiceName,
    incoming: CustomerId,
    now: OffsetDateTime,
    seed: u64,
) -> RequestId {
    let admin = driver
        .store()
        .service(service)
        .expect("the store answers")
        .expect("the service exists")
        .holder(Role::Admin);
    let edit = Edit::new(service.clone()).with(Role::Tech, incoming);
    driver
        .submit(&edit, admin, now, &mut ChaCha20Rng::seed_from_u64(seed))
        .expect("the edit opens")
        .value[0]
}
