//! `commit`: one transaction of version-checked writes, in a fixed order.

use deadpool_postgres::Object;
use futures_util::future::join_all;
use service_contacts::{Assignment, ChangeRequest, Changes, CommitError, Part, Service, Write};
use tokio_postgres::error::{Severity, SqlState};
use tokio_postgres::types::{Json, ToSql};

use service_contacts::columns::{AssignmentColumns, RequestColumns, ServiceColumns, part_code};

use crate::rows::{sql_version, too_large};
use crate::{PgStore, PgStoreError};

const INSERT_SERVICE: &str = "INSERT INTO services (name, admin, tech, billing, version, \
                              last_admin, last_tech, last_billing, removed) \
                              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                              ON CONFLICT (name) DO NOTHING";
const UPDATE_SERVICE: &str = "UPDATE services SET admin = $2, tech = $3, billing = $4, \
                              version = $5, last_admin = $6, last_tech = $7, \
                              last_billing = $8, removed = $9 \
                              WHERE name = $1 AND version = $10";
/// A new request and its party rows ([`ChangeRequest::party_entries`]), in
/// one statement: the request (`$1` to `$9`) if its id is free, then, for
/// the request inserted, a row for each customer and part of `$11` and
/// `$12`, in its state `$10`; the number of requests inserted (1, or 0 when
/// the id is taken). A party row already there (a leftover of a hand edit)
/// fails the commit rather than be kept with what it says.
const INSERT_REQUEST: &str = "WITH r AS (\
    INSERT INTO requests (id, service, open, opened_s, opened_ns, deadline_s, deadline_ns, \
    version, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
    ON CONFLICT (id) DO NOTHING RETURNING id, opened_s, opened_ns), \
    parties AS (\
    INSERT INTO request_parties (customer, request_id, part, state, opened_s, opened_ns) \
    SELECT e.customer, r.id, e.part, $10, r.opened_s, r.opened_ns \
    FROM r, UNNEST($11::text[], $12::text[]) AS e (customer, part)) \
    SELECT count(*) FROM r";
/// A request written again at version `$8` if it is at `$10` (`$1` to `$9`
/// as for a new one), and, only then, its party rows: the `waiting` rows
/// of customers no longer in `$12` (those it still waits for) deleted,
/// those of `$12` added where missing, every other row given its state
/// `$11` (its requester, incoming and outgoing rows never change). The
/// party rows are touched after the request's row is locked, and each by
/// one of the three. The number of requests written (1, or 0 when it was
/// not at `$10`).
const UPDATE_REQUEST: &str = "WITH r AS (\
    UPDATE requests SET service = $2, open = $3, opened_s = $4, opened_ns = $5, \
    deadline_s = $6, deadline_ns = $7, version = $8, doc = $9 \
    WHERE id = $1 AND version = $10 RETURNING id), \
    gone AS (\
    DELETE FROM request_parties WHERE request_id = (SELECT id FROM r) \
    AND part = 'waiting' AND customer <> ALL ($12::text[])), \
    added AS (\
    INSERT INTO request_parties (customer, request_id, part, state, opened_s, opened_ns) \
    SELECT w.customer, r.id, 'waiting', $11, $4, $5 FROM r, UNNEST($12::text[]) AS w (customer) \
    ON CONFLICT DO NOTHING), \
    kept AS (\
    UPDATE request_parties SET state = $11 WHERE request_id = (SELECT id FROM r) \
    AND state <> $11 AND (part <> 'waiting' OR customer = ANY ($12::text[]))) \
    SELECT count(*) FROM r";

/// An operator's assignment (R46), which must be new: inserted if its id is
/// free; the rows touched (1, or 0 when the id is taken: a conflict).
const INSERT_ASSIGNMENT: &str = "INSERT INTO assignments (id, service, at_s, at_ns, doc) \
                                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING";

/// The statements of a commit, by name (for the query-plan tests).
pub(crate) fn statements() -> [(&'static str, String); 5] {
    [
        ("commit: insert a service", INSERT_SERVICE.to_owned()),
        ("commit: update a service", UPDATE_SERVICE.to_owned()),
        (
            "commit: insert a request and its party rows",
            INSERT_REQUEST.to_owned(),
        ),
        (
            "commit: update a request and its party rows",
            UPDATE_REQUEST.to_owned(),
        ),
        ("commit: insert an assignment", INSERT_ASSIGNMENT.to_owned()),
    ]
}

/// A service write, as SQL values.
struct ServiceWrite {
    row: ServiceColumns,
    expected: Option<i64>,
}

impl ServiceWrite {
    fn encode(write: &Write<Service>) -> Result<ServiceWrite, PgStoreError> {
        let service = &write.value;
        let unstorable = |detail: String| PgStoreError::Unstorable {
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

/// A request write: its columns, the request itself (written as `jsonb`),
/// its recorded state, and its party entries ([`ChangeRequest::party_entries`]):
/// all of them for a new request (customers and parts), the customers it
/// waits for when written again (its other entries never change).
struct RequestWrite<'a> {
    row: RequestColumns,
    doc: Json<&'a ChangeRequest>,
    state: &'static str,
    customers: Vec<String>,
    parts: Vec<&'static str>,
    expected: Option<i64>,
}

impl RequestWrite<'_> {
    fn encode(write: &Write<ChangeRequest>) -> Result<RequestWrite<'_>, PgStoreError> {
        let request = &write.value;
        let unstorable = |detail: String| PgStoreError::Unstorable {
            what: format!("request {}", request.id()),
            detail,
        };
        let new = write.expected.is_none();
        let (customers, parts) = request
            .party_entries()
            .filter(|(_, part)| new || *part == Part::WaitingForMe)
            .map(|(customer, part)| (customer.as_str().to_owned(), part_code(part)))
            .unzip();
        Ok(RequestWrite {
            row: RequestColumns::of(request).map_err(|err| unstorable(too_large(err)))?,
            doc: Json(request),
            state: request.state().name().as_str(),
            customers,
            parts,
            expected: write
                .expected
                .map(sql_version)
                .transpose()
                .map_err(unstorable)?,
        })
    }
}

/// An assignment's insertion: its columns and the record itself (written as
/// `jsonb`).
struct AssignmentWrite<'a> {
    row: AssignmentColumns,
    doc: Json<&'a Assignment>,
}

impl AssignmentWrite<'_> {
    fn encode(assignment: &Assignment) -> AssignmentWrite<'_> {
        AssignmentWrite {
            row: AssignmentColumns::of(assignment),
            doc: Json(assignment),
        }
    }
}

/// A transaction on a pooled connection. Dropped before it was finished (an
/// error, or the commit's future dropped at an await point), it takes its
/// connection out of the pool and closes it: the server then rolls the
/// transaction back, and no later user of the pool finds it open.
struct Tx {
    client: Option<Object>,
}

impl Tx {
    /// `BEGIN` (with the options in `begin`) on `client`.
    async fn begin(client: Object, begin: &str) -> Result<Tx, tokio_postgres::Error> {
        let tx = Tx {
            client: Some(client),
        };
        tx.client().batch_execute(begin).await?;
        Ok(tx)
    }

    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a transaction has its connection until it ends")
    }

    /// Ends the transaction with `sql` (`COMMIT` or `ROLLBACK`); the
    /// connection goes back to the pool if the server confirmed it.
    async fn finish(mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.client().batch_execute(sql).await?;
        self.client = None; // dropped: back to the pool
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// Whether `PostgreSQL` refused a statement because another transaction
/// holds or changed what it needs: a serialization failure (`40001`), a
/// deadlock (`40P01`) or a lock not had in time (`55P03`, the lock timeout).
/// Nothing was written; the driver decides again.
fn is_conflict(err: &tokio_postgres::Error) -> bool {
    err.code().is_some_and(|code| {
        [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(code)
    })
}

/// A statement's error as the commit's.
fn refused(err: tokio_postgres::Error) -> CommitError<PgStoreError> {
    if is_conflict(&err) {
        CommitError::Conflict
    } else {
        CommitError::Store(err.into())
    }
}

/// [`AsyncStore::commit`](service_contacts::AsyncStore::commit) for
/// [`PgStore`].
pub(crate) async fn commit(
    store: &PgStore,
    changes: Changes,
) -> Result<(), CommitError<PgStoreError>> {
    if changes.is_empty() {
        return Ok(());
    }
    // Encode everything before a connection is taken: a record that cannot
    // be stored fails the commit before anything is written.
    let mut services: Vec<ServiceWrite> = changes
        .services
        .iter()
        .map(ServiceWrite::encode)
        .collect::<Result<_, _>>()
        .map_err(CommitError::Store)?;
    let mut requests: Vec<RequestWrite<'_>> = changes
        .requests
        .iter()
        .map(RequestWrite::encode)
        .collect::<Result<_, _>>()
        .map_err(CommitError::Store)?;
    let mut assignments: Vec<AssignmentWrite<'_>> = changes
        .assignments
        .iter()
        .map(AssignmentWrite::encode)
        .collect();
    // The fixed order of every commit's row locks (services by name, then
    // requests by id, then assignments by id), so that two commits never
    // wait for each other in a cycle.
    services.sort_by(|a, b| a.row.name.cmp(&b.row.name));
    requests.sort_by(|a, b| a.row.id.cmp(&b.row.id));
    assignments.sort_by(|a, b| a.row.id.cmp(&b.row.id));
    // Two writes of one record in one batch: neither can be right.
    if services.windows(2).any(|w| w[0].row.name == w[1].row.name)
        || requests.windows(2).any(|w| w[0].row.id == w[1].row.id)
        || assignments.windows(2).any(|w| w[0].row.id == w[1].row.id)
    {
        return Err(CommitError::Conflict);
    }
    let client = store
        .pool
        .get()
        .await
        .map_err(|err| CommitError::Store(err.into()))?;
    let tx = Tx::begin(client, &store.begin).await.map_err(refused)?;
    match write_all(tx.client(), &steps(&services, &requests, &assignments)).await {
        Ok(true) => {}
        Ok(false) => {
            // A record was not at its expected version. If the rollback
            // fails, dropping `tx` closes the connection, which rolls back.
            let _ = tx.finish("ROLLBACK").await;
            return Err(CommitError::Conflict);
        }
        Err(err) => {
            let _ = tx.finish("ROLLBACK").await;
            return Err(refused(err));
        }
    }
    match tx.finish("COMMIT").await {
        Ok(()) => Ok(()),
        // The server refused `COMMIT` (an `ERROR`, such as a serialization
        // failure): the transaction is over, rolled back, and the
        // connection stays usable.
        Err(err)
            if err
                .as_db_error()
                .is_some_and(|db| db.parsed_severity() == Some(Severity::Error)) =>
        {
            Err(refused(err))
        }
        // No answer, or a `FATAL` one (the server terminated the session,
        // perhaps after the commit record was written): the connection broke
        // with `COMMIT` on its way, and only reading back tells.
        Err(err) => Err(CommitError::Store(PgStoreError::OutcomeUnknown(err))),
    }
}

/// How a statement of a commit tells the records it wrote: as the rows it
/// touched (a service, an assignment), or as the count it returns (a
/// request, written with its party rows).
#[derive(Clone, Copy)]
enum Count {
    Touched,
    Returned,
}

/// One version-checked write of a commit, with its parameters: it must
/// write exactly one record, or the record was not at the version expected.
struct Step<'a> {
    sql: &'static str,
    params: Vec<&'a (dyn ToSql + Sync)>,
    count: Count,
}

impl<'a> Step<'a> {
    /// `sql[0]` (an `INSERT ... ON CONFLICT DO NOTHING` of `values`) when
    /// the record must not exist yet, `sql[1]` (an `UPDATE ... WHERE
    /// version = $n`, `expected` the parameter after `values`) otherwise;
    /// `more` after them.
    fn new(
        sql: [&'static str; 2],
        values: &[&'a (dyn ToSql + Sync)],
        expected: Option<&'a i64>,
        more: &[&'a (dyn ToSql + Sync)],
        count: Count,
    ) -> Step<'a> {
        let mut params = values.to_vec();
        let sql = match expected {
            None => sql[0],
            Some(expected) => {
                params.push(expected);
                sql[1]
            }
        };
        params.extend_from_slice(more);
        Step { sql, params, count }
    }
}

/// Every statement of a commit, in order: services by name, then requests
/// by id, each with its party rows, then assignments by id.
fn steps<'a>(
    services: &'a [ServiceWrite],
    requests: &'a [RequestWrite<'a>],
    assignments: &'a [AssignmentWrite<'a>],
) -> Vec<Step<'a>> {
    let mut steps = Vec::with_capacity(services.len() + requests.len() + assignments.len());
    for write in services {
        let row = &write.row;
        let [admin, tech, billing] = &row.holders;
        let [last_admin, last_tech, last_billing] = &row.last;
        let values: [&(dyn ToSql + Sync); 9] = [
            &row.name,
            admin,
            tech,
            billing,
            &row.version,
            last_admin,
            last_tech,
            last_billing,
            &row.removed,
        ];
        steps.push(Step::new(
            [INSERT_SERVICE, UPDATE_SERVICE],
            &values,
            write.expected.as_ref(),
            &[],
            Count::Touched,
        ));
    }
    for write in requests {
        let row = &write.row;
        let values: [&(dyn ToSql + Sync); 9] = [
            &row.id,
            &row.service,
            &row.open,
            &row.opened.0,
            &row.opened.1,
            &row.deadline.0,
            &row.deadline.1,
            &row.version,
            &write.doc,
        ];
        let more: &[&(dyn ToSql + Sync)] = match write.expected {
            None => &[&write.state, &write.customers, &write.parts],
            Some(_) => &[&write.state, &write.customers],
        };
        steps.push(Step::new(
            [INSERT_REQUEST, UPDATE_REQUEST],
            &values,
            write.expected.as_ref(),
            more,
            Count::Returned,
        ));
    }
    for write in assignments {
        let row = &write.row;
        let values: [&(dyn ToSql + Sync); 5] =
            [&row.id, &row.service, &row.at.0, &row.at.1, &write.doc];
        // Always new: an id already there is a conflict (R46).
        steps.push(Step {
            sql: INSERT_ASSIGNMENT,
            params: values.to_vec(),
            count: Count::Touched,
        });
    }
    steps
}

/// Every write of a commit, on the connection of an open transaction, sent
/// at once (pipelined: one round trip for all of them); `Ok(false)` if a
/// record was not at its expected version, or an assignment's id was taken
/// (the caller rolls back, R31).
/// The server runs them in order; the first that failed or wrote no record
/// decides, and those after it (which fail in the aborted transaction, or
/// write what the rollback undoes) do not matter.
async fn write_all(client: &Object, steps: &[Step<'_>]) -> Result<bool, tokio_postgres::Error> {
    // Prepared once per connection (then from its cache), before anything
    // is sent: a statement the server refuses to prepare writes nothing.
    let mut statements = Vec::with_capacity(steps.len());
    for step in steps {
        statements.push(client.prepare_cached(step.sql).await?);
    }
    // `join_all` polls the statements in order, and each sends its request
    // when first polled: the server receives them in this order.
    let written = join_all(
        steps
            .iter()
            .zip(&statements)
            .map(|(step, statement)| async move {
                match step.count {
                    Count::Touched => client.execute(statement, &step.params).await,
                    Count::Returned => {
                        let row = client.query_one(statement, &step.params).await?;
                        Ok(row.try_get::<_, i64>(0)?.try_into().unwrap_or(0))
                    }
                }
            }),
    )
    .await;
    for written in written {
        if written? != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}
