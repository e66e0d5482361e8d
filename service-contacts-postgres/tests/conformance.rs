//! The conformance suite of `service_contacts::testing` against `PgStore` on
//! a real server, each case on a fresh schema of its own (R6, R29, R31,
//! R35, R44, R45).

mod common;

use service_contacts::testing::{CASES, run_store_suite};

/// Every case of the suite passes (R31, R45 and the rest of the `Store`
/// contract, case by case).
#[test]
fn conforms_to_the_store_suite() {
    let runtime = common::runtime();
    let report = run_store_suite(|| common::BlockingStore::fresh(runtime.handle(), 8));
    report.assert_passed();
    assert_eq!(report.passed.len(), CASES.len());
}
