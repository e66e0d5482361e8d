//! A `SQLite` store for [`service_contacts`]: [`SqliteStore`] implements the
//! blocking host trait [`Store`](service_contacts::Store) on one database
//! file, through `rusqlite` with `SQLite` bundled (no system library is
//! needed).
//!
//! ```
//! use service_contacts::{Driver, Edit, MemoryDirectory, MemoryNotifier, Role, StateName, Store};
//! use service_contacts_sqlite::SqliteStore;
//! use time::macros::datetime;
//! # use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! # let mut rng = ChaCha20Rng::seed_from_u64(1); // a host passes `&mut OsRng` or its own generator
//! # let dir = std::env::temp_dir().join(format!("service-contacts-sqlite-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let file = dir.join("contacts.db");
//!
//! // The database: a file, with the schema created on first use.
//! let store = SqliteStore::open(&file)?;
//! let (alice, bob) = ("AL1-OVH".parse()?, "BO2-OVH".parse()?);
//! let directory = MemoryDirectory::new();
//! directory.add(alice);
//! directory.add(bob);
//! let driver = Driver::new(&store, MemoryNotifier::new(), directory);
//! let now = datetime!(2026-11-21 10:00 UTC);
//!
//! // Alice orders a service and proposes Bob as its tech contact.
//! driver.order_service(&"example.com".parse()?, alice)?;
//! let edit = Edit::new("example.com".parse()?).with(Role::Tech, bob);
//! let request = driver.submit(&edit, alice, now, &mut rng)?.value[0];
//! drop(driver);
//! store.close()?;
//!
//! // The host restarts: the request is in the file, waiting for both.
//! let store = SqliteStore::open(&file)?;
//! let stored = store.request(request)?.ok_or("the request was lost")?;
//! assert_eq!(stored.state_name_at(now), StateName::ValidatingByCustomers);
//! assert_eq!(stored.missing_at(now).len(), 2);
//! store.audit()?; // every row parses, every index agrees with its table
//! # store.close()?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `cargo run -p service-contacts-sqlite --example sqlite_store` tells the
//! walkthrough's whole story on a file, closed and opened again half-way.
//!
//! # Use
//!
//! - **One file, one store per connection.** [`SqliteStore::open`] creates
//!   the schema in an empty file, checks it in a file of ours and refuses
//!   anything else. A store holds one connection behind a mutex, so it may
//!   be shared by threads; for parallel work open one store per thread (or
//!   process) on the same file, and `SQLite`'s locking with the version
//!   checks of [`Store::commit`](service_contacts::Store::commit) keep them
//!   consistent.
//! - **Durability.** The file is in WAL mode with `synchronous = FULL`: a
//!   commit that returned survives a crash or a power cut, and readers never
//!   wait for the writer.
//! - **Checks.** [`SqliteStore::audit`] compares every row and index with
//!   the request documents; [`SqliteStore::query_plans`] shows the plan of
//!   every statement, to check on the host's own data that each listing
//!   searches its index.
//!
//! The crate's tests run the core's conformance suite
//! (`service_contacts::testing`) on a fresh file per case, then the query
//! plans, races between connections, crashes mid-transaction, bad files,
//! a service's history paged and the upgrade of a version-4 file.
//!
//! # Schema (version 5)
//!
//! - `services`: one row per service: `name`, `admin`, `tech`, `billing`
//!   (canonical customer identifiers), `version`, the last request opened on
//!   each role (`last_admin`, `last_tech`, `last_billing`, R27, R44) and
//!   `removed` (a tombstone: a removed service's row stays, so its name's
//!   versions never restart). One partial index per role holder, `(holder,
//!   name) WHERE removed = 0`, serves "my contacts" (R6): three index searches
//!   from the cursor on, merged by name, so a page costs its own rows and
//!   tombstones are not even in the indexes.
//! - `requests`: one row per change request: the whole request as one JSON
//!   document (`doc`, with its state and history, R34), plus the columns the
//!   queries need: `service`, `open`, `opened_s`/`opened_ns`,
//!   `deadline_s`/`deadline_ns` (unix seconds and nanoseconds) and `version`.
//!   A partial index covers the open requests only, by deadline ("due for
//!   expiry", R29); another, `(service, opened DESC, id)`, serves "my
//!   requests" filtered by service (R45).
//! - `request_parties`: one row per customer and part (`requester`,
//!   `incoming`, `outgoing`) of each request, plus one `waiting` row per
//!   confirmer the request still waits for while it is recorded as awaiting
//!   (a pending confirmer, with or without a live token: the customers of
//!   [`ChangeRequest::missing_at`](service_contacts::ChangeRequest::missing_at)
//!   ignoring the deadline), each with copies of the request's recorded
//!   `state` and `opened_s`/`opened_ns`: the index `(customer, part, state,
//!   opened DESC, request_id)` behind "my requests" (R35, R45). A request's
//!   parties and opening never change; its state and the confirmers it
//!   waits for do, and every commit that writes a request writes its
//!   parties' `state` and replaces its `waiting` rows in the same
//!   transaction (a request that is no longer awaiting has none). A page of
//!   "my requests" merges one index search per (part, recorded state) pair
//!   the filter can list, from the cursor on, newest first; "waiting for me"
//!   is the one pair (`waiting`, `validatingByCustomers`), so a customer's
//!   requests they already confirmed cost that listing nothing.
//! - `assignments`: one row per operator's direct assignment (R46), written
//!   once: the whole [`Assignment`](service_contacts::Assignment) as a JSON
//!   document (`doc`), beside `id`, `service` and `at_s`/`at_ns`. The index
//!   `(service, at DESC, id)` serves the assignments of a service's history
//!   ([`Store::assignments_on`](service_contacts::Store::assignments_on),
//!   R47); its requests come from `requests` by `(service, opened DESC, id)`
//!   ([`Store::requests_on`](service_contacts::Store::requests_on)), any
//!   state. Each listing is one index range from the cursor on; the driver
//!   merges the two.
//!
//! Every listing is keyset-paged: a page starts strictly after the cursor's
//! key (`name > ?`, or a row-value range on the time and id), never at an
//! `OFFSET`, so it costs its own rows whatever the page number and stays
//! stable while other commits land.
//!
//! A `request_parties` row is a copy, so it is checked, never trusted: each
//! row "my requests" reads must name a request that exists and whose document
//! has that customer in that part (for a `waiting` row: still waits for that
//! customer), that recorded state and that opening time;
//! a row that disagrees is reported as [`SqliteStoreError::Corrupt`] (table
//! `request_parties`, keyed by the customer). A row that is missing or whose
//! state is stale cannot be seen by the query that should have found it:
//! [`SqliteStore::audit`] compares every row with the documents and reports
//! those too.
//!
//! Every row read back is checked against its document (a request's or an
//! assignment's columns, R43): one that disagrees is
//! [`SqliteStoreError::Corrupt`], never trusted.
//!
//! The file is marked with `PRAGMA application_id` and `PRAGMA user_version`;
//! [`SqliteStore::open`] creates the schema in an empty file, upgrades a file
//! of version 4 in place (one transaction that adds the `assignments` table
//! and its index and sets version 5; no row is rewritten), and refuses,
//! without writing anything, a file that holds anything else: a newer
//! version, an older one, a version-4 file whose schema is not whole.
//!
//! # Commit
//!
//! One `BEGIN IMMEDIATE` transaction (R31): every write is conditional on the
//! version it expects (`INSERT ... ON CONFLICT DO NOTHING` for a new record,
//! `UPDATE ... WHERE version = ?` for an existing one; an assignment is always
//! new) and must touch exactly one row; the first that does not rolls
//! everything back and the commit reports
//! [`CommitError::Conflict`](service_contacts::CommitError::Conflict). The
//! writes come in a fixed order: services, requests (with their party rows),
//! assignments.
//! `SQLITE_BUSY` and `SQLITE_LOCKED` (another connection held the lock past
//! the busy timeout, [`Options::busy_timeout`]) are a conflict too: nothing
//! was written and the driver decides again.

#![forbid(unsafe_code)]

mod store;

pub use store::{APPLICATION_ID, Options, SCHEMA_VERSION, SqliteStore, SqliteStoreError};

#[doc(hidden)]
pub use service_contacts::columns::sample_filters;
#[doc(hidden)]
pub use store::queries;

/// The examples in README.md, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
