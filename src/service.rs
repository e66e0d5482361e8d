//! Service names, contacts and services (R5–R7).

use core::fmt;
use core::str::FromStr;
use std::sync::Arc;

use crate::{CustomerId, RequestId, Role, Roles, Version};

/// The most bytes a service name may have (R7).
const MAX_NAME_LEN: usize = 255;

/// The name of a service, such as `example.com` or `ns3001234.ip-1-2-3.eu`.
///
/// Non-empty, at most 255 bytes, printable ASCII without whitespace (R7).
/// Names are compared exactly as written. Cloning is cheap (a shared string).
///
/// ```
/// use service_contacts::ServiceName;
///
/// let name: ServiceName = "example.com".parse()?;
/// assert_eq!(name.as_str(), "example.com");
///
/// let err = "my site".parse::<ServiceName>().unwrap_err();
/// assert_eq!(err.to_string(), "unexpected character ' ' at position 2 in a service name");
/// # Ok::<(), service_contacts::ParseServiceNameError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName(Arc<str>);

impl ServiceName {
    /// Parses a service name (R7).
    ///
    /// # Errors
    ///
    /// Returns a [`ParseServiceNameError`] for empty input (`""`), a name longer
    /// than 255 bytes, and any character that is not printable ASCII or is
    /// whitespace (`"my site"`, `"café.fr"`, `"a\tb"`), with its position.
    pub fn parse(text: &str) -> Result<Self, ParseServiceNameError> {
        if text.is_empty() {
            return Err(ParseServiceNameError::Empty);
        }
        if let Some((pos, ch)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_graphic())
        {
            return Err(ParseServiceNameError::UnexpectedChar { ch, pos });
        }
        if text.len() > MAX_NAME_LEN {
            return Err(ParseServiceNameError::TooLong { len: text.len() });
        }
        Ok(ServiceName(Arc::from(text)))
    }

    /// The name as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceName({})", self.as_str())
    }
}

impl AsRef<str> for ServiceName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl core::borrow::Borrow<str> for ServiceName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl FromStr for ServiceName {
    type Err = ParseServiceNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<&str> for ServiceName {
    type Error = ParseServiceNameError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

/// The error returned when text is not a valid [`ServiceName`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseServiceNameError {
    /// The text is empty.
    #[error("empty service name")]
    Empty,
    /// The text is longer than 255 bytes.
    #[error("service name of {len} bytes, at most 255 allowed")]
    TooLong {
        /// Length of the rejected text, in bytes.
        len: usize,
    },
    /// A character that is whitespace, a control character or not ASCII.
    #[error("unexpected character {ch:?} at position {pos} in a service name")]
    UnexpectedChar {
        /// The character.
        ch: char,
        /// Its position, in characters from 0.
        pos: usize,
    },
}

/// The three contacts of a service: exactly one holder per role.
///
/// One customer may hold several roles.
///
/// ```
/// use service_contacts::{Contacts, CustomerId, Role, Roles};
///
/// let alice: CustomerId = "AL1-OVH".parse()?;
/// let bob: CustomerId = "BO2-OVH".parse()?;
/// let mut contacts = Contacts::all(alice);
/// contacts.set(Role::Tech, bob);
/// assert_eq!(contacts.holder(Role::Tech), bob);
/// assert_eq!(contacts.roles_of(alice), Role::Admin | Role::Billing);
/// assert_eq!(contacts.roles_of("CA3-OVH".parse()?), Roles::EMPTY);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Contacts {
    admin: CustomerId,
    tech: CustomerId,
    billing: CustomerId,
}

impl Contacts {
    /// Contacts with one holder for each role.
    #[must_use]
    pub const fn new(admin: CustomerId, tech: CustomerId, billing: CustomerId) -> Self {
        Contacts {
            admin,
            tech,
            billing,
        }
    }

    /// Contacts where `customer` holds all three roles (R5).
    #[must_use]
    pub const fn all(customer: CustomerId) -> Self {
        Contacts::new(customer, customer, customer)
    }

    /// Who holds `role`.
    #[must_use]
    pub const fn holder(&self, role: Role) -> CustomerId {
        match role {
            Role::Admin => self.admin,
            Role::Tech => self.tech,
            Role::Billing => self.billing,
        }
    }

    /// Gives `role` to `customer`; returns the previous holder.
    pub fn set(&mut self, role: Role, customer: CustomerId) -> CustomerId {
        let slot = match role {
            Role::Admin => &mut self.admin,
            Role::Tech => &mut self.tech,
            Role::Billing => &mut self.billing,
        };
        core::mem::replace(slot, customer)
    }

    /// The roles `customer` holds (empty if none).
    #[must_use]
    pub fn roles_of(&self, customer: CustomerId) -> Roles {
        Role::ALL
            .into_iter()
            .filter(|role| self.holder(*role) == customer)
            .collect()
    }

    /// The roles `customer` may hand to someone (R8–R10): every role for the
    /// admin contact (R8), otherwise the roles they hold themselves, each to be
    /// passed on in their own place (R9, R10). A customer holding several
    /// roles has the union of their rights.
    ///
    /// ```
    /// use service_contacts::{Contacts, CustomerId, Role, Roles};
    ///
    /// let (admin, tech): (CustomerId, CustomerId) = ("AD1-OVH".parse()?, "TE2-OVH".parse()?);
    /// let contacts = Contacts::new(admin, tech, admin);
    /// assert_eq!(contacts.rights_of(admin), Roles::ALL);
    /// assert_eq!(contacts.rights_of(tech), Roles::from(Role::Tech));
    /// assert_eq!(contacts.rights_of("XX9-OVH".parse()?), Roles::EMPTY);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn rights_of(&self, customer: CustomerId) -> Roles {
        let held = self.roles_of(customer);
        if held.contains(Role::Admin) {
            Roles::ALL
        } else {
            held
        }
    }

    /// Each role with its holder, in the fixed order admin, tech, billing.
    pub fn iter(&self) -> impl Iterator<Item = (Role, CustomerId)> + '_ {
        Role::ALL.into_iter().map(|role| (role, self.holder(role)))
    }

    /// The distinct customers holding at least one role, in role order.
    #[must_use]
    pub fn holders(&self) -> Vec<CustomerId> {
        let mut out: Vec<CustomerId> = Vec::with_capacity(3);
        for (_, holder) in self.iter() {
            if !out.contains(&holder) {
                out.push(holder);
            }
        }
        out
    }
}

impl fmt::Debug for Contacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contacts")
            .field("admin", &format_args!("{}", self.admin))
            .field("tech", &format_args!("{}", self.tech))
            .field("billing", &format_args!("{}", self.billing))
            .finish()
    }
}

/// A service a customer ordered: its name, its contacts, the last change
/// request opened on each role, and the version the store last saw.
///
/// The service record is what every decision about it is checked against
/// (R27, R31, R44): opening a request writes the service at its next version
/// with the new request named as the **last request** of each of its roles,
/// and applying one writes the new contacts. A role is locked while its last
/// request is live (R27), whatever order a host reads the service and its
/// requests in: two decisions made on the same version of the service cannot
/// both commit.
///
/// A service is never deleted: removing it
/// ([`Driver::remove_service`](crate::Driver::remove_service)) writes a
/// **tombstone**, the same record
/// marked removed at its next version, so that ordering or importing the name
/// again continues its versions and a decision made on the old service can
/// never commit onto the new one (R44).
///
/// ```
/// use service_contacts::{Contacts, CustomerId, Role, Roles, Service};
///
/// let owner: CustomerId = "AB12345-OVH".parse()?;
/// let service = Service::order("example.com".parse()?, owner);
/// assert_eq!(service.roles_of(owner), Roles::ALL); // R5
/// assert_eq!(service.holder(Role::Billing), owner);
///
/// // An existing service brought in with three different holders (R42).
/// let (admin, tech, billing) = ("AD1-OVH".parse()?, "TE2-OVH".parse()?, "BI3-OVH".parse()?);
/// let imported = Service::import("example.org".parse()?, Contacts::new(admin, tech, billing));
/// assert_eq!(imported.holder(Role::Tech), tech);
/// assert_eq!(imported.last_request(Role::Tech), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "unchecked::Service"))]
pub struct Service {
    name: ServiceName,
    contacts: Contacts,
    version: Version,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "LastRequests::is_empty")
    )]
    last: LastRequests,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_false"))]
    removed: bool,
}

#[cfg(feature = "serde")]
#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_false(value: &bool) -> bool {
    !*value
}

/// The last request opened on each role of a service, inline. Serialized as
/// a map from role to request id, such as `{"tech": "0123…"}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
struct LastRequests {
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    admin: Option<RequestId>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    tech: Option<RequestId>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    billing: Option<RequestId>,
}

impl LastRequests {
    fn get(&self, role: Role) -> Option<RequestId> {
        match role {
            Role::Admin => self.admin,
            Role::Tech => self.tech,
            Role::Billing => self.billing,
        }
    }

    fn set(&mut self, role: Role, id: RequestId) {
        let slot = match role {
            Role::Admin => &mut self.admin,
            Role::Tech => &mut self.tech,
            Role::Billing => &mut self.billing,
        };
        *slot = Some(id);
    }

    #[cfg(feature = "serde")]
    fn is_empty(&self) -> bool {
        self.admin.is_none() && self.tech.is_none() && self.billing.is_none()
    }
}

impl Service {
    /// A newly ordered service: the customer who ordered it holds all three
    /// roles (R5). Its version is [`Version::FIRST`].
    #[must_use]
    pub fn order(name: ServiceName, customer: CustomerId) -> Self {
        Service::import(name, Contacts::all(customer))
    }

    /// An existing service brought in with any three holders (R42), at
    /// [`Version::FIRST`] and with no request opened yet. Once stored it
    /// behaves exactly like an ordered one.
    #[must_use]
    pub fn import(name: ServiceName, contacts: Contacts) -> Self {
        Service::new(name, contacts, Version::FIRST)
    }

    /// A live service with the given contacts and version and no request
    /// named on any role.
    #[must_use]
    pub fn new(name: ServiceName, contacts: Contacts, version: Version) -> Self {
        Service {
            name,
            contacts,
            version,
            last: LastRequests::default(),
            removed: false,
        }
    }

    /// The service exactly as a store saved it: with the last request opened
    /// on each role ([`Service::last_request`]) and whether it was removed.
    /// A store that keeps services as rows rebuilds them with this.
    #[must_use]
    pub fn restore(
        name: ServiceName,
        contacts: Contacts,
        version: Version,
        last_requests: impl IntoIterator<Item = (Role, RequestId)>,
        removed: bool,
    ) -> Self {
        let mut service = Service::new(name, contacts, version);
        for (role, id) in last_requests {
            service.last.set(role, id);
        }
        service.removed = removed;
        service
    }

    /// The service's name.
    #[must_use]
    pub fn name(&self) -> &ServiceName {
        &self.name
    }

    /// The contacts (for a removed service: its contacts when it was removed).
    #[must_use]
    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    /// The version of this service in the store; every request opened on
    /// it, every change of contacts and its removal make a new one (R31).
    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// Who holds `role`.
    #[must_use]
    pub fn holder(&self, role: Role) -> CustomerId {
        self.contacts.holder(role)
    }

    /// The roles `customer` holds on this service (empty if none).
    #[must_use]
    pub fn roles_of(&self, customer: CustomerId) -> Roles {
        self.contacts.roles_of(customer)
    }

    /// The last request opened on `role`, whatever its state now. The role
    /// is locked while that request is live (R27).
    #[must_use]
    pub fn last_request(&self, role: Role) -> Option<RequestId> {
        self.last.get(role)
    }

    /// Each role that has had a request, with its last request, in role
    /// order.
    pub fn last_requests(&self) -> impl Iterator<Item = (Role, RequestId)> + '_ {
        Role::ALL
            .into_iter()
            .filter_map(|role| self.last.get(role).map(|id| (role, id)))
    }

    /// The distinct requests named by [`Service::last_request`]: the ones a
    /// decision about this service needs to see (a [`Snapshot`](crate::Snapshot)
    /// holds them), in role order.
    pub fn requests_to_load(&self) -> impl Iterator<Item = RequestId> + use<> {
        let ids = [self.last.admin, self.last.tech, self.last.billing];
        (0..ids.len()).filter_map(move |i| ids[i].filter(|id| !ids[..i].contains(&Some(*id))))
    }

    /// Whether the service was removed: a tombstone that keeps its name's
    /// versions going (see the type's docs).
    #[must_use]
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// The same service, unchanged, at the next version.
    #[must_use]
    pub(crate) fn next_version(&self) -> Service {
        let mut next = self.clone();
        next.version = self.version.next();
        next
    }

    /// Names `id` as the last request of each of `roles` (in a copy already
    /// at its next version).
    pub(crate) fn set_last_request(&mut self, roles: Roles, id: RequestId) {
        for role in roles {
            self.last.set(role, id);
        }
    }

    /// The same service with `roles` given to `customer`, at the next version.
    #[must_use]
    pub(crate) fn with_holder(&self, roles: Roles, customer: CustomerId) -> Service {
        let mut next = self.next_version();
        for role in roles {
            next.contacts.set(role, customer);
        }
        next
    }

    /// The same service with each role of `changes` given to its customer,
    /// at the next version.
    #[must_use]
    pub(crate) fn with_holders(
        &self,
        changes: impl IntoIterator<Item = (Role, CustomerId)>,
    ) -> Service {
        let mut next = self.next_version();
        for (role, customer) in changes {
            next.contacts.set(role, customer);
        }
        next
    }

    /// The tombstone of this service: removed, at the next version.
    #[must_use]
    pub(crate) fn removal(&self) -> Service {
        let mut next = self.next_version();
        next.removed = true;
        next
    }

    /// `self`, a new service, written where `existing` (a tombstone) stood:
    /// its versions continue after the tombstone's.
    #[must_use]
    pub(crate) fn after(mut self, existing: &Service) -> Service {
        self.version = existing.version.next();
        self
    }
}

/// The unchecked mirror a service deserializes into before its checks.
#[cfg(feature = "serde")]
mod unchecked {
    use super::{Contacts, LastRequests, ServiceName, Version};

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Service {
        name: ServiceName,
        contacts: Contacts,
        version: Version,
        #[serde(default)]
        last: LastRequests,
        #[serde(default)]
        removed: bool,
    }

    impl TryFrom<Service> for super::Service {
        type Error = &'static str;

        fn try_from(raw: Service) -> Result<Self, Self::Error> {
            // R43: versions start at 1.
            if raw.version.get() == 0 {
                return Err("a service's version starts at 1");
            }
            Ok(super::Service {
                name: raw.name,
                contacts: raw.contacts,
                version: raw.version,
                last: raw.last,
                removed: raw.removed,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> CustomerId {
        text.parse().unwrap()
    }

    #[test]
    fn ordering_gives_all_roles() {
        // R5
        let service = Service::order("example.com".parse().unwrap(), id("AB1-OVH"));
        for role in Role::ALL {
            assert_eq!(service.holder(role), id("AB1-OVH"));
        }
        assert_eq!(service.contacts().holders(), vec![id("AB1-OVH")]);
    }

    #[test]
    fn service_name_errors() {
        // R7
        assert_eq!(ServiceName::parse(""), Err(ParseServiceNameError::Empty));
        assert_eq!(
            ServiceName::parse(&"a".repeat(256)),
            Err(ParseServiceNameError::TooLong { len: 256 })
        );
        assert!(ServiceName::parse(&"a".repeat(255)).is_ok());
        assert_eq!(
            ServiceName::parse("café").unwrap_err().to_string(),
            "unexpected character 'é' at position 3 in a service name"
        );
        assert_eq!(
            ServiceName::parse("a\tb").unwrap_err().to_string(),
            "unexpected character '\\t' at position 1 in a service name"
        );
    }
}
