//! Messages: who is told what (R36–R41). The host delivers them.

use time::OffsetDateTime;

use crate::{
    Actor, AssignmentId, CustomerId, FailureReason, OperatorAct, Reassignment, RequestId, Roles,
    ServiceName, Token,
};

/// A message to one customer about one change request, or about an
/// operator's direct assignment (R46).
///
/// The engine decides who is told what; the host turns each message into an
/// e-mail (or a queue entry, ...) and delivers it after the state is saved
/// (R41). Every message about a request says which request, which service
/// and roles, and who asked and who receives the roles, so the host can
/// write "the other party" from either side. A message about an assignment
/// ([`MessageKind::Assigned`]) names the assignment instead, and carries who
/// changed what and why.
///
/// A [`MessageKind::ConfirmationRequested`] message carries the token of its
/// recipient and of no one else (R40); with the request id it is all a host
/// needs for a link that pre-fills the token (R18). `Debug` redacts the token;
/// serializing a message (feature `serde`) leaves it out.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Message {
    pub(crate) to: CustomerId,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub(crate) about: About,
    pub(crate) service: ServiceName,
    pub(crate) roles: Roles,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub(crate) kind: MessageKind,
}

/// What a message is about.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub(crate) enum About {
    /// A change request.
    Request {
        request: RequestId,
        requester: CustomerId,
        incoming: CustomerId,
    },
    /// An operator's direct assignment.
    Assignment { assignment: AssignmentId },
}

impl Message {
    /// The recipient.
    #[must_use]
    pub fn to(&self) -> CustomerId {
        self.to
    }

    /// The request it is about; `None` for a message about an assignment.
    #[must_use]
    pub fn request(&self) -> Option<RequestId> {
        match self.about {
            About::Request { request, .. } => Some(request),
            About::Assignment { .. } => None,
        }
    }

    /// The operator's assignment it is about ([`MessageKind::Assigned`]);
    /// `None` for a message about a request.
    #[must_use]
    pub fn assignment(&self) -> Option<AssignmentId> {
        match self.about {
            About::Request { .. } => None,
            About::Assignment { assignment } => Some(assignment),
        }
    }

    /// The service.
    #[must_use]
    pub fn service(&self) -> &ServiceName {
        &self.service
    }

    /// The roles the request changes (for [`MessageKind::Replaced`], the roles
    /// the recipient lost; for [`MessageKind::Assigned`], the roles the
    /// recipient gained or lost).
    #[must_use]
    pub fn roles(&self) -> Roles {
        self.roles
    }

    /// Who asked for the change; `None` for a message about an assignment.
    #[must_use]
    pub fn requester(&self) -> Option<CustomerId> {
        match self.about {
            About::Request { requester, .. } => Some(requester),
            About::Assignment { .. } => None,
        }
    }

    /// Who receives the roles; `None` for a message about an assignment
    /// (its [`MessageKind::Assigned`] says who receives what).
    #[must_use]
    pub fn incoming(&self) -> Option<CustomerId> {
        match self.about {
            About::Request { incoming, .. } => Some(incoming),
            About::Assignment { .. } => None,
        }
    }

    /// The other confirmer, seen from the recipient: the incoming customer for
    /// the requester, the requester for everyone else. `None` when the
    /// requester takes the roles themselves, and for an assignment.
    #[must_use]
    pub fn other_party(&self) -> Option<CustomerId> {
        let About::Request {
            requester,
            incoming,
            ..
        } = self.about
        else {
            return None;
        };
        if requester == incoming {
            None
        } else if self.to == requester {
            Some(incoming)
        } else {
            Some(requester)
        }
    }

    /// What happened.
    #[must_use]
    pub fn kind(&self) -> &MessageKind {
        &self.kind
    }

    /// The recipient's token, if this message asks for a confirmation.
    #[must_use]
    pub fn token(&self) -> Option<&Token> {
        match &self.kind {
            MessageKind::ConfirmationRequested { token, .. } => Some(token),
            _ => None,
        }
    }
}

/// What a [`Message`] tells its recipient.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "message", rename_all = "camelCase"))]
pub enum MessageKind {
    /// Please confirm (or refuse) with this token (R36), or with this new
    /// token, the old one no longer works (R37).
    ConfirmationRequested {
        /// The recipient's own token; never serialized.
        #[cfg_attr(feature = "serde", serde(skip))]
        token: Token,
        /// Whether this is a resend with a new token (R37).
        resent: bool,
        /// When the request expires.
        #[cfg_attr(feature = "serde", serde(with = "time::serde::rfc3339"))]
        deadline: OffsetDateTime,
    },
    /// The change took effect (R38), sent to the confirmers.
    Applied,
    /// "You were replaced as `<roles>` of `<service>`" (R38), sent to each
    /// outgoing contact who was not a confirmer.
    Replaced,
    /// A confirmer refused (R39).
    Refused {
        /// Who refused.
        by: CustomerId,
    },
    /// The requester, or an operator with their reason (R46), cancelled
    /// (R39).
    Cancelled {
        /// Who cancelled.
        by: Actor,
    },
    /// The deadline passed (R39).
    Expired,
    /// The request failed (R39).
    Failed {
        /// Why.
        reason: FailureReason,
    },
    /// An operator assigned contacts of the service directly (R46), sent to
    /// every old and new holder of a role that changed hands: who changed
    /// what, and why.
    Assigned {
        /// The operator and their reason.
        by: OperatorAct,
        /// Every role that changed hands, from whom to whom.
        changes: Vec<Reassignment>,
    },
}
