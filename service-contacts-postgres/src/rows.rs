//! Records as rows and back: the column values a record is written with,
//! and the checks a row read back must pass (a row that does not parse is a
//! [`PgStoreError::Corrupt`], never a panic and never trusted).

use service_contacts::columns::{
    self, AssignmentColumns, Mismatch, RequestColumns, VersionOutOfRange, part_from_code, unix,
};
use service_contacts::{
    Assignment, AssignmentId, ChangeRequest, Contacts, CustomerId, RequestId, Role, Service,
    ServiceName, Version,
};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Json};

use crate::PgStoreError;

/// The columns a service is read from, in the order [`read_service`] expects.
macro_rules! service_columns {
    () => {
        "name, admin, tech, billing, version, last_admin, last_tech, last_billing, removed"
    };
}

/// The columns a request is read from, in the order [`read_request`] expects.
macro_rules! request_columns {
    () => {
        "id, service, open, opened_s, opened_ns, deadline_s, deadline_ns, version, doc"
    };
}

/// The columns an assignment is read from, in the order [`read_assignment`]
/// expects.
macro_rules! assignment_columns {
    () => {
        "id, service, at_s, at_ns, doc"
    };
}

pub(crate) use {assignment_columns, request_columns, service_columns};

/// A version as a `BIGINT`.
pub(crate) fn sql_version(version: Version) -> Result<i64, String> {
    columns::version(version).map_err(too_large)
}

/// What a version too large for a `BIGINT` is called in errors.
pub(crate) fn too_large(VersionOutOfRange(version): VersionOutOfRange) -> String {
    format!("version {version} exceeds PostgreSQL's BIGINT")
}

/// One row being read: its table and key (the first column read, as text),
/// for the errors.
pub(crate) struct Cells<'a> {
    row: &'a Row,
    /// The row's first column, where its key is.
    at: usize,
    table: &'static str,
}

impl<'a> Cells<'a> {
    pub(crate) fn new(row: &'a Row, table: &'static str, at: usize) -> Self {
        Cells { row, at, table }
    }

    fn key(&self) -> String {
        match self.row.try_get::<_, Option<&str>>(self.at) {
            Ok(Some(key)) => key.to_owned(),
            Ok(None) => "NULL".to_owned(),
            Err(_) => "?".to_owned(),
        }
    }

    pub(crate) fn corrupt(&self, detail: String) -> PgStoreError {
        PgStoreError::Corrupt {
            table: self.table,
            key: self.key(),
            detail,
        }
    }

    /// Column `index` (counted from the row's first column) as a `T`.
    fn get<T: FromSql<'a>>(&self, index: usize, column: &str) -> Result<T, PgStoreError> {
        self.row.try_get(self.at + index).map_err(|err| {
            let cause = std::error::Error::source(&err).map_or(String::new(), |c| format!(": {c}"));
            self.corrupt(format!("column {column}: {err}{cause}"))
        })
    }

    /// A customer identifier, which must be stored in its canonical text
    /// (the indexes are searched with it).
    fn customer(&self, index: usize, column: &str) -> Result<CustomerId, PgStoreError> {
        let text: &str = self.get(index, column)?;
        match CustomerId::parse(text) {
            Ok(customer) if customer.as_str() == text => Ok(customer),
            Ok(customer) => Err(self.corrupt(format!(
                "column {column}: {text:?} is not in canonical form ({customer})"
            ))),
            Err(err) => Err(self.corrupt(format!("column {column}: {text:?}: {err}"))),
        }
    }

    /// A request id, which must be stored as its canonical text.
    fn request_id(&self, index: usize, column: &str) -> Result<RequestId, PgStoreError> {
        let text: &str = self.get(index, column)?;
        text.parse::<RequestId>()
            .ok()
            .filter(|id| id.to_string() == text)
            .ok_or_else(|| self.corrupt(format!("column {column}: {text:?} is not a request id")))
    }

    fn version(&self, index: usize) -> Result<Version, PgStoreError> {
        let number: i64 = self.get(index, "version")?;
        match u64::try_from(number) {
            Ok(n) if n >= 1 => Ok(Version::new(n)),
            _ => Err(self.corrupt(format!("column version: {number} is not a version"))),
        }
    }
}

/// A `services` row (`service_columns!`) as a service.
pub(crate) fn read_service(row: &Row) -> Result<Service, PgStoreError> {
    let cells = Cells::new(row, "services", 0);
    let text: &str = cells.get(0, "name")?;
    let name =
        ServiceName::parse(text).map_err(|err| cells.corrupt(format!("column name: {err}")))?;
    let contacts = Contacts::new(
        cells.customer(1, "admin")?,
        cells.customer(2, "tech")?,
        cells.customer(3, "billing")?,
    );
    let mut last = Vec::with_capacity(3);
    let columns = ["last_admin", "last_tech", "last_billing"];
    for (index, (column, role)) in (5..).zip(columns.into_iter().zip(Role::ALL)) {
        if cells.get::<Option<&str>>(index, column)?.is_some() {
            last.push((role, cells.request_id(index, column)?));
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

/// A `requests` row (`request_columns!`, from column `at` on) as a request:
/// the document, checked against the row's key and indexed columns.
pub(crate) fn read_request(row: &Row, at: usize) -> Result<ChangeRequest, PgStoreError> {
    let cells = Cells::new(row, "requests", at);
    let key = cells.request_id(0, "id")?;
    let Json(request): Json<ChangeRequest> = cells.get(8, "doc")?;
    if request.id() != key {
        return Err(cells.corrupt(format!("the document is request {}", request.id())));
    }
    let stored = RequestColumns {
        id: key.to_string(),
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

/// An `assignments` row (`assignment_columns!`) as an operator's
/// assignment (R46): the document, checked against the row's key and its
/// indexed columns ([`AssignmentColumns::check`]).
pub(crate) fn read_assignment(row: &Row) -> Result<Assignment, PgStoreError> {
    let cells = Cells::new(row, "assignments", 0);
    let text: &str = cells.get(0, "id")?;
    let key = text
        .parse::<AssignmentId>()
        .ok()
        .filter(|id| id.to_string() == text)
        .ok_or_else(|| cells.corrupt(format!("column id: {text:?} is not an assignment id")))?;
    let Json(assignment): Json<Assignment> = cells.get(4, "doc")?;
    if assignment.id() != key {
        return Err(cells.corrupt(format!("the document is assignment {}", assignment.id())));
    }
    let stored = AssignmentColumns {
        id: key.to_string(),
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

/// The columns of a `request_parties` row a listing reads, in order.
pub(crate) const PARTY_COLUMNS: &str = "customer, part, state, opened_s, opened_ns, request_id";

/// One `request_parties` row, as stored: the copy of a party entry
/// ([`ChangeRequest::party_entries`]) that "my requests" searches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartyRow {
    pub(crate) customer: String,
    pub(crate) part: String,
    pub(crate) state: String,
    pub(crate) opened: (i64, i64),
    pub(crate) request_id: String,
}

impl PartyRow {
    /// A row of [`PARTY_COLUMNS`] (columns 0 to 5).
    pub(crate) fn read(row: &Row) -> Result<PartyRow, PgStoreError> {
        let cells = Cells::new(row, "request_parties", 0);
        Ok(PartyRow {
            customer: cells.get::<&str>(0, "customer")?.to_owned(),
            part: cells.get::<&str>(1, "part")?.to_owned(),
            state: cells.get::<&str>(2, "state")?.to_owned(),
            opened: (cells.get(3, "opened_s")?, cells.get(4, "opened_ns")?),
            request_id: cells.get::<&str>(5, "request_id")?.to_owned(),
        })
    }

    pub(crate) fn corrupt(&self, detail: &str) -> PgStoreError {
        PgStoreError::Corrupt {
            table: "request_parties",
            key: self.customer.clone(),
            detail: format!(
                "{} as {} of {} ({}, opened at {}.{:09}): {detail}",
                self.customer, self.part, self.request_id, self.state, self.opened.0, self.opened.1
            ),
        }
    }

    /// Whether the row says what `request`, the request it names, says: the
    /// customer holds that part (for `waiting`: the request still waits for
    /// them), with the request's recorded state and opening time. A row that
    /// disagrees would list a request under a filter it does not belong to,
    /// or out of order: it is reported, not used.
    pub(crate) fn check(&self, request: &ChangeRequest) -> Result<(), PgStoreError> {
        if request.id().to_string() != self.request_id {
            return Err(self.corrupt("it names no stored request"));
        }
        let entry = CustomerId::parse(&self.customer)
            .ok()
            .filter(|c| c.as_str() == self.customer)
            .zip(part_from_code(&self.part));
        if !entry.is_some_and(|(customer, part)| request.has_party_entry(customer, part)) {
            return Err(self.corrupt("the request has no such party entry"));
        }
        let state = request.state().name();
        if self.state != state.as_str() {
            return Err(self.corrupt(&format!("the request is {state}")));
        }
        let opened = unix(request.opened_at());
        if self.opened != opened {
            return Err(self.corrupt(&format!(
                "the request opened at {}.{:09}",
                opened.0, opened.1
            )));
        }
        Ok(())
    }
}
