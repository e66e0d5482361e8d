//! The public types can be shared across threads.

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
    assert_unpin::<Service>();
}
