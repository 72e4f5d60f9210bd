//! "Log out everywhere" over HTTP on MariaDB: user 42 on three devices,
//! user 7 on one; from the laptop, "sign out my other devices" ends the
//! phone and the tablet in one transaction and leaves the laptop and user 7
//! alone; a slow request on the phone, in flight meanwhile, cannot bring
//! its session back (it answers 409).

use std::sync::Arc;
use std::time::Duration;

use rocket::{get, post, routes};
use session_rocket::store::SessionStore;
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{figment, http, launch};

#[derive(Session)]
struct Account {
    #[session(index)]
    user_id: Option<u64>,
    device: String,
}

#[post("/login?<user>&<device>")]
fn login(mut s: Session<Account>, user: u64, device: &str) -> &'static str {
    s.set_user_id(Some(user));
    s.set_device(device.into());
    s.regenerate();
    "ok"
}

#[get("/me")]
async fn me(s: Session<Account>) -> Result<String, SessionError> {
    Ok(format!("{:?} {}", s.user_id().await?, s.device().await?))
}

/// The devices of this user's sessions, the current one marked `*`.
#[get("/devices")]
async fn devices(s: Session<Account>) -> Result<String, SessionError> {
    let user = *s.user_id().await?;
    let mut list: Vec<String> = s
        .sessions_by_user_id(&user)
        .await?
        .iter()
        .map(|d| {
            let device: String = d.field("device").unwrap_or_default();
            if d.is_current() {
                format!("{device}*")
            } else {
                device
            }
        })
        .collect();
    list.sort();
    Ok(list.join(","))
}

#[post("/logout-others")]
async fn logout_others(mut s: Session<Account>) -> Result<String, SessionError> {
    let user = *s.user_id().await?;
    Ok(s.destroy_other_sessions_by_user_id(&user)
        .await?
        .to_string())
}

/// Reads the session, waits, then writes: a request in flight.
#[post("/slow-rename")]
async fn slow_rename(mut s: Session<Account>) -> Result<&'static str, SessionError> {
    s.device_mut().await?.push_str(" (renamed)");
    tokio::time::sleep(Duration::from_millis(600)).await;
    Ok("renamed")
}

#[rocket::async_test]
async fn sign_out_my_other_devices() {
    let store: Arc<dyn SessionStore> = support::mysql().await;
    let rocket = rocket::custom(figment())
        .attach(Sessions::with_shared_store(store.clone()))
        .mount("/", routes![login, me, devices, logout_others, slow_rename]);
    let (app, _, _) = launch(rocket).await;
    let mut cookies = Vec::new();
    for (user, device) in [(42, "laptop"), (42, "phone"), (42, "tablet"), (7, "desk")] {
        let (status, cookie, _) = http(
            app,
            "POST",
            &format!("/login?user={user}&device={device}"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        cookies.push(cookie.expect("login sets a cookie"));
    }
    let [laptop, phone, tablet, desk] = <[String; 4]>::try_from(cookies).unwrap();
    let get = |path: &'static str, cookie: String| async move {
        http(app, "GET", path, Some(&cookie)).await.2
    };
    assert_eq!(
        get("/devices", laptop.clone()).await,
        "laptop*,phone,tablet"
    );

    // The phone starts a slow request; the laptop signs the others out
    // while it runs.
    let in_flight = {
        let phone = phone.clone();
        tokio::spawn(async move { http(app, "POST", "/slow-rename", Some(&phone)).await.0 })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = store.stats();
    let (status, _, ended) = http(app, "POST", "/logout-others", Some(&laptop)).await;
    assert_eq!((status, ended.as_str()), (200, "2"));
    // The load of the laptop's session, then the claim that reports which
    // sessions ended: MySQL has no `DELETE … RETURNING`, so a locking
    // SELECT and the DELETE, in one transaction.
    assert_eq!((store.stats() - before).statements, 3);
    assert_eq!(
        in_flight.await.unwrap(),
        409,
        "the in-flight write is refused"
    );

    assert_eq!(
        get("/me", phone).await,
        "None ",
        "the phone stays signed out"
    );
    assert_eq!(get("/me", tablet).await, "None ");
    assert_eq!(get("/me", laptop.clone()).await, "Some(42) laptop");
    assert_eq!(get("/devices", laptop).await, "laptop*");
    assert_eq!(get("/me", desk.clone()).await, "Some(7) desk");
    assert_eq!(get("/devices", desk).await, "desk*");
}
