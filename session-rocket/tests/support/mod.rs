//! What the tests over real TCP share: launching the app on a free port,
//! and a plain HTTP/1.1 client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use rocket::{Build, Rocket, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Launches `rocket` (built on [`figment`]) on 127.0.0.1 and waits until it
/// accepts connections.
pub async fn launch(rocket: Rocket<Build>) -> (SocketAddr, Shutdown, tokio::task::JoinHandle<()>) {
    let rocket = rocket.ignite().await.expect("ignite");
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
