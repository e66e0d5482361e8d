//! What the store refuses and reports: schemas that are not ours or are
//! newer, rows that do not parse or disagree with their records (R43), a
//! commit blocked past the lock timeout (a conflict, R31), a connection lost
//! during `COMMIT` (an unknown outcome), and secrets kept out of errors and
//! `Debug` output.

mod common;

use std::sync::Arc;

use common::{Schema, admin, runtime};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AsyncDriver, AsyncStore, CommitError, Contacts, CustomerId, Edit, MemoryDirectory,
    MemoryNotifier, Part, RequestFilter, RequestId, Role, Service, ServiceName, StateName, Version,
    Write,
};
use service_contacts_postgres::{Options, PgStore, PgStoreError, SCHEMA_VERSION};
use time::macros::datetime;
use tokio::runtime::Runtime;

fn id(n: u32) -> CustomerId {
    format!("CU{n}-OVH").parse().unwrap()
}

/// The relations of `schema`, by name: what "left untouched" compares.
fn relations(runtime: &Runtime, schema: &Schema) -> Vec<String> {
    runtime.block_on(async {
        admin()
            .await
            .query(
                "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n \
                 ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY 1",
                &[&schema.name],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    })
}

/// A schema another application made: refused, named, and left as it was.
#[test]
fn another_applications_schema_is_refused_and_left_alone() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    schema.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)");
    let before = relations(&runtime, &schema);
    let err = schema.store(2).expect_err("another application's schema");
    match &err {
        PgStoreError::Schema {
            schema: name,
            detail,
        } => {
            assert_eq!(name, &schema.name);
            assert!(detail.contains("users"), "{detail}");
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
    assert_eq!(relations(&runtime, &schema), before);
}

/// A schema of a newer version of this crate: `NewerSchema`, untouched.
#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    drop(schema.store(2).expect("an empty schema gets ours"));
    schema.execute("UPDATE service_contacts_schema SET version = version + 1");
    let before = relations(&runtime, &schema);
    let err = schema.store(2).expect_err("a newer schema");
    assert!(
        matches!(&err, PgStoreError::NewerSchema { found, .. } if *found == SCHEMA_VERSION + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(relations(&runtime, &schema), before);
}

/// A damaged schema of ours (an index dropped, a column changed, a version
/// that never was, a marker of another application, a table of version 1
/// or 2 missing) is refused with what is wrong. (An older schema that is
/// whole is upgraded: `tests/upgrade.rs`.)
#[test]
fn a_damaged_schema_of_ours_is_refused_with_what_is_wrong() {
    let runtime = runtime();
    for (damage, expected) in [
        ("DROP INDEX requests_due", "index requests_due is missing"),
        (
            "ALTER TABLE services RENAME COLUMN removed TO deleted",
            "table services has columns",
        ),
        (
            "UPDATE service_contacts_schema SET version = 0",
            "schema version 0",
        ),
        (
            "UPDATE service_contacts_schema SET application = 'billing'",
            "names application \"billing\"",
        ),
        (
            "DROP TABLE request_parties",
            "table request_parties is missing",
        ),
        (
            "DROP INDEX assignments_service",
            "index assignments_service is missing",
        ),
        (
            "ALTER TABLE assignments DROP COLUMN at_ns",
            "table assignments has columns",
        ),
        ("DROP TABLE assignments", "table assignments is missing"),
    ] {
        let schema = Schema::new(runtime.handle());
        drop(schema.store(2).expect("an empty schema gets ours"));
        schema.execute(damage);
        let before = relations(&runtime, &schema);
        match schema.store(2) {
            Err(PgStoreError::Schema { detail, .. }) => {
                assert!(detail.contains(expected), "{damage}: {detail}");
            }
            other => panic!("{damage}: expected a schema error, got {other:?}"),
        }
        assert_eq!(relations(&runtime, &schema), before, "{damage}");
    }
}

/// A `search_path` that names no schema: nowhere to create the tables.
#[test]
fn a_search_path_without_a_schema_is_refused() {
    let runtime = runtime();
    let mut config = common::server();
    config.options("-c search_path=sc_test_no_such_schema");
    let err = runtime
        .block_on(PgStore::connect(config, Options::default()))
        .expect_err("no schema");
    assert!(matches!(err, PgStoreError::NoSchema), "{err:?}");
}

/// Two stores starting at once on an empty schema: it is created once, and
/// both use it.
#[test]
fn two_stores_starting_at_once_create_the_schema_once() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    let (a, b) = runtime.block_on(async {
        tokio::join!(
            PgStore::connect(schema.config(), Options::default()),
            PgStore::connect(schema.config(), Options::default())
        )
    });
    let (a, b) = (a.expect("first store"), b.expect("second store"));
    assert_eq!(a.schema(), b.schema());
}

/// A store on a fresh schema with one service and one open request, and a
/// way to damage its rows.
struct World {
    runtime: Runtime,
    schema: Schema,
    store: PgStore,
    service: ServiceName,
    request: RequestId,
}

fn world() -> World {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    let store = schema.store(4).unwrap();
    let directory = MemoryDirectory::new();
    directory.add(id(1));
    directory.add(id(2));
    let driver = AsyncDriver::new(store.clone(), MemoryNotifier::new(), directory);
    let service: ServiceName = "corrupt.example".parse().unwrap();
    let request = runtime.block_on(async {
        driver.order_service(&service, id(1)).await.unwrap();
        let edit = Edit::new(service.clone()).with(Role::Tech, id(2));
        let now = datetime!(2026-11-21 10:00 UTC);
        driver
            .submit(&edit, id(1), now, &mut ChaCha20Rng::seed_from_u64(7))
            .await
            .unwrap()
            .value[0]
    });
    World {
        runtime,
        schema,
        store,
        service,
        request,
    }
}

fn assert_corrupt<T: std::fmt::Debug>(
    result: Result<T, PgStoreError>,
    table: &str,
    key: &str,
    detail: &str,
) {
    match result {
        Err(PgStoreError::Corrupt {
            table: t,
            key: k,
            detail: d,
        }) => {
            assert_eq!((t, k.as_str()), (table, key), "{d}");
            assert!(d.contains(detail), "{d}");
        }
        other => panic!("expected a corrupt {table} row, got {other:?}"),
    }
}

/// R43: service rows that do not parse are reported with their table and
/// key, by every read that meets them; nothing panics.
#[test]
fn a_service_row_that_does_not_parse_is_reported_not_trusted() {
    let w = world();
    let name = w.service.as_str();
    let contacts = || w.runtime.block_on(w.store.contacts_of(id(1), None, 10));
    let read = || {
        w.runtime
            .block_on(AsyncStore::service(&w.store, &w.service))
    };
    for (damage, detail) in [
        ("UPDATE services SET tech = 'not a customer'", "column tech"),
        ("UPDATE services SET admin = lower(admin)", "column admin"),
        ("UPDATE services SET last_tech = 'xyz'", "column last_tech"),
        ("UPDATE services SET name = 'Not A Name!'", "column name"),
    ] {
        let restore = "UPDATE services SET name = 'corrupt.example', admin = 'CU1-OVH', \
                       tech = 'CU1-OVH', billing = 'CU1-OVH', last_tech = (SELECT id FROM requests)";
        w.schema.execute(damage);
        let key = if damage.contains("SET name") {
            "Not A Name!"
        } else {
            name
        };
        if !damage.contains("SET name") {
            assert_corrupt(read(), "services", key, detail);
        }
        if !damage.contains("lower(admin)") {
            assert_corrupt(contacts(), "services", key, detail);
        }
        w.schema.execute(restore);
    }
    assert!(read().unwrap().is_some());
}

/// R43: a request document that does not parse, or that disagrees with its
/// indexed columns, is reported; so is a party row that disagrees with its
/// request.
#[test]
fn request_rows_that_disagree_are_reported_not_trusted() {
    let w = world();
    let key = w.request.to_string();
    let read = || w.runtime.block_on(AsyncStore::request(&w.store, w.request));
    let now = datetime!(2026-11-21 10:00 UTC);
    let mine = |filter: RequestFilter| {
        w.runtime
            .block_on(w.store.requests_of(id(1), &filter, now, None, 10))
    };
    for (damage, restore, detail) in [
        (
            "UPDATE requests SET doc = doc || '{\"unknown\": 1}'",
            "UPDATE requests SET doc = doc - 'unknown'",
            "column doc",
        ),
        (
            "UPDATE requests SET doc = jsonb_set(doc, '{id}', '\"0000\"')",
            "UPDATE requests SET doc = jsonb_set(doc, '{id}', to_jsonb(id))",
            "column doc",
        ),
        (
            "UPDATE requests SET open = NOT open",
            "UPDATE requests SET open = NOT open",
            "the columns disagree with the document",
        ),
        (
            "UPDATE requests SET deadline_ns = deadline_ns + 1",
            "UPDATE requests SET deadline_ns = deadline_ns - 1",
            "the columns disagree with the document",
        ),
    ] {
        w.schema.execute(damage);
        assert_corrupt(read(), "requests", &key, detail);
        assert_corrupt(mine(RequestFilter::all()), "requests", &key, detail);
        w.schema.execute(restore);
        assert!(read().unwrap().is_some(), "{restore}");
    }
    // A party row whose state is not its request's: found by the listing
    // that reads it.
    w.schema
        .execute("UPDATE request_parties SET state = 'done' WHERE part = 'requester'");
    assert_corrupt(
        mine(
            RequestFilter::all()
                .part(Part::AskedByMe)
                .state(StateName::Done),
        ),
        "request_parties",
        "CU1-OVH",
        "the request is validatingByCustomers",
    );
    // A party row that names a part the customer does not have.
    w.schema.execute(
        "UPDATE request_parties SET state = 'validatingByCustomers', part = 'incoming' \
         WHERE part = 'requester'",
    );
    assert_corrupt(
        mine(RequestFilter::all().part(Part::ComingToMe)),
        "request_parties",
        "CU1-OVH",
        "no such party entry",
    );
}

/// R31: a commit that meets a row another transaction holds past the lock
/// timeout (SQLSTATE 55P03) is a conflict, and writes nothing.
#[test]
fn a_row_locked_past_the_lock_timeout_is_a_conflict() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    let store = runtime
        .block_on(PgStore::connect(
            schema.config(),
            Options::default().lock_timeout(std::time::Duration::from_millis(50)),
        ))
        .unwrap();
    let name: ServiceName = "locked.example".parse().unwrap();
    let service = Service::new(name.clone(), Contacts::all(id(1)), Version::FIRST);
    runtime
        .block_on(store.commit(service_contacts::Changes {
            services: vec![Write {
                value: service.clone(),
                expected: None,
            }],
            requests: vec![],
            assignments: vec![],
        }))
        .unwrap();
    runtime.block_on(async {
        let locker = admin().await;
        locker
            .batch_execute(&format!(
                "BEGIN; SELECT * FROM {}.services FOR UPDATE",
                schema.name
            ))
            .await
            .unwrap();
        let next = Service::new(name.clone(), Contacts::all(id(2)), Version::new(2));
        let result = store
            .commit(service_contacts::Changes {
                services: vec![Write {
                    value: next,
                    expected: Some(Version::FIRST),
                }],
                requests: vec![],
                assignments: vec![],
            })
            .await;
        assert!(matches!(result, Err(CommitError::Conflict)), "{result:?}");
        locker.batch_execute("ROLLBACK").await.unwrap();
    });
    let stored = runtime
        .block_on(AsyncStore::service(&store, &name))
        .unwrap()
        .unwrap();
    assert_eq!(stored, service);
}

/// A commit dropped while it waits for a row lock (the client hung up)
/// writes nothing: its connection is closed, not returned to the pool half
/// way through a transaction, and the next commit goes through.
#[test]
fn a_commit_dropped_mid_transaction_writes_nothing() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    // One connection; a lock timeout longer than the test.
    let options = Options::default()
        .max_connections(1)
        .lock_timeout(std::time::Duration::from_secs(600));
    let store = runtime.block_on(PgStore::connect(schema.config(), options));
    let store = Arc::new(store.unwrap());
    let name: ServiceName = "dropped.example".parse().unwrap();
    let first = Service::new(name.clone(), Contacts::all(id(1)), Version::FIRST);
    let second = Service::new(name.clone(), Contacts::all(id(2)), Version::new(2));
    let update = |value: &Service, expected| service_contacts::Changes {
        services: vec![Write {
            value: value.clone(),
            expected,
        }],
        requests: vec![],
        assignments: vec![],
    };
    runtime.block_on(async {
        store.commit(update(&first, None)).await.unwrap();
        let locker = admin().await;
        let sql = format!("BEGIN; SELECT * FROM {}.services FOR UPDATE", schema.name);
        locker.batch_execute(&sql).await.unwrap();
        let committing = tokio::spawn({
            let (store, changes) = (Arc::clone(&store), update(&second, Some(Version::FIRST)));
            async move { store.commit(changes).await }
        });
        // Wait (bounded) until the commit waits for the lock, then drop it.
        // (Another session watches: one in a transaction sees the activity
        // of others as it was when it first looked.)
        let watcher = admin().await;
        let waiting = "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                       AND query LIKE 'UPDATE services%' AND application_name = $1";
        let mut pid = None;
        for _ in 0..2000 {
            if let Some(row) = watcher.query_opt(waiting, &[&schema.name]).await.unwrap() {
                pid = Some(row.get::<_, i32>(0));
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let pid = pid.expect("the commit never waited for the lock");
        committing.abort();
        assert!(committing.await.unwrap_err().is_cancelled());
        locker.batch_execute("ROLLBACK").await.unwrap();
        // Its session ends (bounded wait): nothing of it stays open.
        let alive = "SELECT 1 FROM pg_stat_activity WHERE pid = $1";
        let mut ended = false;
        for _ in 0..2000 {
            if watcher.query_opt(alive, &[&pid]).await.unwrap().is_none() {
                ended = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(ended, "the dropped commit's session is still open");
        let stored = AsyncStore::service(&*store, &name).await.unwrap();
        assert_eq!(stored.as_ref(), Some(&first));
        // The pool (one connection) goes on with a new connection.
        store
            .commit(update(&second, Some(Version::FIRST)))
            .await
            .unwrap();
        let stored = AsyncStore::service(&*store, &name).await.unwrap();
        assert_eq!(stored.as_ref(), Some(&second));
    });
}

/// A connection lost while `COMMIT` is on its way is an unknown outcome,
/// which says to read back; the pool then goes on with a new connection.
/// (`COMMIT` is held up by a deferred trigger that sleeps, and the server
/// ends that session while it sleeps.)
#[test]
fn a_connection_lost_during_commit_is_an_unknown_outcome() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    let store = schema.store(2).unwrap();
    schema.execute(
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$; \
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON services \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
    );
    let name: ServiceName = "lost.example".parse().unwrap();
    let service = Service::new(name.clone(), Contacts::all(id(1)), Version::FIRST);
    let store = Arc::new(store);
    let result = runtime.block_on(async {
        let committing = tokio::spawn({
            let store = Arc::clone(&store);
            let service = service.clone();
            async move {
                store
                    .commit(service_contacts::Changes {
                        services: vec![Write {
                            value: service,
                            expected: None,
                        }],
                        requests: vec![],
                        assignments: vec![],
                    })
                    .await
            }
        });
        let killer = admin().await;
        // Wait (bounded) until the commit sleeps inside `COMMIT`.
        let mut terminated = false;
        for _ in 0..2000 {
            let rows = killer
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE query = 'COMMIT' AND wait_event = 'PgSleep' \
                     AND application_name = $1",
                    &[&schema.name],
                )
                .await
                .unwrap();
            if !rows.is_empty() {
                terminated = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(terminated, "the commit never reached COMMIT");
        committing.await.unwrap()
    });
    match result {
        Err(CommitError::Store(err @ PgStoreError::OutcomeUnknown(_))) => {
            assert!(err.to_string().contains("read them back"), "{err}");
        }
        other => panic!("expected an unknown outcome, got {other:?}"),
    }
    // Here the server ended the session before the commit record: nothing
    // was written, and the pool serves the read on a new connection.
    schema.execute("DROP TRIGGER slow_commit ON services");
    assert_eq!(
        runtime
            .block_on(AsyncStore::service(&*store, &name))
            .unwrap(),
        None
    );
}

/// Neither errors nor `Debug` output show the password.
#[test]
fn the_password_is_never_shown() {
    let runtime = runtime();
    let secret = "hunter2-not-the-password";
    let mut config = common::server();
    config.password(secret);
    config.connect_timeout(std::time::Duration::from_secs(5));
    // The server may trust local connections: then the store opens, and its
    // Debug output is checked; otherwise the error is.
    let schema = Schema::new(runtime.handle());
    config.options(format!("-c search_path={}", schema.name));
    match runtime.block_on(PgStore::connect(config.clone(), Options::default())) {
        Ok(store) => {
            let shown = format!("{store:?}");
            assert!(!shown.contains(secret), "{shown}");
        }
        Err(err) => {
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(secret), "{shown}");
        }
    }
    assert!(!format!("{config:?}").contains(secret));
}
