//! Query plans at scale (R45 for the listings, R29 for the sweep, R31 for
//! the commit): with a million services, a million requests and their
//! 3.1 million party rows in the file, every statement the store runs on its
//! tables ([`service_contacts_sqlite::queries`], so that a statement added
//! later is checked too) reads through its index.
//!
//! - `EXPLAIN QUERY PLAN`, as [`SqliteStore::query_plans`] shows it and with
//!   the values the store binds (a first page and a page after a cursor,
//!   for a customer with a few rows and for a reseller with a hundred
//!   thousand): no `SCAN` of a table or an index outside the audit's full
//!   scans, no automatic index, no temporary B-tree; every step of a listing
//!   is a `SEARCH` of the listing's index (one per holder index for "my
//!   contacts", one per (part, state) range for "my requests").
//! - Run with those values (the commit's statements in a transaction
//!   rolled back): `SQLite`'s own counters show no step of a full table
//!   scan, no sort and no automatic index, and a page of a listing costs
//!   a bounded number of VM steps, not a range's worth. These also see what
//!   `EXPLAIN QUERY PLAN` does not show: the foreign-key check of a new
//!   party row and the key check of an insert.
//!
//! **No `ANALYZE`.** The store never runs `ANALYZE` (nor `PRAGMA optimize`),
//! so a host's file has no statistics unless the host gathers them itself:
//! the plans checked here are the plans hosts get. (`tests/sqlite_store.rs`
//! checks the plans after `ANALYZE` too, on a small file.)
//!
//! **The rows are the store's own.** Six requests written through the
//! driver (awaiting, confirmed by the requester, done, refused, cancelled,
//! expired by a sweep), with their services and party rows, are the
//! templates; SQL copies them a million times over (`WITH RECURSIVE`), each
//! copy with its own id, service name, customers and opening time put into
//! the template's stored text in place of the template's (the JSON
//! document's timestamps shifted with it), so every copy is a row as the
//! store writes it; the reseller requests a tenth of them. A busy service
//! with 2,000 requests, one after the other (made through the driver on a
//! `MemoryStore` and written in one commit), gives the service filter a
//! long range. A few copies picked at random are read back through the
//! store, their party rows compared with their documents, and found by the
//! listings of their customers; the templates' customers' listings and the
//! busy service's answer exactly as the filters say. The load drops the
//! secondary indexes and
//! builds them again from their own definitions (a sort each, instead of
//! millions of inserts at random places), in one transaction; the store then
//! opens the file as its own.
//!
//! Its own test target, so that it runs once in CI (`cargo test
//! --workspace`), not on every edit of the store. `cargo test -p
//! service-contacts-sqlite --test plans_at_scale -- --nocapture` prints
//! the load time and every plan. It writes a 1.6 GB file in the system's
//! temporary directory (removed at the end) and holds up to 1.6 GB of
//! memory while it loads (`SQLite`'s page cache and the index sorts).

// The core's test helpers (which the store's use), and the store's own.
#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "common/sqlite.rs"]
#[allow(dead_code, reason = "this test uses a part of the helpers")]
mod sqlite;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rusqlite::types::Value;
use rusqlite::{Connection, StatementStatus, params_from_iter};
use service_contacts::columns::{Position, part_code, unix};
use service_contacts::{
    ChangeRequest, Changes, Contacts, CustomerId, Driver, Edit, MemoryDirectory, MemoryNotifier,
    MemoryStore, RequestFilter, RequestId, RequestKey, Role, Roles, ServiceName, StateName, Store,
    Write,
};
use service_contacts_sqlite::{SqliteStore, queries, sample_filters};
use sqlite::{TempDir, all_contacts, all_requests, opened_key, read_pages};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, macros::datetime};

/// The services and the requests the load generates.
const GENERATED: u32 = 1_000_000;

/// The reseller of the generated rows: admin and billing contact of a tenth
/// of the services, requester of a tenth of the requests.
const RESELLER: &str = "RE1-OVH";

/// The templates' customers: the requester (admin and billing contact of
/// the templates' services), the tech contact the requests would replace,
/// and the customer they propose.
const REQUESTER: &str = "QA1-OVH";
const HOLDER: &str = "QB1-OVH";
const INCOMING: &str = "QC1-OVH";

/// The busy service: its holder asked for its tech role to go to another
/// customer [`BUSY_REQUESTS`] times, one request after the other, each
/// cancelled.
const BUSY: &str = "busy.example";
const BUSY_HOLDER: &str = "QD1-OVH";
const BUSY_INCOMING: &str = "QE1-OVH";
const BUSY_REQUESTS: u32 = 2_000;

/// The templates, by index: what happened to each one's request.
const STORIES: [&str; 6] = [
    "awaiting",
    "confirmed by the requester",
    "done",
    "refused",
    "cancelled",
    "expired",
];

/// The clock of the listings: every generated request opened before it.
fn t0() -> OffsetDateTime {
    datetime!(2026-11-21 10:00 UTC)
}

fn customer(text: &str) -> CustomerId {
    text.parse().unwrap()
}

fn service_name(text: &str) -> ServiceName {
    text.parse().unwrap()
}

fn template_service(k: usize) -> ServiceName {
    service_name(&format!("tpl-{k}.example"))
}

/// The time now, to report how long things took (nothing depends on it).
#[expect(
    clippy::disallowed_methods,
    reason = "a test's own stopwatch, reported, never asserted"
)]
fn stopwatch() -> Instant {
    Instant::now()
}

// ----- the templates -----

/// Writes the templates through the driver: six services of the requester
/// (the holder as tech contact), and on each a request to give the tech role
/// to the incoming customer, taken to the state [`STORIES`] names. The
/// expired one opens 30 days before `t0` and is swept a day after its
/// deadline; the others open 20 days before `t0`, so the two still awaiting
/// are past their deadline at `t0` and not swept (due, and expired to the
/// listings). Their requests, by index.
fn write_templates(store: &SqliteStore) -> Vec<ChangeRequest> {
    let (requester, holder, incoming) = (customer(REQUESTER), customer(HOLDER), customer(INCOMING));
    let directory = MemoryDirectory::new();
    for who in [requester, holder, incoming] {
        directory.add(who);
    }
    let notifier = MemoryNotifier::new();
    let driver = Driver::new(store, &notifier, &directory);
    driver
        .import_services((0..STORIES.len()).map(|k| {
            (
                template_service(k),
                Contacts::new(requester, holder, requester),
            )
        }))
        .unwrap();
    let token = |mail: &[service_contacts::Message], to: CustomerId| {
        mail.iter()
            .find(|m| m.to() == to && m.token().is_some())
            .map(|m| m.token().unwrap().reveal())
            .unwrap()
    };
    let mut ids = Vec::new();
    for k in (0..STORIES.len()).rev() {
        let opened = if STORIES[k] == "expired" {
            t0() - Duration::days(30)
        } else {
            t0() - Duration::days(20) + Duration::minutes(i64::try_from(k).unwrap())
        };
        let edit = Edit::new(template_service(k)).with(Role::Tech, incoming);
        let mut rng = ChaCha20Rng::seed_from_u64(k as u64);
        let id = driver
            .submit(&edit, requester, opened, &mut rng)
            .unwrap()
            .value[0];
        let mail = notifier.take();
        let later = opened + Duration::minutes(5);
        let delivered = match STORIES[k] {
            "awaiting" => true,
            "confirmed by the requester" => driver
                .accept(id, requester, &token(&mail, requester), later)
                .unwrap()
                .all_delivered(),
            "done" => {
                let first = driver
                    .accept(id, requester, &token(&mail, requester), later)
                    .unwrap();
                let last = driver
                    .accept(
                        id,
                        incoming,
                        &token(&mail, incoming),
                        later + Duration::minutes(5),
                    )
                    .unwrap();
                first.all_delivered() && last.all_delivered()
            }
            "refused" => driver
                .refuse(id, incoming, &token(&mail, incoming), later)
                .unwrap()
                .all_delivered(),
            "cancelled" => driver.cancel(id, requester, later).unwrap().all_delivered(),
            "expired" => {
                let sweep = driver.expire_due(opened + Duration::days(8)).unwrap();
                assert_eq!(sweep.value.expired, [id]);
                sweep.all_delivered()
            }
            other => unreachable!("{other}"),
        };
        assert!(delivered);
        let _ = notifier.take();
        ids.push(id);
    }
    ids.reverse();
    let requests: Vec<ChangeRequest> = ids
        .into_iter()
        .map(|id| store.request(id).unwrap().unwrap())
        .collect();
    let states: Vec<StateName> = requests.iter().map(|r| r.state().name()).collect();
    assert_eq!(
        states,
        [
            StateName::ValidatingByCustomers,
            StateName::ValidatingByCustomers,
            StateName::Done,
            StateName::Refused,
            StateName::Aborted,
            StateName::Expired,
        ]
    );
    requests
}

/// The busy service's requests, made through the driver on a
/// `MemoryStore` (fast) and written into the file in one commit, newest
/// first: ten minutes apart, from 25 days before `t0`.
fn write_busy_service(store: &SqliteStore) -> Vec<ChangeRequest> {
    let (holder, incoming) = (customer(BUSY_HOLDER), customer(BUSY_INCOMING));
    let directory = MemoryDirectory::new();
    directory.add(holder);
    directory.add(incoming);
    let (memory, notifier) = (MemoryStore::new(), MemoryNotifier::new());
    let driver = Driver::new(&memory, &notifier, &directory);
    driver
        .import_services([(service_name(BUSY), Contacts::all(holder))])
        .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let edit = Edit::new(service_name(BUSY)).with(Role::Tech, incoming);
    for n in 0..BUSY_REQUESTS {
        let at = t0() - Duration::days(25) + Duration::minutes(i64::from(n) * 10);
        let id = driver.submit(&edit, holder, at, &mut rng).unwrap().value[0];
        let cancelled = driver
            .cancel(id, holder, at + Duration::minutes(1))
            .unwrap();
        assert!(cancelled.all_delivered());
    }
    let mut requests = memory.requests();
    store
        .commit(Changes {
            services: creations(memory.services()),
            requests: creations(requests.clone()),
            assignments: Vec::new(),
        })
        .unwrap();
    requests.sort_by_key(|r| (Reverse(r.opened_at()), r.id()));
    requests
}

/// Each of `values` written as new.
fn creations<T>(values: Vec<T>) -> Vec<Write<T>> {
    values
        .into_iter()
        .map(|value| Write {
            value,
            expected: None,
        })
        .collect()
}

// ----- the load -----

/// The keys of the copies, one row per copy, `g` from 1: the template `k`
/// it copies (2% awaiting, 2% confirmed by the requester, the rest done,
/// refused, cancelled or expired in turn), its request id (in `g` order, so
/// that the tables keyed by it grow at their end), its service's name (also
/// in `g` order), its customers (the reseller as requester of every tenth;
/// otherwise a requester, an incoming customer and a tech holder among
/// 200,000 each) and its opening time: in the 8 days before `t0` for the
/// two kinds still awaiting (one in eight past its deadline: due), over the
/// three years before for the others. `{times}` adds the copy's times as
/// its document writes them (see [`Copies`]).
const GENERATE: &str = "
CREATE TEMP TABLE gen AS
WITH RECURSIVE n (g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < {count}),
kinds AS (
    SELECT g, CASE g / 10 % 50 WHEN 0 THEN 0 WHEN 1 THEN 1 ELSE 2 + g / 10 % 4 END AS k FROM n
),
keys AS (
    SELECT g, k, printf('%08x%024x', g, g * 2654435761) AS id,
           printf('g%07d.example', g) AS name,
           CASE WHEN g % 10 = 0 THEN 'RE1-OVH' ELSE printf('GA%d-OVH', g % 200000) END
               AS requester,
           printf('GB%d-OVH', (g * 11 + 5) % 200000) AS incoming,
           printf('GC%d-OVH', (g * 7 + 2) % 200000) AS outgoing,
           CASE WHEN k < 2 THEN {t0} - 691200 + g * 97 % 691200
                ELSE {t0} - 94608000 + g * 97 % 93916800 END AS opened
    FROM kinds
)
SELECT *{times} FROM keys;
";

/// A time in a document, `delta` seconds after the request's opening, as
/// `SQLite` writes it (RFC 3339, whole seconds, UTC: what the identity
/// check in [`load`] confirms the engine writes too).
fn stamp(delta: i64) -> String {
    format!("strftime('%Y-%m-%dT%H:%M:%SZ', opened + {delta}, 'unixepoch')")
}

/// The seconds from `opened` to the time `text` writes, if it is one.
fn delta(text: &str, opened: i64) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let (seconds, nanoseconds) = unix(at);
    assert_eq!(
        nanoseconds, 0,
        "{text}: the templates' times are whole seconds"
    );
    Some(seconds - opened)
}

/// The strings of a JSON document without escapes, with whether each piece
/// is a string's text (between quotes) or what lies between strings.
fn pieces(doc: &str) -> impl Iterator<Item = (bool, &str)> {
    assert!(
        !doc.contains('\\'),
        "no escapes in the templates' documents"
    );
    doc.split('"')
        .enumerate()
        .map(|(n, piece)| (n % 2 == 1, piece))
}

/// How a template's stored values become a copy's, as SQL over the columns
/// of `gen`: its request id, service name and customers are replaced by the
/// copy's, its times by the copy's (each the same time after the opening).
struct Substitution<'a> {
    id: String,
    name: String,
    /// The template's opening time, unix seconds.
    opened: i64,
    /// The column of `gen` that holds each time after the opening.
    times: &'a BTreeMap<i64, String>,
}

impl Substitution<'_> {
    /// The copy's text for a whole text value of the template, if it is
    /// one that changes.
    fn text(&self, text: &str) -> Option<String> {
        let column = if text == self.id {
            "id"
        } else if text == self.name {
            "name"
        } else if text == REQUESTER {
            "requester"
        } else if text == HOLDER {
            "outgoing"
        } else if text == INCOMING {
            "incoming"
        } else {
            return delta(text, self.opened).map(|delta| self.times[&delta].clone());
        };
        Some(column.to_owned())
    }

    /// The copy's value of `column`, from the template's `value`.
    fn value(&self, column: &str, value: &Value) -> String {
        match value {
            Value::Null => "NULL".to_owned(),
            Value::Integer(n) if ["opened_s", "deadline_s"].contains(&column) => {
                format!("opened + {}", n - self.opened)
            }
            Value::Integer(n) => n.to_string(),
            Value::Text(text) if column == "doc" => self.document(text),
            Value::Text(text) => self.text(text).unwrap_or_else(|| literal(text)),
            other => panic!("{column}: no copy of {other:?}"),
        }
    }

    /// The copy of a JSON document: every string in it that changes is
    /// replaced, the rest kept as written.
    fn document(&self, doc: &str) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut kept = String::new();
        for (n, (string, piece)) in pieces(doc).enumerate() {
            if n > 0 {
                kept.push('"');
            }
            match self.text(piece).filter(|_| string) {
                Some(expression) => {
                    parts.push(literal(&std::mem::take(&mut kept)));
                    parts.push(expression);
                }
                None => kept.push_str(piece),
            }
        }
        parts.push(literal(&kept));
        parts.join(" || ")
    }
}

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A row of a table, as its columns' names and values.
type Row = Vec<(String, Value)>;

/// The rows of `table` whose `key` column is `value`.
fn rows_of(conn: &Connection, table: &str, key: &str, value: &str) -> Vec<Row> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {table} WHERE {key} = ?1"))
        .unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|&n| n.to_owned()).collect();
    stmt.query_map([value], |row| {
        names
            .iter()
            .enumerate()
            .map(|(n, name)| Ok((name.clone(), row.get::<_, Value>(n)?)))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The column names of `row`.
fn names(row: &Row) -> Vec<String> {
    row.iter().map(|(name, _)| name.clone()).collect()
}

/// `CASE {on} WHEN 0 THEN ... END`: the expression of each case, in order,
/// or the one expression all cases share.
fn case(on: &str, expressions: &[(usize, String)]) -> String {
    if expressions.iter().all(|(_, e)| *e == expressions[0].1) {
        return expressions[0].1.clone();
    }
    let mut case = format!("CASE {on}");
    for (n, expression) in expressions {
        write!(case, " WHEN {n} THEN {expression}").unwrap();
    }
    case + " END"
}

/// What the copies are made of: the templates' rows as SQL over `gen`.
struct Copies {
    /// The columns of `services` and, for each, its SQL for each template.
    services: Vec<(String, Vec<(usize, String)>)>,
    /// The same for `requests`.
    requests: Vec<(String, Vec<(usize, String)>)>,
    /// The same for `request_parties`, for each party row of each template
    /// (`k * 8 + n`: the `n`th row of template `k`).
    parties: Vec<(String, Vec<(usize, String)>)>,
    /// How many party rows each template has.
    party_rows: Vec<usize>,
    /// Each time after the opening that a document writes, with the
    /// templates that write it: a column of `gen`, formatted once per copy
    /// of those templates rather than at each mention (`strftime` is slow).
    times: BTreeMap<i64, BTreeSet<usize>>,
}

impl Copies {
    /// Reads the templates' rows from the file and makes their SQL; checks
    /// that it gives each template back from the template's own values.
    fn of(conn: &Connection, templates: &[ChangeRequest]) -> Copies {
        let rows: Vec<(Row, Row, Vec<Row>)> = templates
            .iter()
            .map(|request| {
                let (id, name) = (request.id().to_string(), request.service().to_string());
                (
                    rows_of(conn, "services", "name", &name).remove(0),
                    rows_of(conn, "requests", "id", &id).remove(0),
                    rows_of(conn, "request_parties", "request_id", &id),
                )
            })
            .collect();
        let mut times: BTreeMap<i64, BTreeSet<usize>> = BTreeMap::new();
        for (k, (_, request, _)) in rows.iter().enumerate() {
            let opened = unix(templates[k].opened_at()).0;
            let doc = request.iter().find(|(c, _)| c == "doc").unwrap();
            let Value::Text(doc) = &doc.1 else {
                panic!("a document is text")
            };
            for (_, piece) in pieces(doc).filter(|(string, _)| *string) {
                if let Some(delta) = delta(piece, opened) {
                    times.entry(delta).or_default().insert(k);
                }
            }
        }
        let columns: BTreeMap<i64, String> = times
            .keys()
            .enumerate()
            .map(|(n, delta)| (*delta, format!("at_{n}")))
            .collect();
        let mut copies = Copies {
            services: names(&rows[0].0)
                .into_iter()
                .map(|c| (c, Vec::new()))
                .collect(),
            requests: names(&rows[0].1)
                .into_iter()
                .map(|c| (c, Vec::new()))
                .collect(),
            parties: names(&rows[0].2[0])
                .into_iter()
                .map(|c| (c, Vec::new()))
                .collect(),
            party_rows: Vec::new(),
            times,
        };
        for (k, (service, request, parties)) in rows.iter().enumerate() {
            let (opened, nanoseconds) = unix(templates[k].opened_at());
            assert_eq!(nanoseconds, 0, "templates open on a whole second");
            let copy = Substitution {
                id: templates[k].id().to_string(),
                name: templates[k].service().to_string(),
                opened,
                times: &columns,
            };
            let add = |to: &mut Vec<(String, Vec<(usize, String)>)>, n: usize, row: &Row| {
                for ((column, cases), (name, value)) in to.iter_mut().zip(row) {
                    assert_eq!(column, name);
                    cases.push((n, copy.value(column, value)));
                }
            };
            add(&mut copies.services, k, service);
            add(&mut copies.requests, k, request);
            assert!(
                (3..8).contains(&parties.len()),
                "{}: {parties:?}",
                STORIES[k]
            );
            for (n, party) in parties.iter().enumerate() {
                add(&mut copies.parties, k * 8 + n, party);
            }
            copies.party_rows.push(parties.len());
            // The copy of the template itself is the template: nothing in
            // its text is lost or changed but what should be.
            let values =
                |row: &Row| -> Vec<String> { row.iter().map(|(c, v)| copy.value(c, v)).collect() };
            let own = format!(
                "SELECT {} FROM (SELECT *{} FROM (SELECT {k} AS k, {} AS id, {} AS name, \
                 '{REQUESTER}' AS requester, '{HOLDER}' AS outgoing, '{INCOMING}' AS incoming, \
                 {opened} AS opened))",
                [values(service), values(request)].concat().join(", "),
                copies.time_columns(),
                literal(&copy.id),
                literal(&copy.name),
            );
            let expected: Vec<Value> = service
                .iter()
                .chain(request)
                .map(|(_, v)| v.clone())
                .collect();
            let again: Vec<Value> = conn
                .query_row(&own, [], |r| {
                    (0..expected.len()).map(|n| r.get(n)).collect()
                })
                .unwrap();
            assert_eq!(
                again, expected,
                "{}: the copy of the template itself",
                STORIES[k]
            );
        }
        copies
    }

    /// `, <time> AS at_0, ...`: the copy's times, for the templates that
    /// write each.
    fn time_columns(&self) -> String {
        let mut columns = String::new();
        for (n, (delta, users)) in self.times.iter().enumerate() {
            let users: Vec<String> = users.iter().map(ToString::to_string).collect();
            write!(
                columns,
                ", CASE WHEN k IN ({}) THEN {} END AS at_{n}",
                users.join(", "),
                stamp(*delta)
            )
            .unwrap();
        }
        columns
    }

    /// The load's steps, by what each does: the keys, then each table's
    /// rows, in one statement each.
    fn steps(&self) -> Vec<(String, String)> {
        let select = |columns: &[(String, Vec<(usize, String)>)], on: &str| {
            let names: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
            let values: Vec<String> = columns.iter().map(|(_, cases)| case(on, cases)).collect();
            (names.join(", "), values.join(", "))
        };
        let (services, service_values) = select(&self.services, "k");
        let (requests, request_values) = select(&self.requests, "k");
        let (parties, party_values) = select(&self.parties, "k * 8 + n");
        let most = self.party_rows.iter().max().unwrap();
        let row_counts: Vec<(usize, String)> = self
            .party_rows
            .iter()
            .enumerate()
            .map(|(k, rows)| (k, rows.to_string()))
            .collect();
        vec![
            (
                "generate the keys".to_owned(),
                GENERATE
                    .replace("{count}", &GENERATED.to_string())
                    .replace("{t0}", &unix(t0()).0.to_string())
                    .replace("{times}", &self.time_columns()),
            ),
            (
                "services".to_owned(),
                format!("INSERT INTO services ({services}) SELECT {service_values} FROM gen"),
            ),
            (
                "requests".to_owned(),
                format!("INSERT INTO requests ({requests}) SELECT {request_values} FROM gen"),
            ),
            (
                "party rows".to_owned(),
                format!(
                    "INSERT INTO request_parties ({parties}) SELECT {party_values} \
                     FROM gen CROSS JOIN (WITH RECURSIVE r (n) AS \
                         (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n < {last}) \
                         SELECT n FROM r) \
                     WHERE n < {count}",
                    last = most - 1,
                    count = case("k", &row_counts),
                ),
            ),
        ]
    }
}

/// Loads the copies into the file at `path`, where the store wrote the
/// templates, in one transaction; returns the rows then in each table
/// (services, requests, party rows).
fn load(path: &std::path::Path, templates: &[ChangeRequest]) -> [i64; 3] {
    let mut conn = Connection::open(path).unwrap();
    // A test file: no journal and no syncs while it loads (the store sets
    // WAL and `synchronous = FULL` again when it opens the file); the
    // copies' party rows name their requests by construction (and the
    // copies read back check them), so no foreign-key check per row.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; \
         PRAGMA cache_size = -1000000; PRAGMA temp_store = MEMORY; \
         PRAGMA foreign_keys = OFF;",
    )
    .unwrap();
    let copies = Copies::of(&conn, templates);
    // The secondary indexes go, and come back from their own definitions.
    let indexes: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes.len(), 7, "{indexes:?}");
    let mut steps: Vec<(String, String)> = indexes
        .iter()
        .map(|(name, _)| (format!("drop {name}"), format!("DROP INDEX {name}")))
        .collect();
    steps.extend(copies.steps());
    for (name, definition) in indexes {
        steps.push((format!("index {name}"), definition));
    }
    steps.push(("drop the keys".to_owned(), "DROP TABLE gen".to_owned()));
    let tx = conn.transaction().unwrap();
    for (step, sql) in &steps {
        let started = stopwatch();
        tx.execute_batch(sql)
            .unwrap_or_else(|err| panic!("{step}: {err}\n{sql}"));
        println!("load: {step} in {:.1} s", started.elapsed().as_secs_f64());
    }
    let started = stopwatch();
    tx.commit().unwrap();
    println!("load: commit in {:.1} s", started.elapsed().as_secs_f64());
    let counts = conn
        .query_row(
            "SELECT (SELECT count(*) FROM services), (SELECT count(*) FROM requests), \
             (SELECT count(*) FROM request_parties)",
            [],
            |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]),
        )
        .unwrap();
    conn.close().unwrap();
    counts
}

// ----- reading back -----

/// A few copies, picked at random, read back through the store: each
/// parses (its document, and its columns against it), its party rows are
/// exactly those its document gives, its service shows it as the last
/// request on the tech role (and the incoming customer as tech contact once
/// done), and the listings of its customers find it.
fn copies_read_back(store: &SqliteStore, conn: &Connection) {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    for _ in 0..12 {
        let g = 1 + rng.next_u32() % GENERATED;
        let id: String = conn
            .query_row(
                "SELECT id FROM requests WHERE id >= printf('%08x', ?1) ORDER BY id LIMIT 1",
                [g],
                |r| r.get(0),
            )
            .unwrap();
        let request = store
            .request(id.parse().unwrap())
            .unwrap()
            .expect("a generated request");
        let state = request.state().name();
        let stored: BTreeSet<(String, String, String, (i64, i64))> = conn
            .prepare(
                "SELECT customer, part, state, opened_s, opened_ns FROM request_parties \
                 WHERE request_id = ?1",
            )
            .unwrap()
            .query_map([&id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, (r.get(3)?, r.get(4)?)))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: BTreeSet<(String, String, String, (i64, i64))> = request
            .party_entries()
            .map(|(who, part)| {
                (
                    who.as_str().to_owned(),
                    part_code(part).to_owned(),
                    state.as_str().to_owned(),
                    unix(request.opened_at()),
                )
            })
            .collect();
        assert_eq!(stored, expected, "the party rows of copy {g}");
        let service = store
            .service(request.service())
            .unwrap()
            .expect("the copy's service");
        assert_eq!(service.last_request(Role::Tech), Some(request.id()));
        let tech = if state == StateName::Done {
            request.incoming()
        } else {
            request.outgoing(Role::Tech).unwrap()
        };
        assert_eq!(service.holder(Role::Tech), tech, "copy {g}");
        let theirs = all_contacts(store, tech, 3);
        assert!(
            theirs.contains(&(service.name().clone(), service.roles_of(tech))),
            "{tech}: {theirs:?}"
        );
        for who in request.parties() {
            if who.as_str() == RESELLER {
                continue; // a hundred thousand requests: read below
            }
            let listed = all_requests(store, who, &RequestFilter::all(), t0(), 3);
            assert!(
                listed.iter().any(|r| r.id() == request.id()),
                "{who}: {listed:?}"
            );
        }
        println!(
            "copy {g}: request {id} ({state}) on {}, read back",
            request.service()
        );
    }
}

/// The templates' customers' listings, which hold the templates alone,
/// list exactly what each filter says at `t0` (R6, R29, R35, R45); so does
/// the busy service's, page by page; the reseller's pages hold what the
/// filter lists, in order; the requests due at `t0` come earliest deadline
/// first, the two templates still awaiting first.
fn listings_answer(store: &SqliteStore, templates: &[ChangeRequest], busy: &[ChangeRequest]) {
    let mut filters = sample_filters();
    filters.push((
        "requests_of: a service".to_owned(),
        RequestFilter::all().service(template_service(2)),
    ));
    let services: Vec<_> = (0..templates.len())
        .map(|k| store.service(&template_service(k)).unwrap().unwrap())
        .collect();
    let mut listed_in_all = 0;
    for who in [REQUESTER, HOLDER, INCOMING].map(customer) {
        let expected: Vec<(ServiceName, Roles)> = services
            .iter()
            .map(|s| (s.name().clone(), s.roles_of(who)))
            .filter(|(_, roles)| !roles.is_empty())
            .collect();
        assert_eq!(all_contacts(store, who, 2), expected, "R6: {who}");
        for (name, filter) in &filters {
            let listed: Vec<RequestId> = all_requests(store, who, filter, t0(), 2)
                .iter()
                .map(ChangeRequest::id)
                .collect();
            let mut expected: Vec<&ChangeRequest> = templates
                .iter()
                .filter(|r| filter.matches(r, who, t0()))
                .collect();
            expected.sort_by_key(|r| (Reverse(r.opened_at()), r.id()));
            let expected: Vec<RequestId> = expected.into_iter().map(ChangeRequest::id).collect();
            assert_eq!(listed, expected, "R45: {who}, {name} ({filter:?})");
            listed_in_all += listed.len();
        }
    }
    assert!(listed_in_all > 3 * templates.len(), "{listed_in_all}");
    let on_busy = RequestFilter::all().service(service_name(BUSY));
    let listed: Vec<RequestId> = all_requests(store, customer(BUSY_HOLDER), &on_busy, t0(), 150)
        .iter()
        .map(ChangeRequest::id)
        .collect();
    let expected: Vec<RequestId> = busy.iter().map(ChangeRequest::id).collect();
    assert_eq!(listed, expected, "R45: the busy service's requests");

    let reseller = customer(RESELLER);
    for (name, filter) in &filters {
        let (started, read_before) = (stopwatch(), store.party_rows_read());
        let first = store.requests_of(reseller, filter, t0(), None, 20).unwrap();
        let after = first.last().map(opened_key);
        let second = store
            .requests_of(reseller, filter, t0(), after, 20)
            .unwrap();
        let pages: Vec<&ChangeRequest> = first.iter().chain(&second).collect();
        assert!(
            pages.iter().all(|r| filter.matches(r, reseller, t0())),
            "{name}"
        );
        assert!(
            pages
                .windows(2)
                .all(|w| (Reverse(w[0].opened_at()), w[0].id())
                    < (Reverse(w[1].opened_at()), w[1].id())),
            "{name}"
        );
        println!(
            "the reseller's {name}: two pages of {} and {} rows, {} party rows read, in {:.1} ms",
            first.len(),
            second.len(),
            store.party_rows_read() - read_before,
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    let contacts = store.contacts_of(reseller, None, 20).unwrap();
    assert_eq!(contacts.len(), 20);

    let due = read_pages(10, |last: Option<&ChangeRequest>, n| {
        if last.is_some_and(|r| r.deadline() > t0() - Duration::days(13)) {
            return Ok(Vec::new()); // past the templates and a few copies: enough
        }
        let after = last.map(|r| RequestKey {
            at: r.deadline(),
            id: r.id(),
        });
        store.due_for_expiry(t0(), after, n)
    });
    assert_eq!(
        due[..2].iter().map(ChangeRequest::id).collect::<Vec<_>>(),
        [templates[0].id(), templates[1].id()],
        "R29: the two templates still awaiting are due first"
    );
    assert!(due.len() > 2);
    assert!(due.iter().all(|r| r.is_due(t0())));
    assert!(
        due.windows(2)
            .all(|w| (w[0].deadline(), w[0].id()) < (w[1].deadline(), w[1].id()))
    );
}

// ----- the plans -----

/// The searches a statement's plan must consist of, as `EXPLAIN QUERY
/// PLAN` writes them: each listing searches its own index on every column
/// of its key up to the cursor's range (one search per holder index for
/// "my contacts", one per (part, state) range for "my requests"); each
/// update and delete its table's key; an `INSERT` of values has no plan
/// (its key and foreign-key checks are seeks the counters see). A statement
/// this does not know fails the test: a statement added to the store needs
/// its searches written here.
fn expected_searches(statement: &str) -> Vec<String> {
    let parties = "SEARCH request_parties USING COVERING INDEX request_parties_listing \
                   (customer=? AND part=? AND state=? AND (opened_s,opened_ns)<(?,?))";
    let by_request = "SEARCH request_parties USING PRIMARY KEY (request_id=?)";
    let by_name = "SEARCH services USING PRIMARY KEY (name=?)";
    let by_id = "SEARCH requests USING INDEX sqlite_autoindex_requests_1 (id=?)";
    let searches: Vec<&str> = match statement {
        "service" | "commit: update a service" => vec![by_name],
        "request" | "commit: update a request" => vec![by_id],
        "contacts_of" => vec![
            "SEARCH services USING COVERING INDEX services_admin (admin=? AND name>?)",
            "SEARCH services USING COVERING INDEX services_tech (tech=? AND name>?)",
            "SEARCH services USING COVERING INDEX services_billing (billing=? AND name>?)",
        ],
        // A service's history (R47) reads its requests as "my requests" on
        // a service does: the same statement.
        "requests_of: a service" | "requests_on" => vec![
            "SEARCH requests USING INDEX requests_service \
             (service=? AND (opened_s,opened_ns)<(?,?))",
        ],
        "assignments_on" => vec![
            "SEARCH assignments USING INDEX assignments_service \
             (service=? AND (at_s,at_ns)<(?,?))",
        ],
        "due_for_expiry" => vec![
            "SEARCH requests USING INDEX requests_due \
             ((deadline_s,deadline_ns,id)>(?,?,?) AND (deadline_s,deadline_ns)<(?,?))",
        ],
        "commit: update a request's parties" | "commit: clear a request's waiting rows" => {
            vec![by_request]
        }
        "commit: insert a service"
        | "commit: insert a request"
        | "commit: insert a party row"
        | "commit: insert an assignment" => vec![],
        _ => {
            let (_, filter) = sample_filters()
                .into_iter()
                .find(|(name, _)| name == statement)
                .unwrap_or_else(|| panic!("no searches known for {statement}: write them here"));
            vec![parties; filter.index_ranges().len()]
        }
    };
    searches.into_iter().map(str::to_owned).collect()
}

/// Checks a plan of `statement`: the audit's may scan (and do); any other
/// has no `SCAN` of a table or index, no automatic index and no temporary
/// B-tree, and every step of it is an index search of
/// [`expected_searches`] or a merge of their results in the listing's order.
fn check_plan(statement: &str, label: &str, lines: &[String]) {
    let at = format!("{statement} ({label}):\n  {}", lines.join("\n  "));
    println!("{at}");
    let steps: Vec<&str> = lines.iter().map(|line| line.trim_start()).collect();
    if statement.starts_with("audit:") {
        // Every row, by design: for audits and tests only.
        assert!(steps.iter().any(|s| s.starts_with("SCAN ")), "{at}");
        return;
    }
    for step in &steps {
        assert!(!step.starts_with("SCAN"), "a full scan: {at}");
        assert!(!step.contains("AUTOMATIC"), "an automatic index: {at}");
        assert!(!step.contains("TEMP B-TREE"), "a sort of every row: {at}");
        assert!(
            step.starts_with("SEARCH ")
                || ["MERGE (UNION)", "MERGE (UNION ALL)", "LEFT", "RIGHT"].contains(step),
            "a step that is not an index search: {at}"
        );
    }
    let mut searches: Vec<&str> = steps
        .iter()
        .copied()
        .filter(|s| s.starts_with("SEARCH "))
        .collect();
    let mut expected = expected_searches(statement);
    searches.sort_unstable();
    expected.sort_unstable();
    assert_eq!(searches, expected, "not the searches expected: {at}");
}

/// `EXPLAIN QUERY PLAN` of `sql` with `params`, one line per step,
/// indented by depth (as [`SqliteStore::query_plans`] shows it).
fn explain(conn: &Connection, sql: &str, params: &[Value]) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let steps: Vec<(i64, i64, String)> = stmt
        .query_map(params_from_iter(params), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut depth_of: BTreeMap<i64, usize> = BTreeMap::new();
    steps
        .into_iter()
        .map(|(id, parent, detail)| {
            let depth = depth_of.get(&parent).map_or(0, |d| d + 1);
            depth_of.insert(id, depth);
            format!("{}{detail}", "  ".repeat(depth))
        })
        .collect()
}

/// What `SQLite` counted running a statement once.
#[derive(Debug)]
struct Counted {
    /// Rows returned (a read) or changed (a write).
    rows: usize,
    /// Steps of a full table scan (`SQLITE_STMTSTATUS_FULLSCAN_STEP`).
    full_scan_steps: i32,
    /// Sorts (`SQLITE_STMTSTATUS_SORT`).
    sorts: i32,
    /// Rows put in automatic indexes (`SQLITE_STMTSTATUS_AUTOINDEX`).
    automatic_index_rows: i32,
    /// Virtual machine steps (`SQLITE_STMTSTATUS_VM_STEP`): the work done.
    vm_steps: i32,
}

/// Runs `sql` with `params` and returns what `SQLite` counted.
fn run(conn: &Connection, sql: &str, params: &[Value]) -> Counted {
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = if stmt.readonly() {
        let mut rows = stmt.query(params_from_iter(params)).unwrap();
        let mut count = 0;
        while rows.next().unwrap().is_some() {
            count += 1;
        }
        count
    } else {
        stmt.execute(params_from_iter(params)).unwrap()
    };
    Counted {
        rows,
        full_scan_steps: stmt.get_status(StatementStatus::FullscanStep),
        sorts: stmt.get_status(StatementStatus::Sort),
        automatic_index_rows: stmt.get_status(StatementStatus::AutoIndex),
        vm_steps: stmt.get_status(StatementStatus::VmStep),
    }
}

/// The rows of a listing page the statements are run with: a page of 20,
/// and one more, to know whether another page follows.
const PAGE: i64 = 21;

/// The most VM steps a statement may take: a row read from an index costs
/// a few dozen (its columns, the cursor's and filter's comparisons, the
/// merge), so a page of 21 rows takes up to about 1,500 (with the 19
/// searches of "my requests" with no filter); reading a range of the
/// reseller's hundred thousand rows would take millions.
const MOST_VM_STEPS: i32 = 10_000;

/// A listing's position as the store binds it: seconds, nanoseconds, id.
fn position(at: &Position) -> [Value; 3] {
    [
        Value::Integer(at.at.0),
        Value::Integer(at.at.1),
        Value::Text(at.id.clone()),
    ]
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

/// The generated service the statements are run on: one in the middle.
fn generated_service() -> String {
    format!("g{:07}.example", GENERATED / 2)
}

/// The request on [`generated_service`].
fn generated_request(conn: &Connection) -> String {
    conn.query_row(
        "SELECT id FROM requests WHERE service = ?1",
        [generated_service()],
        |r| r.get(0),
    )
    .unwrap()
}

/// A labelled set of values to run a statement with.
type Variant = (String, Vec<Value>);

/// The values each statement of [`queries`] is explained and run with, as
/// the store binds them (see each statement's layout in `src/store.rs`),
/// by label: for a listing, a first page and a page after a cursor, for a
/// template's customer and the reseller (a generated service and the busy
/// one; the requests due at `t0`, and every open one); for a commit's
/// statement, [`commit_variants`]. A statement this does not know fails the
/// test.
fn variants(
    statement: &str,
    templates: &[ChangeRequest],
    busy: &[ChangeRequest],
    conn: &Connection,
) -> Vec<Variant> {
    if statement.starts_with("commit:") {
        return commit_variants(statement, conn);
    }
    let template = &templates[2];
    let generated_service = &generated_service();
    // Two and a half years before `t0`, among the reseller's requests.
    let long_ago = Position {
        at: (unix(t0()).0 - 80_000_000, 0),
        id: String::new(),
    };
    let newest_first = Position::newest_after(None);
    match statement {
        "service" => vec![(
            "a generated service".to_owned(),
            vec![text(generated_service)],
        )],
        "request" => vec![(
            "a generated request".to_owned(),
            vec![text(&generated_request(conn))],
        )],
        "contacts_of" => {
            let page = |who: &str, after: &str| vec![text(who), text(after), Value::Integer(PAGE)];
            four_pages(
                [REQUESTER, RESELLER],
                [
                    page(REQUESTER, ""),
                    page(REQUESTER, template.service().as_str()),
                    page(RESELLER, ""),
                    page(RESELLER, generated_service),
                ],
            )
        }
        "requests_of: a service" | "requests_on" | "assignments_on" => {
            let page = |service: &str, after: &Position| {
                let mut params = vec![text(service)];
                params.extend(position(after));
                params.push(Value::Integer(PAGE));
                params
            };
            let middle = Position::of(opened_key(&busy[busy.len() / 2]));
            four_pages(
                ["a generated service", "the busy service"],
                [
                    page(generated_service, &newest_first),
                    page(generated_service, &long_ago),
                    page(BUSY, &newest_first),
                    page(BUSY, &middle),
                ],
            )
        }
        "due_for_expiry" => {
            let page = |after: &Position, now: OffsetDateTime| {
                let mut params = position(after).to_vec();
                let (s, ns) = unix(now);
                params.extend([Value::Integer(s), Value::Integer(ns), Value::Integer(PAGE)]);
                params
            };
            let cursor = Position::of(RequestKey {
                at: templates[0].deadline(),
                id: templates[0].id(),
            });
            let (first, every_open) = (Position::earliest_after(None), t0() + Duration::days(30));
            four_pages(
                ["due at t0", "every open request"],
                [
                    page(&first, t0()),
                    page(&cursor, t0()),
                    page(&first, every_open),
                    page(&cursor, every_open),
                ],
            )
        }
        _ => party_variants(statement, template, &long_ago),
    }
}

/// The four variants of a listing: its first page and a page after a
/// cursor, for each of two cases.
fn four_pages(cases: [&str; 2], params: [Vec<Value>; 4]) -> Vec<Variant> {
    let [a, b, c, d] = params;
    vec![
        (format!("{}, first page", cases[0]), a),
        (format!("{}, after a cursor", cases[0]), b),
        (format!("{}, first page", cases[1]), c),
        (format!("{}, after a cursor", cases[1]), d),
    ]
}

/// The values "my requests" without a service is run with, for the sample
/// filter `statement` names: the templates' requester and the reseller,
/// each from the first page and after a cursor (`template`'s, or
/// `long_ago`).
fn party_variants(statement: &str, template: &ChangeRequest, long_ago: &Position) -> Vec<Variant> {
    let (_, filter) = sample_filters()
        .into_iter()
        .find(|(name, _)| name == statement)
        .unwrap_or_else(|| panic!("no values to explain {statement} with"));
    let page = |who: &str, after: &Position| {
        let mut params = vec![text(who)];
        params.extend(position(after));
        params.push(Value::Integer(PAGE));
        for (part, state) in filter.index_ranges() {
            params.extend([text(part_code(part)), text(state.as_str())]);
        }
        params
    };
    let newest_first = Position::newest_after(None);
    four_pages(
        [REQUESTER, RESELLER],
        [
            page(REQUESTER, &newest_first),
            page(REQUESTER, &Position::of(opened_key(template))),
            page(RESELLER, &newest_first),
            page(RESELLER, long_ago),
        ],
    )
}

/// The values a commit's statement is run with: a write of a generated
/// record (or of a new one like it), its values read from the file in the
/// statement's parameter order. A statement this does not know fails the
/// test.
fn commit_variants(statement: &str, conn: &Connection) -> Vec<Variant> {
    let (service, request) = (generated_service(), generated_request(conn));
    let awaiting: String = conn
        .query_row(
            "SELECT request_id FROM request_parties WHERE part = 'waiting' \
             AND request_id LIKE '0%' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let row = |sql: &str, key: &str| -> Vec<Value> {
        let mut stmt = conn.prepare(sql).unwrap();
        let count = stmt.column_count();
        stmt.query_row([key], |r| (0..count).map(|n| r.get(n)).collect())
            .unwrap()
    };
    let (label, params) = match statement {
        "commit: insert a service" => (
            "a new service",
            row(
                "SELECT 'new.example', admin, tech, billing, 1, NULL, NULL, NULL, 0 \
                 FROM services WHERE name = ?1",
                &service,
            ),
        ),
        "commit: update a service" => (
            "a generated service",
            row(
                "SELECT name, admin, tech, billing, version + 1, last_admin, last_tech, \
                 last_billing, removed, version FROM services WHERE name = ?1",
                &service,
            ),
        ),
        "commit: insert a request" => (
            "a new request",
            row(
                "SELECT 'ffffffffffffffffffffffffffffffff', service, open, opened_s, opened_ns, \
                 deadline_s, deadline_ns, version, doc FROM requests WHERE id = ?1",
                &request,
            ),
        ),
        "commit: update a request" => (
            "a generated request",
            row(
                "SELECT id, service, open, opened_s, opened_ns, deadline_s, deadline_ns, \
                 version + 1, doc, version FROM requests WHERE id = ?1",
                &request,
            ),
        ),
        "commit: insert a party row" => (
            "a new party row of a generated request",
            row(
                "SELECT 'ZZ1-OVH', request_id, part, state, opened_s, opened_ns \
                 FROM request_parties WHERE request_id = ?1 AND part = 'requester'",
                &request,
            ),
        ),
        "commit: update a request's parties" => {
            ("a generated request", vec![text(&request), text("error")])
        }
        "commit: clear a request's waiting rows" => {
            ("a generated request awaiting", vec![text(&awaiting)])
        }
        "commit: insert an assignment" => (
            "a new assignment on a generated service",
            vec![
                text("ffffffffffffffffffffffffffffffff"),
                text(&service),
                Value::Integer(unix(t0()).0),
                Value::Integer(0),
                text("{}"),
            ],
        ),
        _ => panic!("no values to run {statement} with"),
    };
    vec![(label.to_owned(), params)]
}

/// Every statement of [`queries`]: its plan as the store shows it (unbound
/// values), then, for each of its [`variants`], its plan with those values
/// and what running it counts (a commit's statements in a transaction rolled
/// back).
fn plans_hold(
    store: &SqliteStore,
    conn: &Connection,
    templates: &[ChangeRequest],
    busy: &[ChangeRequest],
) {
    let statements = queries();
    let names: BTreeSet<&str> = statements.iter().map(|(name, _)| name.as_str()).collect();
    for read in [
        "service",
        "request",
        "contacts_of",
        "requests_of: a service",
        "due_for_expiry",
    ] {
        assert!(names.contains(read), "{read} is not explained: {names:?}");
    }
    // "My requests" with every number of ranges a filter can need.
    let ranges: BTreeSet<usize> = sample_filters()
        .iter()
        .map(|(name, filter)| {
            assert!(names.contains(name.as_str()), "{name} is not explained");
            filter.index_ranges().len()
        })
        .collect();
    assert_eq!(ranges.first(), Some(&1));
    assert_eq!(
        ranges.last(),
        Some(&RequestFilter::all().index_ranges().len())
    );
    assert!(names.iter().filter(|n| n.starts_with("commit:")).count() >= 4);

    let shown: BTreeMap<String, Vec<String>> = store.query_plans().unwrap().into_iter().collect();
    assert_eq!(shown.len(), statements.len());
    let tx = conn.unchecked_transaction().unwrap();
    for (statement, sql) in &statements {
        check_plan(statement, "as query_plans shows it", &shown[statement]);
        if statement.starts_with("audit:") {
            continue;
        }
        for (label, params) in variants(statement, templates, busy, &tx) {
            check_plan(statement, &label, &explain(&tx, sql, &params));
            let counted = run(&tx, sql, &params);
            println!("  run: {counted:?}\n");
            let at = format!("{statement} ({label}): {counted:?}");
            assert_eq!(counted.full_scan_steps, 0, "a full scan: {at}");
            assert_eq!(counted.sorts, 0, "a sort: {at}");
            assert_eq!(counted.automatic_index_rows, 0, "an automatic index: {at}");
            assert!(counted.vm_steps <= MOST_VM_STEPS, "too much work: {at}");
            if statement.starts_with("commit:") {
                assert!(counted.rows >= 1, "nothing written: {at}");
            }
        }
    }
    tx.rollback().unwrap();
}

#[test]
fn every_statement_reads_through_its_index_at_scale() {
    let started = stopwatch();
    let dir = TempDir::new("plans-at-scale");
    let path = dir.file("contacts.db");
    let store = SqliteStore::open(&path).unwrap();
    let templates = write_templates(&store);
    let busy = write_busy_service(&store);
    store.close().unwrap();
    let counts = load(&path, &templates);
    let loaded = started.elapsed();
    println!(
        "loaded {counts:?} rows (services, requests, party rows), a file of {} MB, in {:.1} s",
        std::fs::metadata(&path).unwrap().len() / 1_000_000,
        loaded.as_secs_f64()
    );
    let generated = i64::from(GENERATED);
    let templates_count = i64::try_from(templates.len()).unwrap();
    let busy_count = i64::from(BUSY_REQUESTS);
    assert_eq!(
        counts[..2],
        [
            generated + templates_count + 1,
            generated + templates_count + busy_count
        ]
    );
    assert!(counts[2] > 3 * generated);

    // The store opens the loaded file as its own (its schema checked).
    let store = SqliteStore::open(&path).expect("the loaded file is the store's");
    // The file as the store has it (WAL, foreign keys on), for the raw
    // statements.
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    let checked = stopwatch();
    copies_read_back(&store, &conn);
    listings_answer(&store, &templates, &busy);
    println!(
        "copies read back and listings checked in {:.1} s",
        checked.elapsed().as_secs_f64()
    );
    let explained = stopwatch();
    plans_hold(&store, &conn, &templates, &busy);
    println!(
        "plans explained and statements run in {:.1} s; the whole test took {:.1} s",
        explained.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
