//! Direct assignments of contacts by an operator (R46), and a service's full
//! history of requests and assignments (R47).

use core::fmt;
use core::str::FromStr;

use rand_core::TryCryptoRng;
use time::OffsetDateTime;

use crate::token::RandomnessError;
use crate::{ChangeRequest, CustomerId, OperatorAct, RequestId, Role, Roles, ServiceName};

/// The identifier of an [`Assignment`]: 128 random bits, written as 32 hex
/// digits like a [`RequestId`].
///
/// ```
/// use service_contacts::AssignmentId;
///
/// let id: AssignmentId = "0123456789abcdef0123456789abcdef".parse()?;
/// assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef");
/// assert_eq!(
///     "0123".parse::<AssignmentId>().unwrap_err().to_string(),
///     "expected an assignment id of 32 hex digits"
/// );
/// # Ok::<(), service_contacts::ParseAssignmentIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssignmentId([u8; 16]);

impl AssignmentId {
    /// An id from its 16 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> AssignmentId {
        AssignmentId(bytes)
    }

    /// The 16 bytes of the id.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Draws a new id from the caller's generator.
    pub(crate) fn generate<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
    ) -> Result<AssignmentId, RandomnessError> {
        RequestId::generate(rng).map(|id| AssignmentId(*id.as_bytes()))
    }
}

impl fmt::Display for AssignmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&RequestId::from_bytes(self.0), f)
    }
}

impl fmt::Debug for AssignmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssignmentId({self})")
    }
}

impl FromStr for AssignmentId {
    type Err = ParseAssignmentIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse::<RequestId>()
            .map(|id| AssignmentId(*id.as_bytes()))
            .map_err(|_| ParseAssignmentIdError)
    }
}

/// Text that is not an assignment id (32 hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected an assignment id of 32 hex digits")]
pub struct ParseAssignmentIdError;

/// One role that an [`Assignment`] moved: from its holder to another
/// customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Reassignment {
    /// The role.
    pub role: Role,
    /// Who held it.
    pub from: CustomerId,
    /// Who holds it now.
    pub to: CustomerId,
}

/// A change of contacts that an operator made directly, without
/// confirmations (R46), for a customer who cannot receive mail: the record
/// of who changed what, when and why.
///
/// Made by [`Engine::assign`](crate::Engine::assign), written once by the
/// commit that changes the service, never changed afterwards, and listed in
/// the service's history (R47). Every role it names changed hands: from and
/// to differ, each role at most once, in the order admin, tech, billing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(try_from = "RawAssignment", rename_all = "camelCase")
)]
pub struct Assignment {
    id: AssignmentId,
    service: ServiceName,
    #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
    at: OffsetDateTime,
    by: OperatorAct,
    changes: Vec<Reassignment>,
}

impl Assignment {
    /// Checks and builds the record.
    pub(crate) fn new(
        id: AssignmentId,
        service: ServiceName,
        at: OffsetDateTime,
        by: OperatorAct,
        changes: Vec<Reassignment>,
    ) -> Result<Assignment, AssignmentProblem> {
        if changes.is_empty() {
            return Err(AssignmentProblem::NoChange);
        }
        let mut seen = Roles::EMPTY;
        for change in &changes {
            if change.from == change.to {
                return Err(AssignmentProblem::SameHolder { role: change.role });
            }
            if seen.iter().any(|r| r >= change.role) {
                return Err(AssignmentProblem::Order { role: change.role });
            }
            seen |= change.role;
        }
        Ok(Assignment {
            id,
            service,
            at,
            by,
            changes,
        })
    }

    /// Its identifier.
    #[must_use]
    pub fn id(&self) -> AssignmentId {
        self.id
    }

    /// The service whose contacts changed.
    #[must_use]
    pub fn service(&self) -> &ServiceName {
        &self.service
    }

    /// When.
    #[must_use]
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }

    /// Who (the operator) and why.
    #[must_use]
    pub fn by(&self) -> &OperatorAct {
        &self.by
    }

    /// Each role that changed hands, in the order admin, tech, billing.
    #[must_use]
    pub fn changes(&self) -> &[Reassignment] {
        &self.changes
    }

    /// The roles that changed hands.
    #[must_use]
    pub fn roles(&self) -> Roles {
        self.changes.iter().map(|c| c.role).collect()
    }

    /// Its position in the service's history.
    #[must_use]
    pub fn key(&self) -> HistoryKey {
        HistoryKey {
            at: self.at,
            id: self.id.0,
        }
    }
}

/// Why an assignment record is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AssignmentProblem {
    #[error("an assignment that changes no role")]
    NoChange,
    #[error("the {role} contact assigned to the customer who held it")]
    SameHolder { role: Role },
    #[error("the {role} change out of order or named twice (admin, tech, billing, once each)")]
    Order { role: Role },
}

/// The stored form of an [`Assignment`], checked on the way in (R43).
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAssignment {
    id: AssignmentId,
    service: ServiceName,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    by: OperatorAct,
    changes: Vec<Reassignment>,
}

#[cfg(feature = "serde")]
impl TryFrom<RawAssignment> for Assignment {
    type Error = AssignmentProblem;

    fn try_from(raw: RawAssignment) -> Result<Self, Self::Error> {
        Assignment::new(raw.id, raw.service, raw.at, raw.by, raw.changes)
    }
}

/// A position in a service's history (R47): an entry's time (a request's
/// opening, an assignment's making) and its id's bytes, which break ties.
/// Entries are listed newest first, ties by id (lowest bytes first), the
/// order of [`HistoryKey::listed_before`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HistoryKey {
    /// The entry's time.
    pub at: OffsetDateTime,
    /// The 16 bytes of the entry's id.
    pub id: [u8; 16],
}

impl HistoryKey {
    /// Whether an entry at `self` comes before one at `other` in a
    /// service's history: a later time first, then the lower id.
    #[must_use]
    pub fn listed_before(&self, other: &HistoryKey) -> bool {
        (other.at, self.id) < (self.at, other.id)
    }
}

/// One entry of a service's full history (R47): a change request with all
/// its events, or an operator's direct assignment.
///
/// Serialized (feature `serde`) with an `entry` tag, `"request"` or
/// `"assignment"`, next to the record's own fields: the form of an audit
/// export.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "entry", rename_all = "camelCase"))]
pub enum HistoryEntry {
    /// A change request, as last committed.
    Request(ChangeRequest),
    /// A direct assignment by an operator.
    Assignment(Assignment),
}

impl HistoryEntry {
    /// The service it is about.
    #[must_use]
    pub fn service(&self) -> &ServiceName {
        match self {
            HistoryEntry::Request(request) => request.service(),
            HistoryEntry::Assignment(assignment) => assignment.service(),
        }
    }

    /// Its position in the history.
    #[must_use]
    pub fn key(&self) -> HistoryKey {
        match self {
            HistoryEntry::Request(request) => HistoryKey {
                at: request.opened_at(),
                id: *request.id().as_bytes(),
            },
            HistoryEntry::Assignment(assignment) => assignment.key(),
        }
    }
}
