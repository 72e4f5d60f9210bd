//! The store conformance suite on SQLite, a temporary file per test.

use std::path::PathBuf;

use session_core::store::sqlite::SqliteStore;
use session_core::{Config, Token};

fn temp_db() -> PathBuf {
    let name = Token::generate().unwrap().to_cookie_value();
    std::env::temp_dir().join(format!("session-test-{}.db", &name[..16]))
}

async fn store() -> SqliteStore {
    let path = temp_db();
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()), &Config::default())
        .await
        .expect("open sqlite file");
    store.create_tables().await.expect("create tables");
    store
}

async fn teardown(store: &SqliteStore) {
    let path = store.pool().connect_options().get_filename().to_owned();
    store.pool().close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

session_core::store_conformance_tests!(store, teardown);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_requests_on_one_session_all_succeed() {
    use session_core::state::{flush, Outcome};
    use session_core::testing::Cart;
    use session_core::SessionManager;
    use std::sync::Arc;

    let store = Arc::new(store().await);
    let manager = SessionManager::new(store.clone(), Config::default()).unwrap();
    let cookie = session_core::testing::login(&manager, 1).await;
    // 32 requests at once, each appending to its own field through a full
    // load-modify-flush: none may fail with "database is locked".
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let manager = manager.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let mut h = manager.open::<Cart>(Some(&cookie));
                let _ = h.user().await?;
                match i % 3 {
                    0 => h.cart_mut().await?.push(format!("item{i}")),
                    1 => *h.visits_mut().await? += 1,
                    _ => h.set_history(vec![format!("/p{i}")]),
                }
                flush(&mut h).await
            })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap().expect("no request fails");
        assert!(matches!(outcome, Outcome::Saved | Outcome::Unchanged));
    }
    teardown(&store).await;
}

#[tokio::test]
async fn the_file_and_tables_are_created() {
    let path = temp_db();
    assert!(!path.exists());
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()), &Config::default())
        .await
        .unwrap();
    store.create_tables().await.unwrap();
    store
        .create_tables()
        .await
        .expect("creating twice is harmless");
    store.check().await.unwrap();
    assert!(path.exists());
    teardown(&store).await;
}
