//! Query plans at scale (R45 for the listings, R47 for a service's history,
//! R31 for the commit): with a million services, a million requests, three
//! million party rows and 200,000 operators' assignments loaded and
//! analysed, `EXPLAIN (FORMAT JSON)` shows every statement the
//! store runs reading through its index: no sequential scan anywhere, and in
//! every listing each index search bounded by a `LIMIT` (a page costs its
//! own rows, also for a reseller holding a hundred thousand services).
//!
//! Each statement is explained twice over: with the values the store binds
//! (the plan `PostgreSQL` makes for the first executions of a prepared
//! statement), for a small customer and a reseller, without and with a
//! cursor; and as the generic plan a prepared statement may switch to after
//! five executions, whatever the values.
//!
//! The bulk of the rows is generated in SQL and consistent with the schema
//! (every party row names a request; holders and ids in their canonical
//! forms), with a small placeholder document: the listings run here return
//! only the real documents the engine made, through the driver, for the
//! customers they ask about. The load takes the schema's indexes and keys
//! off and builds them again afterwards from their own definitions (a sort
//! per index instead of three million random inserts); the store then
//! checks the schema as ours.
//!
//! Its own test target, run once in CI: the load takes about a minute.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::Value;
use service_contacts::{
    Assignment, AsyncDriver, AsyncStore, ChangeRequest, Contacts, CustomerId, Edit, HistoryEntry,
    HistoryKey, MemoryDirectory, MemoryNotifier, OperatorAct, RequestFilter, RequestId, RequestKey,
    Role, ServiceName,
};
use service_contacts_postgres::{PgStore, party_ranges, queries, sample_filters};
use time::{Duration, OffsetDateTime, macros::datetime};
use tokio_postgres::types::{Json, ToSql};

/// The clock of the real requests: the listings are read at this time.
fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

/// A customer of the real documents: `AL1-OVH` holds every listing's rows.
fn customer(text: &str) -> CustomerId {
    text.parse().unwrap()
}

/// The reseller of the generated rows: admin of 100,000 services and
/// requester of 100,000 requests (placeholder documents: only explained).
const RESELLER: &str = "RE1-OVH";
/// The generated service with 50,000 requests and 20,000 assignments.
const BUSY_SERVICE: &str = "g1.example";

/// The generated rows, in one transaction: 1,000,000 services (holders among
/// 200,000 customers, a tenth with the reseller as admin, one in a hundred
/// removed), 1,000,000 requests (one in twenty on the busy service, one in
/// fifty open, with its deadline after `$far`), 3,000,000 party rows
/// (requester, incoming, outgoing), 40,000 `waiting` rows and 200,000
/// operators' assignments (one in ten on the busy service) over the same
/// three years. `{t0}` is the real requests' clock in unix seconds.
const GENERATE: &str = "
INSERT INTO services (name, admin, tech, billing, version, last_admin, last_tech, last_billing,
                      removed)
SELECT 'g' || g || '.example',
       CASE WHEN g % 10 = 0 THEN 'RE1-OVH' ELSE 'GE' || g % 200000 || '-OVH' END,
       'GE' || (g * 7 + 1) % 200000 || '-OVH', 'GE' || (g * 13 + 2) % 200000 || '-OVH',
       1 + g % 5, NULL, NULL, NULL, g % 100 = 1
FROM generate_series(1::bigint, 1000000) g;

CREATE TEMPORARY TABLE generated ON COMMIT DROP AS
SELECT md5('generated ' || g) AS id,
       CASE WHEN g % 20 = 0 THEN 'g1.example'
            ELSE 'g' || 1 + (g * 31) % 1000000 || '.example' END AS service,
       g % 50 = 1 AS open,
       {t0} - 94608000 + (g * 97) % 94608000 AS opened_s, (g * 7919) % 1000000000 AS opened_ns,
       CASE WHEN g % 10 = 0 THEN 'RE1-OVH' ELSE 'GE' || g % 200000 || '-OVH' END AS requester,
       'GE' || (g * 11 + 5) % 200000 || '-OVH' AS incoming,
       'GE' || (g * 7 + 1) % 200000 || '-OVH' AS outgoing,
       CASE WHEN g % 50 = 1 THEN 'validatingByCustomers'
            ELSE (ARRAY['done', 'refused', 'aborted', 'expired'])[1 + g % 4] END AS state,
       g
FROM generate_series(1::bigint, 1000000) g;

INSERT INTO requests (id, service, open, opened_s, opened_ns, deadline_s, deadline_ns, version,
                      doc)
SELECT id, service, open, opened_s, opened_ns,
       CASE WHEN open THEN {far} + g % 100000 ELSE opened_s + 604800 END, opened_ns,
       1 + g % 3, jsonb_build_object('generated', g)
FROM generated;

INSERT INTO request_parties (customer, request_id, part, state, opened_s, opened_ns)
SELECT p.customer, id, p.part, state, opened_s, opened_ns
FROM generated, LATERAL (VALUES (requester, 'requester'), (incoming, 'incoming'),
                                (outgoing, 'outgoing')) p (customer, part)
UNION ALL
SELECT p.customer, id, 'waiting', state, opened_s, opened_ns
FROM generated, LATERAL (VALUES (incoming), (outgoing)) p (customer)
WHERE open;

INSERT INTO assignments (id, service, at_s, at_ns, doc)
SELECT md5('assignment ' || g),
       CASE WHEN g % 10 = 0 THEN 'g1.example' ELSE 'g' || 1 + (g * 37) % 1000000 || '.example' END,
       {t0} - 94608000 + (g * 89) % 94608000, (g * 7907) % 1000000000,
       jsonb_build_object('generated', g)
FROM generate_series(1::bigint, 200000) g;
";

/// Takes the keys and indexes of the four tables off (saving their
/// definitions), runs `GENERATE`, and puts them back from the definitions:
/// the schema ends as the store made it.
const LOAD: &str = "
BEGIN;
SET LOCAL maintenance_work_mem = '256MB';
CREATE TEMPORARY TABLE saved ON COMMIT DROP AS
SELECT contype = 'f' AS foreign_key,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
              pg_get_constraintdef(oid)) AS definition,
       format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname) AS removal
FROM pg_constraint
WHERE connamespace = current_schema()::regnamespace AND contype IN ('p', 'f')
  AND conrelid::regclass::text IN ('services', 'requests', 'request_parties', 'assignments')
UNION ALL
SELECT false, pg_get_indexdef(i.indexrelid), format('DROP INDEX %s', i.indexrelid::regclass)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relnamespace = current_schema()::regnamespace
  AND t.relname IN ('services', 'requests', 'request_parties', 'assignments')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid);
DO $$ DECLARE s text; BEGIN
  FOR s IN SELECT removal FROM saved ORDER BY foreign_key DESC LOOP EXECUTE s; END LOOP;
END $$;
{generate}
DO $$ DECLARE s text; BEGIN
  FOR s IN SELECT definition FROM saved ORDER BY foreign_key LOOP EXECUTE s; END LOOP;
END $$;
COMMIT;
";

type TestDriver = AsyncDriver<PgStore, MemoryNotifier, MemoryDirectory>;

/// The real documents: what the engine made through the driver.
struct World {
    /// Every request opened, as stored at the end.
    requests: Vec<ChangeRequest>,
    /// A service of `AL1-OVH` with requests and assignments.
    service: ServiceName,
    /// The operators' assignments on `service`, newest first.
    assignments: Vec<Assignment>,
}

/// `AL1-OVH` orders 24 services and asks to give each one's tech role to
/// `BO2-OVH`: six requests left open past their deadline (due, and expired
/// at `t0`), six awaiting (three confirmed by `BO2-OVH`), six done, six
/// refused. `CA3-OVH` gives `AL1-OVH` the tech and billing roles of eight
/// services of its own, one then removed. An operator then gives the
/// billing role, then the tech role, of `real-14.example` (its request
/// applied) to `CA3-OVH`.
async fn real_documents(driver: &TestDriver) -> World {
    let (al, bo, ca) = (
        customer("AL1-OVH"),
        customer("BO2-OVH"),
        customer("CA3-OVH"),
    );
    let name = |text: String| -> ServiceName { text.parse().unwrap() };
    let shared: Vec<(ServiceName, Contacts)> = (0..8)
        .map(|n| {
            (
                name(format!("shared-{n}.example")),
                Contacts::new(ca, al, al),
            )
        })
        .collect();
    driver.import_services(shared).await.unwrap();
    let removed = driver
        .remove_service(&name("shared-0.example".to_owned()), t0())
        .await
        .unwrap();
    assert!(removed.value.is_removed());
    let mut ids = Vec::new();
    for n in 0..24u32 {
        let service = name(format!("real-{n}.example"));
        driver.order_service(&service, al).await.unwrap();
        let opened = if n < 6 {
            t0() - Duration::days(10) + Duration::minutes(n.into())
        } else {
            t0() - Duration::days(1) + Duration::minutes(n.into())
        };
        let edit = Edit::new(service).with(Role::Tech, bo);
        let mut rng = ChaCha20Rng::seed_from_u64(n.into());
        let id = driver
            .submit(&edit, al, opened, &mut rng)
            .await
            .unwrap()
            .value[0];
        let mail = driver.notifier().take();
        let token_of = |who: CustomerId| {
            mail.iter()
                .find(|m| m.to() == who && m.token().is_some())
                .map(|m| m.token().unwrap().reveal())
                .unwrap()
        };
        let later = opened + Duration::minutes(5);
        let mut steps = Vec::new();
        if (9..18).contains(&n) {
            steps.push(driver.accept(id, bo, &token_of(bo), later).await);
        }
        if (12..18).contains(&n) {
            steps.push(driver.accept(id, al, &token_of(al), later).await);
        }
        if n >= 18 {
            steps.push(driver.refuse(id, bo, &token_of(bo), later).await);
        }
        for step in steps {
            assert!(step.unwrap().all_delivered());
        }
        ids.push(id);
    }
    let mut requests = Vec::new();
    for id in ids {
        requests.push(
            AsyncStore::request(driver.store(), id)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let service = name("real-14.example".to_owned());
    let act = OperatorAct::new(
        "jane@support".parse().unwrap(),
        "mailbox lost".parse().unwrap(),
    );
    let mut assignments = Vec::new();
    for (n, role) in [(2, Role::Billing), (1, Role::Tech)] {
        let edit = Edit::new(service.clone()).with(role, ca);
        let at = t0() - Duration::hours(n);
        let mut rng = ChaCha20Rng::seed_from_u64(100 + n.unsigned_abs());
        let assigned = driver.assign(&edit, &act, at, &mut rng).await.unwrap();
        assert!(assigned.all_delivered());
        assignments.insert(0, assigned.value);
    }
    World {
        requests,
        service,
        assignments,
    }
}

/// Unix seconds and nanoseconds, as the store binds an instant.
fn unix(at: OffsetDateTime) -> (i64, i64) {
    (at.unix_timestamp(), i64::from(at.nanosecond()))
}

/// Reads a whole listing of requests `page` rows at a time, each page
/// after the last row of the one before, keyed by its time `at` (its
/// opening, or its deadline) and its id.
async fn pages<F, Fut>(
    page: usize,
    at: fn(&ChangeRequest) -> OffsetDateTime,
    read: F,
) -> Vec<ChangeRequest>
where
    F: Fn(Option<RequestKey>, usize) -> Fut,
    Fut: Future<Output = Vec<ChangeRequest>>,
{
    let mut all: Vec<ChangeRequest> = Vec::new();
    loop {
        let after = all.last().map(|last| RequestKey {
            at: at(last),
            id: last.id(),
        });
        let rows = read(after, page).await;
        let done = rows.len() < page;
        all.extend(rows);
        if done {
            return all;
        }
    }
}

/// The listings on the loaded database answer with the real documents,
/// page by page, exactly those the filters list (R45, R29, R6): the store
/// reads through the generated millions without meeting a row it cannot
/// parse.
async fn listings_answer(store: &PgStore, world: &World) {
    let al = customer("AL1-OVH");
    let mut contacts = Vec::new();
    loop {
        let page = store
            .contacts_of(al, contacts.last().map(|(name, _)| name), 5)
            .await
            .unwrap();
        let done = page.len() < 5;
        contacts.extend(page);
        if done {
            break;
        }
    }
    let names: Vec<String> = contacts.iter().map(|(n, _)| n.to_string()).collect();
    let mut expected: Vec<String> = (1..8)
        .map(|n| format!("shared-{n}.example"))
        .chain((0..24).map(|n| format!("real-{n}.example")))
        .collect();
    expected.sort();
    assert_eq!(names, expected, "R6: AL1-OVH's contacts, by name");

    let mut filters = sample_filters();
    filters.push((
        "requests_of: a service".to_owned(),
        RequestFilter::all().service(world.service.clone()),
    ));
    let mut listed_in_all = 0;
    for (name, filter) in &filters {
        let listed = pages(3, ChangeRequest::opened_at, |after, n| async move {
            store
                .requests_of(al, filter, t0(), after, n)
                .await
                .unwrap_or_else(|err| panic!("{name}: {err:?}"))
        })
        .await;
        let mut expected: Vec<&ChangeRequest> = world
            .requests
            .iter()
            .filter(|r| filter.matches(r, al, t0()))
            .collect();
        expected.sort_by_key(|r| (std::cmp::Reverse(r.opened_at()), r.id()));
        let expected: Vec<RequestId> = expected.into_iter().map(ChangeRequest::id).collect();
        let listed: Vec<RequestId> = listed.iter().map(ChangeRequest::id).collect();
        assert_eq!(listed, expected, "R45: {name} ({filter:?})");
        listed_in_all += listed.len();
    }
    // Not only empty lists: every filter of the real documents' shapes
    // lists some (all 24 with no filter, the service's one, ...).
    assert!(listed_in_all > 24 + 1, "{listed_in_all} rows listed in all");

    // R47: the service's history, a row at a time: its requests and its
    // assignments, newest first.
    let mut requests = Vec::new();
    loop {
        let after = requests
            .last()
            .map(|r: &ChangeRequest| HistoryEntry::Request(r.clone()).key());
        let page = store.requests_on(&world.service, after, 1).await.unwrap();
        if page.is_empty() {
            break;
        }
        requests.extend(page);
    }
    let expected: Vec<&ChangeRequest> = world
        .requests
        .iter()
        .filter(|r| r.service() == &world.service)
        .collect();
    assert_eq!(
        requests.iter().collect::<Vec<_>>(),
        expected,
        "R47: requests_on"
    );
    let mut assignments = Vec::new();
    loop {
        let after = assignments.last().map(Assignment::key);
        let page = store
            .assignments_on(&world.service, after, 1)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assignments.extend(page);
    }
    assert_eq!(assignments, world.assignments, "R47: assignments_on");

    let due = pages(4, ChangeRequest::deadline, |after, n| async move {
        store.due_for_expiry(t0(), after, n).await.unwrap()
    })
    .await;
    let due: BTreeSet<RequestId> = due.iter().map(ChangeRequest::id).collect();
    let expected: BTreeSet<RequestId> = world.requests[..6].iter().map(ChangeRequest::id).collect();
    assert_eq!(due, expected, "R29: the six past their deadline");
}

/// One node of a plan, with what the checks look at.
#[derive(Debug)]
struct Node {
    kind: String,
    relation: Option<String>,
    index: Option<String>,
    /// The condition of an index search.
    condition: Option<String>,
    /// The node types above it, nearest first.
    ancestors: Vec<String>,
    /// For an `INSERT ... ON CONFLICT`: the indexes checked.
    arbiters: Vec<String>,
}

impl Node {
    fn is_scan(&self) -> bool {
        (self.relation.is_some() && self.kind != "ModifyTable") || self.index.is_some()
    }
}

/// The nodes of an `EXPLAIN (FORMAT JSON)` plan, depth first.
fn flatten(plan: &Value, ancestors: &mut Vec<String>, nodes: &mut Vec<Node>) {
    let text = |key: &str| plan.get(key).and_then(Value::as_str).map(str::to_owned);
    let kind = text("Node Type").expect("a plan node has a type");
    nodes.push(Node {
        kind: kind.clone(),
        relation: text("Relation Name"),
        index: text("Index Name"),
        condition: text("Index Cond"),
        ancestors: ancestors.iter().rev().cloned().collect(),
        arbiters: plan
            .get("Conflict Arbiter Indexes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    });
    ancestors.push(kind);
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        flatten(child, ancestors, nodes);
    }
    ancestors.pop();
}

/// A plan as lines, to show in messages.
fn show(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| {
            format!(
                "{}{}{}{}",
                "  ".repeat(n.ancestors.len()),
                n.kind,
                n.relation
                    .as_ref()
                    .map_or(String::new(), |r| format!(" on {r}")),
                n.index
                    .as_ref()
                    .map_or(String::new(), |i| format!(" using {i}")),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Nodes an index search may stand under, between it and the `LIMIT` that
/// stops it: they pass rows on as they come, and stop asking when the
/// `LIMIT` has its rows.
const STREAMING: [&str; 5] = [
    "Merge Append",
    "Append",
    "Nested Loop",
    "Subquery Scan",
    "Result",
];

/// What a plan of `statement` must show: no sequential scan anywhere; each
/// index of `indexes` used; and, for a read, every search an index search
/// stopped by a `LIMIT` (through streaming nodes only), or a lookup of one
/// row by its primary key (a record read, or the request of each party row
/// in a nested loop under the `LIMIT`).
fn check(statement: &str, variant: &str, nodes: &[Node], indexes: &[&str]) {
    let plan = show(nodes);
    println!("{statement} ({variant}):\n{plan}\n");
    let at = format!("{statement} ({variant}):\n{plan}");
    for node in nodes {
        assert_ne!(node.kind, "Seq Scan", "a sequential scan: {at}");
    }
    let used: BTreeSet<&str> = nodes
        .iter()
        .flat_map(|n| n.index.iter().chain(&n.arbiters))
        .map(String::as_str)
        .collect();
    for index in indexes {
        assert!(used.contains(index), "{index} is not used: {at}");
    }
    if statement.starts_with("commit") {
        return;
    }
    for node in nodes.iter().filter(|n| n.is_scan()) {
        assert!(
            ["Index Scan", "Index Only Scan"].contains(&node.kind.as_str()),
            "R45: {} reads a whole range before it returns a row: {at}",
            node.kind
        );
        // One row by its whole primary key (a service by name, a request by
        // id): `(key = value)`, nothing else.
        let lookup = node.index.as_deref().is_some_and(|i| i.ends_with("_pkey"))
            && node.condition.as_deref().is_some_and(|c| {
                c.starts_with('(')
                    && c.matches(" = ").count() == 1
                    && !c.contains(" AND ")
                    && !c.contains(['<', '>'])
            });
        let limited = node
            .ancestors
            .iter()
            .find(|a| !STREAMING.contains(&a.as_str()))
            .is_some_and(|a| a == "Limit");
        assert!(
            lookup || limited,
            "R45: a search of {:?} is not stopped by a LIMIT: {at}",
            node.index
        );
    }
    let listing_searches = nodes
        .iter()
        .filter(|n| n.index.as_deref().is_some_and(|i| !i.ends_with("_pkey")))
        .count();
    if !["service", "request"].contains(&statement) {
        assert_eq!(
            listing_searches,
            searches(statement),
            "index searches: {at}"
        );
    }
}

/// A statement's parameters, as the store binds them.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// One way a statement is run: a label, its parameters, the indexes its
/// plan must use.
struct Variant {
    label: String,
    params: Params,
    indexes: Vec<&'static str>,
}

fn variant(label: &str, params: Params, indexes: &[&'static str]) -> Variant {
    Variant {
        label: label.to_owned(),
        params,
        indexes: indexes.to_vec(),
    }
}

/// How many index searches a listing makes: one per holder index for "my
/// contacts", one per range of `request_parties_listing` for "my requests"
/// without a service (the ranges its filter needs), one otherwise.
fn searches(statement: &str) -> usize {
    match statement {
        "contacts_of" => 3,
        _ => sample_filters()
            .iter()
            .find(|(name, _)| name == statement)
            .map_or(1, |(_, filter)| party_ranges(filter).len()),
    }
}

/// The values each statement of [`queries`] is explained with: for a
/// listing, its first page and a page after a cursor, for `AL1-OVH` and for
/// the reseller (or a small service and the busy one; a few requests due
/// and all of them); for a commit statement, a write of a real record. The
/// parameters follow each statement's layout as the store binds it (see
/// its documentation in `src/store.rs` and `src/commit.rs`); a statement
/// this does not know fails the test, so that none goes unexplained.
fn variants(statement: &str, world: &World) -> Vec<Variant> {
    let request = &world.requests[14];
    match statement {
        "service" => vec![variant(
            "a service",
            vec![Box::new("real-0.example")],
            &["services_pkey"],
        )],
        "request" => vec![variant(
            "a request",
            vec![Box::new(request.id().to_string())],
            &["requests_pkey"],
        )],
        "contacts_of" => {
            let page = |who: &'static str, after: &'static str| -> Params {
                vec![Box::new(who), Box::new(after), Box::new(3 * PAGE)]
            };
            four_pages(
                [
                    page(AL, ""),
                    page(AL, "real-3.example"),
                    page(RESELLER, ""),
                    page(RESELLER, "g500000.example"),
                ],
                ["AL1-OVH", "the reseller"],
                &["services_admin", "services_tech", "services_billing"],
            )
        }
        "requests_of: a service" | "requests_on" => {
            let page = |service: String, (s, ns, id): Position| -> Params {
                vec![
                    Box::new(service),
                    Box::new(s),
                    Box::new(ns),
                    Box::new(id),
                    Box::new(PAGE),
                ]
            };
            let small = world.service.to_string();
            four_pages(
                [
                    page(small.clone(), newest_first()),
                    page(small, after_newest(request)),
                    page(BUSY_SERVICE.to_owned(), newest_first()),
                    page(BUSY_SERVICE.to_owned(), long_ago()),
                ],
                ["a service", "the busy service"],
                &["requests_service"],
            )
        }
        "due_for_expiry" => {
            let page = |(s, ns, id): Position, now: OffsetDateTime| -> Params {
                let until = unix(now);
                vec![
                    Box::new(s),
                    Box::new(ns),
                    Box::new(id),
                    Box::new(until.0),
                    Box::new(until.1),
                    Box::new(PAGE),
                ]
            };
            let first = (i64::MIN, i64::MIN, String::new());
            let due = &world.requests[2];
            let (s, ns) = unix(due.deadline());
            let cursor = (s, ns, due.id().to_string());
            let everything = t0() + Duration::days(3650);
            four_pages(
                [
                    page(first.clone(), t0()),
                    page(cursor.clone(), t0()),
                    page(first, everything),
                    page(cursor, everything),
                ],
                ["a few due", "all 20,000 due"],
                &["requests_due"],
            )
        }
        "assignments_on" | "commit: insert an assignment" => assignment_variants(statement, world),
        commit if commit.starts_with("commit") => commit_variants(commit, request),
        _ => party_variants(statement, request),
    }
}

/// The values the statements of operators' assignments are explained with:
/// `assignments_on` for the real service (first page, after its newest
/// assignment) and the busy one (first page, long ago); the insertion of a
/// real assignment.
fn assignment_variants(statement: &str, world: &World) -> Vec<Variant> {
    match statement {
        "assignments_on" => {
            let page = |service: String, (s, ns, id): Position| -> Params {
                vec![
                    Box::new(service),
                    Box::new(s),
                    Box::new(ns),
                    Box::new(id),
                    Box::new(PAGE),
                ]
            };
            let small = world.service.to_string();
            let HistoryKey { at, id } = world.assignments[0].key();
            let (s, ns) = unix(at);
            let cursor = (s, ns, RequestId::from_bytes(id).to_string());
            four_pages(
                [
                    page(small.clone(), newest_first()),
                    page(small, cursor),
                    page(BUSY_SERVICE.to_owned(), newest_first()),
                    page(BUSY_SERVICE.to_owned(), long_ago()),
                ],
                ["a service", "the busy service"],
                &["assignments_service"],
            )
        }
        "commit: insert an assignment" => {
            let assignment = &world.assignments[0];
            let (s, ns) = unix(assignment.at());
            let params: Params = vec![
                Box::new(assignment.id().to_string()),
                Box::new(assignment.service().to_string()),
                Box::new(s),
                Box::new(ns),
                Box::new(Json(assignment.clone())),
            ];
            vec![variant("an assignment", params, &["assignments_pkey"])]
        }
        _ => panic!("no values to explain {statement} with"),
    }
}

/// The values "my requests" without a service is explained with, for the
/// sample filter `statement` names.
fn party_variants(statement: &str, request: &ChangeRequest) -> Vec<Variant> {
    let (_, filter) = sample_filters()
        .into_iter()
        .find(|(name, _)| name == statement)
        .unwrap_or_else(|| panic!("no values to explain {statement} with"));
    let ranges = party_ranges(&filter);
    let page = |who: &'static str, (s, ns, id): Position| -> Params {
        let mut params: Params = vec![
            Box::new(who),
            Box::new(s),
            Box::new(ns),
            Box::new(id),
            Box::new(PAGE),
        ];
        for (part, state) in &ranges {
            params.push(Box::new(*part));
            params.push(Box::new(*state));
        }
        params
    };
    four_pages(
        [
            page(AL, newest_first()),
            page(AL, after_newest(request)),
            page(RESELLER, newest_first()),
            page(RESELLER, long_ago()),
        ],
        ["AL1-OVH", "the reseller"],
        &["request_parties_listing", "requests_pkey"],
    )
}

/// The page size the listings are explained with.
const PAGE: i64 = 20;
/// The customer of the real documents, as the store binds it.
const AL: &str = "AL1-OVH";

/// A listing's position as the store binds it: seconds, nanoseconds, id.
type Position = (i64, i64, String);

/// The position of a first page, newest first.
fn newest_first() -> Position {
    (i64::MAX, i64::MAX, String::new())
}

/// The position of `request`, newest first.
fn after_newest(request: &ChangeRequest) -> Position {
    let (s, ns) = unix(request.opened_at());
    (s, ns, request.id().to_string())
}

/// A position among the generated rows: about 15 months before `t0`.
fn long_ago() -> Position {
    (unix(t0()).0 - 40_000_000, 0, String::new())
}

/// The four variants of a listing: the first page and a page after a
/// cursor, for each of two cases.
fn four_pages(params: [Params; 4], cases: [&str; 2], indexes: &[&'static str]) -> Vec<Variant> {
    let [a, b, c, d] = params;
    vec![
        variant(&format!("{}, first page", cases[0]), a, indexes),
        variant(&format!("{}, after a cursor", cases[0]), b, indexes),
        variant(&format!("{}, first page", cases[1]), c, indexes),
        variant(&format!("{}, after a cursor", cases[1]), d, indexes),
    ]
}

/// The values a commit statement is explained with: a write of `request`
/// or of its service.
fn commit_variants(statement: &str, request: &ChangeRequest) -> Vec<Variant> {
    let id = request.id().to_string();
    let version = i64::try_from(request.version().get()).unwrap();
    let update = statement.contains("update");
    match statement {
        "commit: insert a service" | "commit: update a service" => {
            let mut params: Params = vec![
                Box::new(request.service().to_string()),
                Box::new(AL),
                Box::new("BO2-OVH"),
                Box::new(AL),
                Box::new(3_i64),
                Box::new(None::<String>),
                Box::new(Some(id)),
                Box::new(None::<String>),
                Box::new(false),
            ];
            if update {
                params.push(Box::new(2_i64));
            }
            vec![variant("a service", params, &["services_pkey"])]
        }
        "commit: insert a request and its party rows"
        | "commit: update a request and its party rows" => {
            let (opened, deadline) = (unix(request.opened_at()), unix(request.deadline()));
            let mut params: Params = vec![
                Box::new(id),
                Box::new(request.service().to_string()),
                Box::new(request.is_open()),
                Box::new(opened.0),
                Box::new(opened.1),
                Box::new(deadline.0),
                Box::new(deadline.1),
                Box::new(version),
                Box::new(Json(request.clone())),
            ];
            if update {
                params.push(Box::new(version - 1));
            }
            params.push(Box::new("validatingByCustomers"));
            params.push(Box::new(vec![AL.to_owned(), "BO2-OVH".to_owned()]));
            if update {
                let indexes = ["requests_pkey", "request_parties_pkey"];
                vec![variant("a request", params, &indexes)]
            } else {
                params.push(Box::new(vec![
                    "requester".to_owned(),
                    "incoming".to_owned(),
                ]));
                vec![variant("a request", params, &["requests_pkey"])]
            }
        }
        _ => panic!("no values to explain {statement} with"),
    }
}

/// Explains `sql` with `params` (the plan made for these values), then as
/// a prepared statement's generic plan; checks both.
async fn explain(client: &tokio_postgres::Client, name: &str, sql: &str, variants: &[Variant]) {
    for v in variants {
        let params: Vec<&(dyn ToSql + Sync)> = v
            .params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect();
        let rows = client
            .query(&format!("EXPLAIN (FORMAT JSON) {sql}"), &params)
            .await
            .unwrap_or_else(|err| panic!("{name} ({}): {err:?}", v.label));
        let plan: Value = rows[0].get(0);
        let mut nodes = Vec::new();
        flatten(&plan[0]["Plan"], &mut Vec::new(), &mut nodes);
        check(name, &v.label, &nodes, &v.indexes);
    }
    // The generic plan: the same whatever the values, so NULLs do.
    let count = client.prepare(sql).await.unwrap().params().len();
    let nulls = vec!["NULL"; count].join(", ");
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; PREPARE explained AS {sql}"
        ))
        .await
        .unwrap_or_else(|err| panic!("{name}: {err:?}"));
    let rows = client
        .query(
            &format!("EXPLAIN (FORMAT JSON) EXECUTE explained({nulls})"),
            &[],
        )
        .await
        .unwrap_or_else(|err| panic!("{name} (generic): {err:?}"));
    client
        .batch_execute("DEALLOCATE explained; RESET plan_cache_mode")
        .await
        .unwrap();
    let plan: Value = rows[0].get(0);
    let mut nodes = Vec::new();
    flatten(&plan[0]["Plan"], &mut Vec::new(), &mut nodes);
    let mut indexes: Vec<&str> = variants.iter().flat_map(|v| v.indexes.clone()).collect();
    indexes.dedup();
    check(name, "generic plan", &nodes, &indexes);
}

/// The time now, to report how long the load took (nothing depends on it).
#[expect(
    clippy::disallowed_methods,
    reason = "a test's own stopwatch, reported, never asserted"
)]
fn stopwatch() -> Instant {
    Instant::now()
}

#[test]
fn every_statement_reads_through_its_index_at_scale() {
    let runtime = common::runtime();
    let schema = common::Schema::new(runtime.handle());
    let store = schema.store(4).expect("a store on an empty schema");

    let started = stopwatch();
    let far = unix(t0() + Duration::days(30)).0;
    let generate = GENERATE
        .replace("{t0}", &unix(t0()).0.to_string())
        .replace("{far}", &far.to_string());
    schema.execute(&LOAD.replace("{generate}", &generate));
    let loaded = started.elapsed();

    let directory = MemoryDirectory::new();
    for who in ["AL1-OVH", "BO2-OVH", "CA3-OVH"] {
        directory.add(customer(who));
    }
    let driver = AsyncDriver::new(store, MemoryNotifier::new(), directory);
    let world = runtime.block_on(real_documents(&driver));
    schema.execute("ANALYZE");
    println!(
        "generated rows loaded in {:.1} s, real documents made and ANALYZE done in {:.1} s",
        loaded.as_secs_f64(),
        started.elapsed().saturating_sub(loaded).as_secs_f64()
    );

    runtime.block_on(async {
        // The schema, rebuilt by the load, is still the store's.
        let fresh = PgStore::connect(
            schema.config(),
            service_contacts_postgres::Options::default(),
        )
        .await
        .expect("the loaded schema is ours");
        let client = fresh.pool().get().await.unwrap();
        let counts = client
            .query_one(
                "SELECT (SELECT count(*) FROM services), (SELECT count(*) FROM requests), \
                 (SELECT count(*) FROM request_parties), (SELECT count(*) FROM assignments)",
                &[],
            )
            .await
            .unwrap();
        let counts: [i64; 4] = [0, 1, 2, 3].map(|n| counts.get(n));
        assert!(counts[0] > 1_000_000 && counts[1] > 1_000_000 && counts[2] > 3_000_000);
        assert!(counts[3] > 200_000);

        listings_answer(&fresh, &world).await;

        let statements = queries();
        let names: Vec<&str> = statements.iter().map(|(name, _)| name.as_str()).collect();
        let listings = [
            "service",
            "request",
            "contacts_of",
            "requests_of: a service",
            "requests_on",
            "assignments_on",
        ];
        let commits = [
            "commit: insert a service",
            "commit: update a service",
            "commit: insert a request and its party rows",
            "commit: update a request and its party rows",
            "commit: insert an assignment",
        ];
        for listing in listings
            .into_iter()
            .chain(["due_for_expiry"])
            .chain(commits)
        {
            assert!(
                names.contains(&listing),
                "{listing} is not explained: {names:?}"
            );
        }
        // "My requests" with every number of ranges a filter can need.
        let ranges: BTreeSet<usize> = sample_filters()
            .iter()
            .map(|(_, filter)| party_ranges(filter).len())
            .collect();
        assert_eq!(ranges.first(), Some(&1));
        assert_eq!(
            ranges.last(),
            Some(&party_ranges(&RequestFilter::all()).len())
        );
        for (name, _) in sample_filters() {
            assert!(
                names.contains(&name.as_str()),
                "{name} is not explained: {names:?}"
            );
        }
        for (name, sql) in &statements {
            explain(&client, name, sql, &variants(name, &world)).await;
        }
    });
    println!(
        "the whole test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
