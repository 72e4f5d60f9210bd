//! A TCP proxy between the app's store and a real database server, whose
//! behaviour a test switches: pass everything, refuse new connections (an
//! outage), swallow everything (a server that stopped answering), drop
//! every connection (a restart), or lose the reply of a write the server
//! executed: it forwards the write, waits for the server's answer and then
//! closes both sockets instead of forwarding it, as a proxy restart, a
//! failover or `KILL CONNECTION` right after a commit does.
//!
//! To know which command is a write, it follows each connection's wire
//! protocol (MySQL's packets, PostgreSQL's messages): autocommit
//! `INSERT`/`UPDATE`/`DELETE` statements, prepared or not, and `COMMIT`.
//! Connect through it without TLS (`ssl-mode=disabled`, `sslmode=disable`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub const PASS: u8 = 0;
pub const REFUSE: u8 = 1;
pub const BLACK_HOLE: u8 = 2;
/// Pass, but lose the reply of every `lose_every`-th write.
pub const LOSE_REPLIES: u8 = 3;

/// Which wire protocol the proxied server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    MySql,
    Postgres,
}

#[derive(Default)]
struct Shared {
    mode: AtomicU8,
    lose_every: AtomicUsize,
    writes: AtomicUsize,
    lost: AtomicUsize,
}

/// The proxy; see the module docs.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr, wire: Wire) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        shared.lose_every.store(1, Ordering::SeqCst);
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (sh, l) = (shared.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if sh.mode.load(Ordering::SeqCst) == REFUSE {
                    continue; // dropping the socket closes it
                }
                let sh = sh.clone();
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    link(client, server, sh, wire).await;
                });
                l.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            addr,
            shared,
            links,
        }
    }

    /// Drops every connection, as a server restart does.
    pub fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn set(&self, mode: u8) {
        self.shared.mode.store(mode, Ordering::SeqCst);
    }

    /// In [`LOSE_REPLIES`] mode, lose the reply of one write in `n`.
    pub fn lose_every(&self, n: usize) {
        self.shared.lose_every.store(n.max(1), Ordering::SeqCst);
    }

    /// Writes whose reply was lost so far.
    pub fn lost(&self) -> usize {
        self.shared.lost.load(Ordering::SeqCst)
    }

    /// `url` (mysql:// or postgres://) with its host and port replaced by
    /// the proxy's, TLS off.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (auth, rest) = rest.rsplit_once('@').map_or(("", rest), |(a, r)| (a, r));
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        let tls = if scheme.starts_with("postgres") {
            "sslmode=disable"
        } else {
            "ssl-mode=disabled"
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        format!(
            "{scheme}://{auth}{}{}{path}{sep}{tls}",
            if auth.is_empty() { "" } else { "@" },
            self.addr
        )
    }
}

/// The address of the server `url` names.
pub fn upstream(url: &str, default_port: u16) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://").unwrap().1;
    let host = rest
        .rsplit_once('@')
        .map_or(rest, |(_, r)| r)
        .split(['/', '?'])
        .next()
        .unwrap();
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:{default_port}")
    };
    host.to_socket_addrs().unwrap().next().unwrap()
}

/// What one connection's protocol follower knows.
#[derive(Default)]
struct Follow {
    up: Vec<u8>,
    down: Vec<u8>,
    started: bool,
    in_tx: bool,
    /// Prepared statements: whether each is a write.
    statements: HashMap<Vec<u8>, bool>,
    /// MySQL: a prepare sent, its id not seen yet.
    preparing: Option<bool>,
    /// PostgreSQL: the statement of the last Bind.
    bound: bool,
    /// The reply to this write must be lost.
    armed: bool,
}

fn is_write(sql: &[u8]) -> bool {
    let text = String::from_utf8_lossy(sql)
        .trim_start()
        .to_ascii_uppercase();
    ["INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|w| text.starts_with(w))
}

fn starts(sql: &[u8], word: &str) -> bool {
    String::from_utf8_lossy(sql)
        .trim_start()
        .to_ascii_uppercase()
        .starts_with(word)
}

/// A NUL-terminated string at the start of `bytes`, and the rest.
fn cstr(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    (&bytes[..end], bytes.get(end + 1..).unwrap_or_default())
}

impl Follow {
    /// Bytes from the client: returns how many writes (autocommit
    /// statements or commits) they send.
    fn client(&mut self, wire: Wire, bytes: &[u8]) -> usize {
        self.up.extend_from_slice(bytes);
        let mut writes = 0;
        loop {
            let (frame, body_at, len) = match wire {
                Wire::MySql => {
                    if self.up.len() < 4 {
                        break;
                    }
                    let len = usize::from(self.up[0])
                        | usize::from(self.up[1]) << 8
                        | usize::from(self.up[2]) << 16;
                    (4 + len, 4, len)
                }
                Wire::Postgres => {
                    let head = if self.started { 5 } else { 4 };
                    if self.up.len() < head {
                        break;
                    }
                    let at = head - 4;
                    let len = u32::from_be_bytes(self.up[at..at + 4].try_into().unwrap()) as usize;
                    (at + len, head, len)
                }
            };
            if self.up.len() < frame {
                break;
            }
            let _ = len;
            let packet: Vec<u8> = self.up.drain(..frame).collect();
            let body = &packet[body_at..];
            let write = match wire {
                Wire::MySql if packet[3] == 0 && !body.is_empty() => self.mysql_command(body),
                Wire::MySql => false,
                Wire::Postgres if !self.started => {
                    self.started = true;
                    false
                }
                Wire::Postgres => self.postgres_message(packet[0], body),
            };
            writes += usize::from(write);
        }
        writes
    }

    fn mysql_command(&mut self, body: &[u8]) -> bool {
        let text = &body[1..];
        match body[0] {
            // COM_QUERY
            0x03 => self.statement(text),
            // COM_STMT_PREPARE
            0x16 => {
                self.preparing = Some(is_write(text));
                false
            }
            // COM_STMT_EXECUTE
            0x17 if body.len() >= 5 => {
                self.statements.get(&body[1..5]).copied().unwrap_or(false) && !self.in_tx
            }
            _ => false,
        }
    }

    fn postgres_message(&mut self, kind: u8, body: &[u8]) -> bool {
        match kind {
            b'Q' => self.statement(cstr(body).0),
            b'P' => {
                let (name, rest) = cstr(body);
                let (query, _) = cstr(rest);
                self.statements.insert(name.to_vec(), is_write(query));
                false
            }
            b'B' => {
                let (_portal, rest) = cstr(body);
                let (name, _) = cstr(rest);
                self.bound = self.statements.get(name).copied().unwrap_or(false);
                false
            }
            b'E' => self.bound && !self.in_tx,
            _ => false,
        }
    }

    /// A statement sent as text: transaction control or a write.
    fn statement(&mut self, text: &[u8]) -> bool {
        if starts(text, "BEGIN") || starts(text, "START TRANSACTION") {
            self.in_tx = true;
            false
        } else if starts(text, "COMMIT") {
            self.in_tx = false;
            true
        } else if starts(text, "ROLLBACK") {
            self.in_tx = false;
            false
        } else {
            is_write(text) && !self.in_tx
        }
    }

    /// Bytes from the server (not armed): learns prepared statement ids.
    fn server(&mut self, wire: Wire, bytes: &[u8]) {
        if wire != Wire::MySql {
            return;
        }
        self.down.extend_from_slice(bytes);
        while self.down.len() >= 4 {
            let len = usize::from(self.down[0])
                | usize::from(self.down[1]) << 8
                | usize::from(self.down[2]) << 16;
            if self.down.len() < 4 + len {
                break;
            }
            let packet: Vec<u8> = self.down.drain(..4 + len).collect();
            if let Some(write) = self.preparing.take() {
                // COM_STMT_PREPARE_OK: 0x00, then the statement id.
                if packet[3] == 1 && packet.len() >= 9 && packet[4] == 0 {
                    self.statements.insert(packet[5..9].to_vec(), write);
                } else if packet[3] != 1 {
                    self.preparing = Some(write);
                }
            }
        }
    }
}

/// Forwards one connection until either side closes, losing replies as
/// the mode says.
async fn link(client: TcpStream, server: TcpStream, shared: Arc<Shared>, wire: Wire) {
    let follow = Arc::new(Mutex::new(Follow::default()));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (f, sh) = (follow.clone(), shared.clone());
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mode = sh.mode.load(Ordering::SeqCst);
            if mode == BLACK_HOLE {
                continue;
            }
            {
                let mut f = f.lock().unwrap();
                let writes = f.client(wire, &buf[..n]);
                if mode == LOSE_REPLIES {
                    for _ in 0..writes {
                        let seen = sh.writes.fetch_add(1, Ordering::SeqCst) + 1;
                        if seen % sh.lose_every.load(Ordering::SeqCst) == 0 {
                            f.armed = true;
                        }
                    }
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut held: Vec<u8> = Vec::new();
    loop {
        let n = match server_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if shared.mode.load(Ordering::SeqCst) == BLACK_HOLE {
            continue;
        }
        let armed = follow.lock().unwrap().armed;
        if armed {
            // The server executed the write and answered: once its answer
            // is complete (PostgreSQL: ReadyForQuery, after the commit),
            // close both sockets without forwarding it.
            held.extend_from_slice(&buf[..n]);
            if wire == Wire::MySql || ready_for_query(&held) {
                shared.lost.fetch_add(1, Ordering::SeqCst);
                break;
            }
            continue;
        }
        follow.lock().unwrap().server(wire, &buf[..n]);
        if client_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    up.abort();
}

/// Whether PostgreSQL's messages in `bytes` include a ReadyForQuery.
fn ready_for_query(bytes: &[u8]) -> bool {
    let mut at = 0;
    while at + 5 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        if bytes[at] == b'Z' {
            return true;
        }
        at += 1 + len;
    }
    false
}
