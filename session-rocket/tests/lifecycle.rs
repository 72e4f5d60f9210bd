//! Session lifecycle controls through HTTP, on MariaDB (`DATABASE_URL`,
//! fails when unreachable) and on a SQLite file: remember me, `clear`,
//! `start_over`, writes after `destroy`, several fields in one borrow, and
//! `?` into `Status`.

use std::sync::Arc;

use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, post, routes};
use session_rocket::store::SessionStore;
use session_rocket::{Session, SessionError, Sessions, Token};

#[derive(Session)]
struct Notes {
    user: Option<String>,
    todos: Vec<(u32, String)>,
    next_id: u32,
    flash: Option<String>,
    theme: String,
}

#[derive(Session)]
struct Prefs {
    theme: String,
}

#[post("/login/<name>?<remember>")]
fn login(mut s: Session<Notes>, name: &str, remember: bool) {
    s.regenerate();
    s.set_user(Some(name.to_string()));
    if remember {
        s.set_expiry(30 * 24 * 3600);
    } else {
        s.expire_on_close();
    }
}

#[get("/me")]
async fn me(s: Session<Notes>) -> Result<String, SessionError> {
    let user = s.user().await?.clone().unwrap_or_default();
    let todos = s.todos().await?.len();
    let flash = s.flash().await?.clone().unwrap_or_default();
    Ok(format!(
        "{user}|{todos}|{}|{flash}|{}",
        s.next_id().await?,
        s.theme().await?
    ))
}

#[post("/todo/<text>")]
async fn todo(mut s: Session<Notes>, text: &str) -> Result<String, Status> {
    // several fields in one borrow, and `?` straight into `Status`
    let f = s.fields_mut().await?;
    *f.next_id += 1;
    f.todos.push((*f.next_id, text.to_string()));
    Ok(f.next_id.to_string())
}

#[post("/theme/<value>")]
fn theme(mut s: Session<Notes>, value: &str) {
    s.set_theme(value.to_string());
}

#[post("/clear")]
fn clear(mut s: Session<Notes>) {
    s.clear();
}

#[post("/logout")]
async fn logout(mut s: Session<Notes>) -> Result<(), SessionError> {
    s.start_over().await?;
    s.set_flash(Some("logged out".into()));
    Ok(())
}

#[post("/destroy-then-write")]
async fn destroy_then_write(
    s: Session<Notes>,
    mut prefs: Session<Prefs>,
) -> Result<(), SessionError> {
    s.destroy().await?;
    prefs.set_theme("lost".into());
    Ok(())
}

#[get("/strict")]
async fn strict(s: Session<Notes>) -> Result<String, Status> {
    Ok(s.theme().await?.clone())
}

mod support;
use support::{get, post};

fn figment() -> Figment {
    rocket::Config::figment().merge(("log_level", "off"))
}

async fn client(store: Arc<dyn SessionStore>, figment: Figment) -> Client {
    let rocket = rocket::custom(figment)
        .attach(Sessions::with_shared_store(store))
        .mount(
            "/",
            routes![
                login,
                me,
                todo,
                theme,
                clear,
                logout,
                destroy_then_write,
                strict
            ],
        );
    Client::untracked(rocket).await.expect("launch")
}

/// Remember me is the session's own choice, kept by later requests.
async fn remember_me_is_per_session(store: Arc<dyn SessionStore>) {
    // `rolling` so every request that reads the session refreshes the cookie
    let c = client(store, figment().merge(("sessions.rolling", true))).await;
    let (_, set) = post(&c, "/login/ann?remember=true", None).await;
    assert_eq!(
        set[0].max_age(),
        Some(rocket::time::Duration::days(30)),
        "remembered"
    );
    let ann = set[0].value().to_string();
    let (_, set, _) = get(&c, "/me", &ann).await;
    assert!(
        set[0].max_age().is_some(),
        "a later request keeps the persistent cookie"
    );

    let (_, set) = post(&c, "/login/bob?remember=false", None).await;
    assert_eq!(
        set[0].max_age(),
        None,
        "not remembered: a browser-session cookie"
    );
    let bob = set[0].value().to_string();
    let (_, set, body) = get(&c, "/me", &bob).await;
    assert!(body.starts_with("bob|"));
    assert_eq!(
        set[0].max_age(),
        None,
        "a later request keeps the browser-session cookie"
    );

    // with `persistent = false`, a remembered login is still persistent
    let c2 = client(
        Arc::clone(&mysql_or(&c).await),
        figment().merge(("sessions.persistent", false)),
    )
    .await;
    let (_, set) = post(&c2, "/login/cy?remember=true", None).await;
    assert_eq!(set[0].max_age(), Some(rocket::time::Duration::days(30)));
}

/// The store behind a client, for a second app on the same store.
async fn mysql_or(client: &Client) -> Arc<dyn SessionStore> {
    Sessions::state(client.rocket())
        .unwrap()
        .store()
        .unwrap()
        .clone()
}

/// `clear()` resets every field and keeps the token; `start_over()` ends
/// the session and continues on a fresh one in the same request.
async fn clear_and_start_over(store: Arc<dyn SessionStore>) {
    let c = client(store, figment()).await;
    let (_, set) = post(&c, "/login/ann?remember=false", None).await;
    let token = set[0].value().to_string();
    assert_eq!(post(&c, "/todo/milk", Some(&token)).await.0, Status::Ok);
    assert_eq!(post(&c, "/theme/dark", Some(&token)).await.0, Status::Ok);
    let (_, _, body) = get(&c, "/me", &token).await;
    assert_eq!(body, "ann|1|1||dark");

    let (status, set) = post(&c, "/clear", Some(&token)).await;
    assert_eq!(status, Status::Ok);
    assert!(set.is_empty(), "same token: {set:?}");
    let (_, _, body) = get(&c, "/me", &token).await;
    assert_eq!(body, "|0|0||", "every field back to its default");

    assert_eq!(post(&c, "/todo/eggs", Some(&token)).await.0, Status::Ok);
    let (status, set) = post(&c, "/logout", Some(&token)).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(set.len(), 1, "{set:?}");
    let fresh = set[0].value().to_string();
    assert!(
        !fresh.is_empty() && fresh != token,
        "a fresh token for the fresh session"
    );
    let (_, _, body) = get(&c, "/me", &fresh).await;
    assert_eq!(
        body, "|0|0|logged out|",
        "only what was written after start_over"
    );
    let (_, _, body) = get(&c, "/me", &token).await;
    assert_eq!(body, "|0|0||", "the old session is gone");
}

/// A write after `destroy()` fails loudly; several fields change in one
/// borrow; `?` on an accessor converts into `Status`.
async fn loud_writes_borrows_and_status(store: Arc<dyn SessionStore>) {
    let c = client(store.clone(), figment()).await;
    let (_, set) = post(&c, "/login/ann?remember=false", None).await;
    let token = set[0].value().to_string();
    let (status, set) = post(&c, "/destroy-then-write", Some(&token)).await;
    assert_eq!(
        status,
        Status::InternalServerError,
        "never a 200 that stored nothing"
    );
    // The destroy itself was committed: the response removes the cookie.
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].value().is_empty(), "a removal: {set:?}");

    let (_, set) = post(&c, "/login/bob?remember=false", None).await;
    let token = set[0].value().to_string();
    for n in 1..=3 {
        let response = c
            .post(format!("/todo/t{n}"))
            .cookie(("session", token.clone()))
            .dispatch()
            .await;
        assert_eq!(response.into_string().await.unwrap(), n.to_string());
    }
    let (_, _, body) = get(&c, "/me", &token).await;
    assert_eq!(body, "bob|3|3||");

    // an undecodable field under `on_decode_error = "error"`: `?` in a
    // handler returning `Result<_, Status>` answers 500
    let strict = client(
        store.clone(),
        figment().merge(("sessions.on_decode_error", "error")),
    )
    .await;
    let (_, set) = post(&strict, "/login/cy?remember=false", None).await;
    let token = set[0].value().to_string();
    let (status, _, body) = get(&strict, "/strict", &token).await;
    assert_eq!((status, body.as_str()), (Status::Ok, ""));
    let key = Token::parse(&token).unwrap().store_key();
    let now = session_rocket::store::Validity {
        now: time_now(),
        created_after: 0,
    };
    let bad = session_rocket::store::Changes {
        upsert: vec![("theme", b"[1]".to_vec())],
        ..Default::default()
    };
    store.save(&key, &bad, now).await.unwrap();
    let (status, _, _) = get(&strict, "/strict", &token).await;
    assert_eq!(
        status,
        Status::InternalServerError,
        "`?` turned the decode error into a 500"
    );
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

on_every_store!(
    remember_me_is_per_session,
    clear_and_start_over,
    loud_writes_borrows_and_status,
);
