//! Behaviour of the generated accessors on the memory store, counted in
//! store statements.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use session_core::flush;
use session_core::now;
use session_core::state::{CookieAction, Outcome};
use session_core::store::memory::MemoryStore;
use session_core::store::{SessionStore, Validity};
use session_core::{Config, SessionHandle, SessionManager};
use session_rocket::Session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    sku: String,
    qty: u32,
}

#[derive(Debug, Session)]
pub struct Shop {
    pub user_id: Option<u64>,
    cart: Vec<Item>,
    pub(crate) visits: u32,
    #[session(deferred)]
    history: Vec<String>,
    #[session(rename = "lang")]
    locale: String,
    #[session(default = "default_theme")]
    theme: String,
}

fn default_theme() -> String {
    "dark".into()
}

struct Fixture {
    store: Arc<MemoryStore>,
    manager: SessionManager,
}

impl Fixture {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
        Fixture { store, manager }
    }

    fn open(&self, cookie: Option<&str>) -> ShopSession {
        self.manager.open::<Shop>(cookie)
    }

    fn statements(&self) -> u64 {
        self.store.stats().statements
    }

    /// A stored session with `user_id = 7`, `visits = 1`, `history = ["/"]`;
    /// returns its cookie value.
    async fn login(&self) -> String {
        let mut s = self.open(None);
        s.set_user_id(Some(7));
        s.set_visits(1);
        s.set_history(vec!["/".into()]);
        assert_eq!(flush(&mut s).await.unwrap(), Outcome::Created);
        match s.state().request().take_cookie_action() {
            Some(CookieAction::Set { token, .. }) => token.to_cookie_value(),
            other => panic!("expected a Set-Cookie, got {other:?}"),
        }
    }
}

fn validity() -> Validity {
    let now = now();
    Validity {
        now,
        created_after: now - 1_000_000,
    }
}

#[tokio::test]
async fn reads_load_once() {
    let f = Fixture::new();
    let cookie = f.login().await;
    let s = f.open(Some(&cookie));
    let before = f.statements();
    assert_eq!(*s.user_id().await.unwrap(), Some(7));
    assert_eq!(*s.visits().await.unwrap(), 1);
    assert!(
        s.cart().await.unwrap().is_empty(),
        "absent field reads as Default"
    );
    assert_eq!(
        f.statements() - before,
        1,
        "one load for every non-deferred read"
    );
}

#[tokio::test]
async fn mut_marks_dirty_and_is_written() {
    let f = Fixture::new();
    let cookie = f.login().await;
    let mut s = f.open(Some(&cookie));
    s.cart_mut().await.unwrap().push(Item {
        sku: "apple".into(),
        qty: 2,
    });
    *s.visits_mut().await.unwrap() += 1;
    assert_eq!(flush(&mut s).await.unwrap(), Outcome::Saved);

    let check = f.open(Some(&cookie));
    assert_eq!(
        *check.cart().await.unwrap(),
        [Item {
            sku: "apple".into(),
            qty: 2
        }]
    );
    assert_eq!(*check.visits().await.unwrap(), 2);
}

#[tokio::test]
async fn set_does_not_load() {
    let f = Fixture::new();
    let cookie = f.login().await;
    let mut s = f.open(Some(&cookie));
    let before = f.statements();
    s.set_visits(10);
    assert_eq!(f.statements() - before, 0, "a blind write loads nothing");
    assert!(!s.is_loaded());
    assert_eq!(flush(&mut s).await.unwrap(), Outcome::Saved);
    assert_eq!(f.statements() - before, 1, "the write only");
    assert_eq!(*f.open(Some(&cookie)).visits().await.unwrap(), 10);
}

#[tokio::test]
async fn deferred_fields_load_separately() {
    let f = Fixture::new();
    let cookie = f.login().await;
    let s = f.open(Some(&cookie));
    let before = f.statements();
    assert_eq!(*s.visits().await.unwrap(), 1);
    assert_eq!(f.statements() - before, 1, "the first load skips `history`");
    assert_eq!(*s.history().await.unwrap(), ["/"]);
    assert_eq!(
        f.statements() - before,
        2,
        "one more for the deferred field"
    );
    let _ = s.history().await.unwrap();
    assert_eq!(f.statements() - before, 2, "and only once");
}

#[tokio::test]
async fn renamed_fields_use_the_stored_name() {
    let f = Fixture::new();
    let mut s = f.open(None);
    s.set_locale("fr".into());
    flush(&mut s).await.unwrap();
    let key = s.id().expect("a created session has an id");

    let record = f.store.load(&key, &[], validity()).await.unwrap().unwrap();
    let names: Vec<_> = record.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["lang"]);
    assert_eq!(record.fields[0].1, b"\"fr\"");
}

#[tokio::test]
async fn default_function_for_absent_fields() {
    let f = Fixture::new();
    let cookie = f.login().await;
    let mut s = f.open(Some(&cookie));
    assert_eq!(*s.theme().await.unwrap(), "dark");
    assert_eq!(*s.locale().await.unwrap(), "", "no attribute: `Default`");
    // a default left untouched by `_mut` is not written
    let _ = s.theme_mut().await.unwrap();
    assert_eq!(flush(&mut s).await.unwrap(), Outcome::Unchanged);
}

#[tokio::test]
async fn remove_resets_and_deletes() {
    let f = Fixture::new();
    let cookie = f.login().await;
    let mut s = f.open(Some(&cookie));
    s.set_theme("light".into());
    flush(&mut s).await.unwrap();

    let mut s = f.open(Some(&cookie));
    assert_eq!(*s.theme().await.unwrap(), "light");
    s.remove_theme();
    assert_eq!(*s.theme().await.unwrap(), "dark", "reset to the default");
    s.remove_user_id();
    assert_eq!(*s.user_id().await.unwrap(), None);
    assert_eq!(flush(&mut s).await.unwrap(), Outcome::Saved);

    let key = s.id().unwrap();
    let record = f.store.load(&key, &[], validity()).await.unwrap().unwrap();
    let mut names: Vec<_> = record.fields.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["history", "visits"],
        "`theme` and `user_id` are deleted"
    );
}

#[tokio::test]
async fn session_methods_through_deref() {
    let f = Fixture::new();
    let fresh = f.open(None);
    assert!(fresh.is_new());
    assert_eq!(fresh.id(), None);

    let cookie = f.login().await;
    let mut s = f.open(Some(&cookie));
    assert_eq!(*s.user_id().await.unwrap(), Some(7));
    assert!(!s.is_new());
    let old = s.id().unwrap();
    s.regenerate();
    s.set_expiry(60);
    assert_ne!(s.id().unwrap(), old, "a new token");
    assert_eq!(flush(&mut s).await.unwrap(), Outcome::Saved);
    assert!(matches!(
        s.state().request().take_cookie_action(),
        Some(CookieAction::Set { .. })
    ));

    s.destroy().await.unwrap();
    assert!(s.is_destroyed());
    assert!(format!("{s:?}").starts_with("ShopSession { state: SessionState"));
}

/// `needle` as `{:?}` prints it inside a byte list (`[104, 117, …]`
/// without the brackets), to catch values leaked as raw bytes.
fn as_debug_bytes(needle: &str) -> String {
    let list = format!("{:?}", needle.as_bytes());
    list[1..list.len() - 1].to_string()
}

/// Asserts that `secret` appears in `debug` neither as text nor as bytes.
fn assert_hidden(debug: &str, secret: &str, what: &str) {
    assert!(
        !debug.contains(secret),
        "{what}'s Debug shows {secret:?}: {debug}"
    );
    assert!(
        !debug.contains(&as_debug_bytes(secret)),
        "{what}'s Debug shows the bytes of {secret:?}: {debug}"
    );
}

/// What lands in a log through `{:?}` never holds a secret: the session
/// handle names its fields but shows no value (stored, loaded, written or
/// flushed), the cookie action shows neither the token nor the cookie
/// value, and the configuration hides the database password in its `url`.
#[tokio::test]
async fn debug_output_shows_no_value_token_or_password() {
    let f = Fixture::new();
    const STORED: &str = "stored-secret-sku";
    const WRITTEN: &str = "written-secret-locale";

    let mut s = f.open(None);
    s.set_cart(vec![Item {
        sku: STORED.into(),
        qty: 1,
    }]);
    assert_hidden(&format!("{s:?}"), STORED, "a handle with a blind write");
    assert_eq!(flush(&mut s).await.unwrap(), Outcome::Created);
    assert_hidden(&format!("{s:?}"), STORED, "a flushed handle");
    let action = s.state().request().take_cookie_action().unwrap();
    let CookieAction::Set { token, value, .. } = &action else {
        panic!("expected a Set-Cookie, got a removal");
    };
    let action_debug = format!("{action:?}");
    assert_hidden(&action_debug, &token.to_cookie_value(), "CookieAction");
    assert_hidden(&action_debug, value, "CookieAction");
    assert!(action_debug.contains("max_age"), "{action_debug}");
    let cookie = token.to_cookie_value();

    let mut s = f.open(Some(&cookie));
    assert_eq!(s.cart().await.unwrap()[0].sku, STORED);
    *s.locale_mut().await.unwrap() = WRITTEN.into();
    let debug = format!("{s:?}");
    assert_hidden(&debug, STORED, "a handle with a loaded field");
    assert_hidden(&debug, WRITTEN, "a handle with a changed field");
    assert_hidden(&debug, &cookie, "a handle");
    for name in ["user_id", "cart", "locale"] {
        assert!(debug.contains(name), "the Debug names `{name}`: {debug}");
    }
    assert_eq!(flush(&mut s).await.unwrap(), Outcome::Saved);
    assert_hidden(&format!("{s:?}"), WRITTEN, "a flushed handle");

    let config = Config {
        url: Some("mysql://app:hunter2-db-password@db:3306/app".into()),
        ..Config::default()
    };
    let debug = format!("{config:?}");
    assert_hidden(&debug, "hunter2-db-password", "Config");
    assert!(debug.contains("mysql://app:***@db:3306/app"), "{debug}");
}

/// A session type found by an indexed field, for the typed list.
#[derive(Debug, Session)]
pub struct Device {
    #[session(index)]
    pub owner: u64,
    pub name: String,
    #[session(default = "default_theme")]
    theme: String,
    #[session(deferred)]
    notes: Vec<String>,
}

/// `sessions_by_x()` lists sessions whose fields read typed through
/// `data()`: stored values as they are, an absent field as its default
/// (its `default = "…"` function where it has one).
#[tokio::test]
async fn listed_sessions_read_their_fields_typed() {
    let f = Fixture::new();
    let mut h = f.manager.open::<Device>(None);
    h.set_owner(3);
    h.set_name("phone".into());
    h.set_notes(vec!["kept apart".into()]);
    flush(&mut h).await.unwrap();
    let mut other = f.manager.open::<Device>(None);
    other.set_owner(4);
    flush(&mut other).await.unwrap();

    let listed = f
        .manager
        .open::<Device>(None)
        .sessions_by_owner(&3)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let data: DeviceListed = listed[0].data();
    assert_eq!(data.owner, 3);
    assert_eq!(data.name, "phone");
    assert_eq!(data.theme, "dark", "absent: the field's default function");
    assert_eq!(listed[0].id().to_string().len(), 32);
}

/// The derive names each lifetime entry as the store expects it:
/// `LIFETIME_PREFIX` and the stored name (after `rename`).
#[test]
fn lifetime_entries_follow_the_store_prefix() {
    use session_core::schema::SessionData;
    #[derive(Session)]
    struct Timed {
        #[session(ttl = "2h", sliding)]
        code: String,
        #[session(ttl = 30, rename = "otp")]
        one_time: u32,
        plain: u32,
    }
    let lifetimes: Vec<_> = Timed::FIELDS.iter().map(|f| f.lifetime).collect();
    let entry = |name: &str| format!("{}{name}", session_core::store::LIFETIME_PREFIX);
    let first = lifetimes[0].expect("code has a lifetime");
    assert_eq!(
        (first.seconds, first.sliding, first.entry),
        (7200, true, entry("code").as_str())
    );
    let second = lifetimes[1].expect("otp has a lifetime");
    assert_eq!(
        (second.seconds, second.sliding, second.entry),
        (30, false, entry("otp").as_str())
    );
    assert!(lifetimes[2].is_none());
}
