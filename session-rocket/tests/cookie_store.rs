//! The cookie store through the fairing (`url = "cookie"`, feature
//! `cookie`): the session travels in its sealed cookie, a session too
//! large for a cookie is an error the handler sees, and a session type the
//! store cannot keep refuses launch.

use rocket::error::ErrorKind;
use rocket::http::Status;
use rocket::{get, post, routes};
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{figment, http, launch};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Session)]
struct Account {
    user: Option<u64>,
    visits: u32,
    notes: String,
}

#[post("/login")]
fn login(mut s: Session<Account>) -> &'static str {
    s.regenerate();
    s.set_user(Some(7));
    "ok"
}

#[post("/visit")]
async fn visit(mut s: Session<Account>) -> Result<String, SessionError> {
    *s.visits_mut().await? += 1;
    Ok(s.visits().await?.to_string())
}

#[get("/me")]
async fn me(s: Session<Account>) -> Result<String, SessionError> {
    Ok(format!("{:?} {}", s.user().await?, s.visits().await?))
}

#[post("/logout")]
async fn logout(s: Session<Account>) -> Result<&'static str, SessionError> {
    s.destroy().await?;
    Ok("bye")
}

/// Saves in the handler, so it can answer a session too large itself:
/// the change is still pending after the error, so it puts the previous
/// value back (the fairing then has nothing to write).
#[post("/note/<size>")]
async fn note(mut s: Session<Account>, size: usize) -> Result<(Status, String), SessionError> {
    let previous = s.notes().await?.clone();
    s.set_notes("n".repeat(size));
    Ok(match s.save().await {
        Ok(()) => (Status::Ok, "saved".into()),
        Err(error) => {
            s.set_notes(previous);
            (Status::PayloadTooLarge, error.to_string())
        }
    })
}

/// Leaves the save to the fairing.
#[post("/note-unsaved/<size>")]
fn note_unsaved(mut s: Session<Account>, size: usize) -> &'static str {
    s.set_notes("n".repeat(size));
    "ok"
}

fn shop(figment: rocket::figment::Figment) -> rocket::Rocket<rocket::Build> {
    rocket::custom(figment.merge(("sessions.url", "cookie")))
        .attach(Sessions::fairing())
        .mount("/", routes![login, visit, me, logout, note, note_unsaved])
}

#[rocket::async_test]
async fn a_session_lives_in_its_cookie_and_ends_with_it() {
    let (app, _, _) = launch(shop(figment().merge(("sessions.encryption_keys", [KEY])))).await;
    let (status, cookie, _) = http(app, "POST", "/login", None).await;
    assert_eq!(status, 200);
    let mut cookie = cookie.expect("login sets the cookie");
    for expected in ["1", "2", "3"] {
        let (status, next, body) = http(app, "POST", "/visit", Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (200, expected));
        cookie = next.expect("every change sends the session again");
    }
    // A read sends nothing.
    let (_, none, body) = http(app, "GET", "/me", Some(&cookie)).await;
    assert_eq!((none, body.as_str()), (None, "Some(7) 3"));

    // An altered cookie is no session.
    let mut tampered = cookie.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(http(app, "GET", "/me", Some(&tampered)).await.2, "None 0");

    // logout: the cookie is removed
    let (status, removed, _) = http(app, "POST", "/logout", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert_eq!(removed.as_deref(), Some(""));
}

#[rocket::async_test]
async fn a_session_too_large_for_its_cookie_is_an_error_not_a_lost_cookie() {
    let (app, _, _) = launch(shop(figment().merge(("sessions.encryption_keys", [KEY])))).await;
    let cookie = http(app, "POST", "/login", None).await.1.unwrap();

    // The handler's own save sees it, and answers as it likes.
    let (status, set, body) = http(app, "POST", "/note/5000", Some(&cookie)).await;
    assert_eq!(status, 413);
    assert!(body.contains("4096") && body.contains("cookie"), "{body}");
    // The note put back (an empty one where there was none) is saved.
    let after = set.expect("the put-back note is a change");
    assert_eq!(http(app, "GET", "/me", Some(&after)).await.2, "Some(7) 0");

    // Left to the fairing: a 500 with the cause logged, never a 200
    // whose cookie the browser would drop.
    let (status, set, _) = http(app, "POST", "/note-unsaved/5000", Some(&cookie)).await;
    assert_eq!(status, 500);
    assert_eq!(set, None);

    // The session is as it was; a note that fits is kept.
    assert_eq!(http(app, "GET", "/me", Some(&cookie)).await.2, "Some(7) 0");
    let (status, set, _) = http(app, "POST", "/note/2000", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(set.unwrap().len() < 4096);
}

#[rocket::async_test]
async fn rockets_secret_key_seals_the_cookie_when_no_key_is_set() {
    let secret = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
    let (app, _, _) = launch(shop(figment().merge(("secret_key", secret)))).await;
    let cookie = http(app, "POST", "/login", None).await.1.unwrap();
    assert_eq!(http(app, "GET", "/me", Some(&cookie)).await.2, "Some(7) 0");

    // Without either, launch is refused.
    let error = shop(figment()).ignite().await.unwrap_err();
    match error.kind() {
        ErrorKind::FailedFairings(failed) => assert_eq!(failed[0].name, "Sessions"),
        other => panic!("unexpected launch error: {other:?}"),
    }
}

#[derive(Session)]
struct Devices {
    #[session(index)]
    user_id: u64,
}

#[get("/devices")]
async fn devices(s: Session<Devices>) -> Result<String, SessionError> {
    Ok(s.user_id().await?.to_string())
}

#[rocket::async_test]
async fn a_session_type_the_cookie_store_cannot_keep_refuses_launch() {
    let rocket = rocket::custom(
        figment()
            .merge(("sessions.url", "cookie"))
            .merge(("sessions.encryption_keys", [KEY])),
    )
    .attach(Sessions::fairing())
    .mount("/", routes![devices]);
    match rocket.ignite().await {
        Ok(_) => panic!("launch should have been refused"),
        Err(error) => match error.kind() {
            ErrorKind::SentinelAborts(sentries) => assert_eq!(sentries.len(), 1),
            other => panic!("unexpected launch error: {other:?}"),
        },
    }
    // The same route on a server-side store launches.
    let rocket = rocket::custom(figment().merge(("sessions.url", "memory")))
        .attach(Sessions::fairing())
        .mount("/", routes![devices]);
    assert!(rocket.ignite().await.is_ok());
}
