//! `ROCKET_SESSIONS_*` environment variables reach the session config.
//! Its own test binary: it sets process-wide variables.

use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use session_rocket::{Session, Sessions};

#[derive(Session)]
struct Prefs {
    theme: String,
}

#[get("/set")]
fn set(mut session: Session<Prefs>) {
    session.set_theme("dark".into());
}

#[rocket::async_test]
async fn env_variables_override_the_config_file() {
    std::env::set_var("ROCKET_SESSIONS_COOKIE_NAME", "from_env");
    std::env::set_var("ROCKET_SESSIONS", "{ttl=120}");
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("sessions.cookie_name", "from_file"));
    let rocket = rocket::custom(figment)
        .attach(Sessions::fairing())
        .mount("/", routes![set]);
    let client = Client::untracked(rocket).await.unwrap();
    let config = Sessions::state(client.rocket()).unwrap().config();
    assert_eq!(config.cookie_name, "from_env");
    let response = client.get("/set").dispatch().await;
    let header = response.headers().get_one("Set-Cookie").unwrap();
    assert!(header.starts_with("from_env="), "{header}");
    assert!(
        header.contains("Max-Age=120"),
        "ROCKET_SESSIONS='{{ttl=120}}' applies: {header}"
    );
}
