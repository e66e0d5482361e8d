//! Service contacts: who administers, runs and pays for a hosted service, and
//! how that changes.
//!
//! Every service a hosting customer orders (a domain, a hosting plan, a
//! server) has three contacts, **admin**, **tech** and **billing**, each a
//! [`CustomerId`] such as `AB12345-OVH`. This crate models those identifiers,
//! services and roles.
//!
//! ```
//! use service_contacts::{CustomerId, Role, Roles, Service, ServiceName};
//!
//! let owner: CustomerId = "ab12345-ovh".parse()?;
//! let name: ServiceName = "example.com".parse()?;
//! let service = Service::order(name, owner);
//!
//! assert_eq!(owner.to_string(), "AB12345-OVH");
//! assert_eq!(service.roles_of(owner), Roles::ALL);
//! assert_eq!(service.holder(Role::Tech), owner);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `getrandom` (default): an OS-backed generator for callers without one.
//! - `serde`: serialization; every deserialized value is validated.
//! - `proptest`: [`strategy`], proptest strategies for downstream tests.
//! - `testing`: a conformance suite for store implementations.

mod customer;
mod driver;
mod engine;
mod host;
mod memory;
mod message;
mod request;
mod role;
mod service;
mod token;
mod version;

#[cfg(feature = "serde")]
mod serde_impl;

#[cfg(any(test, feature = "proptest"))]
pub mod strategy;

#[cfg(feature = "testing")]
pub mod testing;

pub use customer::{CustomerId, ParseCustomerIdError};
pub use driver::{Driver, DriverError, DriverErrorFor, Outcome, Refusal, RequestView, Undelivered};
pub use engine::{
    AccountStatus, Accounts, ActError, Blocked, Changes, Config, Edit, Engine, Proposable,
    Rejection, Snapshot, SubmitError, Transition, Write,
};
pub use host::{CommitError, Directory, Notifier, Store};
pub use memory::{DeliveryFailed, MemoryDirectory, MemoryNotifier, MemoryStore};
pub use message::{Message, MessageKind};
pub use request::{
    Awaiting, ChangeRequest, Confirmer, ConfirmerStatus, Event, EventKind, FailureReason,
    ParseRequestIdError, RequestId, RequestState, StateName,
};
pub use role::{ParseRoleError, Role, Roles, RolesIter};
pub use service::{Contacts, ParseServiceNameError, Service, ServiceName};
#[cfg(feature = "getrandom")]
pub use token::OsRng;
pub use token::{ParseDigestError, RandomnessError, Token, TokenDigest};
pub use version::Version;

/// The examples in README.md, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
