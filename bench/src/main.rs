//! The benchmark app: session routes and their floors, served over real TCP.
//! Driven by `bench/run.sh`; see `bench/README.md`.
//!
//! Configuration (environment):
//! - `BENCH_DB_URL`: the MySQL URL for both the session store and the floor
//!   pool (default `mysql://root@127.0.0.1:3306/test`); with a `sqlite:` URL
//!   the app serves the session routes on SQLite, without the MySQL floors
//!   (the embedded store's pass beside rocket_flex_session);
//! - `BENCH_POOL`: `max_connections` of both pools (default 10);
//! - `ROCKET_PORT`: the HTTP port (default 8000).
//!
//! `session-bench --rewrite-bytes` prints, as JSON, what one `login` writes
//! (the 22 fields encoded with the session's codec): the size of a
//! whole-session rewrite.

use std::time::Duration;

use rocket::http::CookieJar;
use rocket::{get, post, routes, State};
use serde::{Deserialize, Serialize};
use session_core::store::__bench::ConnPool;
use session_rocket::codec::{Codec, JsonCodec};
use session_rocket::sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use session_rocket::{Session, SessionError, Sessions};

/// Table prefix of everything the benchmark creates.
const PREFIX: &str = "bench_";

/// One cart line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u32,
}

/// The benchmark session: a counter, a 50-item cart and 20 profile fields.
#[derive(Session)]
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

/// The same session seen by a second type: one versioned counter, changed
/// by `vbump` with `update_hits` (compare-and-set), beside `bump`'s plain
/// read-modify-write of `counter`.
#[derive(Session)]
struct Hits {
    #[session(versioned)]
    hits: u64,
}

/// Cart lines per session: 50, or `BENCH_CART_ITEMS` (the size sweep).
fn cart_items() -> u32 {
    std::env::var("BENCH_CART_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

fn cart() -> Vec<Item> {
    (0..cart_items())
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

/// Floor: no session, no database.
#[get("/floor/none")]
fn floor_none() -> &'static str {
    "ok"
}

/// The floor pool: the store's own pool type (`session_core::store::sql::pool`),
/// with the same size and timeout as the store's.
struct FloorPool(ConnPool<MySqlConnection>);

/// The floor table's row (1..=256) for the request's cookie, so the
/// 256-session runs spread over 256 rows as the session routes do.
fn floor_row(cookies: &CookieJar<'_>) -> u32 {
    cookies.get("session").map_or(1, |c| {
        c.value()
            .bytes()
            .fold(0u32, |a, b| a.wrapping_add(u32::from(b)))
            % 256
            + 1
    })
}

/// Floor: one primary-key `SELECT` through sqlx, on a pool configured like
/// the store's. The row (1..=256) follows the cookie, so the 256-session run
/// reads 256 rows as the session routes do.
#[get("/floor/select")]
async fn floor_select(pool: &State<FloorPool>, cookies: &CookieJar<'_>) -> Result<Vec<u8>, String> {
    let id = floor_row(cookies);
    let mut conn = pool.0.acquire().await.map_err(|e| e.to_string())?;
    let value =
        session_rocket::sqlx::query_scalar::<_, Vec<u8>>("SELECT v FROM bench_floor WHERE id = ?")
            .bind(i64::from(id))
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
    conn.finish();
    Ok(value)
}

/// Floor of `read`: one primary-key `SELECT` returning as many bytes as the
/// session's load (~4 KB), in one row.
#[get("/floor/read")]
async fn floor_read(pool: &State<FloorPool>, cookies: &CookieJar<'_>) -> Result<String, String> {
    let id = floor_row(cookies);
    let mut conn = pool.0.acquire().await.map_err(|e| e.to_string())?;
    let doc = session_rocket::sqlx::query_scalar::<_, Vec<u8>>(
        "SELECT doc FROM bench_floor WHERE id = ?",
    )
    .bind(i64::from(id))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| e.to_string())?;
    conn.finish();
    Ok(doc.len().to_string())
}

/// What a load that is one lookup in one table would cost (issue 32's
/// one-row layout): the row found by a 32-byte unique key (the token's
/// hash, computed here as the store does) with as many bytes as the
/// session's load, in one row.
#[get("/diag/row")]
async fn diag_row(pool: &State<FloorPool>, cookies: &CookieJar<'_>) -> Result<String, String> {
    use sha2::Digest as _;

    let id = floor_row(cookies);
    let key = sha2::Sha256::digest(id.to_string().as_bytes());
    let mut conn = pool.0.acquire().await.map_err(|e| e.to_string())?;
    let doc =
        session_rocket::sqlx::query_scalar::<_, Vec<u8>>("SELECT doc FROM bench_floor WHERE k = ?")
            .bind(key.as_slice())
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
    conn.finish();
    Ok(doc.len().to_string())
}

/// Floor of `bump`: what the least a session write could cost on this
/// schema shape: one `SELECT` by a unique key (the token's hash), then one
/// `UPDATE` of one row by primary key, in a short transaction, on the same
/// pool type.
#[post("/floor/bump")]
async fn floor_bump(pool: &State<FloorPool>, cookies: &CookieJar<'_>) -> Result<String, String> {
    use session_rocket::sqlx::Connection as _;
    use sha2::Digest as _;

    let id = floor_row(cookies);
    let key = sha2::Sha256::digest(id.to_string().as_bytes());
    let mut conn = pool.0.acquire().await.map_err(|e| e.to_string())?;
    let mut tx = conn.begin().await.map_err(|e| e.to_string())?;
    let pk = session_rocket::sqlx::query_scalar::<_, i64>("SELECT id FROM bench_floor WHERE k = ?")
        .bind(key.as_slice())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    session_rocket::sqlx::query("UPDATE bench_floor SET n = n + 1 WHERE id = ?")
        .bind(pk)
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    conn.finish();
    Ok(pk.to_string())
}

/// What the store's load binds: the session's key (SHA-256 of the cookie's
/// token) and the current time.
fn load_args(cookies: &CookieJar<'_>) -> Result<(Vec<u8>, i64), String> {
    use base64::Engine as _;
    use sha2::Digest as _;

    let token = cookies
        .get("session")
        .and_then(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c.value())
                .ok()
        })
        .ok_or("no session cookie")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    Ok((
        sha2::Sha256::digest(&token).to_vec(),
        i64::try_from(now).map_err(|e| e.to_string())?,
    ))
}

/// Diagnostic, not a floor: the session store's own load query (same SQL,
/// same row decoding: all 22 field rows of the session), run directly on the
/// floor pool. `read` minus this is the session layer's overhead; this minus
/// `floor_select` is the cost of the wider query.
#[get("/diag/load")]
async fn diag_load(pool: &State<FloorPool>, cookies: &CookieJar<'_>) -> Result<String, String> {
    use session_rocket::sqlx::Row;

    let (key, now) = load_args(cookies)?;
    let mut conn = pool.0.acquire().await.map_err(|e| e.to_string())?;
    let rows = session_rocket::sqlx::query(
        "SELECT s.created_at, s.expires_at, s.idle_timeout, f.name, f.value FROM `bench_sessions` s \
         LEFT JOIN `bench_session_fields` f ON f.session_pk = s.pk \
         WHERE s.token_hash = ? AND s.expires_at > ? AND s.created_at > ?",
    )
    .bind(key.as_slice())
    .bind(now)
    .bind(now - 30 * 24 * 60 * 60)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| e.to_string())?;
    conn.finish();
    let mut n = 0usize;
    for r in &rows {
        let _: i64 = r.try_get(0).map_err(|e| e.to_string())?;
        let _: i64 = r.try_get(1).map_err(|e| e.to_string())?;
        let _: i64 = r.try_get(2).map_err(|e| e.to_string())?;
        let name: Option<Vec<u8>> = r.try_get(3).map_err(|e| e.to_string())?;
        let value: Option<Vec<u8>> = r.try_get(4).map_err(|e| e.to_string())?;
        n += name.map_or(0, |v| v.len()) + value.map_or(0, |v| v.len());
    }
    Ok(format!("{} {n}", rows.len()))
}

/// Diagnostic: the load as one packed row (`GROUP_CONCAT` of
/// length-prefixed names and values), the alternative shape of the MySQL load query
/// measured beside `diag_load` (see `Backend::PACK_FIELDS`).
#[get("/diag/load_packed")]
async fn diag_load_packed(
    pool: &State<FloorPool>,
    cookies: &CookieJar<'_>,
) -> Result<String, String> {
    use session_rocket::sqlx::Row;

    let (key, now) = load_args(cookies)?;
    let mut conn = pool.0.acquire().await.map_err(|e| e.to_string())?;
    let row = session_rocket::sqlx::query(
        "SELECT s.created_at, s.expires_at, s.idle_timeout, (SELECT GROUP_CONCAT(LENGTH(f.name), ',', \
         LENGTH(f.value), ':', f.name, f.value SEPARATOR '') FROM `bench_session_fields` f WHERE f.session_pk = s.pk) \
         FROM `bench_sessions` s WHERE s.token_hash = ? AND s.expires_at > ? AND s.created_at > ?",
    )
    .bind(key.as_slice())
    .bind(now)
    .bind(now - 30 * 24 * 60 * 60)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| e.to_string())?;
    conn.finish();
    let packed: Option<Vec<u8>> = row.try_get(3).map_err(|e| e.to_string())?;
    // The same parsing as the store's (`statements::unpack`), inlined.
    let (mut rest, mut n) = (packed.as_deref().unwrap_or_default(), 0usize);
    while !rest.is_empty() {
        let comma = rest.iter().position(|&b| b == b',').ok_or("bad entry")?;
        let colon = rest.iter().position(|&b| b == b':').ok_or("bad entry")?;
        let name: usize = std::str::from_utf8(&rest[..comma])
            .map_err(|e| e.to_string())?
            .parse()
            .map_err(|_| "bad length")?;
        let value: usize = std::str::from_utf8(&rest[comma + 1..colon])
            .map_err(|e| e.to_string())?
            .parse()
            .map_err(|_| "bad length")?;
        let body = &rest[colon + 1..];
        let (_name, body) = body.split_at(name);
        let (v, body) = body.split_at(value);
        n += v.to_vec().len();
        rest = body;
    }
    Ok(n.to_string())
}

/// Takes the session guard and never uses it.
#[get("/none")]
fn none(_session: Session<Bench>) -> &'static str {
    "ok"
}

/// Reads two fields.
#[get("/read")]
async fn read(session: Session<Bench>) -> Result<String, SessionError> {
    let counter = *session.counter().await?;
    let name = session.p01().await?.len();
    Ok(format!("{counter} {name}"))
}

/// Increments one counter.
#[post("/bump")]
async fn bump(mut session: Session<Bench>) -> Result<String, SessionError> {
    let counter = session.counter_mut().await?;
    *counter += 1;
    Ok(counter.to_string())
}

/// Increments the versioned counter: compare-and-set, retried on conflict,
/// so concurrent increments all land.
#[post("/vbump")]
async fn vbump(mut session: Session<Hits>) -> Result<String, SessionError> {
    let hits = session
        .update_hits(|h| {
            *h += 1;
            *h
        })
        .await?;
    Ok(hits.to_string())
}

/// A new session with all 22 fields.
#[post("/login")]
fn login(mut session: Session<Bench>) -> &'static str {
    session.regenerate();
    session.set_counter(0);
    session.set_cart(cart());
    session.set_p01(profile(1));
    session.set_p02(profile(2));
    session.set_p03(profile(3));
    session.set_p04(profile(4));
    session.set_p05(profile(5));
    session.set_p06(profile(6));
    session.set_p07(profile(7));
    session.set_p08(profile(8));
    session.set_p09(profile(9));
    session.set_p10(profile(10));
    session.set_p11(profile(11));
    session.set_p12(profile(12));
    session.set_p13(profile(13));
    session.set_p14(profile(14));
    session.set_p15(profile(15));
    session.set_p16(profile(16));
    session.set_p17(profile(17));
    session.set_p18(profile(18));
    session.set_p19(profile(19));
    session.set_p20(profile(20));
    "ok"
}

/// Destroys the session.
#[post("/logout")]
async fn logout(session: Session<Bench>) -> Result<&'static str, SessionError> {
    session.destroy().await?;
    Ok("ok")
}

/// The bytes a whole-session rewrite stores: every field's name and value,
/// encoded with the session's codec, as `login` writes them.
fn rewrite_bytes() -> String {
    let mut fields: Vec<(String, usize)> = vec![
        (
            "counter".into(),
            JsonCodec::encode(&0u64).map_or(0, |v| v.len()),
        ),
        (
            "cart".into(),
            JsonCodec::encode(&cart()).map_or(0, |v| v.len()),
        ),
    ];
    for i in 1..=20 {
        let len = JsonCodec::encode(&profile(i)).map_or(0, |v| v.len());
        fields.push((format!("p{i:02}"), len));
    }
    let values: usize = fields.iter().map(|(_, v)| v).sum();
    let names: usize = fields.iter().map(|(n, _)| n.len()).sum();
    let cart = fields[1].1;
    format!(
        "{{\"fields\": {}, \"value_bytes\": {values}, \"name_bytes\": {names}, \"cart_bytes\": {cart}, \"counter_bytes\": {}}}",
        fields.len(),
        fields[0].1
    )
}

/// A `tracing` subscriber that takes every span and event at or above
/// `level` and only counts them: what a subscriber costs the library at
/// that level, without the cost of writing lines anywhere.
struct Counting {
    level: tracing::Level,
    seen: std::sync::atomic::AtomicU64,
}

impl tracing::Subscriber for Counting {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= self.level
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.level.into())
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let n = self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::span::Id::from_u64(n + 1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// `BENCH_OBSERVE=info|debug`: the Prometheus recorder installed (a
/// `/metrics` route renders it), a subscriber at that level, and an event
/// handler; unset, none of them (what the library costs when nothing
/// listens).
fn observe(app: rocket::Rocket<rocket::Build>, fairing: Sessions) -> rocket::Rocket<rocket::Build> {
    let level = match std::env::var("BENCH_OBSERVE").as_deref() {
        Ok("info") => tracing::Level::INFO,
        Ok("debug") => tracing::Level::DEBUG,
        _ => return app.attach(fairing),
    };
    // As the example shop does: buckets for the sessions' histograms, and
    // the exporter's upkeep every 5 s (a scraped app runs it).
    use metrics_exporter_prometheus::Matcher;
    use session_rocket::metrics::{BYTES_BUCKETS, SECONDS_BUCKETS, STATEMENTS, STATEMENTS_BUCKETS};
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS))
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(STATEMENTS.into()), STATEMENTS_BUCKETS)
        })
        .expect("buckets")
        .install_recorder()
        .expect("the only recorder");
    let upkeep = handle.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_secs(5));
        upkeep.run_upkeep();
    });
    tracing::subscriber::set_global_default(Counting {
        level,
        seen: std::sync::atomic::AtomicU64::new(0),
    })
    .expect("the only subscriber");
    let events = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let fairing = fairing.on_event(move |_| {
        events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    app.attach(fairing)
        .manage(handle)
        .mount("/", routes![metrics_page])
}

#[get("/metrics")]
fn metrics_page(handle: &State<metrics_exporter_prometheus::PrometheusHandle>) -> String {
    handle.run_upkeep();
    handle.render()
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[rocket::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--rewrite-bytes") {
        println!("{}", rewrite_bytes());
        return Ok(());
    }
    let url = env("BENCH_DB_URL", "mysql://root@127.0.0.1:3306/test");
    let pool_size: u32 = env("BENCH_POOL", "10").parse()?;
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("sessions.url", url.as_str()))
        .merge(("sessions.table_prefix", PREFIX))
        .merge(("sessions.max_connections", pool_size))
        .merge(("sessions.secure", false))
        // room for the size sweep's largest cart (~128 KB)
        .merge(("sessions.max_field_bytes", 1 << 20))
        .merge(("sessions.max_session_bytes", 2 << 20))
        .merge(("sessions.cleanup_interval", 0));
    // `bench.py --encrypt`: every stored value sealed (AES-256-GCM).
    let figment = match std::env::var("BENCH_ENCRYPTION_KEY") {
        Ok(key) if !key.is_empty() => figment.merge(("sessions.encryption_keys", [key])),
        _ => figment,
    };
    let app = observe(rocket::custom(figment), Sessions::fairing())
        .mount("/", routes![floor_none, none, read, bump, login, logout]);
    // The cookie store keeps no versioned field (launch would be refused).
    let app = if url == "cookie" {
        app
    } else {
        app.mount("/", routes![vbump])
    };
    // The floors run on MySQL only.
    let app = if !url.starts_with("mysql:") {
        app
    } else {
        let options: MySqlConnectOptions = url.parse()?;
        let floor: ConnPool<MySqlConnection> =
            ConnPool::new(options, pool_size, Duration::from_secs(5));
        floor.acquire().await?.finish();
        app.manage(FloorPool(floor)).mount(
            "/",
            routes![
                floor_select,
                diag_row,
                floor_read,
                floor_bump,
                diag_load,
                diag_load_packed
            ],
        )
    };
    let _ = app.launch().await?;
    Ok(())
}
