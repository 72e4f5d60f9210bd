//! `cargo run -p shop`: the shop on the store named in `Rocket.toml`.

#[rocket::launch]
fn rocket() -> _ {
    shop::rocket(shop::figment())
}
