//! `ChangeRequest::failed_attempts`: a confirmer's failed token attempts
//! while the request awaits (R26).

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use service_contacts::{
    AccountStatus, ActError, ChangeRequest, Config, ConfirmerStatus, CustomerId, Edit, Engine,
    Rejection, RequestState, Role, Service, Snapshot,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-11-21 10:00 UTC);

fn id(text: &str) -> CustomerId {
    text.parse().unwrap()
}

/// The failed attempt a rejection asks the host to save.
fn recorded(rejection: Rejection) -> ChangeRequest {
    assert_eq!(rejection.error, ActError::InvalidToken);
    rejection.record.unwrap().requests.remove(0).value
}

#[test]
fn failed_attempts_count_a_confirmers_wrong_tokens_until_a_resend() {
    // R26: counted per confirmer, the token invalidated at the limit; R23: a
    // resend starts again from 0; nobody else has a count.
    let engine = Engine::new(Config::new(Duration::days(7), Duration::minutes(5), 3).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(26);
    let (admin, tech, stranger) = (id("AD1-OVH"), id("TE2-OVH"), id("ZZ9-OVH"));
    let service = Service::order("example.com".parse().unwrap(), admin);
    let snapshot = Snapshot {
        service: &service,
        requests: &[],
    };
    let everyone_ok = |_| AccountStatus::GoodStanding;
    let edit = Edit::new(service.name().clone()).with(Role::Tech, tech);
    let opened = engine
        .submit(&edit, admin, snapshot, &everyone_ok, T0, &mut rng)
        .unwrap();
    let admin_token = opened
        .messages
        .iter()
        .find(|m| m.to() == admin)
        .unwrap()
        .token()
        .unwrap()
        .reveal();
    let mut request = opened.requests().next().unwrap().clone();
    for who in [admin, tech, stranger] {
        assert_eq!(request.failed_attempts(who), 0);
    }

    // Wrong tokens, through accept and refuse alike, count for the actor only.
    request = recorded(
        engine
            .accept(&request, tech, "wrong", T0, Some(snapshot), &everyone_ok)
            .unwrap_err(),
    );
    request = recorded(engine.refuse(&request, tech, "wrong", T0).unwrap_err());
    assert_eq!(request.failed_attempts(tech), 2);
    assert_eq!(request.failed_attempts(admin), 0);
    // A stranger's guess is not counted for anyone (R25).
    let rejection = engine.refuse(&request, stranger, "wrong", T0).unwrap_err();
    assert!(rejection.record.is_none());
    assert_eq!(request.failed_attempts(stranger), 0);

    // The limit: the token stops working, the count stays.
    request = recorded(engine.refuse(&request, tech, "wrong", T0).unwrap_err());
    assert_eq!(request.failed_attempts(tech), 3);
    let RequestState::Awaiting(awaiting) = request.state() else {
        panic!("still awaiting");
    };
    assert!(matches!(
        awaiting.confirmers()[1].status(),
        ConfirmerStatus::Pending { digest: None, .. }
    ));

    // A confirmer who confirms has no count.
    request = recorded(engine.refuse(&request, admin, "wrong", T0).unwrap_err());
    assert_eq!(request.failed_attempts(admin), 1);
    let step = engine
        .accept(
            &request,
            admin,
            &admin_token,
            T0,
            Some(snapshot),
            &everyone_ok,
        )
        .unwrap();
    request = step.request(request.id()).unwrap().clone();
    assert_eq!(request.failed_attempts(admin), 0);
    assert_eq!(request.failed_attempts(tech), 3);

    // A resend gives the tech contact a new token and a fresh count (R23).
    let later = T0 + Duration::hours(1);
    let resent = engine.resend(&request, tech, later, &mut rng).unwrap();
    request = resent.request(request.id()).unwrap().clone();
    assert_eq!(request.failed_attempts(tech), 0);

    // Once the request has ended, nobody has a count.
    request = recorded(engine.refuse(&request, tech, "wrong", later).unwrap_err());
    assert_eq!(request.failed_attempts(tech), 1);
    let cancelled = engine.cancel(&request, admin, later).unwrap();
    let request = cancelled.request(request.id()).unwrap();
    assert_eq!(request.failed_attempts(tech), 0);
}
