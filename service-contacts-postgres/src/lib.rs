//! A `PostgreSQL` store for [`service_contacts`]: [`PgStore`] implements
//! [`AsyncStore`](service_contacts::AsyncStore) on `tokio-postgres`, through
//! a `deadpool-postgres` connection pool, for several application servers in
//! front of one database.
//!
//! ```no_run
//! use service_contacts::{AsyncDriver, MemoryDirectory, MemoryNotifier};
//! use service_contacts_postgres::{Options, PgStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The server, as `tokio_postgres` reads it ("host=... user=... dbname=..."
//! // or a `postgresql://` URL); the tables go to the first schema of the
//! // connection's `search_path`, created there if it is empty.
//! let config: tokio_postgres::Config = "host=localhost user=contacts dbname=contacts".parse()?;
//! let store = PgStore::connect(config, Options::default()).await?;
//!
//! // A host drives it with its own notifier and directory.
//! let alice = "AL1-OVH".parse()?;
//! let directory = MemoryDirectory::new();
//! directory.add(alice);
//! let driver = AsyncDriver::new(store, MemoryNotifier::new(), directory);
//! driver.order_service(&"example.com".parse()?, alice).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The crate's tests (`tests/`) run this against a real server: the
//! conformance suite of `service_contacts::testing`, connections and OS
//! processes racing through the driver, a service's history and operators'
//! assignments, a database of schema version 1 upgraded, bad schemas and
//! rows, a client killed inside a commit, a commit whose answer is lost,
//! the server restarted in the middle of a run, and the query plan of every
//! statement with a million services and requests loaded.
//!
//! # Schema (version 2)
//!
//! The store's tables live in one `PostgreSQL` schema: the connections'
//! current schema (the first of their `search_path` that exists). A schema
//! is marked as ours by the table `service_contacts_schema`, whose one row
//! names the application (`service-contacts`) and the schema version. When
//! a store starts ([`PgStore::connect`], [`PgStore::from_pool`]):
//!
//! - an empty schema (no table, view, sequence or index) gets the schema, in
//!   one transaction, under an advisory lock so that two stores starting at
//!   once create it once;
//! - a schema of ours at [`SCHEMA_VERSION`] is checked (the marker, every
//!   table's columns, every index);
//! - a schema of ours at version 1, checked whole the same way, is
//!   **upgraded in place**: in one transaction under the same advisory
//!   lock, the `assignments` table and its index are created and the
//!   marker set to 2, and the result is checked as above before `COMMIT`.
//!   Only the marker's row changes, and nothing that a running store of
//!   the previous version of the crate uses is locked, so those go on
//!   (though a request an operator acted on reads to them as a corrupt
//!   row, its document naming an operator: upgrade every host before
//!   operators act); once it committed, that version refuses the schema at
//!   its next start ([`PgStoreError::NewerSchema`]). A schema created new
//!   runs the same steps, so the two are the same;
//! - anything else is refused without writing anything: another
//!   application's tables, a damaged schema of ours (of either version),
//!   or a relation where the upgrade would create one, as
//!   [`PgStoreError::Schema`]; a schema of a newer version of this crate as
//!   [`PgStoreError::NewerSchema`].
//!
//! The tables mirror the `SQLite` store of the repository:
//!
//! - `services`: one row per service (`name`, the holders `admin`, `tech`,
//!   `billing`, `version`, the last request opened on each role, `removed`):
//!   a removed service's row stays as a tombstone, so its name's versions
//!   never restart. One partial index per role holder, `(holder, name) WHERE
//!   NOT removed`, serves "my contacts" (R6): three index searches from the
//!   cursor on, each limited to the page, merged by name.
//! - `requests`: one row per request: the whole request as a `jsonb`
//!   document (`doc`, with its state and history, R34) next to the columns
//!   the queries need (`service`, `open`, the opening time and the deadline
//!   as unix seconds and nanoseconds, `version`). The partial index
//!   `requests_due (deadline, id) WHERE open` holds the open requests only
//!   ("due for expiry", R29); `requests_service (service, opened DESC, id)`
//!   serves "my requests" filtered by service (R45) and the requests of a
//!   service's history (R47, every state: the index is not partial). The
//!   columns are checked against the document whenever a row is read.
//! - `request_parties`: one row per customer and part of each request, the
//!   entries of [`ChangeRequest::party_entries`](service_contacts::ChangeRequest::party_entries)
//!   (requester, incoming, outgoing, and `waiting` for each confirmer an
//!   awaiting request still waits for), each with copies of the request's
//!   recorded state and opening time: the index `(customer, part, state,
//!   opened DESC, request_id)` behind "my requests" (R35, R45), searched in
//!   the ranges [`RequestFilter::index_ranges`](service_contacts::RequestFilter::index_ranges)
//!   names (each search limited to the batch read), merged newest first,
//!   each row joined to its request and checked against it, and each
//!   request kept if
//!   [`RequestFilter::matches`](service_contacts::RequestFilter::matches)
//!   lists it.
//! - `assignments` (version 2): one row per operator's direct assignment
//!   (R46), written once and never changed: the record as a `jsonb`
//!   document next to its `id`, `service` and time (`at_s`, `at_ns`). The
//!   index `assignments_service (service, at DESC, id)` serves the
//!   assignments of a service's history (R47), read like its requests:
//!   newest first, ties by id, a page strictly after the last entry of the
//!   one before, each page one range of the index under a `LIMIT`. The
//!   columns are checked against the document
//!   ([`AssignmentColumns::check`](service_contacts::columns::AssignmentColumns::check))
//!   whenever a row is read.
//!
//! Keys and the columns listings order by are `COLLATE "C"` (byte order,
//! Rust's order of `str`), whatever the database's locale. Every listing is
//! keyset-paged: a page starts strictly after the cursor's key, never at an
//! `OFFSET`, so it costs its own rows and stays stable while commits land.
//! Each listing query is a single statement, which reads one snapshot.
//!
//! A row that does not parse, or that disagrees with the record it indexes,
//! is reported as [`PgStoreError::Corrupt`] naming the table and the row's
//! key; nothing read from the database can make the store panic.
//!
//! # Commit
//!
//! One transaction at `READ COMMITTED` (R31). Every write is conditional on
//! the version it expects and counted: `INSERT ... ON CONFLICT DO NOTHING`
//! for a new record (an operator's assignment is always one: an id already
//! stored is a conflict), `UPDATE ... WHERE version = $expected` for an
//! existing one; a write that touches no row rolls everything back and the
//! commit reports
//! [`CommitError::Conflict`](service_contacts::CommitError::Conflict).
//! The writes go in a fixed order (services by name, then requests by id,
//! each request's party rows right after its row, touched only once the
//! request's row is written, then assignments by id), so two commits never
//! wait for each other in a cycle.
//!
//! **One statement per record, three round trips per commit.** A request
//! and its party rows are one statement (data-modifying `WITH` clauses: the
//! request's row, then, only if it was written, its `waiting` rows brought
//! to the customers it still waits for and its other rows given its
//! state), which returns the number of requests written. The statements go
//! at once after `BEGIN` (pipelined: the server runs them in order, and the
//! first that fails or writes no record decides); `COMMIT`, or `ROLLBACK`,
//! is sent only once every one has answered. `BEGIN` is not sent with the
//! writes: had it failed alone, the writes after it would each have
//! committed on its own.
//!
//! **Why `READ COMMITTED` is enough.** Every decision of the crate rests on
//! records it writes back at their next version (a service and the requests
//! it names, R44), so each decision's check *is* a version-conditional
//! write. At `READ COMMITTED` an `UPDATE ... WHERE version = $v` that meets a
//! row another transaction is changing waits for that transaction, then
//! evaluates its condition again on the row as committed: if the other
//! transaction moved the version, the update touches no row and the commit is
//! a conflict; if it rolled back, the update goes ahead. An `INSERT ... ON
//! CONFLICT DO NOTHING` racing another insert of the same key likewise waits
//! for it and inserts nothing if it committed. So of two commits expecting
//! the same version of a record, at most one succeeds, and nothing a commit
//! writes depends on a row it did not check. `REPEATABLE READ` or
//! `SERIALIZABLE` would report the same races as serialization failures
//! instead of zero rows, at the cost of predicate locks and more retries,
//! without protecting anything more. The reads outside a commit need no
//! transaction: a decision made on a stale read fails its version check.
//!
//! **Errors.** SQLSTATE `40001` (serialization failure, e.g. under a
//! server whose `default_transaction_isolation` is stricter), `40P01`
//! (deadlock) and `55P03` (lock not available: a row stayed locked past
//! [`Options::lock_timeout`]) are conflicts: nothing was written, and the
//! driver decides again. Any other failure is
//! [`CommitError::Store`](service_contacts::CommitError::Store) with
//! nothing written, except one: **a connection lost while `COMMIT` was on its
//! way** leaves the outcome unknown, and is reported as
//! [`PgStoreError::OutcomeUnknown`]. The host must then read the records back
//! before it acts on them again (the driver does, since it reads afresh for
//! every action; a host that queued messages for the commit must not send
//! them before it knows).
//!
//! **Cancellation.** A commit whose future is dropped before it finished
//! closes its connection instead of returning it to the pool: the server
//! rolls the transaction back (or, if `COMMIT` had already reached it,
//! commits it whole), and no later user of the pool finds a transaction
//! open.
//!
//! # Connections
//!
//! [`PgStore::connect`] opens a pool without TLS; for TLS or any other
//! setting, build a `deadpool_postgres::Pool` and pass it to
//! [`PgStore::from_pool`]. A connection the server closed (a restart, an
//! idle timeout) is replaced when it is next taken from the pool; the call
//! that met the closed connection fails with a store error, and the next
//! one reconnects. Neither the store's `Debug` output nor its errors show the
//! connection settings (a password is never printed).

#![forbid(unsafe_code)]

mod commit;
mod error;
mod rows;
mod schema;
mod store;

pub use error::PgStoreError;
pub use schema::{APPLICATION, SCHEMA_VERSION};
pub use store::{Options, PgStore};

#[doc(hidden)]
pub use service_contacts::columns::sample_filters;
#[doc(hidden)]
pub use store::{Calls, party_ranges, queries};

/// The pool type [`PgStore::from_pool`] takes (`deadpool_postgres::Pool`).
pub use deadpool_postgres::Pool;
