//! Which answers save the request's changes, over HTTP on MariaDB
//! (`DATABASE_URL`; fails, never skips, when unreachable): nothing the
//! fairing would save is saved for a 5xx answer (`skip_on_server_error`,
//! the default), while a 4xx the handler returns itself is a handled
//! answer whose changes are saved. What the handler stored itself
//! (`update_x`) stays stored whatever the answer.

use rocket::http::Status;
use rocket::{get, post, routes};
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{figment, http, launch};

#[derive(Session)]
struct Account {
    note: String,
    #[session(versioned)]
    points: u64,
}

#[post("/login")]
fn login(mut s: Session<Account>) -> &'static str {
    s.set_note("start".into());
    "ok"
}

/// Changes `note` (saved by the fairing when the request ends) and adds a
/// point with `update_points` (stored at once), then answers `code`:
/// with a body of its own when `body`, else through Rocket's catcher.
#[post("/answer/<code>?<body>")]
async fn answer(
    mut s: Session<Account>,
    code: u16,
    body: bool,
) -> Result<(Status, &'static str), Status> {
    s.set_note(format!("answered {code}"));
    s.update_points(|p| *p += 1)
        .await
        .map_err(|e: SessionError| e.status())?;
    let status = Status::new(code);
    if body {
        Ok((status, "the handler's own answer"))
    } else {
        Err(status)
    }
}

#[get("/show")]
async fn show(s: Session<Account>) -> Result<String, SessionError> {
    Ok(format!("{} {}", s.note().await?, s.points().await?))
}

/// A 4xx the handler returns (409 among them) saves `note`; a 5xx saves
/// nothing the fairing would write (`note` stays), and the point that
/// `update_points` stored before the answer is kept either way.
#[rocket::async_test]
async fn a_handlers_4xx_saves_its_changes_and_a_5xx_does_not_on_mysql() {
    let rocket = rocket::custom(figment())
        .attach(Sessions::with_shared_store(support::mysql().await))
        .mount("/", routes![login, answer, show]);
    let (app, _shutdown, _server) = launch(rocket).await;
    for code in [400, 403, 404, 409, 422, 500, 502, 503] {
        for body in [false, true] {
            let (status, cookie, _) = http(app, "POST", "/login", None).await;
            assert_eq!(status, 200);
            let cookie = cookie.expect("login sets the cookie");
            let (status, _, _) = http(
                app,
                "POST",
                &format!("/answer/{code}?body={body}"),
                Some(&cookie),
            )
            .await;
            assert_eq!(status, code, "the handler's answer stands (body: {body})");
            let (status, _, shown) = http(app, "GET", "/show", Some(&cookie)).await;
            assert_eq!(status, 200);
            let expected = if code >= 500 {
                "start 1".to_string()
            } else {
                format!("answered {code} 1")
            };
            assert_eq!(shown, expected, "after a {code} (body: {body})");
        }
    }
}
