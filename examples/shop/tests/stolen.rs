//! A stolen cookie in the shop, on its SQLite store, with tokens that
//! rotate every 2 s (`rotate_after`, the shop's own being 15 minutes): Ann's
//! token is replaced while she shops; a copy of the old one, used after
//! the grace, ends her session (the thief's copy and hers), and her
//! activity page says why once she signs in again.

use std::time::Duration;

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

/// The `session` cookie a response sets, if any.
fn set_cookie(response: &LocalResponse<'_>) -> Option<String> {
    response
        .cookies()
        .get("session")
        .map(|c| c.value().to_string())
}

async fn log_in(client: &Client, name: &str) -> String {
    let response = client
        .post("/login")
        .header(ContentType::Form)
        .body(format!("username={name}"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    set_cookie(&response).expect("the login sets the session cookie")
}

/// The home page with this cookie: who it greets (`None`: the login form)
/// and the cookie it sets.
async fn home(client: &Client, cookie: &str) -> (Option<String>, Option<String>) {
    let response = client
        .get("/")
        .cookie(("session", cookie.to_string()))
        .dispatch()
        .await;
    let set = set_cookie(&response);
    let body = response.into_string().await.unwrap();
    let who = body.find(r#"<strong id="user">"#).and_then(|start| {
        let start = start + r#"<strong id="user">"#.len();
        Some(body[start..start + body[start..].find('<')?].to_string())
    });
    (who, set)
}

#[rocket::async_test]
async fn a_replayed_cookie_ends_the_session_and_the_activity_page_says_so() {
    let db = std::env::temp_dir().join(format!("shop-stolen-{}.db", std::process::id()));
    let figment = shop::figment()
        .merge(("sessions.url", format!("sqlite://{}", db.display())))
        .merge(("sessions.rotate_after", 2))
        .merge(("sessions.rotation_grace", 1));
    let client = Client::untracked(shop::rocket(figment))
        .await
        .expect("launch");
    let copied = log_in(&client, "ann").await;

    // Ann keeps shopping: her token is replaced, her session kept.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (who, set) = home(&client, &copied).await;
    assert_eq!(who.as_deref(), Some("ann"));
    let current = set.expect("the token rotated");
    assert_ne!(current, copied);
    assert_eq!(home(&client, &current).await.0.as_deref(), Some("ann"));

    // After the grace, someone uses the copy of the old cookie.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        home(&client, &copied).await.0,
        None,
        "the copy gets nothing"
    );
    assert_eq!(
        home(&client, &current).await.0,
        None,
        "Ann is signed out too"
    );

    // Signed in again, Ann's activity page says what happened.
    let again = log_in(&client, "ann").await;
    let mut page = String::new();
    for _ in 0..100 {
        page = client
            .get("/audit")
            .cookie(("session", again.clone()))
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap();
        if page.contains("an old copy of the session cookie was used") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        page.contains("signed out everywhere: an old copy of the session cookie was used"),
        "{page}"
    );
    drop(client);
    let _ = std::fs::remove_file(&db);
}
