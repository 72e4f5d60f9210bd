//! "Log out everywhere" in the shop, on its SQLite store: Ann signs in on
//! two browsers and Bob on a third; Ann's "Log out everywhere" on one of
//! hers first asks her to confirm who she is (a step-up, open 10 minutes),
//! then ends both of Ann's sessions and leaves Bob's.

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;

/// The `session` cookie a response sets.
fn session_cookie(response: &rocket::local::asynchronous::LocalResponse<'_>) -> String {
    response
        .cookies()
        .get("session")
        .expect("the response sets the session cookie")
        .value()
        .to_string()
}

async fn log_in(client: &Client, name: &str) -> String {
    let response = client
        .post("/login")
        .header(ContentType::Form)
        .body(format!("username={name}"))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    session_cookie(&response)
}

/// Who the home page greets with this cookie (`None`: the login form).
async fn who(client: &Client, cookie: &str) -> Option<String> {
    let body = client
        .get("/")
        .cookie(("session", cookie.to_string()))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    let start = body.find(r#"<strong id="user">"#)? + r#"<strong id="user">"#.len();
    Some(body[start..start + body[start..].find('<')?].to_string())
}

#[rocket::async_test]
async fn log_out_everywhere_ends_every_session_of_the_user_only() {
    let db = std::env::temp_dir().join(format!("shop-everywhere-{}.db", std::process::id()));
    let figment = shop::figment().merge(("sessions.url", format!("sqlite://{}", db.display())));
    let client = Client::untracked(shop::rocket(figment))
        .await
        .expect("launch");
    let ann_laptop = log_in(&client, "ann").await;
    let ann_phone = log_in(&client, "ann").await;
    let bob = log_in(&client, "bob").await;
    assert_eq!(who(&client, &ann_phone).await.as_deref(), Some("ann"));

    // Not confirmed yet: sent to the step-up, nobody is logged out.
    let response = client
        .post("/logout-everywhere")
        .cookie(("session", ann_laptop.clone()))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(response.headers().get_one("Location"), Some("/confirm"));
    drop(response);
    assert_eq!(who(&client, &ann_phone).await.as_deref(), Some("ann"));

    // A wrong name opens nothing; hers opens the window, under a new token.
    let confirm = |cookie: String, name: &'static str| {
        let client = &client;
        async move {
            client
                .post("/confirm")
                .header(ContentType::Form)
                .cookie(("session", cookie))
                .body(format!("username={name}"))
                .dispatch()
                .await
        }
    };
    let wrong = confirm(ann_laptop.clone(), "bob").await;
    assert_eq!(wrong.headers().get_one("Location"), Some("/confirm"));
    drop(wrong);
    let right = confirm(ann_laptop.clone(), "ann").await;
    assert_eq!(right.headers().get_one("Location"), Some("/account"));
    let ann_laptop = session_cookie(&right);
    drop(right);

    let status = client
        .post("/logout-everywhere")
        .cookie(("session", ann_laptop.clone()))
        .dispatch()
        .await
        .status();
    assert_eq!(status, Status::SeeOther);
    assert_eq!(who(&client, &ann_laptop).await, None);
    assert_eq!(who(&client, &ann_phone).await, None, "the other device too");
    assert_eq!(who(&client, &bob).await.as_deref(), Some("bob"));
    drop(client);
    let _ = std::fs::remove_file(&db);
}
