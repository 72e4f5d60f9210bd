//! Tokens that rotate, over HTTP on every server-side store (MySQL,
//! PostgreSQL, SQLite, Redis; the memory store too), in real time
//! (`rotate_after = 3`, `rotation_grace = 2`):
//!
//! - 32 parallel requests with one cookie, sent over the second at which
//!   its token becomes due: every one answers 200 and its write lands;
//!   exactly one response sets a new cookie, the others set none;
//! - after the grace, the new token has every write and the session
//!   lives (no theft was suspected);
//! - the replaced token presented then ends the session for both holders.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rocket::{get, post, routes};
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{figment, http, launch, unique};

/// `user` and 32 numbers, one per parallel request.
macro_rules! burst {
    ($($i:literal $field:ident $set:ident),*) => {
        #[derive(Session)]
        struct Burst {
            user: Option<u64>,
            $($field: u32,)*
        }

        #[post("/hit/<i>")]
        async fn hit(i: usize, mut s: Session<Burst>) -> Result<String, SessionError> {
            let user = *s.user().await?;
            match i {
                $($i => s.$set(1000 + $i),)*
                _ => return Ok("no such field".into()),
            }
            Ok(format!("{user:?}"))
        }

        #[get("/all")]
        async fn all(s: Session<Burst>) -> Result<String, SessionError> {
            let mut out = format!("{:?}", *s.user().await?);
            $(out.push_str(&format!(" {}", *s.$field().await?));)*
            Ok(out)
        }
    };
}

burst!(0 f0 set_f0, 1 f1 set_f1, 2 f2 set_f2, 3 f3 set_f3, 4 f4 set_f4, 5 f5 set_f5,
    6 f6 set_f6, 7 f7 set_f7, 8 f8 set_f8, 9 f9 set_f9, 10 f10 set_f10, 11 f11 set_f11,
    12 f12 set_f12, 13 f13 set_f13, 14 f14 set_f14, 15 f15 set_f15, 16 f16 set_f16,
    17 f17 set_f17, 18 f18 set_f18, 19 f19 set_f19, 20 f20 set_f20, 21 f21 set_f21,
    22 f22 set_f22, 23 f23 set_f23, 24 f24 set_f24, 25 f25 set_f25, 26 f26 set_f26,
    27 f27 set_f27, 28 f28 set_f28, 29 f29 set_f29, 30 f30 set_f30, 31 f31 set_f31);

#[post("/login")]
fn login(mut s: Session<Burst>) -> &'static str {
    s.regenerate();
    s.set_user(Some(7));
    "ok"
}

/// Seconds since the epoch, with the fraction.
fn clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Sleeps until the clock reads `at` (seconds since the epoch).
async fn until(at: f64) {
    let left = at - clock();
    if left > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(left)).await;
    }
}

async fn scenario(url: String) {
    let rocket = rocket::custom(
        figment()
            .merge(("sessions.url", url))
            .merge(("sessions.table_prefix", unique("rot")))
            .merge(("sessions.rotate_after", 3))
            .merge(("sessions.rotation_grace", 2)),
    )
    .attach(Sessions::fairing())
    .mount("/", routes![login, hit, all]);
    let (app, _, _) = launch(rocket).await;

    // Log in at the start of a second, so its token is due at a known one.
    until(clock().ceil() + 0.05).await;
    let issued = clock().floor();
    let (status, first, _) = http(app, "POST", "/login", None).await;
    assert_eq!(status, 200);
    let first = first.expect("login sets a cookie");

    // 32 requests 30 ms apart from 0.5 s before the token is due: the
    // first ones find it not due yet, the others due; all carry it.
    until(issued + 3.0 - 0.5).await;
    let mut sent = Vec::new();
    for i in 0..32usize {
        let cookie = first.clone();
        sent.push(tokio::spawn(async move {
            http(app, "POST", &format!("/hit/{i}"), Some(&cookie)).await
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut set = Vec::new();
    for (i, request) in sent.into_iter().enumerate() {
        let (status, cookie, body) = request.await.unwrap();
        assert_eq!((status, body.as_str()), (200, "Some(7)"), "request {i}");
        set.extend(cookie);
    }
    assert_eq!(set.len(), 1, "exactly one response sets a cookie: {set:?}");
    let second = set.pop().unwrap();
    assert_ne!(second, first, "a new token");

    // After the grace: every write is there, and the session lives.
    until(issued + 3.0 + 2.0 + 1.0).await;
    let expected: String = std::iter::once("Some(7)".to_string())
        .chain((0..32).map(|i| (1000 + i).to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let (status, cookie, body) = http(app, "GET", "/all", Some(&second)).await;
    assert_eq!((status, body.as_str()), (200, expected.as_str()));
    // Three seconds after its issue, the new token is due in turn.
    let third = cookie.expect("the second token rotates in turn");
    assert_ne!(third, second);

    // The replaced token, after its grace: both holders lose the session.
    let (status, cookie, body) = http(app, "GET", "/all", Some(&first)).await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("None"),
        "the replay gets no session: {body}"
    );
    assert_eq!(cookie.as_deref(), Some(""), "and its cookie is removed");
    let (_, _, body) = http(app, "GET", "/all", Some(&third)).await;
    assert!(
        body.starts_with("None"),
        "the owner's session ended too: {body}"
    );
}

#[rocket::async_test]
async fn rotation_over_http_on_mysql() {
    scenario(std::env::var("DATABASE_URL").expect("DATABASE_URL (see .cargo/config.toml)")).await;
}

#[rocket::async_test]
async fn rotation_over_http_on_postgres() {
    scenario(std::env::var("POSTGRES_URL").expect("POSTGRES_URL (see .cargo/config.toml)")).await;
}

#[rocket::async_test]
async fn rotation_over_http_on_redis() {
    scenario(std::env::var("REDIS_URL").expect("REDIS_URL (see .cargo/config.toml)")).await;
}

#[rocket::async_test]
async fn rotation_over_http_on_sqlite() {
    let dir = std::env::temp_dir().join(unique("rotation-sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    scenario(format!("sqlite://{}", dir.join("sessions.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[rocket::async_test]
async fn rotation_over_http_in_memory() {
    scenario("memory".into()).await;
}
