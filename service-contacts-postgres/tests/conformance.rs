//! The conformance suite of `service_contacts::testing` against `PgStore` on
//! a real server, through the async runner (the store is async), each case
//! on a fresh schema of its own (R6, R29, R31, R35, R44, R45).

mod common;

use std::sync::{Arc, Mutex};

use service_contacts::testing::{CASES, run_async_store_suite};
use service_contacts_postgres::{Options, PgStore};

/// Every case of the suite passes (R31, R45 and the rest of the `Store`
/// contract, case by case); the race cases poll their racers' commits
/// together, each on a connection of its own.
#[test]
fn conforms_to_the_async_store_suite() {
    let runtime = common::runtime();
    let schemas = Arc::new(Mutex::new(Vec::new()));
    let made = Arc::clone(&schemas);
    let report = runtime.block_on(run_async_store_suite(move || {
        let made = Arc::clone(&made);
        async move {
            let schema = common::create_schema().await;
            let options = Options::default().max_connections(8);
            let store = PgStore::connect(common::schema_config(&schema), options)
                .await
                .expect("a store on an empty schema");
            made.lock().unwrap().push(schema);
            store
        }
    }));
    report.assert_passed();
    assert_eq!(report.passed, CASES);
    let schemas = std::mem::take(&mut *schemas.lock().unwrap());
    assert_eq!(schemas.len(), CASES.len(), "one fresh schema per case");
    runtime.block_on(async {
        let admin = common::admin().await;
        for schema in schemas {
            admin
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .expect("the case's schema is dropped");
        }
    });
}
