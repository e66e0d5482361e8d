//! Serde support: text types go through `Display`/`FromStr`, so a value that
//! deserializes is always valid (R4, R7).

use core::fmt;
use core::marker::PhantomData;
use core::str::FromStr;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::{
    Actor, AssignmentId, CustomerId, OperatorAct, OperatorId, Reason, RequestId, Role, Roles,
    ServiceName, TokenDigest,
};

/// Deserializes any `FromStr` type from a string, reporting its parse error.
struct FromStrVisitor<T>(&'static str, PhantomData<T>);

impl<T> Visitor<'_> for FromStrVisitor<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

macro_rules! serde_via_text {
    ($ty:ty, $expecting:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(FromStrVisitor($expecting, PhantomData))
            }
        }
    };
}

serde_via_text!(CustomerId, "a customer identifier such as `AB12345-OVH`");
serde_via_text!(ServiceName, "a service name");
serde_via_text!(Role, "`admin`, `tech` or `billing`");
serde_via_text!(Roles, "roles joined with `+`, such as `admin+tech`");
serde_via_text!(RequestId, "a request id of 32 hex digits");
serde_via_text!(TokenDigest, "a token digest of 64 hex digits");
serde_via_text!(AssignmentId, "an assignment id of 32 hex digits");
serde_via_text!(OperatorId, "an operator identity such as `jane@support`");
serde_via_text!(Reason, "a reason: one line of text, at most 500 characters");

/// An [`Actor`] is a customer's identifier or an operator's act: read
/// either, each checked as its own type, with its own error.
impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ActorVisitor;

        impl<'de> Visitor<'de> for ActorVisitor {
            type Value = Actor;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a customer identifier such as `AB12345-OVH`, or an operator's act \
                     `{\"operator\": ..., \"reason\": ...}`",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Actor, E> {
                text.parse().map(Actor::Customer).map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Actor, A::Error> {
                OperatorAct::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Actor::Operator)
            }
        }

        deserializer.deserialize_any(ActorVisitor)
    }
}
