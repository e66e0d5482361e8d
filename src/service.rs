//! Service names, contacts and services (R5–R7).

use core::fmt;
use core::str::FromStr;
use std::sync::Arc;

use crate::{CustomerId, Role, Roles, Version};

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

/// A service a customer ordered: its name, its contacts and the version the
/// store last saw.
///
/// ```
/// use service_contacts::{CustomerId, Role, Roles, Service};
///
/// let owner: CustomerId = "AB12345-OVH".parse()?;
/// let service = Service::order("example.com".parse()?, owner);
/// assert_eq!(service.roles_of(owner), Roles::ALL); // R5
/// assert_eq!(service.holder(Role::Billing), owner);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Service {
    name: ServiceName,
    contacts: Contacts,
    version: Version,
}

impl Service {
    /// A newly ordered service: the customer who ordered it holds all three
    /// roles (R5). Its version is [`Version::FIRST`].
    #[must_use]
    pub fn order(name: ServiceName, customer: CustomerId) -> Self {
        Service::new(name, Contacts::all(customer), Version::FIRST)
    }

    /// A service with the given contacts and version, as a store loads it.
    #[must_use]
    pub fn new(name: ServiceName, contacts: Contacts, version: Version) -> Self {
        Service {
            name,
            contacts,
            version,
        }
    }

    /// The service's name.
    #[must_use]
    pub fn name(&self) -> &ServiceName {
        &self.name
    }

    /// The contacts.
    #[must_use]
    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    /// The version of this service in the store; every change of contacts
    /// makes a new one (R31).
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

    /// The same service, unchanged, at the next version.
    #[must_use]
    pub(crate) fn next_version(&self) -> Service {
        let mut next = self.clone();
        next.version = self.version.next();
        next
    }

    /// The same service with `roles` given to `customer`, at the next version.
    #[must_use]
    pub(crate) fn with_holder(&self, roles: Roles, customer: CustomerId) -> Service {
        let mut next = self.clone();
        for role in roles {
            next.contacts.set(role, customer);
        }
        next.version = self.version.next();
        next
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
