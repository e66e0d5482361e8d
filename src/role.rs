//! Contact roles and sets of roles.

use core::fmt;
use core::str::FromStr;

/// One of the three contacts every service has.
///
/// The text form is lower case: `admin`, `tech`, `billing`.
///
/// ```
/// use service_contacts::Role;
///
/// assert_eq!("tech".parse::<Role>()?, Role::Tech);
/// assert_eq!(Role::Billing.to_string(), "billing");
/// # Ok::<(), service_contacts::ParseRoleError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Manages the service and may change every contact (R8).
    Admin,
    /// Looks after the technical side; may hand the tech role on (R9).
    Tech,
    /// Looks after billing; may hand the billing role on (R10).
    Billing,
}

impl Role {
    /// All roles, in their fixed order: admin, tech, billing.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Tech, Role::Billing];

    /// The text form: `admin`, `tech` or `billing`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Tech => "tech",
            Role::Billing => "billing",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseRoleError;

    /// Parses `admin`, `tech` or `billing` (exactly, lower case).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| ParseRoleError {
                found: text.chars().take(32).collect(),
            })
    }
}

/// The error returned when text is not a role or a set of roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseRoleError {
    /// The offending text (at most 32 characters of it).
    found: String,
}

impl fmt::Display for ParseRoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role {:?}, expected `admin`, `tech` or `billing`",
            self.found
        )
    }
}

impl std::error::Error for ParseRoleError {}

/// A set of roles: a one-byte `Copy` value.
///
/// Iteration follows the fixed order admin, tech, billing, and so does the text
/// form, which joins the roles with `+` (`admin+tech`); the empty set is
/// written `none`.
///
/// ```
/// use service_contacts::{Role, Roles};
///
/// let roles = Roles::from(Role::Tech) | Role::Admin;
/// assert_eq!(roles.to_string(), "admin+tech");
/// assert!(roles.contains(Role::Tech));
/// assert_eq!(roles.iter().collect::<Vec<_>>(), [Role::Admin, Role::Tech]);
/// assert_eq!("tech+admin".parse::<Roles>()?, roles);
/// assert_eq!(Roles::ALL - roles, Roles::from(Role::Billing));
/// # Ok::<(), service_contacts::ParseRoleError>(())
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Roles(u8);

impl Roles {
    /// No role.
    pub const EMPTY: Roles = Roles(0);
    /// Admin, tech and billing.
    pub const ALL: Roles = Roles(0b111);

    /// Whether `role` is in the set.
    #[must_use]
    pub const fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Whether every role of `other` is in the set.
    #[must_use]
    pub const fn is_superset(self, other: Roles) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many roles the set holds (0 to 3).
    #[must_use]
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The set with `role` added.
    #[must_use]
    pub const fn with(self, role: Role) -> Roles {
        Roles(self.0 | role.bit())
    }

    /// The set with `role` removed.
    #[must_use]
    pub const fn without(self, role: Role) -> Roles {
        Roles(self.0 & !role.bit())
    }

    /// Adds `role`; returns whether it was new.
    pub fn insert(&mut self, role: Role) -> bool {
        let new = !self.contains(role);
        self.0 |= role.bit();
        new
    }

    /// Removes `role`; returns whether it was there.
    pub fn remove(&mut self, role: Role) -> bool {
        let had = self.contains(role);
        self.0 &= !role.bit();
        had
    }

    /// Roles in either set.
    #[must_use]
    pub const fn union(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    /// Roles in both sets.
    #[must_use]
    pub const fn intersection(self, other: Roles) -> Roles {
        Roles(self.0 & other.0)
    }

    /// Roles in `self` and not in `other`.
    #[must_use]
    pub const fn difference(self, other: Roles) -> Roles {
        Roles(self.0 & !other.0)
    }

    /// The roles in the fixed order admin, tech, billing.
    #[must_use]
    pub fn iter(self) -> impl DoubleEndedIterator<Item = Role> + Clone {
        Role::ALL
            .into_iter()
            .filter(move |role| self.contains(*role))
    }

    /// The first role in the fixed order, if any.
    #[must_use]
    pub fn first(self) -> Option<Role> {
        self.iter().next()
    }
}

impl From<Role> for Roles {
    fn from(role: Role) -> Self {
        Roles(role.bit())
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        iter.into_iter().fold(Roles::EMPTY, Roles::with)
    }
}

impl Extend<Role> for Roles {
    fn extend<I: IntoIterator<Item = Role>>(&mut self, iter: I) {
        for role in iter {
            self.insert(role);
        }
    }
}

impl IntoIterator for Roles {
    type Item = Role;
    type IntoIter = RolesIter;

    fn into_iter(self) -> RolesIter {
        RolesIter { set: self, next: 0 }
    }
}

/// Iterator over a [`Roles`] set, in the fixed order.
#[derive(Clone, Debug)]
pub struct RolesIter {
    set: Roles,
    next: usize,
}

impl Iterator for RolesIter {
    type Item = Role;

    fn next(&mut self) -> Option<Role> {
        while let Some(role) = Role::ALL.get(self.next).copied() {
            self.next += 1;
            if self.set.contains(role) {
                return Some(role);
            }
        }
        None
    }
}

impl core::ops::BitOr for Roles {
    type Output = Roles;
    fn bitor(self, rhs: Roles) -> Roles {
        self.union(rhs)
    }
}

impl core::ops::BitOr<Role> for Roles {
    type Output = Roles;
    fn bitor(self, rhs: Role) -> Roles {
        self.with(rhs)
    }
}

impl core::ops::BitOr for Role {
    type Output = Roles;
    fn bitor(self, rhs: Role) -> Roles {
        Roles::from(self).with(rhs)
    }
}

impl core::ops::BitAnd for Roles {
    type Output = Roles;
    fn bitand(self, rhs: Roles) -> Roles {
        self.intersection(rhs)
    }
}

impl core::ops::Sub for Roles {
    type Output = Roles;
    fn sub(self, rhs: Roles) -> Roles {
        self.difference(rhs)
    }
}

impl core::ops::BitOrAssign<Role> for Roles {
    fn bitor_assign(&mut self, rhs: Role) {
        self.insert(rhs);
    }
}

impl core::ops::BitOrAssign for Roles {
    fn bitor_assign(&mut self, rhs: Roles) {
        *self = self.union(rhs);
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, role) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(role.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Roles({self})")
    }
}

impl FromStr for Roles {
    type Err = ParseRoleError;

    /// Parses `none` or roles joined with `+`, in any order (`billing+admin`).
    /// A role named twice is accepted once.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "none" {
            return Ok(Roles::EMPTY);
        }
        text.split('+').map(Role::from_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let at = Role::Admin | Role::Tech;
        let tb = Role::Tech | Role::Billing;
        assert_eq!(at & tb, Roles::from(Role::Tech));
        assert_eq!(at | tb, Roles::ALL);
        assert_eq!(at - tb, Roles::from(Role::Admin));
        assert_eq!(Roles::ALL.len(), 3);
        assert!(Roles::ALL.is_superset(at));
        assert!(!at.is_superset(tb));
        let mut set = Roles::EMPTY;
        assert!(set.insert(Role::Billing));
        assert!(!set.insert(Role::Billing));
        assert!(set.remove(Role::Billing));
        assert!(set.is_empty());
    }

    #[test]
    fn text_form_round_trips() {
        for bits in 0..8u8 {
            let set = Roles(bits);
            assert_eq!(set.to_string().parse::<Roles>().unwrap(), set);
            assert_eq!(set.into_iter().collect::<Roles>(), set);
        }
        assert_eq!(Roles::EMPTY.to_string(), "none");
        assert_eq!(Roles::ALL.to_string(), "admin+tech+billing");
    }

    #[test]
    fn bad_role_text_is_quoted() {
        let err = "admin+owner".parse::<Roles>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown role \"owner\", expected `admin`, `tech` or `billing`"
        );
        assert!("".parse::<Roles>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }
}
