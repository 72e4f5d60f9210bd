//! The store conformance suite on the memory store.

use session_core::store::memory::MemoryStore;

async fn store() -> MemoryStore {
    MemoryStore::new()
}

session_core::store_conformance_tests!(store);

/// A store without indexes (the memory store with its capability hidden),
/// as a store author's first version might be.
#[derive(Debug)]
struct NoIndexes(MemoryStore);

mod no_indexes {
    use session_core::store::{
        Changes, NewSession, PreviousKey, Record, Saved, SessionStore, Timestamp, Validity,
    };
    use session_core::{async_trait, Result, StoreKey};

    #[async_trait]
    impl SessionStore for super::NoIndexes {
        async fn load(
            &self,
            key: &StoreKey,
            skip: &[&str],
            at: Validity,
        ) -> Result<Option<Record>> {
            self.0.load(key, skip, at).await
        }
        async fn load_field(
            &self,
            key: &StoreKey,
            name: &str,
            at: Validity,
        ) -> Result<Option<Vec<u8>>> {
            self.0.load_field(key, name, at).await
        }
        async fn create(
            &self,
            key: &StoreKey,
            s: NewSession,
            f: &[(&'static str, Vec<u8>)],
        ) -> Result<bool> {
            self.0.create(key, s, f).await
        }
        async fn save(&self, key: &StoreKey, changes: &Changes, at: Validity) -> Result<Saved> {
            self.0.save(key, changes, at).await
        }
        async fn previous(&self, key: &StoreKey, now: Timestamp) -> Result<Option<PreviousKey>> {
            self.0.previous(key, now).await
        }
        async fn destroy(&self, key: &StoreKey, now: Timestamp) -> Result<bool> {
            self.0.destroy(key, now).await
        }
        async fn delete_expired(
            &self,
            at: Validity,
            batch: u32,
        ) -> Result<Vec<session_core::store::Ended>> {
            self.0.delete_expired(at, batch).await
        }
    }
}

/// A session type with an indexed field is refused (at launch, where web
/// integrations ask) by a store that keeps no indexes, with the type, the
/// field and the fix; a type without one is kept, and a store that keeps
/// indexes keeps both.
#[tokio::test]
async fn an_indexed_type_needs_a_store_with_indexes() {
    use session_core::testing::{Account, Cart};
    use session_core::{Config, SessionManager};
    use std::sync::Arc;

    let plain =
        SessionManager::new(Arc::new(NoIndexes(MemoryStore::new())), Config::default()).unwrap();
    assert!(plain.supports::<Cart>().is_ok());
    let error = plain.supports::<Account>().unwrap_err().to_string();
    assert!(
        error.contains("Account") && error.contains("`user_id`") && error.contains("indexes"),
        "{error}"
    );
    let indexed = SessionManager::new(Arc::new(MemoryStore::new()), Config::default()).unwrap();
    assert!(indexed.supports::<Account>().is_ok());
    // Used anyway (without the launch check), the store's lack is an
    // error, never an empty list.
    let h = plain.open::<Account>(None);
    assert!(h.sessions_by_user_id(&1).await.is_err());
}

/// Cleanups racing on one memory store report each expired session once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_cleanups_report_each_session_once() {
    let store = std::sync::Arc::new(MemoryStore::new());
    session_core::testing::racing_cleanups_report_each_session_once(store.clone(), store.clone())
        .await;
    session_core::testing::expiry_events_fire_once_across_instances(store.clone(), store).await;
}
