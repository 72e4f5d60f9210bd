//! What the tests over real TCP share: launching the app on a free port,
//! and a plain HTTP/1.1 client.

#![allow(dead_code)]

pub mod proxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rocket::http::{Cookie, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{Build, Ignite, Rocket, Shutdown};
use session_rocket::store::mysql::MySqlStore;
use session_rocket::store::sqlite::SqliteStore;
use session_rocket::store::SessionStore;
use session_rocket::{Config, Token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Launches `rocket` (built on [`figment`]) on 127.0.0.1 and waits until it
/// accepts connections.
pub async fn launch(rocket: Rocket<Build>) -> (SocketAddr, Shutdown, tokio::task::JoinHandle<()>) {
    serve(rocket.ignite().await.expect("ignite")).await
}

/// [`launch`] for a Rocket already ignited (to take its state first).
pub async fn serve(rocket: Rocket<Ignite>) -> (SocketAddr, Shutdown, tokio::task::JoinHandle<()>) {
    let port = rocket.config().port;
    let shutdown = rocket.shutdown();
    let server = tokio::spawn(async move {
        let _ = rocket.launch().await;
    });
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..250 {
        if TcpStream::connect(app).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (app, shutdown, server)
}

/// Rocket's configuration for a real listener on a free loopback port.
pub fn figment() -> rocket::figment::Figment {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("address", "127.0.0.1"))
        .merge(("port", port))
}

/// One HTTP/1.1 request over a fresh TCP connection: (status, Set-Cookie
/// value of `session`, body).
pub async fn http(
    app: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut stream = TcpStream::connect(app).await.expect("the app listens");
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: session={c}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{cookie}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let set = response
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: session=")
                .or_else(|| l.strip_prefix("Set-Cookie: session="))
        })
        .map(|v| v.split(';').next().unwrap().to_string());
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, set, body)
}

/// A table prefix (or file name) no other test uses: `tag`, then ten
/// random characters.
pub fn unique(tag: &str) -> String {
    let random = Token::generate().unwrap().to_cookie_value()[..10]
        .to_ascii_lowercase()
        .replace(['-', '_'], "x");
    format!("{tag}{random}_")
}

/// The MySQL server of `DATABASE_URL`.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL names the MySQL server (see README)")
}

/// A MySQL store with tables of its own; fails, never skips, when the
/// server is unreachable.
pub async fn mysql_store(config: Config) -> Arc<MySqlStore> {
    let url = database_url();
    let config = Config {
        table_prefix: unique("t"),
        ..config
    };
    let store = MySqlStore::connect(&url, &config)
        .await
        .unwrap_or_else(|e| panic!("cannot reach MySQL at {url}: {e:?}"));
    store.create_tables().await.expect("create tables");
    Arc::new(store)
}

/// A store on the MySQL server, with tables of its own.
pub async fn mysql() -> Arc<dyn SessionStore> {
    mysql_store(Config::default()).await
}

/// A store on a SQLite file of its own.
pub async fn sqlite() -> Arc<dyn SessionStore> {
    let path = std::env::temp_dir().join(format!("session-test-{}.db", unique("s")));
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()), &Config::default())
        .await
        .expect("open sqlite");
    store.create_tables().await.expect("create tables");
    Arc::new(store)
}

/// Runs each check (an async fn taking a store) once on MySQL and once on
/// SQLite.
#[macro_export]
macro_rules! on_every_store {
    ($($check:ident),* $(,)?) => {
        mod on_mysql {
            $(
                #[rocket::async_test]
                async fn $check() {
                    super::$check(super::support::mysql().await).await;
                }
            )*
        }
        mod on_sqlite {
            $(
                #[rocket::async_test]
                async fn $check() {
                    super::$check(super::support::sqlite().await).await;
                }
            )*
        }
    };
}

/// The `Set-Cookie`s of a local response.
pub fn set_cookies(response: &LocalResponse<'_>) -> Vec<Cookie<'static>> {
    response
        .headers()
        .get("Set-Cookie")
        .map(|h| Cookie::parse(h.to_string()).unwrap())
        .collect()
}

/// A local GET with the session cookie: status, `Set-Cookie`s, body.
pub async fn get(
    client: &Client,
    path: &str,
    token: &str,
) -> (Status, Vec<Cookie<'static>>, String) {
    let response = client
        .get(path.to_string())
        .cookie(("session", token.to_string()))
        .dispatch()
        .await;
    let cookies = set_cookies(&response);
    (
        response.status(),
        cookies,
        response.into_string().await.unwrap_or_default(),
    )
}

/// A local POST, with the session cookie if any: status, `Set-Cookie`s.
pub async fn post(
    client: &Client,
    path: &str,
    token: Option<&str>,
) -> (Status, Vec<Cookie<'static>>) {
    let mut request = client.post(path.to_string());
    if let Some(token) = token {
        request = request.cookie(("session", token.to_string()));
    }
    let response = request.dispatch().await;
    (response.status(), set_cookies(&response))
}
