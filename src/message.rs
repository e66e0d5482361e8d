//! Messages: who is told what (R36–R41). The host delivers them.

use time::OffsetDateTime;

use crate::{CustomerId, FailureReason, RequestId, Roles, ServiceName, Token};

/// A message to one customer about one change request.
///
/// The engine decides who is told what; the host turns each message into an
/// e-mail (or a queue entry, ...) and delivers it after the state is saved
/// (R41). Every message says which request, which service and roles, and who
/// asked and who receives the roles, so the host can write "the other party"
/// from either side.
///
/// A [`MessageKind::ConfirmationRequested`] message carries the token of its
/// recipient and of no one else (R40); with the request id it is all a host
/// needs for a link that pre-fills the token (R18). `Debug` redacts the token;
/// serializing a message (feature `serde`) leaves it out.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Message {
    pub(crate) to: CustomerId,
    pub(crate) request: RequestId,
    pub(crate) service: ServiceName,
    pub(crate) roles: Roles,
    pub(crate) requester: CustomerId,
    pub(crate) incoming: CustomerId,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub(crate) kind: MessageKind,
}

impl Message {
    /// The recipient.
    #[must_use]
    pub fn to(&self) -> CustomerId {
        self.to
    }

    /// The request it is about.
    #[must_use]
    pub fn request(&self) -> RequestId {
        self.request
    }

    /// The service.
    #[must_use]
    pub fn service(&self) -> &ServiceName {
        &self.service
    }

    /// The roles the request changes (for [`MessageKind::Replaced`], the roles
    /// the recipient lost).
    #[must_use]
    pub fn roles(&self) -> Roles {
        self.roles
    }

    /// Who asked for the change.
    #[must_use]
    pub fn requester(&self) -> CustomerId {
        self.requester
    }

    /// Who receives the roles.
    #[must_use]
    pub fn incoming(&self) -> CustomerId {
        self.incoming
    }

    /// The other confirmer, seen from the recipient: the incoming customer for
    /// the requester, the requester for everyone else. `None` when the
    /// requester takes the roles themselves.
    #[must_use]
    pub fn other_party(&self) -> Option<CustomerId> {
        if self.requester == self.incoming {
            None
        } else if self.to == self.requester {
            Some(self.incoming)
        } else {
            Some(self.requester)
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
    /// The requester cancelled (R39).
    Cancelled,
    /// The deadline passed (R39).
    Expired,
    /// The request failed (R39).
    Failed {
        /// Why.
        reason: FailureReason,
    },
}
