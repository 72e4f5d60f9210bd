//! The tower-sessions peer: the benchmark's routes and session on axum +
//! tower-sessions + `tower_sessions_sqlx_store::MySqlStore`, the way its
//! README sets them up. Environment: `PEER_PORT`, `BENCH_DB_URL`,
//! `BENCH_POOL` (pool size).

use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_sqlx_store::sqlx::mysql::MySqlPoolOptions;
use tower_sessions_sqlx_store::MySqlStore;

#[derive(Serialize, Deserialize, Clone)]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u32,
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

async fn floor_none() -> &'static str {
    "ok"
}

async fn none(_session: Session) -> &'static str {
    "ok"
}

async fn read(session: Session) -> String {
    let counter: u64 = session.get("counter").await.unwrap().unwrap_or_default();
    let name: String = session.get("p01").await.unwrap().unwrap_or_default();
    format!("{counter} {}", name.len())
}

async fn bump(session: Session) -> String {
    let counter: u64 = session.get("counter").await.unwrap().unwrap_or_default();
    session.insert("counter", counter + 1).await.unwrap();
    (counter + 1).to_string()
}

async fn login(session: Session) -> &'static str {
    session.cycle_id().await.unwrap();
    session.insert("counter", 0u64).await.unwrap();
    session.insert("cart", cart()).await.unwrap();
    for i in 1..=20 {
        let value = format!("profile value {i:02} for user 4242");
        session.insert(&format!("p{i:02}"), value).await.unwrap();
    }
    "ok"
}

async fn logout(session: Session) -> &'static str {
    session.flush().await.unwrap();
    "ok"
}

#[tokio::main]
async fn main() {
    let url = std::env::var("BENCH_DB_URL").expect("BENCH_DB_URL");
    let pool_size: u32 = std::env::var("BENCH_POOL").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let port: u16 = std::env::var("PEER_PORT").ok().and_then(|v| v.parse().ok()).unwrap_or(8100);
    let pool = MySqlPoolOptions::new()
        .max_connections(pool_size)
        .connect(&url)
        .await
        .expect("MySQL");
    let store = MySqlStore::new(pool)
        .with_schema_name("test")
        .expect("schema name")
        .with_table_name("bench_tower_sessions")
        .expect("table name");
    store.migrate().await.expect("migrate");
    let layer = SessionManagerLayer::new(store)
        .with_name("session")
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(1)));
    let app = Router::new()
        .route("/floor/none", get(floor_none))
        .route("/none", get(none))
        .route("/read", get(read))
        .route("/bump", post(bump))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
