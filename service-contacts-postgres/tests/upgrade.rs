//! A host's existing database keeps working: a schema of version 1 (the
//! DDL and rows that version of the store wrote, `fixtures/schema_v1.sql`)
//! is upgraded in place to the current version when a store opens it, in
//! one transaction under the creation's advisory lock, and is then read,
//! listed and written like a new one, its history (R47) and operators'
//! assignments (R46) included. An upgrade that fails writes nothing; an
//! older schema that is not whole is refused untouched.

mod common;

use common::{Schema, runtime};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    Actor, AsyncDriver, AsyncStore, ChangeRequest, CustomerId, Edit, FailureReason, HistoryEntry,
    MemoryDirectory, MemoryNotifier, OperatorAct, PageSize, RequestFilter, RequestId, RequestState,
    Role, ServiceName,
};
use service_contacts_postgres::{Options, PgStore, PgStoreError, SCHEMA_VERSION};
use time::{Duration, OffsetDateTime, macros::datetime};
use tokio::runtime::Runtime;

/// A database as the store of schema version 1 left it.
const VERSION_1: &str = include_str!("fixtures/schema_v1.sql");

fn customer(text: &str) -> CustomerId {
    text.parse().unwrap()
}

fn name(text: &str) -> ServiceName {
    text.parse().unwrap()
}

fn request(text: &str) -> RequestId {
    text.parse().unwrap()
}

/// The fixture's clock: its story happened on the day of `t`.
fn t() -> OffsetDateTime {
    datetime!(2026-11-02 09:00 UTC)
}

/// The requests of the fixture (see its header).
const APPLIED: &str = "9a3744504560639ec670b7a17d492b27";
const REFUSED: &str = "8e0bb7534fcf4f12ac7458fb8092fe52";
const CANCELLED: &str = "ff333f9fda91d09ca6db37da20b7b707";
const AWAITING: &str = "07462f8d57dcc68ef55177aaec936593";
const EXPIRED: &str = "d0e07fa043cc609c56793e7e4e1a9aff";

/// One row of the marker, and the schema's relations, by name.
fn marker_and_relations(runtime: &Runtime, schema: &Schema) -> (i32, Vec<String>) {
    runtime.block_on(async {
        let client = common::admin().await;
        let version = client
            .query_one(
                &format!(
                    "SELECT version FROM {}.service_contacts_schema",
                    schema.name
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let relations = client
            .query(
                "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n \
                 ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY 1",
                &[&schema.name],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        (version, relations)
    })
}

/// Every row of the tables of version 1, as text: what the upgrade must
/// leave as it was.
fn version_1_rows(runtime: &Runtime, schema: &Schema) -> Vec<String> {
    runtime.block_on(async {
        let client = common::admin().await;
        let mut rows = Vec::new();
        for table in ["services", "requests", "request_parties"] {
            let sql = format!("SELECT t::text FROM {}.{table} t ORDER BY 1", schema.name);
            for row in client.query(&sql, &[]).await.unwrap() {
                rows.push(format!("{table}: {}", row.get::<_, String>(0)));
            }
        }
        rows
    })
}

/// The whole history of `service`, `size` entries a page.
async fn history(
    driver: &AsyncDriver<PgStore, MemoryNotifier, MemoryDirectory>,
    service: &ServiceName,
    size: usize,
) -> Vec<HistoryEntry> {
    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = driver
            .history(service, cursor.as_ref(), PageSize::new(size).unwrap())
            .await
            .unwrap();
        listed.extend(page.items);
        cursor = page.next;
        if cursor.is_none() {
            return listed;
        }
    }
}

fn requests_of(entries: &[HistoryEntry]) -> Vec<RequestId> {
    entries
        .iter()
        .filter_map(|e| match e {
            HistoryEntry::Request(r) => Some(r.id()),
            HistoryEntry::Assignment(_) => None,
        })
        .collect()
}

/// The customers of the fixture.
fn al() -> CustomerId {
    customer("AL1-OVH")
}

fn bo() -> CustomerId {
    customer("BO2-OVH")
}

fn ca() -> CustomerId {
    customer("CA3-OVH")
}

/// The requests of `AL1-OVH`, newest first.
fn newest_first() -> [RequestId; 5] {
    [AWAITING, CANCELLED, REFUSED, APPLIED, EXPIRED].map(request)
}

/// When the upgraded database is used: a day after the fixture's story.
fn now() -> OffsetDateTime {
    t() + Duration::days(1)
}

/// R43: every record of version 1 reads back as it was written, and the
/// listings of version 1 answer as before.
async fn reads_and_lists_as_written(store: &PgStore) {
    let services = store.services().await.unwrap();
    let names: Vec<&str> = services.iter().map(|s| s.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "old-1.example",
            "old-2.example",
            "old-3.example",
            "old-4.example"
        ]
    );
    assert!(services[2].is_removed());
    let requests = store.requests().await.unwrap();
    assert_eq!(requests.len(), 5);
    let state = |id: &str| {
        requests
            .iter()
            .find(|r| r.id() == request(id))
            .map(ChangeRequest::state)
            .unwrap()
            .clone()
    };
    assert!(matches!(state(APPLIED), RequestState::Applied { .. }));
    assert!(matches!(state(REFUSED), RequestState::Refused { by, .. } if by == ca()));
    assert!(matches!(
        state(CANCELLED),
        RequestState::Cancelled { by: Actor::Customer(by), .. } if by == al()
    ));
    assert!(matches!(state(AWAITING), RequestState::Awaiting(_)));
    assert!(matches!(state(EXPIRED), RequestState::Expired { .. }));
    common::consistency::party_rows_are_the_entries(store, &requests).await;

    let contacts = store.contacts_of(al(), None, 10).await.unwrap();
    let contacts: Vec<&str> = contacts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(contacts, ["old-1.example", "old-4.example"]);
    let mine = store
        .requests_of(al(), &RequestFilter::all(), now(), None, 10)
        .await
        .unwrap();
    let mine: Vec<RequestId> = mine.iter().map(ChangeRequest::id).collect();
    assert_eq!(mine, newest_first());
    let due = store
        .due_for_expiry(now() + Duration::days(7), None, 10)
        .await
        .unwrap();
    let due: Vec<RequestId> = due.iter().map(ChangeRequest::id).collect();
    assert_eq!(due, [request(AWAITING)]);
}

/// R47: the history of the old requests, page by page; R46: an operator's
/// assignment fails the old request still open on its role, in the same
/// commit; and a new request runs its course on the old service.
async fn history_and_actions_go_on(store: &PgStore) {
    let directory = MemoryDirectory::new();
    for who in [al(), bo(), ca()] {
        directory.add(who);
    }
    let driver = AsyncDriver::new(store.clone(), MemoryNotifier::new(), directory);
    let (one, two) = (name("old-1.example"), name("old-2.example"));
    let old = history(&driver, &one, 3).await;
    assert_eq!(requests_of(&old), newest_first()[..4]);
    assert_eq!(old.len(), 4);
    let expired = requests_of(&history(&driver, &two, 3).await);
    assert_eq!(expired, [request(EXPIRED)]);
    assert!(history(&driver, &name("old-3.example"), 3).await.is_empty());

    let act = OperatorAct::new(
        "jane@support".parse().unwrap(),
        "mailbox lost".parse().unwrap(),
    );
    let edit = Edit::new(one.clone()).with(Role::Tech, ca());
    let assignment = driver
        .assign(&edit, &act, now(), &mut ChaCha20Rng::seed_from_u64(1))
        .await
        .unwrap()
        .value;
    let failed = AsyncStore::request(store, request(AWAITING))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        failed.state(),
        RequestState::Failed { reason: FailureReason::Reassigned { by, .. }, .. }
            if *by == assignment.id()
    ));
    let after = history(&driver, &one, 2).await;
    assert_eq!(after.len(), 5);
    assert_eq!(after[0], HistoryEntry::Assignment(assignment));
    assert_eq!(after[1], HistoryEntry::Request(failed));
    assert_eq!(requests_of(&after), newest_first()[..4]);

    let later = now() + Duration::hours(1);
    let edit = Edit::new(one.clone()).with(Role::Billing, bo());
    let new = driver
        .submit(&edit, al(), later, &mut ChaCha20Rng::seed_from_u64(2))
        .await
        .unwrap()
        .value[0];
    for who in [bo(), al()] {
        let token = common::last_token(driver.notifier(), who, new);
        let _ = driver.accept(new, who, &token, later).await.unwrap();
    }
    let service = AsyncStore::service(store, &one).await.unwrap().unwrap();
    assert_eq!(
        Role::ALL.map(|role| service.holder(role)),
        [al(), ca(), bo()],
        "admin, tech, billing"
    );
    let last = history(&driver, &one, 10).await;
    assert_eq!(last.len(), 6);
    assert!(matches!(
        &last[0],
        HistoryEntry::Request(r) if r.id() == new && matches!(r.state(), RequestState::Applied { .. })
    ));
    common::consistency::party_rows_are_the_entries(store, &store.requests().await.unwrap()).await;
}

/// R46, R47: the store opens a database of version 1 by upgrading it in
/// place: the marker says the current version, the `assignments` table and
/// its index are there, every row of version 1 is as it was; then every
/// record reads back (R43), the listings list them, the history pages
/// through the old requests, an operator's assignment commits with them,
/// and a new request runs its whole course on an old service.
#[test]
fn a_version_1_database_is_upgraded_in_place_and_keeps_working() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    schema.execute(VERSION_1);
    let (version, relations) = marker_and_relations(&runtime, &schema);
    assert_eq!(version, 1);
    let rows = version_1_rows(&runtime, &schema);
    assert_eq!(rows.len(), 4 + 5 + 16);

    let store = schema.store(4).expect("a schema of version 1 is upgraded");
    assert_eq!(SCHEMA_VERSION, 2);
    let (version, upgraded) = marker_and_relations(&runtime, &schema);
    assert_eq!(version, SCHEMA_VERSION);
    let mut expected = relations.clone();
    expected.extend(["assignments", "assignments_pkey", "assignments_service"].map(String::from));
    expected.sort();
    assert_eq!(
        upgraded, expected,
        "the upgrade adds the table and its indexes"
    );
    assert_eq!(
        version_1_rows(&runtime, &schema),
        rows,
        "and changes no row"
    );

    runtime.block_on(reads_and_lists_as_written(&store));
    runtime.block_on(history_and_actions_go_on(&store));

    // Opened again, it is ours as it is: no second upgrade.
    drop(schema.store(2).expect("the upgraded schema is ours"));
    assert_eq!(
        marker_and_relations(&runtime, &schema),
        (SCHEMA_VERSION, expected)
    );
}

/// Two stores opening one database of version 1 at once: one upgrades it
/// (the other waits for the lock, then finds it upgraded), and both use it.
#[test]
fn two_stores_opening_a_version_1_database_at_once_upgrade_it_once() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    schema.execute(VERSION_1);
    let (a, b) = runtime.block_on(async {
        tokio::join!(
            PgStore::connect(schema.config(), Options::default()),
            PgStore::connect(schema.config(), Options::default())
        )
    });
    let (a, b) = (a.expect("first store"), b.expect("second store"));
    let (version, _) = marker_and_relations(&runtime, &schema);
    assert_eq!(version, SCHEMA_VERSION);
    runtime.block_on(async {
        assert_eq!(a.requests().await.unwrap(), b.requests().await.unwrap());
        assert!(a.assignments().await.unwrap().is_empty());
    });
}

/// The upgrade is one transaction: when its last statement fails (here an
/// event trigger refuses the index it creates, after its table was
/// created), the store reports the error and the schema is left at version
/// 1, without the table; once the cause is gone, the next store upgrades it.
#[test]
fn an_upgrade_that_fails_writes_nothing() {
    let runtime = runtime();
    let schema = Schema::new(runtime.handle());
    schema.execute(VERSION_1);
    let before = marker_and_relations(&runtime, &schema);
    // The function lives in the case's schema (dropping it drops the
    // trigger) and refuses only in sessions whose schema is this case's.
    let trigger = format!("{}_refuses_indexes", schema.name);
    schema.execute(&format!(
        "CREATE FUNCTION refuse_index() RETURNS event_trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF current_schema() = '{schema}' THEN \
         RAISE EXCEPTION 'no new index in {schema}'; END IF; END $$; \
         CREATE EVENT TRIGGER {trigger} ON ddl_command_end WHEN TAG IN ('CREATE INDEX') \
         EXECUTE FUNCTION refuse_index()",
        schema = schema.name
    ));
    let refused = schema.store(2);
    schema.execute(&format!("DROP EVENT TRIGGER {trigger}"));
    match refused {
        Err(PgStoreError::Postgres(err)) => {
            assert!(format!("{err:?}").contains("no new index"), "{err:?}");
        }
        other => panic!("expected the upgrade's error, got {other:?}"),
    }
    assert_eq!(marker_and_relations(&runtime, &schema), before);
    drop(schema.store(2).expect("upgraded once nothing refuses it"));
    assert_eq!(marker_and_relations(&runtime, &schema).0, SCHEMA_VERSION);
}

/// An older schema is upgraded only when it is whole: one with an index
/// missing, or with a relation in the way of what the upgrade adds, is
/// refused with what is wrong, and left as it was.
#[test]
fn an_older_schema_that_is_not_whole_is_refused_untouched() {
    let runtime = runtime();
    for (damage, expected) in [
        (
            "DROP INDEX requests_service",
            "index requests_service is missing (a schema of version 1, not upgraded)",
        ),
        (
            "ALTER TABLE requests DROP COLUMN deadline_ns",
            "table requests has columns",
        ),
        (
            "CREATE TABLE assignments (note TEXT)",
            "a relation assignments is there already",
        ),
        (
            "CREATE INDEX assignments_service ON services (name)",
            "a relation assignments_service is there already",
        ),
    ] {
        let schema = Schema::new(runtime.handle());
        schema.execute(VERSION_1);
        schema.execute(damage);
        let before = marker_and_relations(&runtime, &schema);
        match schema.store(2) {
            Err(PgStoreError::Schema { detail, .. }) => {
                assert!(detail.contains(expected), "{damage}: {detail}");
            }
            other => panic!("{damage}: expected a schema error, got {other:?}"),
        }
        assert_eq!(marker_and_relations(&runtime, &schema), before, "{damage}");
    }
}
