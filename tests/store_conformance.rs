//! The in-memory store passes the conformance suite it ships (R6, R29, R31, R35, R45).
#![cfg(feature = "testing")]

use service_contacts::MemoryStore;
use service_contacts::testing::{CASES, run_async_store_suite, run_store_suite};

#[test]
fn memory_store_conforms() {
    // R31: versions, all-or-nothing; R6, R35, R29: the indexed listings;
    // R45: their pages and filters.
    let report = run_store_suite(MemoryStore::new);
    report.assert_passed();
    assert_eq!(report.passed, CASES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms_through_the_async_traits() {
    // R31: versions, all-or-nothing, racing commits polled together in one
    // future; R6, R35, R29: the indexed listings; R45: their pages and
    // filters. Spawned, so the suite's future must be `Send`.
    let report = tokio::spawn(run_async_store_suite(|| async { MemoryStore::new() }))
        .await
        .expect("the suite's task ends");
    report.assert_passed();
    assert_eq!(report.passed, CASES);
}

#[test]
fn a_broken_store_is_caught() {
    // R45, R6, R29: the suite can fail: a store that forgets its indexes is
    // reported.
    use service_contacts::{
        ChangeRequest, Changes, CommitError, CustomerId, RequestFilter, RequestId, RequestKey,
        Roles, Service, ServiceName, Store,
    };
    use std::convert::Infallible;
    use time::OffsetDateTime;

    struct NoIndexes(MemoryStore);
    impl Store for NoIndexes {
        type Error = Infallible;
        fn service(&self, name: &ServiceName) -> Result<Option<Service>, Infallible> {
            self.0.service(name)
        }
        fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, Infallible> {
            self.0.request(id)
        }
        fn contacts_of(
            &self,
            _: CustomerId,
            _: Option<&ServiceName>,
            _: usize,
        ) -> Result<Vec<(ServiceName, Roles)>, Infallible> {
            Ok(Vec::new())
        }
        fn requests_of(
            &self,
            customer: CustomerId,
            filter: &RequestFilter,
            now: OffsetDateTime,
            after: Option<RequestKey>,
            limit: usize,
        ) -> Result<Vec<ChangeRequest>, Infallible> {
            self.0.requests_of(customer, filter, now, after, limit)
        }
        fn due_for_expiry(
            &self,
            _: OffsetDateTime,
            _: Option<RequestKey>,
            _: usize,
        ) -> Result<Vec<ChangeRequest>, Infallible> {
            Ok(Vec::new())
        }
        fn requests_on(
            &self,
            _: &ServiceName,
            _: Option<service_contacts::HistoryKey>,
            _: usize,
        ) -> Result<Vec<ChangeRequest>, Infallible> {
            Ok(Vec::new())
        }
        fn assignments_on(
            &self,
            _: &ServiceName,
            _: Option<service_contacts::HistoryKey>,
            _: usize,
        ) -> Result<Vec<service_contacts::Assignment>, Infallible> {
            Ok(Vec::new())
        }
        fn commit(&self, changes: Changes) -> Result<(), CommitError<Infallible>> {
            self.0.commit(changes)
        }
    }
    let report = run_store_suite(|| NoIndexes(MemoryStore::new()));
    let failed: Vec<&str> = report.failed.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        failed,
        [
            "import_batch_is_all_or_nothing",
            "all_or_nothing_assignment",
            "existing_assignment_id_conflicts",
            "contacts_of_follows_holders",
            "contacts_of_roles_follow_changes",
            "due_for_expiry_at_the_deadline",
            "due_for_expiry_order",
            "due_for_expiry_follows_changes",
            "contacts_of_pages_stay_stable",
            "due_for_expiry_pages_stay_stable",
            "listings_answer_at_most_limit",
            "history_lists_every_entry_of_its_service",
            "history_newest_first_ties_by_id",
            "history_follows_every_commit",
            "history_pages_stay_stable",
        ]
    );
}
