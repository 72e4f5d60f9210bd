//! The store conformance suite on the memory store.

use session_core::store::memory::MemoryStore;

async fn store() -> MemoryStore {
    MemoryStore::new()
}

session_core::store_conformance_tests!(store);
