//! The tables and indexes, and how a schema is recognised or created.

use deadpool_postgres::GenericClient;

use crate::PgStoreError;

/// The application a schema's marker row names: `service-contacts`.
pub const APPLICATION: &str = "service-contacts";

/// The version of the schema this crate creates and reads: 2, which added
/// the `assignments` table (R46, R47). A schema of version 1 is upgraded in
/// place when a store opens it.
pub const SCHEMA_VERSION: i32 = 2;

/// The marker table: one row, the application and its schema version.
pub(crate) const MARKER: &str = "service_contacts_schema";

/// The schema of version 1: the marker, services, requests and their party
/// rows. Never changed once released: a later version adds its own step
/// ([`STEPS`]), which both a new schema and an upgraded one run.
///
/// Keys and the columns the listings order by are `COLLATE "C"`: byte
/// order, the order of Rust's `str`, whatever the database's locale, so a
/// page's cursor (`name > $after`) and the order of its rows agree.
const VERSION_1: &str = r#"
CREATE TABLE service_contacts_schema (
    application TEXT NOT NULL PRIMARY KEY,
    version     INTEGER NOT NULL
);

CREATE TABLE services (
    name    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    admin   TEXT COLLATE "C" NOT NULL,
    tech    TEXT COLLATE "C" NOT NULL,
    billing TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    last_admin   TEXT,
    last_tech    TEXT,
    last_billing TEXT,
    removed BOOLEAN NOT NULL
);
CREATE INDEX services_admin ON services (admin, name) WHERE NOT removed;
CREATE INDEX services_tech ON services (tech, name) WHERE NOT removed;
CREATE INDEX services_billing ON services (billing, name) WHERE NOT removed;

CREATE TABLE requests (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    service     TEXT COLLATE "C" NOT NULL,
    open        BOOLEAN NOT NULL,
    opened_s    BIGINT NOT NULL,
    opened_ns   BIGINT NOT NULL,
    deadline_s  BIGINT NOT NULL,
    deadline_ns BIGINT NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    doc         JSONB NOT NULL
);
CREATE INDEX requests_due ON requests (deadline_s, deadline_ns, id) WHERE open;
CREATE INDEX requests_service ON requests (service, opened_s DESC, opened_ns DESC, id);

CREATE TABLE request_parties (
    customer   TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL REFERENCES requests (id),
    part       TEXT NOT NULL CHECK (part IN ('requester', 'incoming', 'outgoing', 'waiting')),
    state      TEXT NOT NULL CHECK (state IN ('validatingByCustomers', 'done', 'refused',
                                              'aborted', 'expired', 'error')),
    opened_s   BIGINT NOT NULL,
    opened_ns  BIGINT NOT NULL,
    PRIMARY KEY (request_id, customer, part)
);
CREATE INDEX request_parties_listing
    ON request_parties (customer, part, state, opened_s DESC, opened_ns DESC, request_id);
"#;

/// Version 2: operators' direct assignments (R46), each a `jsonb` document
/// beside its id, service and time (unix seconds and nanoseconds, as a
/// request's opening), and the index a service's history reads them by,
/// newest first, ties by id (R47). The requests of that history are read
/// through `requests_service`, which version 1 already has.
const VERSION_2: &str = r#"
CREATE TABLE assignments (
    id      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    service TEXT COLLATE "C" NOT NULL,
    at_s    BIGINT NOT NULL,
    at_ns   BIGINT NOT NULL,
    doc     JSONB NOT NULL
);
CREATE INDEX assignments_service ON assignments (service, at_s DESC, at_ns DESC, id);
"#;

/// What each version adds, in order: an empty schema gets every step, a
/// schema of version `n` the steps after `n`, in one transaction with the
/// marker's new version, so that a new schema and an upgraded one are the
/// same.
const STEPS: [(i32, &str); 2] = [(1, VERSION_1), (2, VERSION_2)];

/// Each table of the schema with its columns, in order, and the version
/// that added it: what a schema of ours at that version on must have.
const TABLES: [(&str, &[&str], i32); 5] = [
    (MARKER, &["application", "version"], 1),
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
        1,
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
        1,
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
        1,
    ),
    ("assignments", &["id", "service", "at_s", "at_ns", "doc"], 2),
];

/// The indexes of the schema, besides the primary keys, with the version
/// that added each.
const INDEXES: [(&str, i32); 7] = [
    ("services_admin", 1),
    ("services_tech", 1),
    ("services_billing", 1),
    ("requests_due", 1),
    ("requests_service", 1),
    ("request_parties_listing", 1),
    ("assignments_service", 2),
];

/// What [`inspect`] found in the current schema.
enum Found {
    /// No table, view, sequence or index: an empty schema.
    Empty,
    /// Ours, at [`SCHEMA_VERSION`].
    Ours,
    /// Ours, whole, at an older version this crate upgrades.
    Older(i32),
    /// Ours, at a newer version.
    Newer(i32),
    /// Something else, described.
    Foreign(String),
}

/// Looks at the current schema without writing to it; `Err(NoSchema)` when
/// the `search_path` names none that exists.
async fn inspect(client: &impl GenericClient) -> Result<(String, Found), PgStoreError> {
    let row = client.query_one("SELECT current_schema()", &[]).await?;
    let schema: String = row
        .try_get::<_, Option<String>>(0)?
        .ok_or(PgStoreError::NoSchema)?;
    let relations: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1) \
             ORDER BY c.relname",
            &[&schema],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    if relations.is_empty() {
        return Ok((schema, Found::Empty));
    }
    if !relations.iter().any(|r| r == MARKER) {
        let shown: Vec<&str> = relations.iter().take(5).map(String::as_str).collect();
        let more = relations.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Ok((
            schema,
            Found::Foreign(format!(
                "no {MARKER} table, but another application's relations: {}{more}",
                shown.join(", ")
            )),
        ));
    }
    let found = check(client, &schema, &relations).await?;
    Ok((schema, found))
}

/// The marker and the tables and indexes of a schema that has a marker
/// table, whose relations are `relations`.
async fn check(
    client: &impl GenericClient,
    schema: &str,
    relations: &[String],
) -> Result<Found, PgStoreError> {
    let columns_of = |table: &'static str| async move {
        let rows = client
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&schema, &table],
            )
            .await?;
        rows.iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<String>, _>>()
    };
    let (marker_table, marker_columns, _) = TABLES[0];
    if columns_of(marker_table).await? != marker_columns {
        return Ok(Found::Foreign(format!(
            "table {MARKER} is not this store's marker"
        )));
    }
    let marker = client
        .query(
            "SELECT application, version FROM service_contacts_schema",
            &[],
        )
        .await?;
    let [row] = marker.as_slice() else {
        return Ok(Found::Foreign(format!(
            "table {MARKER} has {} rows, expected one",
            marker.len()
        )));
    };
    let (application, version): (String, i32) = (row.try_get(0)?, row.try_get(1)?);
    if application != APPLICATION {
        return Ok(Found::Foreign(format!(
            "table {MARKER} names application {application:?}"
        )));
    }
    if version > SCHEMA_VERSION {
        return Ok(Found::Newer(version));
    }
    if version < 1 {
        return Ok(Found::Foreign(format!("it has schema version {version}")));
    }
    // An older schema is upgraded only if it is whole: what is wrong with
    // it says which version it is.
    let foreign = |detail: String| {
        Ok(Found::Foreign(if version == SCHEMA_VERSION {
            detail
        } else {
            format!("{detail} (a schema of version {version}, not upgraded)")
        }))
    };
    for (table, expected, since) in &TABLES[1..] {
        if *since > version {
            // Added by an upgrade, which could not create it.
            if relations.iter().any(|r| r == table) {
                return foreign(format!("a relation {table} is there already"));
            }
            continue;
        }
        let columns = columns_of(table).await?;
        if columns.is_empty() {
            return foreign(format!("table {table} is missing"));
        }
        if columns != *expected {
            return foreign(format!(
                "table {table} has columns ({}), expected ({})",
                columns.join(", "),
                expected.join(", ")
            ));
        }
    }
    let indexes: Vec<String> = client
        .query(
            "SELECT indexname::text FROM pg_catalog.pg_indexes WHERE schemaname = $1",
            &[&schema],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    for (index, since) in INDEXES {
        let there = relations.iter().any(|r| r == index);
        if since > version && there {
            return foreign(format!("a relation {index} is there already"));
        }
        if since <= version && !indexes.iter().any(|x| x == index) {
            return foreign(format!("index {index} is missing"));
        }
    }
    Ok(if version == SCHEMA_VERSION {
        Found::Ours
    } else {
        Found::Older(version)
    })
}

/// Makes sure the current schema is ours at [`SCHEMA_VERSION`]: creates it
/// in an empty schema, upgrades a whole schema of ours of an older version
/// in place, checks it otherwise, and refuses anything else without
/// writing. Creation and upgrade are one transaction each, under an
/// advisory lock (two stores opening at once create or upgrade it once),
/// and end with the check a store opening it makes. Returns the schema's
/// name.
pub(crate) async fn prepare(
    client: &mut deadpool_postgres::Client,
) -> Result<String, PgStoreError> {
    let (schema, found) = inspect(&*client).await?;
    match found {
        Found::Ours => return Ok(schema),
        Found::Empty | Found::Older(_) => {}
        Found::Newer(found) => return Err(PgStoreError::NewerSchema { schema, found }),
        Found::Foreign(detail) => return Err(PgStoreError::Schema { schema, detail }),
    }
    let tx = client.transaction().await?;
    // One creator per schema at a time; the lock ends with the transaction.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('service-contacts:' || current_schema()))",
        &[],
    )
    .await?;
    // Another store may have created or upgraded it while this one waited.
    let (schema, found) = inspect(&tx).await?;
    let from = match found {
        Found::Ours => return Ok(schema),
        Found::Empty => 0,
        Found::Older(version) => version,
        Found::Newer(found) => return Err(PgStoreError::NewerSchema { schema, found }),
        Found::Foreign(detail) => return Err(PgStoreError::Schema { schema, detail }),
    };
    for (_, step) in STEPS.iter().filter(|(version, _)| *version > from) {
        tx.batch_execute(step).await?;
    }
    let marked = if from == 0 {
        tx.execute(
            "INSERT INTO service_contacts_schema (application, version) VALUES ($1, $2)",
            &[&APPLICATION, &SCHEMA_VERSION],
        )
        .await?
    } else {
        tx.execute(
            "UPDATE service_contacts_schema SET version = $2 \
             WHERE application = $1 AND version = $3",
            &[&APPLICATION, &SCHEMA_VERSION, &from],
        )
        .await?
    };
    // What was made is what a store opening it checks; if not (a marker
    // changed under the lock), dropping `tx` rolls everything back.
    let (schema, found) = inspect(&tx).await?;
    match found {
        Found::Ours if marked == 1 => {
            tx.commit().await?;
            Ok(schema)
        }
        Found::Foreign(detail) => Err(PgStoreError::Schema { schema, detail }),
        _ => Err(PgStoreError::Schema {
            schema,
            detail: format!("the schema did not check as version {SCHEMA_VERSION} once made"),
        }),
    }
}
