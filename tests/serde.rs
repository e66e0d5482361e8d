//! Serialized forms go through the same validation as parsing (R4, R7).
#![cfg(feature = "serde")]

use service_contacts::{CustomerId, Role, Roles, Service, ServiceName};

#[test]
fn identifiers_serialize_as_canonical_text() {
    // R4
    let id: CustomerId = "ab12-ovh".parse().unwrap();
    assert_eq!(serde_json::to_string(&id).unwrap(), "\"AB12-OVH\"");
    let back: CustomerId = serde_json::from_str("\"aB12-oVh\"").unwrap();
    assert_eq!(back, id);
}

#[test]
fn invalid_text_never_deserializes() {
    // R4, R3: the parse error is reported.
    let err = serde_json::from_str::<CustomerId>("\"AB12-OVX\"").unwrap_err();
    assert!(
        err.to_string().contains("expected the suffix `-OVH`"),
        "{err}"
    );
    assert!(serde_json::from_str::<CustomerId>("12").is_err());
    assert!(serde_json::from_str::<CustomerId>("\"\"").is_err());
    // R7
    assert!(serde_json::from_str::<ServiceName>("\"a b\"").is_err());
    assert!(serde_json::from_str::<Role>("\"owner\"").is_err());
    assert!(serde_json::from_str::<Roles>("\"admin+x\"").is_err());
}

#[test]
fn services_round_trip_and_validate_inside() {
    // R4, R7: a service with a bad contact inside is refused.
    let service = Service::order("example.com".parse().unwrap(), "AB1-OVH".parse().unwrap());
    let json = serde_json::to_string(&service).unwrap();
    assert_eq!(
        json,
        r#"{"name":"example.com","contacts":{"admin":"AB1-OVH","tech":"AB1-OVH","billing":"AB1-OVH"},"version":1}"#
    );
    assert_eq!(serde_json::from_str::<Service>(&json).unwrap(), service);
    let bad = json.replacen("AB1-OVH", "AB1-OVHX", 1);
    assert!(serde_json::from_str::<Service>(&bad).is_err());
    let roles: Roles = serde_json::from_str("\"billing+admin\"").unwrap();
    assert_eq!(serde_json::to_string(&roles).unwrap(), "\"admin+billing\"");
}
