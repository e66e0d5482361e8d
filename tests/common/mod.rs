//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use std::sync::Barrier;

use service_contacts::{CustomerId, MemoryNotifier, RequestId, Token};
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
