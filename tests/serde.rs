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

mod requests {
    //! A stored request reads back only if it is consistent (R4 for
    //! requests): what a host's database gives back cannot put the engine in
    //! a state it could never reach.
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;
    use serde_json::{Value, json};
    use service_contacts::{AccountStatus, ChangeRequest, Edit, Engine, Role, Service, Snapshot};
    use time::macros::datetime;

    fn opened() -> Value {
        let admin = "AD1-OVH".parse().unwrap();
        let service = Service::order("example.com".parse().unwrap(), admin);
        let edit = Edit::new(service.name().clone()).with(Role::Tech, "TE2-OVH".parse().unwrap());
        let snapshot = Snapshot {
            service: &service,
            requests: &[],
        };
        let transition = Engine::default()
            .submit(
                &edit,
                admin,
                snapshot,
                &|_| AccountStatus::GoodStanding,
                datetime!(2026-11-21 10:00 UTC),
                &mut ChaCha20Rng::seed_from_u64(5),
            )
            .unwrap();
        serde_json::to_value(transition.requests().next().unwrap()).unwrap()
    }

    fn refused(doc: &Value) -> String {
        serde_json::from_value::<ChangeRequest>(doc.clone())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_consistent_request_reads_back_equal() {
        // R34: state and history survive a round trip.
        let doc = opened();
        let back: ChangeRequest = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), doc);
    }

    #[test]
    fn inconsistent_requests_are_refused() {
        // R16: the confirmers are the requester and the incoming customer.
        let mut doc = opened();
        doc["state"]["confirmers"][1]["customer"] = json!("ZZ9-OVH");
        assert!(refused(&doc).contains("confirmers"), "{}", refused(&doc));
        // An awaiting request waits for someone.
        let mut doc = opened();
        for i in 0..2 {
            doc["state"]["confirmers"][i]["status"] =
                json!({"status": "confirmed", "at": "2026-11-21T10:00:00Z"});
        }
        assert!(
            refused(&doc).contains("waits for at least one"),
            "{}",
            refused(&doc)
        );
        // R23: tokens are sent between the opening and the deadline.
        let mut doc = opened();
        doc["state"]["last_sent"] = json!("9999-12-31T23:59:59Z");
        assert!(
            refused(&doc).contains("between the opening"),
            "{}",
            refused(&doc)
        );
        // R34: the history starts with the opening, in time order.
        let mut doc = opened();
        doc["history"][0]["event"] = json!("confirmed");
        assert!(
            refused(&doc).contains("starts with its opening"),
            "{}",
            refused(&doc)
        );
        let mut doc = opened();
        doc["history"][1]["at"] = json!("2000-01-01T00:00:00Z");
        assert!(refused(&doc).contains("time order"), "{}", refused(&doc));
        // The roles and the outgoing contacts agree.
        let mut doc = opened();
        doc["roles"] = json!("tech+billing");
        assert!(refused(&doc).contains("outgoing"), "{}", refused(&doc));
        // Unknown roles in the outgoing contacts are refused.
        let mut doc = opened();
        doc["outgoing"]["owner"] = json!("AD1-OVH");
        assert!(serde_json::from_value::<ChangeRequest>(doc).is_err());
    }
}
