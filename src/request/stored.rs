//! Reading stored requests back (R43).
//!
//! A request deserializes through the mirrors here, which refuse unknown
//! fields at every level (serde's `deny_unknown_fields` does not work with
//! the `flatten` of [`Event`], nor on the unit variants of an internally
//! tagged enum such as [`FailureReason`]), and then through [`check`], which
//! refuses any request the [`Engine`](crate::Engine) could never have
//! written, naming what is inconsistent. Only reading is stricter: the
//! serialized form is the derived one of the types in `request.rs`.

use core::fmt;

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    ChangeRequest, ConfirmerStatus, Event, EventKind, FailureReason, Outgoing, RequestId,
    RequestState,
};
use crate::{CustomerId, Role, Roles, ServiceName, StateName, Version};

// ----- the mirrors -----

/// A stored request before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequest {
    id: RequestId,
    service: ServiceName,
    requester: CustomerId,
    incoming: CustomerId,
    roles: Roles,
    outgoing: Outgoing,
    #[serde(with = "time::serde::rfc3339")]
    opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    deadline: OffsetDateTime,
    version: Version,
    state: RequestState,
    history: Vec<Event>,
}

impl TryFrom<RawRequest> for ChangeRequest {
    type Error = Inconsistency;

    fn try_from(raw: RawRequest) -> Result<Self, Self::Error> {
        let request = ChangeRequest {
            id: raw.id,
            service: raw.service,
            requester: raw.requester,
            incoming: raw.incoming,
            roles: raw.roles,
            outgoing: raw.outgoing,
            opened_at: raw.opened_at,
            deadline: raw.deadline,
            version: raw.version,
            state: raw.state,
            history: raw.history,
        };
        check(&request)?;
        Ok(request)
    }
}

/// The event names, as [`EventKind`] serializes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
enum EventTag {
    Opened,
    TokenIssued,
    TokenReissued,
    Confirmed,
    FailedAttempt,
    TokenInvalidated,
    Refused,
    Cancelled,
    Expired,
    Applied,
    Failed,
}

impl EventTag {
    fn of(kind: &EventKind) -> EventTag {
        match kind {
            EventKind::Opened => EventTag::Opened,
            EventKind::TokenIssued { .. } => EventTag::TokenIssued,
            EventKind::TokenReissued { .. } => EventTag::TokenReissued,
            EventKind::Confirmed => EventTag::Confirmed,
            EventKind::FailedAttempt => EventTag::FailedAttempt,
            EventKind::TokenInvalidated { .. } => EventTag::TokenInvalidated,
            EventKind::Refused => EventTag::Refused,
            EventKind::Cancelled => EventTag::Cancelled,
            EventKind::Expired => EventTag::Expired,
            EventKind::Applied => EventTag::Applied,
            EventKind::Failed { .. } => EventTag::Failed,
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            EventTag::Opened => "opened",
            EventTag::TokenIssued => "tokenIssued",
            EventTag::TokenReissued => "tokenReissued",
            EventTag::Confirmed => "confirmed",
            EventTag::FailedAttempt => "failedAttempt",
            EventTag::TokenInvalidated => "tokenInvalidated",
            EventTag::Refused => "refused",
            EventTag::Cancelled => "cancelled",
            EventTag::Expired => "expired",
            EventTag::Applied => "applied",
            EventTag::Failed => "failed",
        }
    }

    /// Whether an event of this kind ends a request.
    const fn ends(self) -> bool {
        matches!(
            self,
            EventTag::Refused
                | EventTag::Cancelled
                | EventTag::Expired
                | EventTag::Applied
                | EventTag::Failed
        )
    }
}

/// The name of an event's kind, as stored.
fn name(kind: &EventKind) -> &'static str {
    EventTag::of(kind).as_str()
}

/// A stored history entry: [`Event`] with its kind's fields spelled out, so
/// that unknown fields can be refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvent {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    actor: Option<crate::Actor>,
    event: EventTag,
    #[serde(default, deserialize_with = "present")]
    to: Option<CustomerId>,
    #[serde(default, deserialize_with = "present")]
    of: Option<CustomerId>,
    #[serde(default, deserialize_with = "present")]
    reason: Option<FailureReason>,
}

impl TryFrom<RawEvent> for Event {
    type Error = FieldError;

    fn try_from(raw: RawEvent) -> Result<Self, Self::Error> {
        let RawEvent {
            at,
            actor,
            event,
            mut to,
            mut of,
            mut reason,
        } = raw;
        let owner = Owner::Event(event);
        let kind = match event {
            EventTag::Opened => EventKind::Opened,
            EventTag::TokenIssued => EventKind::TokenIssued {
                to: take(&mut to, owner, "to")?,
            },
            EventTag::TokenReissued => EventKind::TokenReissued {
                to: take(&mut to, owner, "to")?,
            },
            EventTag::Confirmed => EventKind::Confirmed,
            EventTag::FailedAttempt => EventKind::FailedAttempt,
            EventTag::TokenInvalidated => EventKind::TokenInvalidated {
                of: take(&mut of, owner, "of")?,
            },
            EventTag::Refused => EventKind::Refused,
            EventTag::Cancelled => EventKind::Cancelled,
            EventTag::Expired => EventKind::Expired,
            EventTag::Applied => EventKind::Applied,
            EventTag::Failed => EventKind::Failed {
                reason: take(&mut reason, owner, "reason")?,
            },
        };
        left_over(owner, &[("to", to.is_some()), ("of", of.is_some())])?;
        left_over(owner, &[("reason", reason.is_some())])?;
        Ok(Event { at, actor, kind })
    }
}

/// The failure reasons, as [`FailureReason`] serializes them.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
enum ReasonTag {
    Reassigned,
    ServiceGone,
    RequesterLostRight,
    OutgoingChanged,
    NotInGoodStanding,
    IncomingUnknown,
    RightRemoved,
}

impl ReasonTag {
    const fn as_str(self) -> &'static str {
        match self {
            ReasonTag::ServiceGone => "serviceGone",
            ReasonTag::RequesterLostRight => "requesterLostRight",
            ReasonTag::OutgoingChanged => "outgoingChanged",
            ReasonTag::NotInGoodStanding => "notInGoodStanding",
            ReasonTag::IncomingUnknown => "incomingUnknown",
            ReasonTag::RightRemoved => "rightRemoved",
            ReasonTag::Reassigned => "reassigned",
        }
    }
}

/// A stored failure reason with its variants' fields spelled out, so that
/// unknown fields are refused on every variant.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReason {
    reason: ReasonTag,
    #[serde(default, deserialize_with = "present")]
    role: Option<Role>,
    #[serde(default, deserialize_with = "present")]
    by: Option<RequestId>,
    #[serde(default, deserialize_with = "present")]
    customer: Option<CustomerId>,
}

impl TryFrom<RawReason> for FailureReason {
    type Error = FieldError;

    fn try_from(raw: RawReason) -> Result<Self, Self::Error> {
        let RawReason {
            reason: tag,
            mut role,
            mut by,
            mut customer,
        } = raw;
        let owner = Owner::Reason(tag);
        let reason = match tag {
            ReasonTag::ServiceGone => FailureReason::ServiceGone,
            ReasonTag::RequesterLostRight => FailureReason::RequesterLostRight {
                role: take(&mut role, owner, "role")?,
            },
            ReasonTag::OutgoingChanged => FailureReason::OutgoingChanged {
                role: take(&mut role, owner, "role")?,
            },
            ReasonTag::NotInGoodStanding => FailureReason::NotInGoodStanding {
                customer: take(&mut customer, owner, "customer")?,
            },
            ReasonTag::IncomingUnknown => FailureReason::IncomingUnknown,
            ReasonTag::RightRemoved => FailureReason::RightRemoved {
                role: take(&mut role, owner, "role")?,
                by: take(&mut by, owner, "by")?,
            },
            ReasonTag::Reassigned => FailureReason::Reassigned {
                role: take(&mut role, owner, "role")?,
                by: crate::AssignmentId::from_bytes(*take(&mut by, owner, "by")?.as_bytes()),
            },
        };
        left_over(
            owner,
            &[
                ("role", role.is_some()),
                ("by", by.is_some()),
                ("customer", customer.is_some()),
            ],
        )?;
        Ok(reason)
    }
}

/// An optional field that, when present, holds a value (not `null`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The value of a field the tag needs, taken out of its slot.
fn take<T>(slot: &mut Option<T>, owner: Owner, field: &'static str) -> Result<T, FieldError> {
    slot.take().ok_or(FieldError {
        owner,
        field,
        missing: true,
    })
}

/// Refuses the first field still present: one the tag does not have.
fn left_over(owner: Owner, fields: &[(&'static str, bool)]) -> Result<(), FieldError> {
    match fields.iter().find(|(_, present)| *present) {
        Some((field, _)) => Err(FieldError {
            owner,
            field,
            missing: false,
        }),
        None => Ok(()),
    }
}

/// What a [`FieldError`] is about.
#[derive(Clone, Copy, Debug)]
enum Owner {
    Event(EventTag),
    Reason(ReasonTag),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Event(tag) => write!(f, "{} `{}` event", article(tag.as_str()), tag.as_str()),
            Owner::Reason(tag) => {
                write!(
                    f,
                    "{} `{}` failure reason",
                    article(tag.as_str()),
                    tag.as_str()
                )
            }
        }
    }
}

/// "a" or "an" before `word`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// "needs a" or "needs an", before `field`.
fn needs(field: &str) -> &'static str {
    if article(field) == "an" {
        "needs an"
    } else {
        "needs a"
    }
}

/// A stored event or failure reason without a field its tag needs, or with
/// one it does not have.
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "{owner} {} `{field}` field",
    if *missing { needs(field) } else { "has no" }
)]
pub(super) struct FieldError {
    owner: Owner,
    field: &'static str,
    missing: bool,
}

// ----- the checks -----

/// Who acted, for messages: a customer, an operator or nobody (the
/// system).
#[derive(Clone, Debug)]
pub(super) struct Who(Option<crate::Actor>);

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(actor) => write!(f, "{actor}"),
            None => f.write_str("nobody"),
        }
    }
}

/// A time in an error, written as the stored document writes it (RFC 3339).
#[derive(Clone, Copy, Debug)]
pub(super) struct Time(OffsetDateTime);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(text) => f.write_str(&text),
            // A time RFC 3339 cannot write (such as a year past 9999).
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

/// Why a stored request cannot be read back (R43). Each names what is
/// inconsistent; none shows a token or a digest (R40, R48).
#[derive(Clone, Debug, thiserror::Error)]
pub(super) enum Inconsistency {
    #[error("the request's version is 0; versions start at 1")]
    VersionZero,
    #[error("a request changes at least one role")]
    NoRoles,
    #[error("the outgoing contacts must cover exactly the request's roles")]
    OutgoingRoles,
    #[error("the incoming customer cannot be an outgoing contact")]
    IncomingIsOutgoing,
    #[error("the deadline {deadline} is not after the opening at {opened_at}")]
    DeadlineNotAfterOpening { deadline: Time, opened_at: Time },
    #[error("the request is `{state}` at {at}, before it was opened at {opened_at}")]
    EndsBeforeOpening {
        state: StateName,
        at: Time,
        opened_at: Time,
    },
    #[error("a request's history starts with its opening, an `opened` event")]
    NoOpening,
    #[error("the `opened` event is at {at}, not at the request's opening time {opened_at}")]
    OpenedAt { at: Time, opened_at: Time },
    #[error("the `opened` event is by {actor}, not by the requester {requester}")]
    OpenedBy { actor: Who, requester: CustomerId },
    #[error("history[{index}] is a second `opened` event")]
    SecondOpening { index: usize },
    #[error(
        "the history is not in time order: history[{index}] (`{kind}`) at {at} comes before the event before it at {before}"
    )]
    OutOfOrder {
        index: usize,
        kind: &'static str,
        at: Time,
        before: Time,
    },
    #[error("history[{index}] (`{kind}`) is by {actor}, not by a confirmer")]
    ActorNotConfirmer {
        index: usize,
        kind: &'static str,
        actor: Who,
    },
    #[error("history[{index}] (`{kind}`) names an operator, who can only resend, cancel or assign")]
    NotAnOperatorEvent { index: usize, kind: &'static str },
    #[error("history[{index}] (`{kind}`) is for {whom}, who is not a confirmer")]
    SubjectNotConfirmer {
        index: usize,
        kind: &'static str,
        whom: CustomerId,
    },
    #[error("{who} confirmed twice: history[{first}] and history[{second}]")]
    ConfirmedTwice {
        who: CustomerId,
        first: usize,
        second: usize,
    },
    #[error("the request is `validatingByCustomers` but history[{index}] is a `{kind}` event")]
    AwaitingButEnded { index: usize, kind: &'static str },
    #[error(
        "the request is `validatingByCustomers` but history[{index}] (`{kind}`) at {at} is not before its deadline {deadline}"
    )]
    AwaitingEventAfterDeadline {
        index: usize,
        kind: &'static str,
        at: Time,
        deadline: Time,
    },
    #[error(
        "the request is `{state}` but history[{index}] (`{kind}`) at {at} is not before its deadline {deadline}; past it, only its expiry is recorded"
    )]
    EventAfterDeadline {
        state: StateName,
        index: usize,
        kind: &'static str,
        at: Time,
        deadline: Time,
    },
    #[error(
        "history[{index}] (`tokenReissued`) is by {actor}: only a confirmer or an operator has a request sent again"
    )]
    ReissuedByStranger { index: usize, actor: Who },
    #[error("the confirmers must be the requester and the incoming customer")]
    Confirmers,
    #[error("an awaiting request waits for at least one confirmer")]
    NobodyMissing,
    #[error(
        "the tokens were last sent at {last_sent}; tokens are sent between the opening and the deadline"
    )]
    LastSent { last_sent: Time },
    #[error("{who} is marked confirmed but the history has no `confirmed` event by them")]
    ConfirmedWithoutEvent { who: CustomerId },
    #[error("{who} is marked confirmed at {at} but their `confirmed` event is at {event_at}")]
    ConfirmedAt {
        who: CustomerId,
        at: Time,
        event_at: Time,
    },
    #[error("{who} is marked pending but history[{index}] is a `confirmed` event by them")]
    PendingButConfirmed { who: CustomerId, index: usize },
    #[error(
        "{first} and {second} have the same live token digest; each confirmer's token is their own"
    )]
    SharedDigest {
        first: CustomerId,
        second: CustomerId,
    },
    #[error("the request is `{state}` but its history has no `{kind}` event")]
    NoEnd {
        state: StateName,
        kind: &'static str,
    },
    #[error(
        "the request is `{state}` but its `{kind}` event, history[{index}], is not the last in its history"
    )]
    EndNotLast {
        state: StateName,
        kind: &'static str,
        index: usize,
    },
    #[error(
        "the history ends twice: history[{index}] is a `{kind}` event before the final `{last}` event"
    )]
    EndsTwice {
        index: usize,
        kind: &'static str,
        last: &'static str,
    },
    #[error("the request is `{state}` at {at} but its `{kind}` event is at {event_at}")]
    EndAt {
        state: StateName,
        kind: &'static str,
        at: Time,
        event_at: Time,
    },
    #[error("the request was applied by {actor}, not by a confirmer")]
    AppliedByNonConfirmer { actor: Who },
    #[error("the request is `done` but {who} did not confirm before it was applied")]
    AppliedUnconfirmed { who: CustomerId },
    #[error("the request was refused by {by}, who is not a confirmer")]
    RefusedByNonConfirmer { by: CustomerId },
    #[error("the request was cancelled by {by}, not by its requester {requester}")]
    CancelledByNonRequester {
        by: CustomerId,
        requester: CustomerId,
    },
    #[error("the request is `{state}` by {by} but its `{kind}` event is by {actor}")]
    EndActor {
        state: StateName,
        kind: &'static str,
        by: Who,
        actor: Who,
    },
    #[error("the `{kind}` event is by {actor}; the system records it on its own, with no actor")]
    SystemEndWithActor { kind: &'static str, actor: Who },
    #[error(
        "the request failed by an operator's assignment but its `failed` event is by {actor}, not by an operator"
    )]
    ReassignedByNonOperator { actor: Who },
    #[error("the request expired at {at}, before its deadline {deadline}")]
    ExpiredEarly { at: Time, deadline: Time },
    #[error("the request failed with \"{state}\" but its `failed` event gives \"{event}\"")]
    FailureReasons {
        state: FailureReason,
        event: FailureReason,
    },
}

/// Checks what a deserialized request must satisfy (R43): everything the
/// engine guarantees of the requests it writes, so that what a store gives
/// back cannot put the engine in a state it could never reach.
pub(super) fn check(request: &ChangeRequest) -> Result<(), Inconsistency> {
    use Inconsistency as E;
    if request.version.get() == 0 {
        return Err(E::VersionZero);
    }
    if request.roles.is_empty() {
        return Err(E::NoRoles);
    }
    if request.outgoing.roles() != request.roles {
        return Err(E::OutgoingRoles);
    }
    if request.outgoing.iter().any(|(_, c)| c == request.incoming) {
        return Err(E::IncomingIsOutgoing);
    }
    if request.deadline <= request.opened_at {
        return Err(E::DeadlineNotAfterOpening {
            deadline: Time(request.deadline),
            opened_at: Time(request.opened_at),
        });
    }
    if let Some(at) = end_time(&request.state)
        && at < request.opened_at
    {
        return Err(E::EndsBeforeOpening {
            state: request.state.name(),
            at: Time(at),
            opened_at: Time(request.opened_at),
        });
    }
    check_times(request)?;
    let confirmers = request.confirmers();
    check_confirmers_events(request, &confirmers)?;
    match &request.state {
        RequestState::Awaiting(awaiting) => check_awaiting(request, awaiting, &confirmers),
        _ => check_end(request, &confirmers),
    }
}

/// When a terminal request ended; `None` while it awaits.
fn end_time(state: &RequestState) -> Option<OffsetDateTime> {
    match state {
        RequestState::Awaiting(_) => None,
        RequestState::Applied { at }
        | RequestState::Refused { at, .. }
        | RequestState::Cancelled { at, .. }
        | RequestState::Expired { at }
        | RequestState::Failed { at, .. } => Some(*at),
    }
}

/// The opening comes first, once, at the opening time and by the requester;
/// the history is in time order (R34).
fn check_times(request: &ChangeRequest) -> Result<(), Inconsistency> {
    use Inconsistency as E;
    let Some((first, rest)) = request.history.split_first() else {
        return Err(E::NoOpening);
    };
    if first.kind != EventKind::Opened {
        return Err(E::NoOpening);
    }
    if first.at != request.opened_at {
        return Err(E::OpenedAt {
            at: Time(first.at),
            opened_at: Time(request.opened_at),
        });
    }
    if first.customer() != Some(request.requester) {
        return Err(E::OpenedBy {
            actor: Who(first.actor.clone()),
            requester: request.requester,
        });
    }
    if let Some(index) = rest.iter().position(|e| e.kind == EventKind::Opened) {
        return Err(E::SecondOpening { index: index + 1 });
    }
    for (index, pair) in request.history.windows(2).enumerate() {
        if let [before, event] = pair
            && event.at < before.at
        {
            return Err(E::OutOfOrder {
                index: index + 1,
                kind: name(&event.kind),
                at: Time(event.at),
                before: Time(before.at),
            });
        }
    }
    Ok(())
}

/// Tokens go to confirmers only (R18); only confirmers confirm, once each
/// (R16).
fn check_confirmers_events(
    request: &ChangeRequest,
    confirmers: &[CustomerId],
) -> Result<(), Inconsistency> {
    use Inconsistency as E;
    let mut confirmed: Vec<(CustomerId, usize)> = Vec::with_capacity(confirmers.len());
    for (index, event) in request.history.iter().enumerate() {
        // An operator resends, cancels, or fails a request by an assignment
        // (R46); the tokens issued at the opening and the attempts with a
        // token are the customers' (the opening, confirmations and ending
        // events have checks of their own).
        if event.operator().is_some()
            && matches!(
                event.kind,
                EventKind::TokenIssued { .. }
                    | EventKind::FailedAttempt
                    | EventKind::TokenInvalidated { .. }
            )
        {
            return Err(E::NotAnOperatorEvent {
                index,
                kind: name(&event.kind),
            });
        }
        // A resend is a confirmer's (R22) or an operator's (R46).
        if matches!(event.kind, EventKind::TokenReissued { .. })
            && event.operator().is_none()
            && !event.customer().is_some_and(|c| confirmers.contains(&c))
        {
            return Err(E::ReissuedByStranger {
                index,
                actor: Who(event.actor.clone()),
            });
        }
        match &event.kind {
            EventKind::TokenIssued { to: whom }
            | EventKind::TokenReissued { to: whom }
            | EventKind::TokenInvalidated { of: whom }
                if !confirmers.contains(whom) =>
            {
                return Err(E::SubjectNotConfirmer {
                    index,
                    kind: name(&event.kind),
                    whom: *whom,
                });
            }
            EventKind::Confirmed => {
                let Some(who) = event.customer().filter(|c| confirmers.contains(c)) else {
                    return Err(E::ActorNotConfirmer {
                        index,
                        kind: name(&event.kind),
                        actor: Who(event.actor.clone()),
                    });
                };
                if let Some((_, first)) = confirmed.iter().find(|(c, _)| *c == who) {
                    return Err(E::ConfirmedTwice {
                        who,
                        first: *first,
                        second: index,
                    });
                }
                confirmed.push((who, index));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The index of `who`'s `confirmed` event, if any.
fn confirmation_of(request: &ChangeRequest, who: CustomerId) -> Option<usize> {
    request
        .history
        .iter()
        .position(|e| e.kind == EventKind::Confirmed && e.customer() == Some(who))
}

/// An awaiting request has not ended; its confirmers' standing agrees with
/// the history; live tokens differ between confirmers (R18, R19, R24).
fn check_awaiting(
    request: &ChangeRequest,
    awaiting: &super::Awaiting,
    confirmers: &[CustomerId],
) -> Result<(), Inconsistency> {
    use Inconsistency as E;
    if let Some((index, event)) = request
        .history
        .iter()
        .enumerate()
        .find(|(_, e)| EventTag::of(&e.kind).ends())
    {
        return Err(E::AwaitingButEnded {
            index,
            kind: name(&event.kind),
        });
    }
    // Every action on an awaiting request happens before its deadline (R29):
    // past it, the request is expired.
    if let Some((index, event)) = request
        .history
        .iter()
        .enumerate()
        .find(|(_, e)| e.at >= request.deadline)
    {
        return Err(E::AwaitingEventAfterDeadline {
            index,
            kind: name(&event.kind),
            at: Time(event.at),
            deadline: Time(request.deadline),
        });
    }
    if !awaiting
        .confirmers
        .iter()
        .map(super::Confirmer::customer)
        .eq(confirmers.iter().copied())
    {
        return Err(E::Confirmers);
    }
    if awaiting.missing().next().is_none() {
        return Err(E::NobodyMissing);
    }
    if awaiting.last_sent < request.opened_at || awaiting.last_sent >= request.deadline {
        return Err(E::LastSent {
            last_sent: Time(awaiting.last_sent),
        });
    }
    for confirmer in &awaiting.confirmers {
        let who = confirmer.customer;
        let event = confirmation_of(request, who);
        match (&confirmer.status, event) {
            (ConfirmerStatus::Confirmed { .. }, None) => {
                return Err(E::ConfirmedWithoutEvent { who });
            }
            (ConfirmerStatus::Confirmed { at }, Some(index)) => {
                let event_at = request.history.get(index).map_or(*at, Event::at);
                if event_at != *at {
                    return Err(E::ConfirmedAt {
                        who,
                        at: Time(*at),
                        event_at: Time(event_at),
                    });
                }
            }
            (ConfirmerStatus::Pending { .. }, Some(index)) => {
                return Err(E::PendingButConfirmed { who, index });
            }
            (ConfirmerStatus::Pending { .. }, None) => {}
        }
    }
    let live = |c: &&super::Confirmer| match c.status {
        ConfirmerStatus::Pending {
            digest: Some(digest),
            ..
        } => Some((c.customer, digest)),
        _ => None,
    };
    let digests: Vec<_> = awaiting
        .confirmers
        .iter()
        .filter_map(|c| live(&c))
        .collect();
    for (i, (first, digest)) in digests.iter().enumerate() {
        if let Some((second, _)) = digests.iter().skip(i + 1).find(|(_, d)| d == digest) {
            return Err(E::SharedDigest {
                first: *first,
                second: *second,
            });
        }
    }
    Ok(())
}

/// A terminal request's last event is the one that ended it, at the state's
/// time, by an actor the rules allow (R21, R28–R30, R32, R34).
fn check_end(request: &ChangeRequest, confirmers: &[CustomerId]) -> Result<(), Inconsistency> {
    use Inconsistency as E;
    let state = request.state.name();
    let (expected, at) = match &request.state {
        // Not terminal: `check_awaiting` checks it.
        RequestState::Awaiting(_) => return Ok(()),
        RequestState::Applied { at } => (EventTag::Applied, *at),
        RequestState::Refused { at, .. } => (EventTag::Refused, *at),
        RequestState::Cancelled { at, .. } => (EventTag::Cancelled, *at),
        RequestState::Expired { at } => (EventTag::Expired, *at),
        RequestState::Failed { at, .. } => (EventTag::Failed, *at),
    };
    let kind = expected.as_str();
    // Every action on a request happens before its deadline (R29); past it
    // only its expiry is recorded (an operator's acts included, R46).
    if let Some((index, event)) = request
        .history
        .iter()
        .enumerate()
        .find(|(_, e)| e.at >= request.deadline && EventTag::of(&e.kind) != EventTag::Expired)
    {
        return Err(E::EventAfterDeadline {
            state,
            index,
            kind: name(&event.kind),
            at: Time(event.at),
            deadline: Time(request.deadline),
        });
    }
    let is_expected = |e: &Event| EventTag::of(&e.kind) == expected;
    let Some((last, earlier)) = request.history.split_last() else {
        return Err(E::NoEnd { state, kind });
    };
    if !is_expected(last) {
        return Err(match request.history.iter().position(is_expected) {
            Some(index) => E::EndNotLast { state, kind, index },
            None => E::NoEnd { state, kind },
        });
    }
    if let Some((index, event)) = earlier
        .iter()
        .enumerate()
        .find(|(_, e)| EventTag::of(&e.kind).ends())
    {
        return Err(E::EndsTwice {
            index,
            kind: name(&event.kind),
            last: kind,
        });
    }
    if last.at != at {
        return Err(E::EndAt {
            state,
            kind,
            at: Time(at),
            event_at: Time(last.at),
        });
    }
    check_end_actor(request, last, kind, confirmers)
}

/// The event that ended the request is by an actor the rules allow: a
/// confirmer applies (R20) or refuses (R21), the requester cancels (R28),
/// nobody expires (R29, not before the deadline) or fails (R30, R32) it.
fn check_end_actor(
    request: &ChangeRequest,
    last: &Event,
    kind: &'static str,
    confirmers: &[CustomerId],
) -> Result<(), Inconsistency> {
    use Inconsistency as E;
    let state = request.state.name();
    let by_actor = |by: &crate::Actor| {
        if last.actor.as_ref() == Some(by) {
            Ok(())
        } else {
            Err(E::EndActor {
                state,
                kind,
                by: Who(Some(by.clone())),
                actor: Who(last.actor.clone()),
            })
        }
    };
    let by_nobody = || match last.actor {
        None => Ok(()),
        Some(_) => Err(E::SystemEndWithActor {
            kind,
            actor: Who(last.actor.clone()),
        }),
    };
    match &request.state {
        RequestState::Awaiting(_) => Ok(()),
        RequestState::Applied { .. } => {
            if !last.customer().is_some_and(|a| confirmers.contains(&a)) {
                return Err(E::AppliedByNonConfirmer {
                    actor: Who(last.actor.clone()),
                });
            }
            match confirmers
                .iter()
                .find(|c| confirmation_of(request, **c).is_none())
            {
                Some(who) => Err(E::AppliedUnconfirmed { who: *who }),
                None => Ok(()),
            }
        }
        RequestState::Refused { by, .. } => {
            if !confirmers.contains(by) {
                return Err(E::RefusedByNonConfirmer { by: *by });
            }
            by_actor(&crate::Actor::Customer(*by))
        }
        RequestState::Cancelled { by, .. } => {
            // The requester (R28), or any operator (R46).
            if let crate::Actor::Customer(customer) = by
                && *customer != request.requester
            {
                return Err(E::CancelledByNonRequester {
                    by: *customer,
                    requester: request.requester,
                });
            }
            by_actor(by)
        }
        RequestState::Expired { at } => {
            by_nobody()?;
            if *at < request.deadline {
                return Err(E::ExpiredEarly {
                    at: Time(*at),
                    deadline: Time(request.deadline),
                });
            }
            Ok(())
        }
        RequestState::Failed { reason, .. } => {
            if let EventKind::Failed { reason: event } = &last.kind
                && event != reason
            {
                return Err(E::FailureReasons {
                    state: reason.clone(),
                    event: event.clone(),
                });
            }
            // An operator's assignment fails a request at the operator's
            // hand (R46); every other failure is the system's.
            if matches!(reason, FailureReason::Reassigned { .. }) {
                if last.operator().is_none() {
                    return Err(E::ReassignedByNonOperator {
                        actor: Who(last.actor.clone()),
                    });
                }
                return Ok(());
            }
            by_nobody()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{EventTag, FailureReason, ReasonTag, RequestId};
    use crate::Role;

    /// Every failure reason, one per variant: the exhaustive match makes a
    /// new variant a compile error here until `RawReason` reads it (R43).
    fn every_reason() -> Vec<FailureReason> {
        let customer = "AB1-OVH".parse().unwrap();
        let by = RequestId::from_bytes([7; 16]);
        let all = vec![
            FailureReason::ServiceGone,
            FailureReason::RequesterLostRight { role: Role::Tech },
            FailureReason::OutgoingChanged { role: Role::Admin },
            FailureReason::NotInGoodStanding { customer },
            FailureReason::IncomingUnknown,
            FailureReason::RightRemoved {
                role: Role::Billing,
                by,
            },
            FailureReason::Reassigned {
                role: Role::Tech,
                by: crate::AssignmentId::from_bytes([8; 16]),
            },
        ];
        for reason in &all {
            let _: ReasonTag = match reason {
                FailureReason::ServiceGone => ReasonTag::ServiceGone,
                FailureReason::RequesterLostRight { .. } => ReasonTag::RequesterLostRight,
                FailureReason::OutgoingChanged { .. } => ReasonTag::OutgoingChanged,
                FailureReason::NotInGoodStanding { .. } => ReasonTag::NotInGoodStanding,
                FailureReason::IncomingUnknown => ReasonTag::IncomingUnknown,
                FailureReason::RightRemoved { .. } => ReasonTag::RightRemoved,
                FailureReason::Reassigned { .. } => ReasonTag::Reassigned,
            };
        }
        all
    }

    #[test]
    fn every_failure_reason_reads_back() {
        // R43: what the crate writes, it reads.
        for reason in every_reason() {
            let json = serde_json::to_value(&reason).unwrap();
            let back: FailureReason = serde_json::from_value(json).unwrap();
            assert_eq!(back, reason);
        }
    }

    #[test]
    fn event_names_are_the_serialized_ones() {
        // R43: the mirror's names are those `EventKind` writes.
        for name in [
            "opened",
            "tokenIssued",
            "tokenReissued",
            "confirmed",
            "failedAttempt",
            "tokenInvalidated",
            "refused",
            "cancelled",
            "expired",
            "applied",
            "failed",
        ] {
            let tag: EventTag = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(tag.as_str(), name);
        }
    }
}
