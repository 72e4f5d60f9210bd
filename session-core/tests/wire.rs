//! Round trips counted on the wire, not by the store's own counters: a
//! proxy between the store and MariaDB records every command the client
//! sends (the first byte of each packet with sequence number 0), so an
//! extra ping, a stray `SELECT 1` or a reconnect per statement fails here
//! even though the store would not count it. Reads `DATABASE_URL`; fails,
//! never skips, when the server is unreachable.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use session_core::flush;
use session_core::state::{CookieAction, Outcome};
use session_core::store::mysql::MySqlStore;
use session_core::testing::Cart;
use session_core::{Config, SessionManager};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// MySQL command bytes.
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0e;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;

type Log = Arc<Mutex<Vec<u8>>>;

/// Forwards client → server, logging each command's first byte.
async fn client_to_server(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Log,
) {
    let mut header = [0u8; 4];
    loop {
        if from.read_exact(&mut header).await.is_err() {
            return;
        }
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        let mut payload = vec![0u8; len];
        if from.read_exact(&mut payload).await.is_err() {
            return;
        }
        if header[3] == 0 {
            if let Some(&command) = payload.first() {
                log.lock().unwrap().push(command);
            }
        }
        if to.write_all(&header).await.is_err() || to.write_all(&payload).await.is_err() {
            return;
        }
    }
}

async fn proxy(upstream: SocketAddr) -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let accepted = log.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(upstream)
                .await
                .expect("connect upstream");
            let (client_read, mut client_write) = client.into_split();
            let (mut server_read, server_write) = server.into_split();
            tokio::spawn(client_to_server(
                client_read,
                server_write,
                accepted.clone(),
            ));
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
        }
    });
    (addr, log)
}

/// `mysql://user[:pass]@host:port/db` → (the URL through the proxy, the
/// server's address).
fn through(url: &str, proxy: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, rest) = rest.rsplit_once('@').map_or(("", rest), |(a, r)| (a, r));
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let at = if auth.is_empty() { "" } else { "@" };
    format!("{scheme}://{auth}{at}{proxy}{path}")
}

fn server(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.split('/').next().unwrap();
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:3306")
    };
    use std::net::ToSocketAddrs;
    host.to_socket_addrs().unwrap().next().unwrap()
}

fn token(action: Option<CookieAction>) -> String {
    match action {
        Some(CookieAction::Set { token, .. }) => token.to_cookie_value(),
        other => panic!("expected a Set-Cookie, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_on_the_wire_are_the_statements_and_nothing_else() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names the MySQL server");
    let (addr, log) = proxy(server(&url)).await;
    let prefix = session_core::testing::unique_prefix("w");
    let config = Config {
        table_prefix: prefix,
        max_connections: 1,
        ..Config::default()
    };
    let store = Arc::new(
        MySqlStore::connect(&through(&url, addr), &config)
            .await
            .unwrap_or_else(|e| panic!("cannot reach MySQL through the proxy: {e:?}")),
    );
    store.create_tables().await.unwrap();
    let m = SessionManager::new(store.clone(), config).unwrap();
    let m = &m;

    // One request of each kind, returning its cookie.
    let login = || async {
        let mut h = m.open::<Cart>(None);
        h.set_user(Some(1));
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
        token(h.request().take_cookie_action())
    };
    let unused = |c: String| async move {
        let mut h = m.open::<Cart>(Some(&c));
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    };
    let read = |c: String| async move {
        let mut h = m.open::<Cart>(Some(&c));
        assert_eq!(*h.user().await.unwrap(), Some(1));
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
    };
    let bump = |c: String| async move {
        let mut h = m.open::<Cart>(Some(&c));
        *h.visits_mut().await.unwrap() += 1;
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    };
    let blind = |c: String| async move {
        let mut h = m.open::<Cart>(Some(&c));
        h.set_visits(5);
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    };
    let regenerate = |c: String| async move {
        let mut h = m.open::<Cart>(Some(&c));
        h.regenerate();
        h.set_user(Some(1));
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
        token(h.request().take_cookie_action())
    };
    let logout = |c: String| async move {
        let mut h = m.open::<Cart>(Some(&c));
        h.destroy().await.unwrap();
    };

    // Warm up: every statement prepared once on the one connection.
    let c = login().await;
    read(c.clone()).await;
    bump(c.clone()).await;
    blind(c.clone()).await;
    let c = regenerate(c).await;
    logout(c).await;

    let commands = |log: &Log| std::mem::take(&mut *log.lock().unwrap());
    commands(&log);
    let c = login().await;
    assert_eq!(
        commands(&log),
        [COM_STMT_EXECUTE],
        "login: one insert, its small fields in the session's row"
    );
    unused(c.clone()).await;
    assert!(commands(&log).is_empty(), "an unused guard sends nothing");
    read(c.clone()).await;
    assert_eq!(commands(&log), [COM_STMT_EXECUTE], "read: one SELECT");
    bump(c.clone()).await;
    assert_eq!(
        commands(&log),
        [COM_STMT_EXECUTE; 2],
        "bump: load + the row's update"
    );
    blind(c.clone()).await;
    assert_eq!(
        commands(&log),
        [COM_STMT_EXECUTE],
        "blind write: the row's update"
    );
    let c = regenerate(c).await;
    assert_eq!(
        commands(&log),
        [
            COM_QUERY,
            COM_STMT_EXECUTE,
            COM_STMT_EXECUTE,
            COM_STMT_EXECUTE,
            COM_QUERY
        ],
        "regenerate + write: rename, the replaced key's record and the row's update in one transaction"
    );
    logout(c).await;
    assert_eq!(commands(&log), [COM_STMT_EXECUTE], "logout: one DELETE");
    let all = log.lock().unwrap().clone();
    assert!(!all.contains(&COM_PING) && !all.contains(&COM_STMT_PREPARE));
    store.drop_tables().await.unwrap();
}
