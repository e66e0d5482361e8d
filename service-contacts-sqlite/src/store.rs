//! [`SqliteStore`]: the schema, the queries and the commit (described in the
//! crate docs).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::{FromSql, Value, ValueRef};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior, params,
    params_from_iter,
};
use service_contacts::columns::{
    self, AssignmentColumns, MAX_BATCH, MIN_BATCH, Mismatch, Position, RequestColumns,
    ServiceColumns, VersionOutOfRange, part_code, part_from_code, sample_filters, unix,
};
use service_contacts::{
    Assignment, AssignmentId, ChangeRequest, Changes, CommitError, Contacts, CustomerId,
    HistoryKey, Part, RequestFilter, RequestId, RequestKey, Role, Roles, Service, ServiceName,
    StateName, Store, Version, Write,
};
use time::OffsetDateTime;

/// `PRAGMA application_id` of a service-contacts database: `SCon`.
pub const APPLICATION_ID: i32 = 0x5343_6f6e;

/// `PRAGMA user_version`: the version of the schema below.
pub const SCHEMA_VERSION: i32 = 5;

/// The oldest schema version [`SqliteStore::open`] upgrades (to
/// [`SCHEMA_VERSION`], in place): the first a host kept files of. Older
/// files were the example's, temporary, and are refused.
const OLDEST_UPGRADABLE: i32 = 4;

/// The schema of version 4, where every file starts: an empty file gets it
/// and then every one of [`UPGRADES`], in one transaction.
const SCHEMA: &str = "
CREATE TABLE services (
    name    TEXT NOT NULL PRIMARY KEY,
    admin   TEXT NOT NULL,
    tech    TEXT NOT NULL,
    billing TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    last_admin   TEXT,
    last_tech    TEXT,
    last_billing TEXT,
    removed INTEGER NOT NULL CHECK (removed IN (0, 1))
) STRICT, WITHOUT ROWID;
CREATE INDEX services_admin ON services (admin, name) WHERE removed = 0;
CREATE INDEX services_tech ON services (tech, name) WHERE removed = 0;
CREATE INDEX services_billing ON services (billing, name) WHERE removed = 0;

CREATE TABLE requests (
    id          TEXT NOT NULL PRIMARY KEY,
    service     TEXT NOT NULL,
    open        INTEGER NOT NULL CHECK (open IN (0, 1)),
    opened_s    INTEGER NOT NULL,
    opened_ns   INTEGER NOT NULL,
    deadline_s  INTEGER NOT NULL,
    deadline_ns INTEGER NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    doc         TEXT NOT NULL
) STRICT;
CREATE INDEX requests_due ON requests (deadline_s, deadline_ns, id) WHERE open = 1;
CREATE INDEX requests_service ON requests (service, opened_s DESC, opened_ns DESC, id);

CREATE TABLE request_parties (
    customer   TEXT NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    part       TEXT NOT NULL CHECK (part IN ('requester', 'incoming', 'outgoing',
                                            'waiting')),
    state      TEXT NOT NULL CHECK (state IN ('validatingByCustomers', 'done', 'refused',
                                              'aborted', 'expired', 'error')),
    opened_s   INTEGER NOT NULL,
    opened_ns  INTEGER NOT NULL,
    PRIMARY KEY (request_id, customer, part)
) STRICT, WITHOUT ROWID;
CREATE INDEX request_parties_listing
    ON request_parties (customer, part, state, opened_s DESC, opened_ns DESC, request_id);
";

/// Version 5: operators' direct assignments (R46), each a JSON document
/// beside the columns of a service's history (R47), listed newest first,
/// ties by id, from `assignments_service`.
const ASSIGNMENTS_SCHEMA: &str = "
CREATE TABLE assignments (
    id      TEXT NOT NULL PRIMARY KEY,
    service TEXT NOT NULL,
    at_s    INTEGER NOT NULL,
    at_ns   INTEGER NOT NULL,
    doc     TEXT NOT NULL
) STRICT;
CREATE INDEX assignments_service ON assignments (service, at_s DESC, at_ns DESC, id);
";

/// What each version after [`SCHEMA`]'s adds, in order: (the version, its
/// statements). A new file runs them all after [`SCHEMA`]; a file of an
/// older version ([`OLDEST_UPGRADABLE`] or later) the ones it lacks, in the
/// transaction that sets its new version.
const UPGRADES: [(i32, &str); 1] = [(5, ASSIGNMENTS_SCHEMA)];

/// Each table of the schema with its columns, in order: what `open` checks
/// (a table of a later version than the file's must be absent).
const TABLES: [(&str, &[&str]); 4] = [
    (
        "services",
        &[
            "name",
            "admin",
            "tech",
            "billing",
            "version",
            "last_admin",
            "last_tech",
            "last_billing",
            "removed",
        ],
    ),
    (
        "requests",
        &[
            "id",
            "service",
            "open",
            "opened_s",
            "opened_ns",
            "deadline_s",
            "deadline_ns",
            "version",
            "doc",
        ],
    ),
    (
        "request_parties",
        &[
            "customer",
            "request_id",
            "part",
            "state",
            "opened_s",
            "opened_ns",
        ],
    ),
    ("assignments", &["id", "service", "at_s", "at_ns", "doc"]),
];

/// The indexes of the schema: what `open` checks besides the tables.
const INDEXES: [&str; 7] = [
    "services_admin",
    "services_tech",
    "services_billing",
    "requests_due",
    "requests_service",
    "request_parties_listing",
    "assignments_service",
];

/// The schema version each table or index of [`TABLES`] and [`INDEXES`]
/// first appears in; 4 for those not named.
fn since(object: &str) -> i32 {
    match object {
        "assignments" | "assignments_service" => 5,
        _ => OLDEST_UPGRADABLE,
    }
}

/// The columns a service is read from, in the order `read_service` expects.
macro_rules! service_columns {
    () => {
        "name, admin, tech, billing, version, last_admin, last_tech, last_billing, removed"
    };
}

/// The columns a request is read from, in the order `read_request` expects.
macro_rules! request_columns {
    () => {
        "id, service, open, opened_s, opened_ns, deadline_s, deadline_ns, version, doc"
    };
}

/// The columns an assignment is read from, in the order `read_assignment`
/// expects.
macro_rules! assignment_columns {
    () => {
        "id, service, at_s, at_ns, doc"
    };
}

const SERVICE: &str = concat!(
    "SELECT ",
    service_columns!(),
    " FROM services WHERE name = ?1"
);
const REQUEST: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM requests WHERE id = ?1"
);
/// The names of a page of "my contacts": one search of each role's partial
/// index from the cursor on (`?2`, `''` for the first page), merged by name
/// (`MERGE (UNION)`, which also drops a name found under two roles), at most
/// `?3` of them. The rows are then read by name.
const CONTACTS_OF: &str = "\
    SELECT name FROM services WHERE admin = ?1 AND name > ?2 AND removed = 0 \
    UNION SELECT name FROM services WHERE tech = ?1 AND name > ?2 AND removed = 0 \
    UNION SELECT name FROM services WHERE billing = ?1 AND name > ?2 AND removed = 0 \
    ORDER BY name LIMIT ?3";
/// A page of one service's requests, newest first, after the position
/// `(?2, ?3, ?4)` (opening seconds, nanoseconds, id), at most `?5`: the range
/// `opened <= cursor` is searched in `requests_service`; the rows of the
/// cursor's own opening time up to its id are passed over.
const SERVICE_REQUESTS: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM requests WHERE service = ?1 AND (opened_s, opened_ns) <= (?2, ?3) \
     AND NOT (opened_s = ?2 AND opened_ns = ?3 AND id <= ?4) \
     ORDER BY opened_s DESC, opened_ns DESC, id LIMIT ?5"
);
/// A page of the requests due at `(?4, ?5)`, after the position `(?1, ?2,
/// ?3)` (deadline seconds, nanoseconds, id), at most `?6`: one range of
/// `requests_due`, bounded on both ends.
const DUE_FOR_EXPIRY: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM requests WHERE open = 1 AND (deadline_s, deadline_ns, id) > (?1, ?2, ?3) \
     AND (deadline_s, deadline_ns) <= (?4, ?5) ORDER BY deadline_s, deadline_ns, id LIMIT ?6"
);
/// A page of one service's full history of requests (R47), newest first,
/// ties by id, after the position `(?2, ?3, ?4)`, at most `?5`: the query of
/// "my requests" on a service ([`SERVICE_REQUESTS`], on `requests_service`),
/// without a filter.
const REQUESTS_ON: &str = SERVICE_REQUESTS;
/// A page of one service's assignments (R46, R47), newest first, ties by
/// id, after the position `(?2, ?3, ?4)` (seconds, nanoseconds, id), at most
/// `?5`: the range `at <= cursor` of `assignments_service`, the rows of the
/// cursor's own time up to its id passed over.
const ASSIGNMENTS_ON: &str = concat!(
    "SELECT ",
    assignment_columns!(),
    " FROM assignments WHERE service = ?1 AND (at_s, at_ns) <= (?2, ?3) \
     AND NOT (at_s = ?2 AND at_ns = ?3 AND id <= ?4) \
     ORDER BY at_s DESC, at_ns DESC, id LIMIT ?5"
);
const ALL_SERVICES: &str = concat!(
    "SELECT ",
    service_columns!(),
    " FROM services ORDER BY name"
);
const ALL_REQUESTS: &str = concat!("SELECT ", request_columns!(), " FROM requests ORDER BY id");
const ALL_PARTIES: &str = "SELECT customer, request_id, part, state, opened_s, opened_ns \
                           FROM request_parties";
const ALL_ASSIGNMENTS: &str = concat!(
    "SELECT ",
    assignment_columns!(),
    " FROM assignments ORDER BY id"
);

const INSERT_SERVICE: &str = "INSERT INTO services (name, admin, tech, billing, version, \
                              last_admin, last_tech, last_billing, removed) \
                              VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                              ON CONFLICT (name) DO NOTHING";
const UPDATE_SERVICE: &str = "UPDATE services SET admin = ?2, tech = ?3, billing = ?4, \
                              version = ?5, last_admin = ?6, last_tech = ?7, \
                              last_billing = ?8, removed = ?9 \
                              WHERE name = ?1 AND version = ?10";
const INSERT_REQUEST: &str = "INSERT INTO requests (id, service, open, opened_s, opened_ns, \
                              deadline_s, deadline_ns, version, doc) \
                              VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                              ON CONFLICT (id) DO NOTHING";
const UPDATE_REQUEST: &str = "UPDATE requests SET service = ?2, open = ?3, opened_s = ?4, \
                              opened_ns = ?5, deadline_s = ?6, deadline_ns = ?7, \
                              version = ?8, doc = ?9 WHERE id = ?1 AND version = ?10";
/// A party row of a new request. A row already there (left by a hand edit)
/// fails the commit rather than be kept with what it says.
const INSERT_PARTY: &str = "INSERT INTO request_parties (customer, request_id, part, state, \
                            opened_s, opened_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// The recorded state of every party row of a request that changed.
const UPDATE_PARTIES: &str = "UPDATE request_parties SET state = ?2 \
                              WHERE request_id = ?1 AND state <> ?2";
/// The `waiting` rows of a request written again: replaced by its current
/// ones.
const DELETE_WAITING: &str = "DELETE FROM request_parties \
                              WHERE request_id = ?1 AND part = 'waiting'";
/// An operator's assignment, written once: an id already there changes no
/// row, and the commit is a conflict.
const INSERT_ASSIGNMENT: &str = "INSERT INTO assignments (id, service, at_s, at_ns, doc) \
                                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING";

/// The columns a party row is read from, in the order `read_party` expects.
const PARTY_COLUMNS: &str = "SELECT customer, part, state, opened_s, opened_ns, request_id \
                             FROM request_parties";

/// A page of "my requests" through `request_parties`, for `arms` (part,
/// recorded state) pairs: one search of `request_parties_listing` per pair,
/// for customer `?1`, from the position `(?2, ?3, ?4)` (opening seconds,
/// nanoseconds, id) on, merged newest first (`MERGE (UNION ALL)`), at most
/// `?5` rows. The pairs' part and state are `?6`, `?7`, then `?8`, `?9`...
/// A request where the customer has two parts comes once per part, on
/// adjacent rows.
fn requests_of_sql(arms: usize) -> String {
    let arm = |n: usize| {
        format!(
            "{PARTY_COLUMNS} WHERE customer = ?1 AND part = ?{} AND state = ?{} \
             AND (opened_s, opened_ns) <= (?2, ?3) \
             AND NOT (opened_s = ?2 AND opened_ns = ?3 AND request_id <= ?4)",
            6 + 2 * n,
            7 + 2 * n
        )
    };
    let arms: Vec<String> = (0..arms).map(arm).collect();
    format!(
        "{} ORDER BY opened_s DESC, opened_ns DESC, request_id LIMIT ?5",
        arms.join(" UNION ALL ")
    )
}

/// Every statement the store runs on its tables, by name: what
/// [`SqliteStore::query_plans`] explains and the query-plan tests check.
///
/// - the reads: `service`, `request`, `contacts_of`, "my requests" once
///   per number of (part, state) pairs its filter needs (one statement per
///   [`sample_filters`] entry: their SQL differs by the number of index
///   searches only), `requests_of: a service`, `due_for_expiry`, and a
///   service's history, `requests_on` and `assignments_on`;
/// - `commit: ...`: every statement of a commit ([`COMMIT_STATEMENTS`]);
/// - `audit: ...`: the full scans of [`SqliteStore::audit`],
///   [`SqliteStore::services`] and [`SqliteStore::requests`], which read
///   every row by design, and only these.
///
/// Not listed: `open`'s look at `SQLite`'s own catalog (`sqlite_schema`,
/// `pragma_table_info`) and the pragmas.
#[doc(hidden)]
#[must_use]
pub fn queries() -> Vec<(String, String)> {
    let mut queries: Vec<(String, String)> = [
        ("service", SERVICE),
        ("request", REQUEST),
        ("contacts_of", CONTACTS_OF),
    ]
    .map(|(name, sql)| (name.to_owned(), sql.to_owned()))
    .into();
    for (name, filter) in sample_filters() {
        queries.push((name, requests_of_sql(arms(&filter).len())));
    }
    for (name, sql) in [
        ("requests_of: a service", SERVICE_REQUESTS),
        ("due_for_expiry", DUE_FOR_EXPIRY),
        ("requests_on", REQUESTS_ON),
        ("assignments_on", ASSIGNMENTS_ON),
    ]
    .into_iter()
    .chain(COMMIT_STATEMENTS)
    .chain(AUDIT_STATEMENTS)
    {
        queries.push((name.to_owned(), sql.to_owned()));
    }
    queries
}

/// Every statement [`write_all`] runs, by name.
const COMMIT_STATEMENTS: [(&str, &str); 8] = [
    ("commit: insert a service", INSERT_SERVICE),
    ("commit: update a service", UPDATE_SERVICE),
    ("commit: insert a request", INSERT_REQUEST),
    ("commit: update a request", UPDATE_REQUEST),
    ("commit: insert a party row", INSERT_PARTY),
    ("commit: update a request's parties", UPDATE_PARTIES),
    ("commit: clear a request's waiting rows", DELETE_WAITING),
    ("commit: insert an assignment", INSERT_ASSIGNMENT),
];

/// The full scans, for tests and audits only.
const AUDIT_STATEMENTS: [(&str, &str); 4] = [
    ("audit: every service", ALL_SERVICES),
    ("audit: every request", ALL_REQUESTS),
    ("audit: every party row", ALL_PARTIES),
    ("audit: every assignment", ALL_ASSIGNMENTS),
];

/// The (part, recorded state) pairs whose rows may hold a request `filter`
/// lists ([`RequestFilter::index_ranges`]): searching these and applying
/// [`RequestFilter::matches`] to what they hold lists exactly the filter's
/// requests.
fn arms(filter: &RequestFilter) -> Vec<(Part, StateName)> {
    filter.index_ranges()
}

/// A SQL `LIMIT` of `rows`.
fn sql_limit(rows: usize) -> i64 {
    i64::try_from(rows).unwrap_or(i64::MAX)
}

/// What can go wrong in a [`SqliteStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteStoreError {
    /// `SQLite` failed (I/O, a lock held past the busy timeout on a read, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row does not parse back into a valid record. Nothing was
    /// written or repaired.
    #[error("corrupt row in {table} ({key}): {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key (service name, request id, customer), as stored.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The file is not a service-contacts database of a schema this store
    /// knows (version 4, which it upgrades, or [`SCHEMA_VERSION`]). Nothing
    /// was written.
    #[error(
        "{path}: not a service-contacts database of schema version \
         {OLDEST_UPGRADABLE} to {SCHEMA_VERSION}: {detail}"
    )]
    Schema {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// A record cannot be stored (its JSON form or a number does not fit).
    /// Nothing was written.
    #[error("cannot store {what}: {detail}")]
    Unstorable {
        /// The record.
        what: String,
        /// Why.
        detail: String,
    },
}

/// How a [`SqliteStore`] uses its connection.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How long a statement waits for another connection's lock before
    /// `SQLite` reports `SQLITE_BUSY` (a commit then reports a conflict).
    pub busy_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            busy_timeout: Duration::from_secs(2),
        }
    }
}

/// A [`Store`] on one `SQLite` connection to a database file.
///
/// The connection sits behind a mutex, so one store may be shared by threads
/// (the conformance suite does); for parallel work, open one store per
/// thread on the same file: `SQLite`'s own locking (WAL mode: readers never
/// wait for the writer) and the version checks of [`Store::commit`] keep them
/// consistent.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// See [`SqliteStore::party_rows_read`].
    party_rows_read: AtomicU64,
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and the schema if
    /// there is nothing there yet.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, SqliteStoreError> {
        SqliteStore::open_with(path, Options::default())
    }

    /// [`SqliteStore::open`] with `options`.
    ///
    /// A file of schema version 4 is upgraded to [`SCHEMA_VERSION`] in
    /// place, in one transaction (version 5 adds the `assignments` table and
    /// its index; nothing else changes). A file that holds anything else
    /// (another application's database, a newer or older schema, one whose
    /// tables or indexes are not the schema's, a file that is not `SQLite`)
    /// gives [`SqliteStoreError::Schema`], and nothing is written to it.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: Options,
    ) -> Result<SqliteStore, SqliteStoreError> {
        let path = path.as_ref().to_path_buf();
        // No URI parsing: the path is taken as it is. The store's own mutex
        // serializes the use of the connection.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags)?;
        conn.busy_timeout(options.busy_timeout)?;
        // Room for every statement, "my requests" having one per number of
        // (part, state) pairs.
        conn.set_prepared_statement_cache_capacity(64);
        // Look before writing anything: even the journal mode is a write.
        // In one read transaction, so that what it sees (the version, the
        // tables) is one moment of the file, even while another connection
        // upgrades it.
        let found = {
            let look = conn.transaction()?;
            let found = inspect(&look, &path)?;
            look.rollback()?;
            found
        };
        match found {
            Found::Ours => {}
            Found::Empty | Found::Older(_) => create(&mut conn, &path)?,
            Found::Foreign(detail) => return Err(SqliteStoreError::Schema { path, detail }),
        }
        // WAL lets readers go on while one connection writes; `FULL` syncs
        // every commit, so a commit that returned survives a power cut.
        conn.pragma_update_and_check(None, "journal_mode", "wal", |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
            party_rows_read: AtomicU64::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the connection, reporting what `SQLite` reports (a store that is
    /// simply dropped closes too, silently).
    pub fn close(self) -> Result<(), SqliteStoreError> {
        let conn = self
            .conn
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        conn.close()
            .map_err(|(_, err)| SqliteStoreError::Sqlite(err))
    }

    /// The journal mode in force (`wal` unless the file system refused it).
    pub fn journal_mode(&self) -> Result<String, SqliteStoreError> {
        Ok(self
            .lock()
            .pragma_query_value(None, "journal_mode", |row| row.get(0))?)
    }

    /// Every service, by name (a full scan: for tests and audits).
    pub fn services(&self) -> Result<Vec<Service>, SqliteStoreError> {
        all_services(&self.lock())
    }

    /// Every request, by id (a full scan: for tests and audits).
    pub fn requests(&self) -> Result<Vec<ChangeRequest>, SqliteStoreError> {
        all_requests(&self.lock())
    }

    /// Every operator's assignment, by id (a full scan: for tests and
    /// audits).
    pub fn assignments(&self) -> Result<Vec<Assignment>, SqliteStoreError> {
        all_assignments(&self.lock())
    }

    /// Checks the whole database against itself: `SQLite`'s integrity check
    /// (every index matches its table), every row parses, every request's
    /// and assignment's columns match its document, and `request_parties`
    /// holds exactly one row per customer and part of each request
    /// (requester, incoming, each outgoing holder, each confirmer it waits
    /// for while recorded as awaiting), each with the request's recorded
    /// state and opening time. A full scan, in one read transaction (one
    /// snapshot, whatever other connections write meanwhile).
    pub fn audit(&self) -> Result<(), SqliteStoreError> {
        let conn = self.lock();
        let snapshot = conn.unchecked_transaction()?;
        all_services(&snapshot)?;
        let requests = all_requests(&snapshot)?;
        all_assignments(&snapshot)?;
        let integrity: Vec<String> = snapshot
            .prepare("PRAGMA integrity_check")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        if integrity != ["ok"] {
            return Err(SqliteStoreError::Corrupt {
                table: "sqlite_schema",
                key: self.path.display().to_string(),
                detail: integrity.join("; "),
            });
        }
        let expected: BTreeSet<PartyRow> = requests.iter().flat_map(PartyRow::all_of).collect();
        let stored: BTreeSet<PartyRow> = snapshot
            .prepare(ALL_PARTIES)?
            .query_map([], |row| {
                Ok(PartyRow {
                    customer: row.get(0)?,
                    request_id: row.get(1)?,
                    part: row.get(2)?,
                    state: row.get(3)?,
                    opened: (row.get(4)?, row.get(5)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        if let Some(row) = stored.symmetric_difference(&expected).next() {
            let detail = if stored.contains(row) {
                format!("{row} is listed, but the request does not say so")
            } else {
                format!("{row} is not listed")
            };
            return Err(SqliteStoreError::Corrupt {
                table: "request_parties",
                key: row.customer.clone(),
                detail,
            });
        }
        snapshot.finish()?;
        Ok(())
    }

    /// The plan `SQLite` chooses for each statement of the store (`EXPLAIN
    /// QUERY PLAN`), by name, one line per step, indented by depth: the
    /// reads (`service`, `request`, `contacts_of`, `requests_of: ...`,
    /// `due_for_expiry`), the statements of `commit` and the full scans of
    /// the audit (`audit: ...`, the only ones that read every row). "My
    /// requests" is shown for each of [`sample_filters`] (one statement per
    /// number of index searches) and for a filter on a service. Run it on a
    /// database that holds the host's data (and after `ANALYZE`, if the host
    /// runs it) to see that every listing still searches its index.
    pub fn query_plans(&self) -> Result<Vec<(String, Vec<String>)>, SqliteStoreError> {
        let conn = self.lock();
        let queries = queries();
        let mut plans = Vec::with_capacity(queries.len());
        for (name, sql) in queries {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            // Unbound parameters are NULL; the plan does not depend on them
            // unless `ANALYZE` gathered `sqlite_stat4` samples (the store
            // never runs it).
            let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
            let steps: Vec<(i64, i64, String)> = stmt
                .query_map(rusqlite::params_from_iter(nulls), |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut depth_of = std::collections::HashMap::new();
            let lines = steps
                .into_iter()
                .map(|(id, parent, detail)| {
                    let depth = depth_of.get(&parent).map_or(0, |d| d + 1);
                    depth_of.insert(id, depth);
                    format!("{}{detail}", "  ".repeat(depth))
                })
                .collect();
            plans.push((name, lines));
        }
        Ok(plans)
    }

    /// How many `request_parties` rows "my requests" ([`Store::requests_of`]
    /// without a service filter) has read through this store since it was
    /// opened: what its pages cost, in index rows. A page reads the rows of
    /// the requests it lists and of those its filter passes over, never a
    /// customer's other rows (see the crate docs, "Schema").
    #[must_use]
    pub fn party_rows_read(&self) -> u64 {
        self.party_rows_read.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held rolled its transaction back (the
        // transaction's drop), so the connection is fine to use.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store for SqliteStore {
    type Error = SqliteStoreError;

    fn service(&self, name: &ServiceName) -> Result<Option<Service>, SqliteStoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(SERVICE)?;
        let mut rows = stmt.query([name.as_str()])?;
        rows.next()?.map(read_service).transpose()
    }

    fn request(&self, id: RequestId) -> Result<Option<ChangeRequest>, SqliteStoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(REQUEST)?;
        let mut rows = stmt.query([id.to_string()])?;
        rows.next()?.map(read_request).transpose()
    }

    fn contacts_of(
        &self,
        customer: CustomerId,
        after: Option<&ServiceName>,
        limit: usize,
    ) -> Result<Vec<(ServiceName, Roles)>, SqliteStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        // One snapshot for the names and the rows read by name.
        let snapshot = conn.unchecked_transaction()?;
        let names: Vec<String> = snapshot
            .prepare_cached(CONTACTS_OF)?
            .query_map(
                params![
                    customer.as_str(),
                    after.map_or("", ServiceName::as_str),
                    sql_limit(limit)
                ],
                |row| row.get(0),
            )?
            .collect::<Result<_, _>>()?;
        let mut page = Vec::with_capacity(names.len());
        let mut stmt = snapshot.prepare_cached(SERVICE)?;
        for name in names {
            let mut rows = stmt.query([name.as_str()])?;
            let service = rows.next()?.map(read_service).transpose()?;
            let roles = service
                .as_ref()
                .filter(|s| !s.is_removed())
                .map_or(Roles::EMPTY, |s| s.roles_of(customer));
            match service {
                Some(service) if !roles.is_empty() => page.push((service.name().clone(), roles)),
                _ => {
                    return Err(SqliteStoreError::Corrupt {
                        table: "services",
                        key: name,
                        detail: format!(
                            "a holder index lists it for {customer}, who holds no role of \
                             a live service there"
                        ),
                    });
                }
            }
        }
        drop(stmt);
        snapshot.finish()?;
        Ok(page)
    }

    fn requests_of(
        &self,
        customer: CustomerId,
        filter: &RequestFilter,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, SqliteStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        // One snapshot for every query of the page.
        let snapshot = conn.unchecked_transaction()?;
        let page = RequestPage {
            conn: &snapshot,
            rows_read: &self.party_rows_read,
            customer,
            filter,
            now,
            limit,
        };
        let page = match filter.service_name() {
            Some(service) => page.by_service(service, after)?,
            None => page.by_parties(after)?,
        };
        snapshot.finish()?;
        Ok(page)
    }

    fn due_for_expiry(
        &self,
        now: OffsetDateTime,
        after: Option<RequestKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, SqliteStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(DUE_FOR_EXPIRY)?;
        let Position { at: (s, ns), id } = Position::earliest_after(after);
        let until = unix(now);
        collect(
            stmt.query(params![s, ns, id, until.0, until.1, sql_limit(limit)])?,
            read_request,
        )
    }

    fn requests_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<ChangeRequest>, SqliteStoreError> {
        // R47: every request of the service, whatever its state, one range
        // of `requests_service` from the cursor on.
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(REQUESTS_ON)?;
        let Position { at: (s, ns), id } = Position::history_after(after);
        collect(
            stmt.query(params![name.as_str(), s, ns, id, sql_limit(limit)])?,
            read_request,
        )
    }

    fn assignments_on(
        &self,
        name: &ServiceName,
        after: Option<HistoryKey>,
        limit: usize,
    ) -> Result<Vec<Assignment>, SqliteStoreError> {
        // R46, R47: one range of `assignments_service` from the cursor on.
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(ASSIGNMENTS_ON)?;
        let Position { at: (s, ns), id } = Position::history_after(after);
        collect(
            stmt.query(params![name.as_str(), s, ns, id, sql_limit(limit)])?,
            read_assignment,
        )
    }

    fn commit(&self, changes: Changes) -> Result<(), CommitError<SqliteStoreError>> {
        if changes.is_empty() {
            return Ok(());
        }
        // Encode everything before taking the write lock: a record that
        // cannot be stored fails the commit before anything is written.
        let services: Vec<ServiceWrite> = changes
            .services
            .iter()
            .map(ServiceWrite::encode)
            .collect::<Result<_, _>>()
            .map_err(CommitError::Store)?;
        let requests: Vec<RequestWrite> = changes
            .requests
            .iter()
            .map(RequestWrite::encode)
            .collect::<Result<_, _>>()
            .map_err(CommitError::Store)?;
        let assignments: Vec<AssignmentWrite> = changes
            .assignments
            .iter()
            .map(AssignmentWrite::encode)
            .collect::<Result<_, _>>()
            .map_err(CommitError::Store)?;
        // Two writes of one record in one batch: neither can be right.
        let names: BTreeSet<&str> = services.iter().map(|w| w.row.name.as_str()).collect();
        let ids: BTreeSet<&str> = requests.iter().map(|w| w.row.id.as_str()).collect();
        let made: BTreeSet<&str> = assignments.iter().map(|w| w.row.id.as_str()).collect();
        if names.len() != services.len()
            || ids.len() != requests.len()
            || made.len() != assignments.len()
        {
            return Err(CommitError::Conflict);
        }
        let mut conn = self.lock();
        match write_all(&mut conn, &services, &requests, &assignments) {
            Ok(true) => Ok(()),
            Ok(false) => Err(CommitError::Conflict),
            Err(err) if is_busy(&err) => Err(CommitError::Conflict),
            Err(err) => Err(CommitError::Store(err.into())),
        }
    }
}

/// One page of "my requests" being read, in one snapshot.
struct RequestPage<'a> {
    conn: &'a Connection,
    /// The store's count of `request_parties` rows read.
    rows_read: &'a AtomicU64,
    customer: CustomerId,
    filter: &'a RequestFilter,
    now: OffsetDateTime,
    limit: usize,
}

impl RequestPage<'_> {
    /// Through `requests_service`: the service's requests from `after` on,
    /// newest first, those the filter lists, read by batches until the page
    /// is full or the service has no more.
    fn by_service(
        &self,
        service: &ServiceName,
        after: Option<RequestKey>,
    ) -> Result<Vec<ChangeRequest>, SqliteStoreError> {
        let mut stmt = self.conn.prepare_cached(SERVICE_REQUESTS)?;
        let mut from = Position::newest_after(after);
        let mut page = Vec::new();
        let mut batch = self.limit.min(MAX_BATCH);
        loop {
            let Position { at: (s, ns), id } = &from;
            let rows = collect(
                stmt.query(params![service.as_str(), s, ns, id, sql_limit(batch)])?,
                read_request,
            )?;
            let more = rows.len() == batch;
            for request in rows {
                from = Position::of(RequestKey {
                    at: request.opened_at(),
                    id: request.id(),
                });
                if self.filter.matches(&request, self.customer, self.now) {
                    page.push(request);
                    if page.len() == self.limit {
                        return Ok(page);
                    }
                }
            }
            if !more {
                return Ok(page);
            }
            // Rows were passed over: read further ahead.
            batch = (batch * 2).clamp(MIN_BATCH, MAX_BATCH);
        }
    }

    /// Through `request_parties_listing`: the customer's rows in every
    /// (part, recorded state) pair the filter needs, merged newest first
    /// from `after` on; each request read once (its rows are adjacent), its
    /// rows checked against it ([`PartyRow::check`]) and kept if the filter
    /// lists it, until the page is full or the rows end.
    fn by_parties(
        &self,
        after: Option<RequestKey>,
    ) -> Result<Vec<ChangeRequest>, SqliteStoreError> {
        let arms = arms(self.filter);
        if arms.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(&requests_of_sql(arms.len()))?;
        let mut read = self.conn.prepare_cached(REQUEST)?;
        let mut from = Position::newest_after(after);
        let mut page = Vec::new();
        let mut current: Option<ChangeRequest> = None;
        let mut batch = self.limit.clamp(MIN_BATCH, MAX_BATCH);
        loop {
            let Position { at: (s, ns), id } = from.clone();
            let mut values: Vec<Value> = vec![
                Value::Text(self.customer.as_str().to_owned()),
                Value::Integer(s),
                Value::Integer(ns),
                Value::Text(id),
                Value::Integer(sql_limit(batch)),
            ];
            for &(part, state) in &arms {
                values.push(Value::Text(part_code(part).to_owned()));
                values.push(Value::Text(state.as_str().to_owned()));
            }
            let rows = collect(stmt.query(params_from_iter(values))?, read_party)?;
            self.rows_read
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            let more = rows.len() == batch;
            for (row, key) in rows {
                from = Position {
                    at: row.opened,
                    id: row.request_id.clone(),
                };
                if let Some(request) = current.as_ref().filter(|r| r.id() == key) {
                    // Another part of the request just read.
                    row.check(request)?;
                    continue;
                }
                let mut found = read.query([row.request_id.as_str()])?;
                let Some(request) = found.next()?.map(read_request).transpose()? else {
                    return Err(row.corrupt("the request does not exist"));
                };
                row.check(&request)?;
                if self.filter.matches(&request, self.customer, self.now) {
                    page.push(request.clone());
                    if page.len() == self.limit {
                        return Ok(page);
                    }
                }
                current = Some(request);
            }
            if !more {
                return Ok(page);
            }
            batch = (batch * 2).min(MAX_BATCH);
        }
    }
}

/// One `request_parties` row, as stored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PartyRow {
    customer: String,
    request_id: String,
    part: String,
    state: String,
    opened: (i64, i64),
}

impl PartyRow {
    /// The rows `request` must have: one per customer and part, the
    /// `waiting` ones included.
    fn all_of(request: &ChangeRequest) -> Vec<PartyRow> {
        let (state, opened) = (request.state().name().as_str(), unix(request.opened_at()));
        request
            .party_entries()
            .map(|(customer, part)| PartyRow {
                customer: customer.as_str().to_owned(),
                request_id: request.id().to_string(),
                part: part_code(part).to_owned(),
                state: state.to_owned(),
                opened,
            })
            .collect()
    }

    fn corrupt(&self, detail: &str) -> SqliteStoreError {
        SqliteStoreError::Corrupt {
            table: "request_parties",
            key: self.customer.clone(),
            detail: format!("{self}: {detail}"),
        }
    }

    /// Whether the row says what `request`, its request, says: the customer
    /// sits in that part (a `waiting` row: the request still waits for
    /// them), and the row's state and opening time are the request's. A row
    /// that disagrees would list a request under a filter it does not belong
    /// to, or out of order: it is reported, not used.
    fn check(&self, request: &ChangeRequest) -> Result<(), SqliteStoreError> {
        let customer = CustomerId::parse(&self.customer)
            .ok()
            .filter(|c| c.as_str() == self.customer);
        let part = part_from_code(&self.part);
        let (state, opened) = (request.state().name(), unix(request.opened_at()));
        let held = |(c, p): (CustomerId, Part)| request.has_party_entry(c, p);
        let detail = if customer.zip(part).is_none_or(|row| !held(row)) {
            if part == Some(Part::WaitingForMe) {
                format!("the request does not wait for {}", self.customer)
            } else {
                format!("the request has no {} {}", self.part, self.customer)
            }
        } else if self.state != state.as_str() {
            format!("the request is {state}")
        } else if self.opened != opened {
            format!("the request opened at {}.{:09}", opened.0, opened.1)
        } else {
            return Ok(());
        };
        Err(self.corrupt(&detail))
    }
}

impl fmt::Display for PartyRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} as {} of {} ({}, opened at {}.{:09})",
            self.customer, self.part, self.request_id, self.state, self.opened.0, self.opened.1
        )
    }
}

/// A row of [`requests_of_sql`] (customer, part, state, opening, request
/// id) and the request id it names.
fn read_party(row: &Row<'_>) -> Result<(PartyRow, RequestId), SqliteStoreError> {
    let cells = Cells::new(row, "request_parties");
    let party = PartyRow {
        customer: cells.get(0, "customer")?,
        part: cells.get(1, "part")?,
        state: cells.get(2, "state")?,
        opened: (cells.get(3, "opened_s")?, cells.get(4, "opened_ns")?),
        request_id: cells.get(5, "request_id")?,
    };
    let key = party
        .request_id
        .parse::<RequestId>()
        .ok()
        .filter(|id| id.to_string() == party.request_id)
        .ok_or_else(|| party.corrupt("the request id is not a request id"))?;
    Ok((party, key))
}

/// Whether `SQLite` gave up waiting for another connection's lock.
fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Writes every record in one transaction; `Ok(false)` when a record was not
/// at its expected version (everything is rolled back, R31).
fn write_all(
    conn: &mut Connection,
    services: &[ServiceWrite],
    requests: &[RequestWrite],
    assignments: &[AssignmentWrite],
) -> rusqlite::Result<bool> {
    // IMMEDIATE takes the write lock now (waiting up to the busy timeout),
    // so the transaction never has to upgrade a read lock later.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for write in services {
        let row = &write.row;
        let [admin, tech, billing] = &row.holders;
        let [last_admin, last_tech, last_billing] = &row.last;
        let changed = match write.expected {
            None => tx.prepare_cached(INSERT_SERVICE)?.execute(params![
                row.name,
                admin,
                tech,
                billing,
                row.version,
                last_admin,
                last_tech,
                last_billing,
                row.removed,
            ])?,
            Some(expected) => tx.prepare_cached(UPDATE_SERVICE)?.execute(params![
                row.name,
                admin,
                tech,
                billing,
                row.version,
                last_admin,
                last_tech,
                last_billing,
                row.removed,
                expected
            ])?,
        };
        if changed != 1 {
            return Ok(false); // dropping `tx` rolls back
        }
    }
    for write in requests {
        let row = &write.row;
        let values = params![
            row.id,
            row.service,
            row.open,
            row.opened.0,
            row.opened.1,
            row.deadline.0,
            row.deadline.1,
            row.version,
            write.doc,
        ];
        let changed = match write.expected {
            None => tx.prepare_cached(INSERT_REQUEST)?.execute(values)?,
            Some(expected) => {
                let mut with_expected = values.to_vec();
                with_expected.push(&expected);
                tx.prepare_cached(UPDATE_REQUEST)?
                    .execute(with_expected.as_slice())?
            }
        };
        if changed != 1 {
            return Ok(false);
        }
        // A request's parties and opening are fixed when it opens: their
        // rows are written once; its state, on every write. The confirmers
        // it waits for change: its `waiting` rows are replaced on every
        // write.
        let mut insert = tx.prepare_cached(INSERT_PARTY)?;
        let waiting = write.waiting.iter().map(|c| (c, Part::WaitingForMe));
        let new_rows: Vec<(&String, Part)> = if write.expected.is_none() {
            write
                .parties
                .iter()
                .map(|(c, s)| (c, *s))
                .chain(waiting)
                .collect()
        } else {
            tx.prepare_cached(DELETE_WAITING)?.execute([&row.id])?;
            tx.prepare_cached(UPDATE_PARTIES)?
                .execute(params![row.id, write.state])?;
            waiting.collect()
        };
        for (party, part) in new_rows {
            insert.execute(params![
                party,
                row.id,
                part_code(part),
                write.state,
                row.opened.0,
                row.opened.1
            ])?;
        }
    }
    // Operators' assignments (R46): each new, never written again.
    for write in assignments {
        let row = &write.row;
        let changed = tx.prepare_cached(INSERT_ASSIGNMENT)?.execute(params![
            row.id,
            row.service,
            row.at.0,
            row.at.1,
            write.doc
        ])?;
        if changed != 1 {
            return Ok(false);
        }
    }
    tx.commit()?;
    Ok(true)
}

/// A service write, as SQL values.
struct ServiceWrite {
    row: ServiceColumns,
    expected: Option<i64>,
}

impl ServiceWrite {
    fn encode(write: &Write<Service>) -> Result<ServiceWrite, SqliteStoreError> {
        let service = &write.value;
        let unstorable = |detail: String| SqliteStoreError::Unstorable {
            what: format!("service {}", service.name()),
            detail,
        };
        Ok(ServiceWrite {
            row: ServiceColumns::of(service).map_err(|err| unstorable(too_large(err)))?,
            expected: write
                .expected
                .map(sql_version)
                .transpose()
                .map_err(unstorable)?,
        })
    }
}

/// A request write: its columns, its JSON document, its parties (each
/// customer with each part that never changes), the customers it waits for
/// and its recorded state.
struct RequestWrite {
    row: RequestColumns,
    doc: String,
    parties: Vec<(String, Part)>,
    waiting: Vec<String>,
    state: &'static str,
    expected: Option<i64>,
}

impl RequestWrite {
    fn encode(write: &Write<ChangeRequest>) -> Result<RequestWrite, SqliteStoreError> {
        let request = &write.value;
        let unstorable = |detail: String| SqliteStoreError::Unstorable {
            what: format!("request {}", request.id()),
            detail,
        };
        Ok(RequestWrite {
            row: RequestColumns::of(request).map_err(|err| unstorable(too_large(err)))?,
            doc: serde_json::to_string(request).map_err(|err| unstorable(err.to_string()))?,
            parties: request
                .party_entries()
                .filter(|(_, part)| *part != Part::WaitingForMe)
                .map(|(c, part)| (c.as_str().to_owned(), part))
                .collect(),
            waiting: request
                .party_entries()
                .filter(|(_, part)| *part == Part::WaitingForMe)
                .map(|(c, _)| c.as_str().to_owned())
                .collect(),
            state: request.state().name().as_str(),
            expected: write
                .expected
                .map(sql_version)
                .transpose()
                .map_err(unstorable)?,
        })
    }
}

/// An assignment write: its columns and its JSON document; always an
/// insert.
struct AssignmentWrite {
    row: AssignmentColumns,
    doc: String,
}

impl AssignmentWrite {
    fn encode(assignment: &Assignment) -> Result<AssignmentWrite, SqliteStoreError> {
        Ok(AssignmentWrite {
            row: AssignmentColumns::of(assignment),
            doc: serde_json::to_string(assignment).map_err(|err| SqliteStoreError::Unstorable {
                what: format!("assignment {}", assignment.id()),
                detail: err.to_string(),
            })?,
        })
    }
}

fn sql_version(version: Version) -> Result<i64, String> {
    columns::version(version).map_err(too_large)
}

/// What a version too large for `SQLite` is called in errors.
fn too_large(VersionOutOfRange(version): VersionOutOfRange) -> String {
    format!("version {version} exceeds SQLite integers")
}

/// Every service, by name.
fn all_services(conn: &Connection) -> Result<Vec<Service>, SqliteStoreError> {
    let mut stmt = conn.prepare(ALL_SERVICES)?;
    collect(stmt.query([])?, read_service)
}

/// Every request, by id.
fn all_requests(conn: &Connection) -> Result<Vec<ChangeRequest>, SqliteStoreError> {
    let mut stmt = conn.prepare(ALL_REQUESTS)?;
    collect(stmt.query([])?, read_request)
}

/// Every assignment, by id.
fn all_assignments(conn: &Connection) -> Result<Vec<Assignment>, SqliteStoreError> {
    let mut stmt = conn.prepare(ALL_ASSIGNMENTS)?;
    collect(stmt.query([])?, read_assignment)
}

/// Reads every row with `read`.
fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    mut read: impl FnMut(&Row<'_>) -> Result<T, SqliteStoreError>,
) -> Result<Vec<T>, SqliteStoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// The cells of one row of `table`, whose first column is its key: every
/// value that does not parse is reported as [`SqliteStoreError::Corrupt`].
struct Cells<'a, 'r> {
    row: &'a Row<'r>,
    table: &'static str,
    key: String,
}

impl<'a, 'r> Cells<'a, 'r> {
    fn new(row: &'a Row<'r>, table: &'static str) -> Self {
        let key = match row.get_ref(0) {
            Ok(ValueRef::Text(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            Ok(other) => format!("{other:?}"),
            Err(_) => "?".to_owned(),
        };
        Cells { row, table, key }
    }

    fn corrupt(&self, detail: String) -> SqliteStoreError {
        SqliteStoreError::Corrupt {
            table: self.table,
            key: self.key.clone(),
            detail,
        }
    }

    fn get<T: FromSql>(&self, index: usize, column: &str) -> Result<T, SqliteStoreError> {
        T::column_result(self.row.get_ref(index)?)
            .map_err(|err| self.corrupt(format!("column {column}: {err}")))
    }

    /// A customer identifier, which must be stored in its canonical text
    /// (the indexes are searched with it).
    fn customer(&self, index: usize, column: &str) -> Result<CustomerId, SqliteStoreError> {
        let text: String = self.get(index, column)?;
        let customer = CustomerId::parse(&text)
            .map_err(|err| self.corrupt(format!("column {column}: {text:?}: {err}")))?;
        if customer.as_str() == text {
            Ok(customer)
        } else {
            Err(self.corrupt(format!(
                "column {column}: {text:?} is not in canonical form ({customer})"
            )))
        }
    }

    fn version(&self, index: usize) -> Result<Version, SqliteStoreError> {
        let number: i64 = self.get(index, "version")?;
        match u64::try_from(number) {
            Ok(n) if n >= 1 => Ok(Version::new(n)),
            _ => Err(self.corrupt(format!("column version: {number} is not a version"))),
        }
    }
}

/// A `services` row (`service_columns!`) as a service.
fn read_service(row: &Row<'_>) -> Result<Service, SqliteStoreError> {
    let cells = Cells::new(row, "services");
    let text: String = cells.get(0, "name")?;
    let name =
        ServiceName::parse(&text).map_err(|err| cells.corrupt(format!("column name: {err}")))?;
    let contacts = Contacts::new(
        cells.customer(1, "admin")?,
        cells.customer(2, "tech")?,
        cells.customer(3, "billing")?,
    );
    let mut last = Vec::with_capacity(3);
    for (index, role) in (5..).zip(Role::ALL) {
        let column = ["last_admin", "last_tech", "last_billing"][index - 5];
        let text: Option<String> = cells.get(index, column)?;
        if let Some(text) = text {
            let id: RequestId = text
                .parse()
                .map_err(|err| cells.corrupt(format!("column {column}: {text:?}: {err}")))?;
            last.push((role, id));
        }
    }
    let removed: bool = cells.get(8, "removed")?;
    Ok(Service::restore(
        name,
        contacts,
        cells.version(4)?,
        last,
        removed,
    ))
}

/// A `requests` row (`request_columns!`) as a request: the document, checked
/// against the row's key and indexed columns.
fn read_request(row: &Row<'_>) -> Result<ChangeRequest, SqliteStoreError> {
    let cells = Cells::new(row, "requests");
    let id: String = cells.get(0, "id")?;
    let key: RequestId = id
        .parse()
        .map_err(|err| cells.corrupt(format!("column id: {err}")))?;
    let doc: String = cells.get(8, "doc")?;
    let request: ChangeRequest =
        serde_json::from_str(&doc).map_err(|err| cells.corrupt(format!("column doc: {err}")))?;
    if request.id() != key || key.to_string() != id {
        return Err(cells.corrupt(format!("the document is request {}", request.id())));
    }
    let stored = RequestColumns {
        id,
        service: cells.get(1, "service")?,
        open: cells.get(2, "open")?,
        opened: (cells.get(3, "opened_s")?, cells.get(4, "opened_ns")?),
        deadline: (cells.get(5, "deadline_s")?, cells.get(6, "deadline_ns")?),
        version: cells.get(7, "version")?,
    };
    stored.check(&request).map_err(|mismatch| match mismatch {
        Mismatch::Version(err) => cells.corrupt(format!("column doc: {}", too_large(err))),
        Mismatch::Columns(expected) => cells.corrupt(format!(
            "the columns disagree with the document: stored {stored:?}, document {expected:?}"
        )),
    })?;
    Ok(request)
}

/// An `assignments` row (`assignment_columns!`) as an assignment: the
/// document, checked against the row's key and columns.
fn read_assignment(row: &Row<'_>) -> Result<Assignment, SqliteStoreError> {
    let cells = Cells::new(row, "assignments");
    let id: String = cells.get(0, "id")?;
    let key: AssignmentId = id
        .parse()
        .map_err(|err| cells.corrupt(format!("column id: {err}")))?;
    let doc: String = cells.get(4, "doc")?;
    let assignment: Assignment =
        serde_json::from_str(&doc).map_err(|err| cells.corrupt(format!("column doc: {err}")))?;
    if assignment.id() != key || key.to_string() != id {
        return Err(cells.corrupt(format!("the document is assignment {}", assignment.id())));
    }
    let stored = AssignmentColumns {
        id,
        service: cells.get(1, "service")?,
        at: (cells.get(2, "at_s")?, cells.get(3, "at_ns")?),
    };
    stored.check(&assignment).map_err(|expected| {
        cells.corrupt(format!(
            "the columns disagree with the document: stored {stored:?}, document {expected:?}"
        ))
    })?;
    Ok(assignment)
}

/// What [`inspect`] found in a file.
enum Found {
    /// Nothing: a new or empty file.
    Empty,
    /// This schema.
    Ours,
    /// The whole schema of an older version, which [`create`] upgrades.
    Older(i32),
    /// Something else, described.
    Foreign(String),
}

/// Looks at a file without writing to it.
fn inspect(conn: &Connection, path: &Path) -> Result<Found, SqliteStoreError> {
    let header = || -> rusqlite::Result<(i32, i32, i64)> {
        let application: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let objects: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        Ok((application, version, objects))
    };
    let (application, version, objects) = match header() {
        Ok(found) => found,
        Err(err) if err.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            return Err(SqliteStoreError::Schema {
                path: path.to_path_buf(),
                detail: "the file is not a SQLite database".into(),
            });
        }
        Err(err) => return Err(err.into()),
    };
    if application == 0 && version == 0 && objects == 0 {
        return Ok(Found::Empty);
    }
    if application != APPLICATION_ID {
        return Ok(Found::Foreign(format!(
            "application id {application:#x} (expected {APPLICATION_ID:#x}), \
             {objects} tables and indexes of another application"
        )));
    }
    if !(OLDEST_UPGRADABLE..=SCHEMA_VERSION).contains(&version) {
        return Ok(Found::Foreign(format!("it has schema version {version}")));
    }
    let named = |name: &str| -> rusqlite::Result<Option<String>> {
        conn.query_row(
            "SELECT type FROM sqlite_schema WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
        .optional()
    };
    // What a later version adds is not there yet: an upgrade must not meet
    // a table or index of that name.
    let later = TABLES.map(|(table, _)| table).into_iter().chain(INDEXES);
    for object in later.filter(|&object| since(object) > version) {
        if let Some(kind) = named(object)? {
            return Ok(Found::Foreign(format!(
                "a {kind} named {object} in a file of schema version {version}"
            )));
        }
    }
    for (table, expected) in TABLES.into_iter().filter(|(t, _)| since(t) <= version) {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([table], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        if columns.is_empty() {
            return Ok(Found::Foreign(format!("table {table} is missing")));
        }
        if columns != expected {
            return Ok(Found::Foreign(format!(
                "table {table} has columns ({}), expected ({})",
                columns.join(", "),
                expected.join(", ")
            )));
        }
    }
    for index in INDEXES.into_iter().filter(|i| since(i) <= version) {
        let found: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                [index],
                |row| row.get(0),
            )
            .optional()?;
        if found.is_none() {
            return Ok(Found::Foreign(format!("index {index} is missing")));
        }
    }
    if version == SCHEMA_VERSION {
        Ok(Found::Ours)
    } else {
        Ok(Found::Older(version))
    }
}

/// Creates the schema in an empty file, or upgrades a file of an older
/// version in place, in one transaction: the schema of version 4 (for an
/// empty file), each of [`UPGRADES`] the file lacks, and the version. Another
/// connection may have done it meanwhile: then the file is checked instead.
/// Rows are never rewritten: an upgrade only adds tables and indexes.
fn create(conn: &mut Connection, path: &Path) -> Result<(), SqliteStoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from = match inspect(&tx, path)? {
        Found::Ours => return Ok(()),
        Found::Empty => {
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            OLDEST_UPGRADABLE
        }
        Found::Older(version) => version,
        Found::Foreign(detail) => {
            return Err(SqliteStoreError::Schema {
                path: path.to_path_buf(),
                detail,
            });
        }
    };
    for (version, statements) in UPGRADES {
        if version > from {
            tx.execute_batch(statements)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}
