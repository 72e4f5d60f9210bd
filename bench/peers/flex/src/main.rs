//! The rocket_flex_session peer: the benchmark's routes and session on
//! Rocket + rocket_flex_session 0.2 + its `SqlxSqliteStorage`, the way its
//! docs set them up: the whole session struct as one JSON row. The database
//! is opened like ours (WAL, `synchronous = NORMAL`, foreign keys on).
//! Environment: `ROCKET_PORT`, `BENCH_DB_URL` (a `sqlite://` file),
//! `BENCH_POOL` (pool size), `BENCH_CART_ITEMS`.

use std::str::FromStr;

use rocket::{get, post, routes};
use rocket_flex_session::error::SessionError;
use rocket_flex_session::storage::sqlx::{SessionSqlx, SqlxSqliteStorage};
use rocket_flex_session::{RocketFlexSession, Session, SessionIdentifier};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[derive(Serialize, Deserialize, Clone)]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u32,
}

/// The benchmark session: a counter, a cart and 20 profile fields, as in
/// `session-bench`.
#[derive(Serialize, Deserialize, Clone, Default)]
struct Bench {
    counter: u64,
    cart: Vec<Item>,
    p01: String,
    p02: String,
    p03: String,
    p04: String,
    p05: String,
    p06: String,
    p07: String,
    p08: String,
    p09: String,
    p10: String,
    p11: String,
    p12: String,
    p13: String,
    p14: String,
    p15: String,
    p16: String,
    p17: String,
    p18: String,
    p19: String,
    p20: String,
}

impl SessionIdentifier for Bench {
    type Id = String;
    fn identifier(&self) -> Option<String> {
        None
    }
}

impl SessionSqlx<sqlx::Sqlite> for Bench {
    type Error = SessionError;
    type Data = String;
    fn into_sql(self) -> Result<String, SessionError> {
        serde_json::to_string(&self).map_err(|e| SessionError::Serialization(Box::new(e)))
    }
    fn from_sql(value: String) -> Result<Self, SessionError> {
        serde_json::from_str(&value).map_err(|e| SessionError::Parsing(Box::new(e)))
    }
}

fn cart() -> Vec<Item> {
    let items: u32 = std::env::var("BENCH_CART_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    (0..items)
        .map(|i| Item {
            sku: format!("SKU-{i:05}"),
            qty: 1 + i % 3,
            price_cents: 999 + 100 * i,
        })
        .collect()
}

fn profile(i: usize) -> String {
    format!("profile value {i:02} for user 4242")
}

#[get("/floor/none")]
fn floor_none() -> &'static str {
    "ok"
}

#[get("/none")]
fn none(_session: Session<Bench>) -> &'static str {
    "ok"
}

#[get("/read")]
fn read(session: Session<Bench>) -> String {
    session.tap(|d| {
        let d = d.expect("a session");
        format!("{} {}", d.counter, d.p01.len())
    })
}

#[post("/bump")]
fn bump(mut session: Session<Bench>) -> String {
    session.tap_mut(|d| {
        let d = d.as_mut().expect("a session");
        d.counter += 1;
        d.counter.to_string()
    })
}

#[post("/login")]
fn login(mut session: Session<Bench>) -> &'static str {
    session.set(Bench {
        counter: 0,
        cart: cart(),
        p01: profile(1),
        p02: profile(2),
        p03: profile(3),
        p04: profile(4),
        p05: profile(5),
        p06: profile(6),
        p07: profile(7),
        p08: profile(8),
        p09: profile(9),
        p10: profile(10),
        p11: profile(11),
        p12: profile(12),
        p13: profile(13),
        p14: profile(14),
        p15: profile(15),
        p16: profile(16),
        p17: profile(17),
        p18: profile(18),
        p19: profile(19),
        p20: profile(20),
    });
    "ok"
}

#[post("/logout")]
fn logout(mut session: Session<Bench>) -> &'static str {
    session.delete();
    "ok"
}

#[rocket::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("BENCH_DB_URL")?;
    let pool_size: u32 = std::env::var("BENCH_POOL").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let options = SqliteConnectOptions::from_str(&url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new().max_connections(pool_size).connect_with(options).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS sessions (id TEXT NOT NULL PRIMARY KEY, data TEXT NOT NULL, \
         user_id TEXT, expires TEXT NOT NULL)",
    )
    .execute(&pool)
    .await?;
    let storage = SqlxSqliteStorage::builder().pool(pool).table_name("sessions").build();
    let fairing = RocketFlexSession::<Bench>::builder()
        .storage(storage)
        .with_options(|o| {
            o.cookie_name = "session".into();
            o.secure = false;
            o.max_age = 86_400;
        })
        .build();
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        // private cookies need a key; a fixed one keeps sessions across restarts
        .merge(("secret_key", [7u8; 64].as_slice()));
    let _ = rocket::custom(figment)
        .attach(fairing)
        .mount("/", routes![floor_none, none, read, bump, login, logout])
        .launch()
        .await?;
    Ok(())
}
