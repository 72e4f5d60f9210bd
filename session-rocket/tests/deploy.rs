//! A deploy that renames and retypes session fields, over HTTP on every
//! server-side store (MySQL, PostgreSQL, SQLite, Redis): the
//! release before and the release after run side by side on one store.
//!
//! - sessions written by the first release are read by the second with
//!   their values carried over: `cart` (names) is now `lines` (name and
//!   quantity), `visits` (a count) a versioned struct;
//! - 16 requests of the second release bumping the count at once, while
//!   another adds to the cart, lose nothing (the move is one
//!   compare-and-set, the rest count on from it);
//! - a value whose conversion fails reads as empty in the second release
//!   and keeps its bytes: the first release still reads it, after the
//!   second wrote other fields of the session.

use rocket::{get, post, routes};
use serde::{Deserialize, Serialize};
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{figment, http, launch, unique};

/// The release before.
#[derive(Session)]
struct ShopV1 {
    user: Option<u64>,
    cart: Vec<String>,
    #[session(versioned)]
    visits: u64,
}

#[post("/login")]
async fn login_v1(mut s: Session<ShopV1>) -> &'static str {
    s.regenerate();
    s.set_user(Some(7));
    "ok"
}

#[post("/add/<name>")]
async fn add_v1(name: &str, mut s: Session<ShopV1>) -> Result<&'static str, SessionError> {
    s.cart_mut().await?.push(name.to_owned());
    s.update_visits(|v| *v += 1).await?;
    Ok("ok")
}

#[get("/cart")]
async fn cart_v1(s: Session<ShopV1>) -> Result<String, SessionError> {
    Ok(s.cart().await?.join(","))
}

/// One line of the cart in the release after.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Line {
    name: String,
    qty: u32,
}

/// A visit count in the release after.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Visits {
    count: u64,
}

impl From<u64> for Visits {
    fn from(count: u64) -> Self {
        Visits { count }
    }
}

/// Names as lines; a name with `!` was never a product.
fn lines_from_names(names: Vec<String>) -> Result<Vec<Line>, String> {
    names
        .into_iter()
        .map(|name| match name.contains('!') {
            true => Err("not a product name".to_owned()),
            false => Ok(Line { name, qty: 1 }),
        })
        .collect()
}

/// The release after: `cart` renamed `lines` and retyped, `visits`
/// retyped.
#[derive(Session)]
struct ShopV2 {
    user: Option<u64>,
    #[session(alias = "cart", from(Vec<String>, with = lines_from_names))]
    lines: Vec<Line>,
    #[session(versioned, from = u64)]
    visits: Visits,
}

#[get("/cart")]
async fn cart_v2(s: Session<ShopV2>) -> Result<String, SessionError> {
    let lines = s.lines().await?;
    let user = *s.user().await?;
    let visits = s.visits().await?.count;
    let lines: Vec<String> = lines
        .iter()
        .map(|l| format!("{}x{}", l.name, l.qty))
        .collect();
    Ok(format!("{user:?} {} {visits}", lines.join(",")))
}

#[post("/add/<name>")]
async fn add_v2(name: &str, mut s: Session<ShopV2>) -> Result<&'static str, SessionError> {
    let lines = s.lines_mut().await?;
    match lines.iter_mut().find(|l| l.name == name) {
        Some(line) => line.qty += 1,
        None => lines.push(Line {
            name: name.to_owned(),
            qty: 1,
        }),
    }
    Ok("ok")
}

#[post("/visit")]
async fn visit_v2(mut s: Session<ShopV2>) -> Result<&'static str, SessionError> {
    s.update_visits(|v| v.count += 1).await?;
    Ok("ok")
}

async fn scenario(url: String) {
    let prefix = unique("deploy");
    let config = |f: rocket::figment::Figment| {
        f.merge(("sessions.url", url.clone()))
            .merge(("sessions.table_prefix", prefix.clone()))
    };
    let (v1, _, _) = launch(
        rocket::custom(config(figment()))
            .attach(Sessions::fairing())
            .mount("/", routes![login_v1, add_v1, cart_v1]),
    )
    .await;
    let (v2, _, _) = launch(
        rocket::custom(config(figment()))
            .attach(Sessions::fairing())
            .mount("/", routes![cart_v2, add_v2, visit_v2]),
    )
    .await;

    // Written by the release before.
    let (_, cookie, _) = http(v1, "POST", "/login", None).await;
    let cookie = cookie.expect("login sets a cookie");
    for name in ["tea", "jam"] {
        let (status, _, _) = http(v1, "POST", &format!("/add/{name}"), Some(&cookie)).await;
        assert_eq!(status, 200);
    }

    // Read by the release after, converted.
    let (status, set, body) = http(v2, "GET", "/cart", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (200, "Some(7) teax1,jamx1 2"));
    assert_eq!(set, None, "a read writes nothing");

    // 16 count bumps and an addition at once, from requests of the
    // release after that all start from the values of the one before.
    let mut sent = Vec::new();
    for i in 0..17 {
        let cookie = cookie.clone();
        let path = if i == 8 { "/add/milk" } else { "/visit" };
        sent.push(tokio::spawn(async move {
            http(v2, "POST", path, Some(&cookie)).await
        }));
    }
    for request in sent {
        let (status, _, body) = request.await.unwrap();
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    let (_, _, body) = http(v2, "GET", "/cart", Some(&cookie)).await;
    assert_eq!(body, "Some(7) teax1,jamx1,milkx1 18", "nothing lost");
    // Moved: the release before finds no `cart` any more.
    let (_, _, body) = http(v1, "GET", "/cart", Some(&cookie)).await;
    assert_eq!(body, "");

    // A value the conversion refuses: empty in the release after, its
    // bytes kept through that release's other writes.
    let (_, other, _) = http(v1, "POST", "/login", None).await;
    let other = other.unwrap();
    http(v1, "POST", "/add/sale!", Some(&other)).await;
    let (status, _, body) = http(v2, "GET", "/cart", Some(&other)).await;
    assert_eq!((status, body.as_str()), (200, "Some(7)  1"));
    let (status, _, _) = http(v2, "POST", "/visit", Some(&other)).await;
    assert_eq!(status, 200);
    let (_, _, body) = http(v1, "GET", "/cart", Some(&other)).await;
    assert_eq!(body, "sale!", "the bytes stay");
}

#[rocket::async_test]
async fn a_deploy_carries_values_over_on_mysql() {
    scenario(std::env::var("DATABASE_URL").expect("DATABASE_URL (see .cargo/config.toml)")).await;
}

#[rocket::async_test]
async fn a_deploy_carries_values_over_on_postgres() {
    scenario(std::env::var("POSTGRES_URL").expect("POSTGRES_URL (see .cargo/config.toml)")).await;
}

#[rocket::async_test]
async fn a_deploy_carries_values_over_on_redis() {
    scenario(std::env::var("REDIS_URL").expect("REDIS_URL (see .cargo/config.toml)")).await;
}

#[rocket::async_test]
async fn a_deploy_carries_values_over_on_sqlite() {
    let dir = std::env::temp_dir().join(unique("deploy-sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    scenario(format!("sqlite://{}", dir.join("sessions.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}
