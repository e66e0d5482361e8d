//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use std::sync::Barrier;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    CustomerId, Directory, Driver, Edit, MemoryNotifier, Notifier, RequestId, Role, ServiceName,
    Store, Token,
};
use time::{OffsetDateTime, macros::datetime};

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
        .find(|m| m.to() == to && m.request() == request && m.token().is_some())
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
