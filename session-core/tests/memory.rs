//! The store conformance suite on the memory store.

use std::sync::Arc;

use session_core::store::{memory::MemoryStore, SessionStore};

async fn store() -> Arc<dyn SessionStore> {
    Arc::new(MemoryStore::new())
}

session_core::store_conformance_tests!(store);
