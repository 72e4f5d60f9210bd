//! Versioned fields over HTTP on the real servers: concurrent `update_x`
//! from many clients keeps every increment; two plain writes of one
//! versioned field cannot both land (one answers 409), and the stored
//! session is one request's, never a mix.

use std::net::SocketAddr;
use std::sync::Arc;

use rocket::tokio::sync::Barrier;
use rocket::{get, post, routes, State};
use session_rocket::store::memory::MemoryStore;
use session_rocket::store::SessionStore;
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{figment, http, launch};

#[derive(Session)]
struct Visits {
    #[session(versioned)]
    visits: u64,
    note: String,
}

/// Lets two requests both load the session before either changes it.
struct Gate(Barrier);

/// A new session; with `visits`, the versioned field is stored from the
/// start (its writes are then updates, otherwise the first is an insert).
#[post("/login?<visits>")]
fn login(mut s: Session<Visits>, visits: Option<u64>) -> &'static str {
    s.set_note("start".into());
    if let Some(visits) = visits {
        s.set_visits(visits);
    }
    "ok"
}

#[post("/hit")]
async fn hit(mut s: Session<Visits>) -> Result<String, SessionError> {
    let after = s
        .update_visits(|v| {
            *v += 1;
            *v
        })
        .await?;
    Ok(after.to_string())
}

#[get("/show")]
async fn show(s: Session<Visits>) -> Result<String, SessionError> {
    Ok(format!("{} {}", s.visits().await?, s.note().await?))
}

/// A plain read-modify-write of the versioned field plus a plain field,
/// after both racing requests have loaded. With `save`, the handler
/// saves itself and its `?` answers the conflict.
#[post("/plain/<n>?<save>")]
async fn plain(
    mut s: Session<Visits>,
    n: u64,
    save: bool,
    gate: &State<Gate>,
) -> Result<String, SessionError> {
    let before = *s.visits().await?;
    gate.0.wait().await;
    *s.visits_mut().await? = before + n;
    s.set_note(n.to_string());
    if save {
        s.save().await?;
    }
    Ok("ok".into())
}

/// `clear()`, then `update_visits` in the same request (with `read`,
/// after the session was read): the update starts from the cleared
/// field's default.
#[post("/reset?<read>")]
async fn reset(mut s: Session<Visits>, read: bool) -> Result<String, SessionError> {
    if read {
        s.visits().await?;
    }
    s.clear();
    let after = s
        .update_visits(|v| {
            *v += 5;
            *v
        })
        .await?;
    Ok(after.to_string())
}

async fn app(store: Arc<dyn SessionStore>) -> SocketAddr {
    let rocket = rocket::custom(figment())
        .attach(Sessions::with_shared_store(store))
        .manage(Gate(Barrier::new(2)))
        .mount("/", routes![login, hit, show, plain, reset]);
    launch(rocket).await.0
}

async fn new_session(app: SocketAddr, visits: Option<u64>) -> String {
    let path = visits.map_or("/login".to_string(), |v| format!("/login?visits={v}"));
    let (status, cookie, _) = http(app, "POST", &path, None).await;
    assert_eq!(status, 200);
    cookie.expect("login sets the session cookie")
}

/// 32 clients, each calling `update_visits(|v| *v += 1)` 50 times on one
/// session: exactly 1,600.
async fn every_concurrent_increment_is_kept(store: Arc<dyn SessionStore>) {
    const CLIENTS: usize = 32;
    const EACH: usize = 50;
    let app = app(store).await;
    let cookie = new_session(app, None).await;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let cookie = cookie.clone();
            tokio::spawn(async move {
                for _ in 0..EACH {
                    let (status, _, body) = http(app, "POST", "/hit", Some(&cookie)).await;
                    assert_eq!(status, 200, "{body}");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let (status, _, body) = http(app, "GET", "/show", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert_eq!(body, format!("{} start", CLIENTS * EACH));
}

/// Two requests both change the versioned field with plain writes after
/// loading it: one is saved, the other answers 409 and writes nothing
/// (its plain field neither). Through the fairing and through `save()`,
/// with the field stored before (two updates) and not (two inserts).
async fn two_plain_writes_of_a_versioned_field_conflict(store: Arc<dyn SessionStore>) {
    let app = app(store).await;
    for (save, stored) in [
        (false, Some(0)),
        (true, Some(0)),
        (false, None),
        (true, None),
    ] {
        let cookie = new_session(app, stored).await;
        let one = {
            let cookie = cookie.clone();
            tokio::spawn(async move {
                http(app, "POST", &format!("/plain/1?save={save}"), Some(&cookie)).await
            })
        };
        let hundred = {
            let cookie = cookie.clone();
            tokio::spawn(async move {
                http(
                    app,
                    "POST",
                    &format!("/plain/100?save={save}"),
                    Some(&cookie),
                )
                .await
            })
        };
        let (one, hundred) = (one.await.unwrap(), hundred.await.unwrap());
        let mut statuses = [one.0, hundred.0];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 409],
            "save() = {save}, stored {stored:?}: {one:?} {hundred:?}"
        );
        let (_, _, shown) = http(app, "GET", "/show", Some(&cookie)).await;
        let expected = if one.0 == 200 { "1 1" } else { "100 100" };
        assert_eq!(
            shown, expected,
            "the stored session is the saved request's, whole"
        );
    }
}

/// `clear()` then `update_visits(|v| *v += 5)` in one request, with the
/// session read first or not: the handler sees 5, the next request reads
/// 5 (from the default 0, not the 3 stored before) and every other field
/// cleared, and later updates go on from there.
async fn update_after_clear_starts_from_the_default(store: Arc<dyn SessionStore>) {
    let app = app(store).await;
    for read in [false, true] {
        let cookie = new_session(app, Some(3)).await;
        let (status, _, body) =
            http(app, "POST", &format!("/reset?read={read}"), Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (200, "5"), "read first: {read}");
        let (_, _, shown) = http(app, "GET", "/show", Some(&cookie)).await;
        assert_eq!(
            shown, "5 ",
            "read first: {read}: 5 from the default, `note` cleared"
        );
        let (status, _, body) = http(app, "POST", "/hit", Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (200, "6"), "read first: {read}");
        let (_, _, shown) = http(app, "GET", "/show", Some(&cookie)).await;
        assert_eq!(shown, "6 ", "read first: {read}");
    }
}

#[rocket::async_test]
async fn update_after_clear_starts_from_the_default_on_mysql() {
    update_after_clear_starts_from_the_default(support::mysql().await).await;
}

#[rocket::async_test]
async fn update_after_clear_starts_from_the_default_in_memory() {
    update_after_clear_starts_from_the_default(Arc::new(MemoryStore::new())).await;
}

#[rocket::async_test]
async fn every_concurrent_increment_is_kept_on_mysql() {
    every_concurrent_increment_is_kept(support::mysql().await).await;
}

#[rocket::async_test]
async fn every_concurrent_increment_is_kept_on_sqlite() {
    every_concurrent_increment_is_kept(support::sqlite().await).await;
}

#[rocket::async_test]
async fn two_plain_writes_conflict_on_mysql() {
    two_plain_writes_of_a_versioned_field_conflict(support::mysql().await).await;
}

#[rocket::async_test]
async fn two_plain_writes_conflict_on_sqlite() {
    two_plain_writes_of_a_versioned_field_conflict(support::sqlite().await).await;
}
