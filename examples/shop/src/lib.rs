//! A small shop on typed server-side sessions: a visit counter, a login, a
//! cart, past orders kept in a deferred field, a devices page that signs
//! one device out, an audit page fed by the sessions' lifecycle events, and
//! Prometheus metrics at `/metrics`.
//!
//! Run it with `cargo run -p shop` (SQLite, the embedded default) or
//! `ROCKET_PROFILE=mysql cargo run -p shop` (the MariaDB/MySQL server in
//! `Rocket.toml`). The pages are plain HTML written in Rust; every piece of
//! user input goes through [`escape`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::UNIX_EPOCH;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::{Figment, Profile};
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::content::RawHtml;
use rocket::response::Redirect;
use rocket::{catch, catchers, get, post, routes, uri, Build, Rocket, State};
use serde::{Deserialize, Serialize};
use session_rocket::events::{DestroyCause, EventKind, SessionEvent};
use session_rocket::{Session, SessionError, SessionId, Sessions};

/// Everything the shop keeps about a visitor, one stored row per field.
#[derive(Session, Default, Debug)]
pub struct Shop {
    /// The logged-in user's name; `None` while logged out. Indexed, so
    /// "log out everywhere" finds the user's other sessions.
    #[session(index)]
    user: Option<String>,
    /// Product id to quantity.
    cart: BTreeMap<String, u32>,
    /// How often the home page was shown in this session.
    visits: u32,
    /// Past orders: can grow large and only two pages need them, so they are
    /// loaded by their own query, and only there.
    #[session(deferred)]
    orders: Vec<Order>,
    /// A message for the next page ("order placed"): shown once, by the
    /// page that takes it.
    #[session(flash)]
    notice: String,
    /// The user confirmed who they are in the last 10 minutes (step-up
    /// before "log out everywhere"; the shop's stand-in for re-entering a
    /// password is re-entering the user name).
    #[session(ttl = "10m")]
    confirmed: bool,
}

/// One checked-out cart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Order {
    /// Order number within the session, from 1.
    pub number: u32,
    /// `(product id, quantity)` lines.
    pub lines: Vec<(String, u32)>,
    /// Total in cents.
    pub total_cents: u64,
}

/// A product of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Product {
    /// Stable id, used in forms and in the cart.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Price in cents.
    pub price_cents: u64,
}

/// The catalogue: fixed, so the example needs no database of its own.
pub const PRODUCTS: &[Product] = &[
    Product {
        id: "apple",
        name: "Apple",
        price_cents: 50,
    },
    Product {
        id: "bread",
        name: "Sourdough bread",
        price_cents: 420,
    },
    Product {
        id: "cheese",
        name: "Comté (200 g)",
        price_cents: 690,
    },
    Product {
        id: "coffee",
        name: "Coffee beans (250 g)",
        price_cents: 899,
    },
];

fn product(id: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.id == id)
}

/// The logged-in user, read from `Session<Shop>`.
///
/// The guard takes the session, reads `user` and drops the session before it
/// returns, so a handler can take `User` and then its own `Session<Shop>`
/// (in that order: guards run left to right, and a second `Session<Shop>`
/// taken while the first is alive fails). Both share one load of the store.
/// Logged out, it forwards with 401, and the rank-2 routes below redirect to
/// the login page.
#[derive(Debug)]
pub struct User {
    /// The name given at login.
    pub name: String,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for User {
    type Error = SessionError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, SessionError> {
        let session = match req.guard::<Session<Shop>>().await {
            Outcome::Success(session) => session,
            Outcome::Error(e) => return Outcome::Error(e),
            Outcome::Forward(status) => return Outcome::Forward(status),
        };
        let user = match session.user().await {
            Ok(user) => user.clone(),
            Err(e) => return Outcome::Error((e.status(), e)),
        };
        drop(session);
        match user {
            Some(name) => Outcome::Success(User { name }),
            None => Outcome::Forward(Status::Unauthorized),
        }
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn money(cents: u64) -> String {
    format!("€{}.{:02}", cents / 100, cents % 100)
}

/// The page around `body`: title, navigation, and the user box (logout
/// button, or a link to the login form).
fn page(title: &str, user: Option<&str>, body: &str) -> RawHtml<String> {
    let account = match user {
        Some(name) => format!(
            r#"<span>Logged in as <strong id="user">{}</strong></span>
      <form id="logout" method="post" action="/logout"><button type="submit">Log out</button></form>
      <form id="logout-everywhere" method="post" action="/logout-everywhere"><button type="submit">Log out everywhere</button></form>"#,
            escape(name)
        ),
        None => r#"<a id="login-link" href="/login">Log in</a>"#.to_string(),
    };
    RawHtml(format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} · Shop</title>
  <style>
    body {{ font-family: sans-serif; max-width: 42rem; margin: 2rem auto; }}
    nav, .account {{ display: flex; gap: 1rem; align-items: center; }}
    header {{ display: flex; justify-content: space-between; border-bottom: 1px solid #ccc; }}
    form {{ display: inline; }}
    td, th {{ padding: .2rem .6rem; text-align: left; }}
  </style>
</head>
<body>
  <header>
    <nav><a href="/">Home</a> <a href="/products">Products</a> <a href="/cart">Cart</a> <a href="/orders">Orders</a> <a href="/audit">Activity</a> <a href="/account">Devices</a></nav>
    <div class="account">{account}</div>
  </header>
  <main>
  <h1>{title}</h1>
{body}
  </main>
</body>
</html>
"#,
        title = escape(title),
    ))
}

const LOGIN_FORM: &str = r#"  <form id="login" method="post" action="/login">
    <label>Username <input name="username" required maxlength="40" autocomplete="username"></label>
    <button type="submit">Log in</button>
  </form>"#;

/// Home: the visit counter, and the login form while logged out.
#[get("/")]
async fn home(mut session: Session<Shop>) -> Result<RawHtml<String>, SessionError> {
    let visits = {
        let visits = session.visits_mut().await?;
        *visits += 1;
        *visits
    };
    let user = session.user().await?.clone();
    let mut body =
        format!(r#"  <p>Visits in this session: <strong id="visits">{visits}</strong></p>"#);
    match &user {
        Some(name) => write!(
            body,
            r#"
  <p id="welcome">Welcome back, {}. Browse the <a href="/products">products</a>.</p>"#,
            escape(name)
        )
        .unwrap(),
        None => write!(body, "\n{LOGIN_FORM}").unwrap(),
    }
    Ok(page("Home", user.as_deref(), &body))
}

/// The login page the protected routes redirect to.
#[get("/login")]
async fn login_page(session: Session<Shop>) -> Result<RawHtml<String>, SessionError> {
    let user = session.user().await?.clone();
    let body = match &user {
        Some(name) => format!(
            r#"  <p id="welcome">You are logged in as {}.</p>"#,
            escape(name)
        ),
        None => format!("  <p id=\"login-needed\">Please log in.</p>\n{LOGIN_FORM}"),
    };
    Ok(page("Log in", user.as_deref(), &body))
}

#[derive(FromForm)]
struct Login<'r> {
    #[field(validate = len(1..=40))]
    username: &'r str,
}

/// Logs in: a new session id first (no session fixation), then the user.
/// The anonymous cart comes along.
#[post("/login", data = "<form>")]
fn login(mut session: Session<Shop>, form: Form<Login<'_>>) -> Redirect {
    let name = form.username.trim();
    if name.is_empty() {
        return Redirect::to(uri!(login_page));
    }
    session.regenerate();
    session.set_user(Some(name.to_string()));
    Redirect::to(uri!(home))
}

/// Logs out: deletes the session in the store and removes the cookie.
#[post("/logout")]
async fn logout(session: Session<Shop>) -> Result<Redirect, SessionError> {
    session.destroy().await?;
    Ok(Redirect::to(uri!(logged_out)))
}

/// Logs the user out on every device: ends every session of this user,
/// this one included, in one statement. A step-up first: the user must
/// have confirmed who they are in the last 10 minutes.
#[post("/logout-everywhere")]
async fn logout_everywhere(mut session: Session<Shop>) -> Result<Redirect, SessionError> {
    let user = session.user().await?.clone();
    if user.is_none() {
        return Ok(Redirect::to(uri!(login_page)));
    }
    if !*session.confirmed().await? {
        return Ok(Redirect::to(uri!(confirm_page)));
    }
    session.destroy_sessions_by_user(&user).await?;
    Ok(Redirect::to(uri!(logged_out)))
}

/// The step-up before a sensitive action: confirm who you are.
#[get("/confirm")]
async fn confirm_page(session: Session<Shop>) -> Result<RawHtml<String>, SessionError> {
    let user = session.user().await?.clone();
    let body = r#"  <p id="confirm-needed">Logging out everywhere needs you to confirm who you are (valid 10 minutes).</p>
  <form id="confirm" method="post" action="/confirm">
    <label>Your user name <input name="username" autocomplete="off"></label>
    <button type="submit">Confirm</button>
  </form>"#;
    Ok(page("Confirm", user.as_deref(), body))
}

/// Opens the 10-minute window when the name matches; a new token, as at
/// login, since the window is a privilege.
#[post("/confirm", data = "<form>")]
async fn confirm(
    mut session: Session<Shop>,
    form: Form<Login<'_>>,
) -> Result<Redirect, SessionError> {
    let user = session.user().await?.clone();
    if user.as_deref() != Some(form.username.trim()) {
        return Ok(Redirect::to(uri!(confirm_page)));
    }
    session.set_confirmed(true);
    session.regenerate();
    Ok(Redirect::to(uri!(account)))
}

/// Where logout lands. It takes no session, so the browser is left with no
/// session cookie at all until the next page that uses one.
#[get("/logged-out")]
fn logged_out() -> RawHtml<String> {
    page(
        "Logged out",
        None,
        r#"  <p id="logged-out">You are logged out. Back to the <a href="/">shop</a>.</p>"#,
    )
}

/// The catalogue, with an "add to cart" form per product.
#[get("/products")]
async fn products(session: Session<Shop>) -> Result<RawHtml<String>, SessionError> {
    let user = session.user().await?.clone();
    let mut body = String::from("  <ul id=\"products\">\n");
    for p in PRODUCTS {
        write!(
            body,
            r#"    <li class="product" id="product-{id}"><span class="name">{name}</span> <span class="price">{price}</span>
      <form method="post" action="/cart/add"><input type="hidden" name="product" value="{id}"><button type="submit">Add to cart</button></form></li>
"#,
            id = escape(p.id),
            name = escape(p.name),
            price = money(p.price_cents),
        )
        .unwrap();
    }
    body.push_str("  </ul>");
    if user.is_none() {
        body.push_str("\n  <p>Log in to fill a cart.</p>");
    }
    Ok(page("Products", user.as_deref(), &body))
}

#[derive(FromForm)]
struct ProductForm<'r> {
    product: &'r str,
}

#[post("/cart/add", data = "<form>")]
async fn cart_add(
    _user: User,
    mut session: Session<Shop>,
    form: Form<ProductForm<'_>>,
) -> Result<Option<Redirect>, SessionError> {
    let Some(p) = product(form.product) else {
        return Ok(None);
    };
    *session
        .cart_mut()
        .await?
        .entry(p.id.to_string())
        .or_default() += 1;
    Ok(Some(Redirect::to(uri!(cart))))
}

#[post("/cart/remove", data = "<form>")]
async fn cart_remove(
    _user: User,
    mut session: Session<Shop>,
    form: Form<ProductForm<'_>>,
) -> Result<Redirect, SessionError> {
    session.cart_mut().await?.remove(form.product);
    Ok(Redirect::to(uri!(cart)))
}

/// The cart: lines, a remove button per line, the total and checkout.
#[get("/cart")]
async fn cart(user: User, session: Session<Shop>) -> Result<RawHtml<String>, SessionError> {
    let cart = session.cart().await?;
    let mut body = String::new();
    if cart.is_empty() {
        body.push_str(
            r#"  <p id="empty">Your cart is empty. See the <a href="/products">products</a>.</p>"#,
        );
    } else {
        body.push_str("  <table id=\"cart\">\n    <tr><th>Product</th><th>Quantity</th><th>Price</th><th></th></tr>\n");
        let mut total = 0;
        for (id, quantity) in cart {
            let Some(p) = product(id) else { continue };
            let line = p.price_cents * u64::from(*quantity);
            total += line;
            write!(
                body,
                r#"    <tr class="line" id="line-{id}"><td class="name">{name}</td><td class="quantity">{quantity}</td><td class="price">{price}</td>
      <td><form method="post" action="/cart/remove"><input type="hidden" name="product" value="{id}"><button type="submit">Remove</button></form></td></tr>
"#,
                id = escape(id),
                name = escape(p.name),
                price = money(line),
            )
            .unwrap();
        }
        write!(
            body,
            r#"  </table>
  <p>Total: <strong id="total">{}</strong></p>
  <form id="checkout" method="post" action="/checkout"><button type="submit">Check out</button></form>"#,
            money(total)
        )
        .unwrap();
    }
    Ok(page("Cart", Some(&user.name), &body))
}

/// Turns the cart into an order (stored in the deferred `orders` field).
#[post("/checkout")]
async fn checkout(_user: User, mut session: Session<Shop>) -> Result<Redirect, SessionError> {
    let cart = std::mem::take(session.cart_mut().await?);
    if cart.is_empty() {
        return Ok(Redirect::to(uri!(cart)));
    }
    let total_cents = cart
        .iter()
        .filter_map(|(id, q)| product(id).map(|p| p.price_cents * u64::from(*q)))
        .sum();
    let orders = session.orders_mut().await?;
    let number = orders.len() as u32 + 1;
    orders.push(Order {
        number,
        lines: cart.into_iter().collect(),
        total_cents,
    });
    session.set_notice(format!("Order {number} placed. Thank you!"));
    Ok(Redirect::to(uri!(orders)))
}

/// Past orders: the only page that reads the deferred field.
#[get("/orders")]
async fn orders(user: User, mut session: Session<Shop>) -> Result<RawHtml<String>, SessionError> {
    let mut body = String::new();
    // Shown once: a reload of the page no longer has it.
    if let Some(notice) = session.take_notice().await? {
        writeln!(body, r#"  <p id="notice">{}</p>"#, escape(&notice)).unwrap();
    }
    let orders = session.orders().await?;
    if orders.is_empty() {
        body.push_str(r#"  <p id="no-orders">No orders yet.</p>"#);
    } else {
        body.push_str("  <ol id=\"orders\">\n");
        for order in orders.iter().rev() {
            let lines: Vec<String> = order
                .lines
                .iter()
                .map(|(id, q)| {
                    let name = product(id).map_or(id.as_str(), |p| p.name);
                    format!("{q} × {}", escape(name))
                })
                .collect();
            writeln!(
                body,
                r#"    <li class="order" value="{n}" id="order-{n}">{lines} · <strong>{total}</strong></li>"#,
                n = order.number,
                lines = lines.join(", "),
                total = money(order.total_cents),
            )
            .unwrap();
        }
        body.push_str("  </ol>");
    }
    Ok(page("Orders", Some(&user.name), &body))
}

/// Where the logged-out visitor of a page that needs a login goes.
#[get("/cart", rank = 2)]
fn cart_login() -> Redirect {
    Redirect::to(uri!(login_page))
}

#[get("/orders", rank = 2)]
fn orders_login() -> Redirect {
    Redirect::to(uri!(login_page))
}

#[post("/cart/<_..>", rank = 2)]
fn cart_change_login() -> Redirect {
    Redirect::to(uri!(login_page))
}

#[post("/checkout", rank = 2)]
fn checkout_login() -> Redirect {
    Redirect::to(uri!(login_page))
}

#[catch(503)]
fn unavailable() -> RawHtml<String> {
    page(
        "Unavailable",
        None,
        "  <p>The session store is unreachable; try again in a moment.</p>",
    )
}

/// The example's configuration: Rocket's defaults, then `Rocket.toml` from
/// this package's directory (or `ROCKET_CONFIG`), then `ROCKET_*`
/// variables, with the profile from `ROCKET_PROFILE`. The same sources as
/// `rocket::Config::figment()`, except that `Rocket.toml` is found from
/// `CARGO_MANIFEST_DIR` rather than the working directory, so
/// `cargo run -p shop` works from the workspace root.
pub fn figment() -> Figment {
    let toml = Env::var("ROCKET_CONFIG")
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/Rocket.toml").into());
    Figment::from(Serialized::defaults(rocket::Config::default()))
        .merge(Toml::file(toml).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or(
            "ROCKET_PROFILE",
            rocket::Config::DEFAULT_PROFILE,
        ))
}

/// A relative `sqlite://` path in the configuration is taken relative to
/// this package's directory, not the working directory, so the database
/// file is the same wherever `cargo run` starts.
fn anchor_sqlite_path(figment: Figment) -> Figment {
    let Ok(url) = figment.extract_inner::<String>("sessions.url") else {
        return figment;
    };
    let Some(path) = url.strip_prefix("sqlite://") else {
        return figment;
    };
    if path.is_empty() || path.starts_with(':') || Path::new(path).is_absolute() {
        return figment;
    }
    let absolute = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    figment.merge(("sessions.url", format!("sqlite://{}", absolute.display())))
}

/// What the activity page lists: the lifecycle events of each user's
/// sessions, newest first, the last [`AUDIT_ENTRIES`] per user. A real app
/// would write these to a table of its own; events arrive on their own
/// thread, after the response, so this never slows a request.
#[derive(Debug, Default)]
pub struct Audit(Mutex<HashMap<String, VecDeque<AuditEntry>>>);

/// How many entries the activity page keeps per user.
pub const AUDIT_ENTRIES: usize = 50;

/// One line of the activity page.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: u64,
    /// What happened, in words.
    pub what: &'static str,
    /// The session's id (never its token).
    pub session: String,
}

impl Audit {
    /// Records `event` for the user it names (events of anonymous
    /// sessions have no user, and are not listed).
    pub fn record(&self, event: &SessionEvent) {
        let Some(Some(user)) = event.value::<Option<String>>("user") else {
            return;
        };
        let what = match &event.kind {
            EventKind::Created => "signed in (new session)",
            EventKind::Regenerated { .. } => "signed in",
            EventKind::Destroyed {
                cause: DestroyCause::Everywhere,
            } => "signed out by \"log out everywhere\"",
            EventKind::Destroyed {
                cause: DestroyCause::Revoked,
            } => "signed out from another device",
            EventKind::Destroyed {
                cause: DestroyCause::TheftSuspected,
            } => "signed out everywhere: an old copy of the session cookie was used",
            // A new token every `rotate_after`: routine, not listed.
            EventKind::Rotated { .. } => return,
            EventKind::Destroyed { .. } => "signed out",
            EventKind::Expired => "session expired",
            EventKind::Conflict => "a change lost a race and was not saved",
            _ => "other",
        };
        let at = event
            .at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut users = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entries = users.entry(user).or_default();
        entries.push_front(AuditEntry {
            at,
            what,
            session: event.session.to_string(),
        });
        entries.truncate(AUDIT_ENTRIES);
    }

    /// The entries of `user`, newest first.
    pub fn of(&self, user: &str) -> Vec<AuditEntry> {
        let users = self.0.lock().unwrap_or_else(|e| e.into_inner());
        users
            .get(user)
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The signed-in user's activity: sign-ins, sign-outs and expiries of
/// their sessions, from the lifecycle events.
#[get("/audit")]
async fn audit(
    session: Session<Shop>,
    audit: &State<Arc<Audit>>,
) -> Result<Result<RawHtml<String>, Redirect>, SessionError> {
    let Some(user) = session.user().await?.clone() else {
        return Ok(Err(Redirect::to(uri!(login_page))));
    };
    let mut body = String::from("  <table id=\"audit\">\n    <tr><th>When (Unix time)</th><th>What</th><th>Session</th></tr>\n");
    let entries = audit.of(&user);
    for (i, entry) in entries.iter().enumerate() {
        writeln!(
            body,
            r#"    <tr id="audit-{i}"><td>{}</td><td class="what">{}</td><td><code>{}</code></td></tr>"#,
            entry.at,
            escape(entry.what),
            &entry.session[..12]
        )
        .unwrap();
    }
    body.push_str("  </table>");
    if entries.is_empty() {
        body.push_str("\n  <p id=\"no-activity\">No activity yet.</p>");
    }
    Ok(Ok(page("Activity", Some(&user), &body)))
}

/// "Your devices": the user's sessions, most recently seen first, each
/// with its opaque id (never the token), when it started and was last
/// seen, what its cart holds, and a button that signs that one out.
#[get("/account")]
async fn account(
    session: Session<Shop>,
) -> Result<Result<RawHtml<String>, Redirect>, SessionError> {
    let user = session.user().await?.clone();
    let Some(name) = user.clone() else {
        return Ok(Err(Redirect::to(uri!(login_page))));
    };
    let mut body = String::from(
        "  <table id=\"devices\">\n    <tr><th>Session</th><th>Device</th><th>From</th><th>Signed in (Unix time)</th><th>Last seen</th><th>Cart items</th><th></th></tr>\n",
    );
    for device in session.sessions_by_user(&user).await? {
        let id = device.id().to_string();
        let items: u32 = device.data().cart.values().sum();
        let (agent, from) = device.device().map_or((None, None), |d| {
            (d.user_agent.as_deref(), d.address.as_deref())
        });
        let action = if device.is_current() {
            "<em class=\"current\">this device</em>".to_string()
        } else {
            format!(
                r#"<form class="sign-out" method="post" action="/account/sign-out"><input type="hidden" name="id" value="{id}"><button type="submit">Sign out this device</button></form>"#
            )
        };
        writeln!(
            body,
            r#"    <tr class="device" id="device-{id}"><td><code>{short}</code></td><td class="agent">{}</td><td class="from">{}</td><td>{}</td><td>{}</td><td class="items">{items}</td><td>{action}</td></tr>"#,
            escape(agent.unwrap_or("unknown")),
            escape(from.unwrap_or("unknown")),
            device.created_at(),
            device.last_seen(),
            short = &id[..12],
        )
        .unwrap();
    }
    body.push_str("  </table>");
    Ok(Ok(page("Your devices", Some(&name), &body)))
}

#[derive(FromForm)]
struct SignOut<'r> {
    id: &'r str,
}

/// Signs out the device the account page listed with `id`: only a
/// session of this user's ends (an id of someone else's ends nothing);
/// this device's own id signs this one out.
#[post("/account/sign-out", data = "<form>")]
async fn sign_out_device(
    mut session: Session<Shop>,
    form: Form<SignOut<'_>>,
) -> Result<Redirect, SessionError> {
    let user = session.user().await?.clone();
    if let (Some(_), Ok(id)) = (&user, form.id.parse::<SessionId>()) {
        session.destroy_session_by_user(&user, &id).await?;
    }
    Ok(Redirect::to(uri!(account)))
}

/// The process's Prometheus recorder: installed once (a process has one
/// global recorder, and tests build the shop several times), with
/// histograms in buckets fit for the sessions' metrics (seconds, bytes,
/// statements; cheaper to record and to scrape than the default
/// summaries), and its upkeep run every 5 s, as the exporter requires when
/// the app serves `/metrics` itself.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = session_buckets(PrometheusBuilder::new()).build_recorder();
            let handle = recorder.handle();
            // Another recorder installed first (by a test) wins; this
            // handle then renders nothing, which `/metrics` shows as empty.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("start the metrics upkeep thread");
            handle
        })
        .clone()
}

/// Histogram buckets for the sessions' metrics: latencies from 0.5 ms to
/// 5 s, sizes from 64 B to 1 MiB, statements per request 0 to 16.
pub fn session_buckets(builder: PrometheusBuilder) -> PrometheusBuilder {
    use metrics_exporter_prometheus::Matcher;
    use session_rocket::metrics::{BYTES_BUCKETS, SECONDS_BUCKETS, STATEMENTS, STATEMENTS_BUCKETS};
    builder
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS))
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(STATEMENTS.into()), STATEMENTS_BUCKETS)
        })
        .expect("non-empty buckets")
}

/// The sessions' metrics (and any others the app emits) in Prometheus text.
#[get("/metrics")]
fn metrics_page(handle: &State<PrometheusHandle>) -> (rocket::http::ContentType, String) {
    handle.run_upkeep();
    let text = rocket::http::ContentType::new("text", "plain").with_params(("version", "0.0.4"));
    (text, handle.render())
}

/// The shop, ready to launch, on the given configuration (see [`figment`]).
pub fn rocket(figment: Figment) -> Rocket<Build> {
    let log = Arc::new(Audit::default());
    let events = log.clone();
    rocket::custom(anchor_sqlite_path(figment))
        .attach(Sessions::fairing().on_event(move |event| events.record(event)))
        .manage(log)
        .manage(prometheus())
        .mount(
            "/",
            routes![
                account,
                sign_out_device,
                audit,
                metrics_page,
                home,
                login_page,
                login,
                logout,
                logout_everywhere,
                confirm_page,
                confirm,
                logged_out,
                products,
                cart_add,
                cart_remove,
                cart,
                checkout,
                orders,
                cart_login,
                orders_login,
                cart_change_login,
                checkout_login,
            ],
        )
        .register("/", catchers![unavailable])
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_covers_the_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }
}
