//! Property tests: what arbitrary input cannot break.
//!
//! - The cookie parser and the field decoders never panic on arbitrary
//!   bytes; an undecodable field falls back or fails as configured.
//! - Random sequences of typed operations across several requests leave the
//!   store holding exactly what a plain in-memory model says, on the memory
//!   store, on SQLite and (fewer cases) on MySQL (`DATABASE_URL`).

use std::sync::Arc;

use proptest::prelude::*;
use session_core::config::OnDecodeError;
use session_core::state::{CookieAction, Outcome};
use session_core::store::memory::MemoryStore;
use session_core::store::mysql::MySqlStore;
use session_core::store::sqlite::SqliteStore;
use session_core::store::{NewSession, SessionStore};
use session_core::testing::Cart;
use session_core::{flush, Config, SessionManager, Token};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn the_cookie_parser_never_panics(text in ".{0,64}") {
        let parsed = Token::parse(&text);
        if let Some(token) = parsed {
            prop_assert_eq!(token.to_cookie_value(), text);
        }
    }

    #[test]
    fn any_stored_bytes_decode_or_fall_back(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        runtime().block_on(async {
            let store = Arc::new(MemoryStore::new());
            let token = Token::generate().unwrap();
            let t = session_core::now();
            let session = NewSession { created_at: t, expires_at: t + 60, idle_timeout: 60, persistent: None };
            let fields = [("user", bytes.clone()), ("cart", bytes.clone()), ("visits", bytes.clone())];
            store.create(&token.store_key(), session, &fields).await.unwrap();
            let cookie = token.to_cookie_value();
            let lenient = SessionManager::new(store.clone(), Config::default()).unwrap();
            let h = lenient.open::<Cart>(Some(&cookie));
            let _ = h.user().await.expect("falls back, never fails");
            let _ = h.cart().await.expect("falls back, never fails");
            let _ = h.visits().await.expect("falls back, never fails");
            let strict = Config { on_decode_error: OnDecodeError::Error, ..Config::default() };
            let strict = SessionManager::new(store.clone(), strict).unwrap();
            let h = strict.open::<Cart>(Some(&cookie));
            // decodes, or reports the field: never panics
            let _ = h.cart().await;
        });
    }
}

/// One operation of a request on the `Cart` session type.
#[derive(Debug, Clone)]
enum Op {
    ReadAll,
    SetUser(Option<u64>),
    PushCart(String),
    RemoveCart,
    BumpVisits(u32),
    SetHistory(Vec<String>),
    Regenerate,
    SetExpiry(u64),
}

/// A request: operations, then maybe a logout as its last act.
#[derive(Debug, Clone)]
struct Request {
    ops: Vec<Op>,
    destroy: bool,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::ReadAll),
        proptest::option::of(0u64..5).prop_map(Op::SetUser),
        "[a-c]{1,3}".prop_map(Op::PushCart),
        Just(Op::RemoveCart),
        (0u32..3).prop_map(Op::BumpVisits),
        proptest::collection::vec("[x-z]{1,2}", 0..3).prop_map(Op::SetHistory),
        Just(Op::Regenerate),
        (60u64..100_000).prop_map(Op::SetExpiry),
    ]
}

fn requests() -> impl Strategy<Value = Vec<Request>> {
    let request = (
        proptest::collection::vec(op(), 0..6),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(ops, destroy)| Request { ops, destroy });
    proptest::collection::vec(request, 1..8)
}

/// What the session should hold.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    user: Option<u64>,
    cart: Vec<String>,
    visits: u32,
    history: Vec<String>,
}

/// Runs the requests through the session layer and checks the store
/// against the model after each one.
async fn check(store: Arc<dyn SessionStore>, requests: Vec<Request>) -> Result<(), TestCaseError> {
    let manager = SessionManager::new(store, Config::default()).unwrap();
    let mut cookie: Option<String> = None;
    // `None`: no live session.
    let mut model: Option<Model> = None;
    for request in requests {
        let mut h = manager.open::<Cart>(cookie.as_deref());
        let mut next = model.clone().unwrap_or_default();
        let mut wrote = false;
        for op in &request.ops {
            match op {
                Op::ReadAll => {
                    prop_assert_eq!(*h.user().await.unwrap(), next.user);
                    prop_assert_eq!(h.cart().await.unwrap(), &next.cart);
                    prop_assert_eq!(*h.visits().await.unwrap(), next.visits);
                    prop_assert_eq!(h.history().await.unwrap(), &next.history);
                }
                Op::SetUser(user) => {
                    h.set_user(*user);
                    next.user = *user;
                    wrote = true;
                }
                Op::PushCart(item) => {
                    h.cart_mut().await.unwrap().push(item.clone());
                    next.cart.push(item.clone());
                    wrote = true;
                }
                Op::RemoveCart => {
                    h.remove_cart();
                    next.cart.clear();
                    wrote = true;
                }
                Op::BumpVisits(by) => {
                    *h.visits_mut().await.unwrap() += by;
                    next.visits += by;
                    wrote = true;
                }
                Op::SetHistory(history) => {
                    h.set_history(history.clone());
                    next.history = history.clone();
                    wrote = true;
                }
                Op::Regenerate => h.regenerate(),
                Op::SetExpiry(secs) => h.set_expiry(*secs),
            }
        }
        if request.destroy {
            h.destroy().await.unwrap();
            prop_assert_eq!(flush(&mut h).await.unwrap(), Outcome::Unchanged);
            if cookie.is_some() {
                prop_assert_eq!(h.request().take_cookie_action(), Some(CookieAction::Remove));
            }
            if let Some(old) = &cookie {
                let check = manager.open::<Cart>(Some(old));
                prop_assert!(check.user().await.unwrap().is_none() && check.is_new());
            }
            cookie = None;
            model = None;
            continue;
        }
        let outcome = flush(&mut h).await.unwrap();
        prop_assert_ne!(outcome, Outcome::Interrupted);
        if let Some(CookieAction::Set { token, .. }) = h.request().take_cookie_action() {
            cookie = Some(token.to_cookie_value());
        }
        if model.is_some() || (wrote && outcome == Outcome::Created) {
            model = Some(next);
        }
        // the store holds exactly the model
        if let (Some(cookie), Some(model)) = (&cookie, &model) {
            let check = manager.open::<Cart>(Some(cookie));
            prop_assert_eq!(*check.user().await.unwrap(), model.user);
            prop_assert_eq!(check.cart().await.unwrap(), &model.cart);
            prop_assert_eq!(*check.visits().await.unwrap(), model.visits);
            prop_assert_eq!(check.history().await.unwrap(), &model.history);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn typed_operations_match_the_model_on_memory(requests in requests()) {
        runtime().block_on(check(Arc::new(MemoryStore::new()), requests))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn typed_operations_match_the_model_on_sqlite(requests in requests()) {
        runtime().block_on(async {
            let name = Token::generate().unwrap().to_cookie_value()[..12].replace(['-', '_'], "x");
            let path = std::env::temp_dir().join(format!("session-prop-{name}.db"));
            let store = SqliteStore::connect(&format!("sqlite://{}", path.display()), &Config::default())
                .await
                .unwrap();
            store.create_tables().await.unwrap();
            let result = check(Arc::new(store), requests).await;
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            result
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn typed_operations_match_the_model_on_mysql(requests in requests()) {
        runtime().block_on(async {
            let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names the MySQL server");
            let prefix = session_core::testing::unique_prefix("p");
            let config = Config { table_prefix: prefix, ..Config::default() };
            let store = MySqlStore::connect(&url, &config).await.expect("MySQL");
            store.create_tables().await.unwrap();
            let store = Arc::new(store);
            let result = check(store.clone(), requests).await;
            store.drop_tables().await.unwrap();
            result
        })?;
    }
}
