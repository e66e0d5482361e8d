//! A walk through the crate: customer identifiers, services and their roles.
//!
//! Run it with `cargo run --example walkthrough`.

use service_contacts::{CustomerId, Role, Roles, Service, ServiceName};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("== Customer identifiers (R1-R4)");
    for text in ["AB12345-OVH", "aa123456-ovh", "ab00001-ovh"] {
        let id: CustomerId = text.parse()?;
        println!("  {text:<14} -> {id}");
    }
    for text in ["AB12345", "ABC123-OVH", "AB12345-OVX", "AB 12-OVH", ""] {
        match text.parse::<CustomerId>() {
            Ok(id) => println!("  {text:<14} -> {id} (unexpected)"),
            Err(err) => println!("  {text:<14} -> rejected: {err}"),
        }
    }

    println!("\n== Ordering a service (R5)");
    let alice: CustomerId = "AL10001-OVH".parse()?;
    let name: ServiceName = "example.com".parse()?;
    let service = Service::order(name, alice);
    println!("  {alice} orders {}:", service.name());
    for role in Role::ALL {
        println!("    {role:<8} {}", service.holder(role));
    }
    println!("  {alice} holds {}", service.roles_of(alice));
    assert_eq!(service.roles_of(alice), Roles::ALL);
    Ok(())
}
