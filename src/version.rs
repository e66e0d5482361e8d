//! Versions for optimistic concurrency (R31).

use core::fmt;

/// The version of a stored service or request.
///
/// Every change the crate makes to a service or a request produces the next
/// version, and every write it hands to the store names the
/// version it expects to replace, so that two writers racing on the same record
/// never both succeed (R31).
///
/// ```
/// use service_contacts::Version;
///
/// assert_eq!(Version::FIRST.get(), 1);
/// assert_eq!(Version::FIRST.next().get(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Version(u64);

impl Version {
    /// The version of a record when it is first created.
    pub const FIRST: Version = Version(1);

    /// A version from its number, as a store reads it back.
    #[must_use]
    pub const fn new(number: u64) -> Version {
        Version(number)
    }

    /// The version number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version that follows this one.
    #[must_use]
    pub const fn next(self) -> Version {
        Version(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}
