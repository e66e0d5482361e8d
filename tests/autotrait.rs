//! The public types can be shared across threads (a host serves requests
//! from many), and values are `Unpin`.

fn assert_send_sync<T: Send + Sync>() {}
fn assert_unpin<T: Unpin>() {}

#[test]
fn public_types_are_send_and_sync() {
    use service_contacts::*;
    assert_send_sync::<CustomerId>();
    assert_send_sync::<ParseCustomerIdError>();
    assert_send_sync::<Role>();
    assert_send_sync::<Roles>();
    assert_send_sync::<ParseRoleError>();
    assert_send_sync::<ServiceName>();
    assert_send_sync::<ParseServiceNameError>();
    assert_send_sync::<Contacts>();
    assert_send_sync::<Service>();
    assert_send_sync::<Version>();
    assert_send_sync::<Token>();
    assert_send_sync::<TokenDigest>();
    assert_send_sync::<RequestId>();
    assert_send_sync::<ChangeRequest>();
    assert_send_sync::<RequestState>();
    assert_send_sync::<Event>();
    assert_send_sync::<FailureReason>();
    assert_send_sync::<Message>();
    assert_send_sync::<Engine>();
    assert_send_sync::<Config>();
    assert_send_sync::<Edit>();
    assert_send_sync::<Transition>();
    assert_send_sync::<Changes>();
    assert_send_sync::<Rejection>();
    assert_send_sync::<SubmitError>();
    assert_send_sync::<ActError>();
    assert_send_sync::<Refusal>();
    assert_send_sync::<MemoryStore>();
    assert_send_sync::<MemoryNotifier>();
    assert_send_sync::<MemoryDirectory>();
    assert_send_sync::<Driver<MemoryStore, MemoryNotifier, MemoryDirectory>>();
    assert_send_sync::<DriverErrorFor<MemoryStore, MemoryDirectory>>();
    assert_unpin::<Service>();
    assert_unpin::<ChangeRequest>();
}
