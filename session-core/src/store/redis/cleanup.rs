//! Cleanup on Redis: one pass is one walk of the keyspace (`SCAN`; on a
//! cluster, each primary's in turn), its cursor kept from one batch to the
//! next, each page examined by one script, which also counts the live
//! sessions it examined: the `sessions_live` gauge at no extra command.

use super::reply::parse_hex;
use super::RedisStore;
use crate::error::Result;
use crate::store::{Ended, Validity};

/// What a purge script answers: how many keys of its page it examined,
/// each session it deleted (its key hex and its `f:` field pairs), and how
/// many of those it examined are alive.
pub(super) type PurgeReply = (usize, Vec<(String, Vec<Vec<u8>>)>, u64);

/// One cleanup pass's walk of the keyspace (`SCAN`), kept across its
/// batches.
#[derive(Debug, Default)]
pub(super) struct Walk {
    /// On a cluster, the primaries of this pass and the one walked now.
    nodes: Vec<String>,
    node: usize,
    cursor: u64,
    /// The walk has begun (a cursor of 0 then means it is over).
    started: bool,
    /// Keys of the last page not examined yet.
    pending: Vec<String>,
    /// Live sessions examined so far in this pass.
    live: u64,
}

impl RedisStore {
    /// Deletes every key of this store's prefix (on every primary of a
    /// cluster). For test suites that use a prefix per test; never called
    /// by the library.
    #[doc(hidden)]
    pub async fn drop_keys(&self) -> Result<()> {
        let nodes = self.nodes().await?;
        for node in &nodes {
            let mut cursor = 0u64;
            loop {
                let (next, keys) = self
                    .scan(node.as_deref(), cursor, &format!("{}*", self.prefix))
                    .await?;
                // One key per `DEL`: on a cluster they are in other slots.
                let deletes = keys
                    .iter()
                    .map(|key| async move { self.run::<i64>(redis::cmd("DEL").arg(key)).await });
                for deleted in futures_util::future::join_all(deletes).await {
                    deleted?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    /// The nodes whose keyspaces hold the sessions: the one server
    /// (`None`), or each primary of a cluster.
    async fn nodes(&self) -> Result<Vec<Option<String>>> {
        if self.cluster.is_none() {
            return Ok(vec![None]);
        }
        Ok(self.conn.primaries().await?.into_iter().map(Some).collect())
    }

    /// One `SCAN` step over the keys matching `pattern` (on the cluster
    /// node `node`): the next cursor (0 at the end) and the keys.
    async fn scan(
        &self,
        node: Option<&str>,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<String>)> {
        self.run_on(
            node,
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000),
        )
        .await
    }

    fn walk(&self) -> std::sync::MutexGuard<'_, Walk> {
        self.walk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deletes, and reports, up to `batch` expired sessions, going on with
    /// the pass's walk (see `delete_expired`).
    pub(super) async fn purge_expired(&self, at: Validity, batch: u32) -> Result<Vec<Ended>> {
        // Redis drops a session's hash itself an hour after its expiry
        // (see `scripts`); this deletes, and reports, the ones dead by the
        // request's clock before that. One pass of the cleanup is one walk
        // of the keyspace: the cursor, and the keys of a page not examined
        // yet, are kept from one batch to the next, so a pass visits each
        // key once whatever the batch size.
        let batch = batch.max(1) as usize;
        let mut walk = std::mem::take(&mut *self.walk());
        let mut ended = Vec::new();
        let result = loop {
            if ended.len() >= batch {
                break Ok(());
            }
            if walk.pending.is_empty() {
                if !walk.started && self.cluster.is_some() {
                    match self.conn.primaries().await {
                        Ok(nodes) => walk.nodes = nodes,
                        Err(e) => break Err(e),
                    }
                }
                if walk.started && walk.cursor == 0 {
                    // This node's walk is over: the next primary's, or the
                    // pass is over and the next call starts the next one.
                    if walk.node + 1 >= walk.nodes.len() {
                        let live = i64::try_from(walk.live).unwrap_or(i64::MAX);
                        self.last_live
                            .store(live, std::sync::atomic::Ordering::Relaxed);
                        walk = Walk::default();
                        break Ok(());
                    }
                    walk.node += 1;
                    walk.started = false;
                }
                let node = walk.nodes.get(walk.node).map(String::as_str);
                match self
                    .scan(node, walk.cursor, &format!("{}sess:*", self.prefix))
                    .await
                {
                    Ok((next, keys)) => {
                        walk.cursor = next;
                        walk.started = true;
                        walk.pending = keys;
                    }
                    Err(e) => break Err(e),
                }
                continue;
            }
            // The page's keys, examined until the batch is full; those the
            // script did not reach wait for the next batch.
            let keys = std::mem::take(&mut walk.pending);
            let left = batch - ended.len();
            let reply: Result<PurgeReply> = if self.cluster.is_some() {
                self.cluster_purge_page(&keys, at, left).await
            } else {
                let mut call = self.purge.prepare_invoke();
                for k in &keys {
                    call.key(k);
                }
                call.arg(at.now)
                    .arg(at.created_after)
                    .arg(&self.prefix)
                    .arg(left);
                self.eval(&call).await
            };
            let (examined, purged, live) = match reply {
                Ok(reply) => reply,
                Err(e) => break Err(e),
            };
            walk.live += live;
            walk.pending = keys.get(examined..).unwrap_or_default().to_vec();
            ended.extend(purged.into_iter().filter_map(|(hex, pairs)| {
                let fields = pairs
                    .chunks_exact(2)
                    .filter_map(|pair| {
                        let name = std::str::from_utf8(&pair[0]).ok()?.strip_prefix("f:")?;
                        Some((name.to_string(), pair[1].clone()))
                    })
                    .collect();
                Some(Ended {
                    key: parse_hex(&hex)?,
                    fields,
                })
            }));
        };
        // A failed step leaves the walk to start over next time.
        if result.is_ok() {
            *self.walk() = walk;
        }
        result.map(|()| ended)
    }
}
