//! Launch-time behaviour: configuration, store selection and refusals,
//! asserted the way rocket_dyn_templates does (the failing fairing's name,
//! the sentinel count).

use rocket::error::ErrorKind;
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, routes, Build, Rocket};
use session_rocket::{Session, SessionError, Sessions};

#[derive(Session)]
struct Prefs {
    theme: String,
}

#[get("/theme")]
async fn theme(session: Session<Prefs>) -> Result<String, SessionError> {
    Ok(session.theme().await?.clone())
}

#[get("/set/<value>")]
fn set(mut session: Session<Prefs>, value: &str) {
    session.set_theme(value.to_string());
}

fn figment(profile: &str) -> Figment {
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .select(profile)
}

fn app(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(Sessions::fairing())
        .mount("/", routes![theme, set])
}

/// The names of the fairings that failed, or a panic if launch succeeded.
async fn failed_fairings(rocket: Rocket<Build>) -> Vec<String> {
    match Client::untracked(rocket).await {
        Ok(_) => panic!("launch should have failed"),
        Err(error) => match error.kind() {
            ErrorKind::FailedFairings(infos) => infos.iter().map(|i| i.name.to_string()).collect(),
            other => panic!("unexpected launch error: {other:?}"),
        },
    }
}

#[rocket::async_test]
async fn no_url_in_debug_uses_memory_with_a_warning() {
    let client = Client::untracked(app(figment("debug")))
        .await
        .expect("debug launches");
    let state = Sessions::state(client.rocket()).unwrap();
    assert_eq!(state.store_kind(), "memory");
    let warning = state.warning().expect("a warning at liftoff");
    assert!(warning.contains("development only"), "{warning}");
    assert!(warning.contains("set `url`"), "{warning}");
    let response = client.get("/set/dark").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
}

#[rocket::async_test]
async fn release_refuses_the_implicit_memory_store() {
    let failed = failed_fairings(app(figment("release"))).await;
    assert_eq!(failed, ["Sessions"]);
    let explicit = figment("release").merge(("sessions.url", "memory"));
    let client = Client::untracked(app(explicit))
        .await
        .expect("explicit memory launches");
    let state = Sessions::state(client.rocket()).unwrap();
    assert_eq!(state.store_kind(), "memory");
    assert_eq!(state.warning(), None);
}

#[rocket::async_test]
async fn bad_configuration_refuses_launch() {
    for (key, value) in [
        ("sessions.ttl", "soon"),
        ("sessions.tll", "60"),
        ("sessions.table_prefix", "x`; drop"),
        ("sessions.url", "mongodb://localhost/db"),
        ("sessions.cookie_name", "bad name"),
        ("sessions.signing_keys", "[\"too short\"]"),
    ] {
        let failed = failed_fairings(app(figment("debug").merge((key, value)))).await;
        assert_eq!(failed, ["Sessions"], "{key} = {value}");
    }
}

#[rocket::async_test]
async fn a_malformed_signing_key_refuses_launch() {
    for keys in [vec!["dG9vIHNob3J0"], vec!["not base64!"]] {
        let failed =
            failed_fairings(app(figment("debug").merge(("sessions.signing_keys", keys)))).await;
        assert_eq!(failed, ["Sessions"]);
    }
}

#[rocket::async_test]
async fn a_malformed_encryption_key_refuses_launch() {
    // Not base64, 16 bytes, 48 bytes, the same key twice.
    let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    for keys in [
        vec!["not base64!"],
        vec!["dG9vIHNob3J0IHNpeHRlZW4="],
        vec!["AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"],
        vec![key, key],
    ] {
        let figment = figment("debug").merge(("sessions.encryption_keys", keys.clone()));
        assert_eq!(
            failed_fairings(app(figment)).await,
            ["Sessions"],
            "{keys:?}"
        );
    }
}

#[rocket::async_test]
async fn an_unreachable_store_refuses_launch() {
    let figment = figment("debug")
        .merge(("sessions.url", "mysql://root@127.0.0.1:1/test"))
        .merge(("sessions.connect_timeout", 1));
    assert_eq!(failed_fairings(app(figment)).await, ["Sessions"]);
}

#[rocket::async_test]
async fn a_route_with_a_session_but_no_fairing_is_refused() {
    let rocket = rocket::custom(figment("debug")).mount("/", routes![theme, set]);
    match Client::untracked(rocket).await {
        Ok(_) => panic!("launch should have failed"),
        Err(error) => match error.kind() {
            ErrorKind::SentinelAborts(sentries) => assert_eq!(sentries.len(), 2),
            other => panic!("unexpected launch error: {other:?}"),
        },
    }
}

#[rocket::async_test]
async fn settings_come_from_the_sessions_table() {
    let figment = figment("debug")
        .merge(("sessions.cookie_name", "sid"))
        .merge(("sessions.secure", false))
        .merge(("sessions.same_site", "strict"))
        .merge(("sessions.persistent", false))
        .merge(("sessions.domain", "example.com"))
        .merge(("sessions.path", "/app"));
    let client = Client::untracked(app(figment)).await.unwrap();
    let response = client.get("/set/dark").dispatch().await;
    let header = response
        .headers()
        .get_one("Set-Cookie")
        .unwrap()
        .to_string();
    let cookie = rocket::http::Cookie::parse(header.clone()).unwrap();
    assert_eq!(cookie.name(), "sid");
    assert_eq!(cookie.secure(), None, "{header}");
    assert_eq!(cookie.http_only(), Some(true), "HttpOnly is always on");
    assert_eq!(cookie.same_site(), Some(rocket::http::SameSite::Strict));
    assert_eq!(
        cookie.max_age(),
        None,
        "a browser-session cookie has no Max-Age"
    );
    assert_eq!(cookie.domain(), Some("example.com"));
    assert_eq!(cookie.path(), Some("/app"));
}

#[rocket::async_test]
async fn sqlite_url_creates_the_file_and_tables() {
    let dir = std::env::temp_dir().join(format!("session-launch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sessions.db");
    let url = format!("sqlite://{}", path.display());
    let client = Client::untracked(app(figment("release").merge(("sessions.url", url))))
        .await
        .expect("sqlite launches in release");
    let state = Sessions::state(client.rocket()).unwrap();
    assert_eq!(state.store_kind(), "sqlite");
    assert!(path.exists());
    let token = {
        let response = client.get("/set/dark").dispatch().await;
        let header = response
            .headers()
            .get_one("Set-Cookie")
            .unwrap()
            .to_string();
        rocket::http::Cookie::parse(header)
            .unwrap()
            .value()
            .to_string()
    };
    let response = client
        .get("/theme")
        .cookie(("session", token))
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.unwrap(), "dark");
    client.terminate().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[rocket::async_test]
async fn create_tables_false_refuses_launch_when_tables_are_missing() {
    let dir = std::env::temp_dir().join(format!("session-notables-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("empty.db").display());
    let figment = figment("debug")
        .merge(("sessions.url", url))
        .merge(("sessions.create_tables", false));
    assert_eq!(failed_fairings(app(figment)).await, ["Sessions"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[rocket::async_test]
async fn cookie_prefixes_and_touch_after_are_validated_at_launch() {
    let memory = || figment("debug").merge(("sessions.url", "memory"));
    let refused = [
        memory()
            .merge(("sessions.cookie_name", "__Host-session"))
            .merge(("sessions.path", "/app")),
        memory()
            .merge(("sessions.cookie_name", "__Host-session"))
            .merge(("sessions.domain", "example.com")),
        memory()
            .merge(("sessions.cookie_name", "__Host-session"))
            .merge(("sessions.secure", false)),
        memory()
            .merge(("sessions.cookie_name", "__Secure-session"))
            .merge(("sessions.secure", false)),
        memory()
            .merge(("sessions.ttl", 60))
            .merge(("sessions.touch_after", 60)),
    ];
    for figment in refused {
        assert_eq!(failed_fairings(app(figment)).await, ["Sessions"]);
    }
    let host = memory().merge(("sessions.cookie_name", "__Host-session"));
    let client = Client::untracked(app(host))
        .await
        .expect("a valid __Host- cookie launches");
    let response = client.get("/set/dark").dispatch().await;
    let cookie = response
        .headers()
        .get_one("Set-Cookie")
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("__Host-session="), "{cookie}");
    assert!(cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"));
}

#[derive(Session)]
struct Account {
    #[session(index)]
    user_id: u64,
    #[session(versioned)]
    visits: u64,
}

#[get("/account")]
async fn account(session: Session<Account>) -> Result<String, SessionError> {
    Ok(session.user_id().await?.to_string())
}

/// Launch says what is on (the lines it logs at info level): the store and
/// prefix, signing and encryption with their key counts, each session
/// type's indexed and versioned fields, the event handlers; never a key.
#[rocket::async_test]
async fn launch_says_what_is_on() {
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let other = "HxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAB8eHRw=";
    let configured = figment("debug")
        .merge(("sessions.url", "memory"))
        .merge(("sessions.table_prefix", "shop_"))
        .merge(("sessions.encryption_keys", [key, other]))
        .merge(("sessions.signing_keys", [key]));
    let rocket = rocket::custom(configured)
        .attach(Sessions::fairing().on_event(|_| {}))
        .mount("/", routes![theme, account]);
    let client = Client::untracked(rocket).await.expect("launches");
    let summary = Sessions::state(client.rocket())
        .unwrap()
        .summary()
        .join("\n");
    for expected in [
        "memory store, table / key prefix `shop_`",
        "cookies signed (1 key); values encrypted (AES-256-GCM, 2 keys)",
        "session type launch::Account: indexed user_id, versioned visits",
        "session type launch::Prefs: indexed none, versioned none",
        "lifecycle events: 1 handler(s)",
    ] {
        assert!(summary.contains(expected), "`{expected}` in:\n{summary}");
    }
    assert!(
        !summary.contains(key) && !summary.contains(other),
        "{summary}"
    );

    let plain = Client::untracked(app(figment("debug").merge(("sessions.url", "memory"))))
        .await
        .unwrap();
    let summary = Sessions::state(plain.rocket())
        .unwrap()
        .summary()
        .join("\n");
    assert!(summary.contains("table / key prefix none"), "{summary}");
    assert!(
        summary.contains("cookies not signed; values not encrypted"),
        "{summary}"
    );
    assert!(
        summary.contains("lifecycle events: no handlers"),
        "{summary}"
    );
}
