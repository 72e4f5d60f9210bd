//! The server settings that decide whether Redis keeps what the store
//! promises, read at connect: an evicting `maxmemory-policy` drops live
//! sessions (their hashes carry a TTL) and, under `allkeys-*`, the index
//! sets, so "log out everywhere" ends nothing: refused. Snapshots without
//! an append-only file lose every write since the last snapshot at a
//! restart and bring back the sessions destroyed since (a logout of a
//! stolen cookie undone): warned, with the fix.

use std::collections::HashMap;

use super::RedisStore;
use crate::error::{Error, Result};

/// What `CONFIG GET` said, per setting; `None` when the server would not
/// say (managed services often refuse `CONFIG`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisSettings {
    /// `appendonly`: `yes` keeps an append-only file.
    pub appendonly: Option<String>,
    /// `appendfsync`: `always`, `everysec` or `no`.
    pub appendfsync: Option<String>,
    /// `maxmemory-policy`: only `noeviction` keeps every session.
    pub maxmemory_policy: Option<String>,
}

impl RedisSettings {
    /// Refuses an evicting policy; otherwise the warnings to log (empty
    /// when every setting keeps sessions safe).
    pub(super) fn judge(&self) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        match self.maxmemory_policy.as_deref() {
            Some("noeviction") => {}
            Some(policy) if policy.starts_with("allkeys-") || policy.starts_with("volatile-") => {
                let indexes = if policy.starts_with("allkeys-") {
                    ", and its index sets too, after which \"log out everywhere\" ends nothing"
                } else {
                    ""
                };
                return Err(Error::config(format!(
                    "Redis `maxmemory-policy` is `{policy}`: under memory pressure the server \
                     evicts live sessions (their hashes carry a TTL){indexes}; set \
                     `maxmemory-policy noeviction` (a full server then refuses writes, which \
                     requests answer with 503, instead of dropping sessions)"
                )));
            }
            Some(other) => warnings.push(format!(
                "Redis `maxmemory-policy` is `{other}`, which this store does not know; only \
                 `noeviction` is known to keep every session"
            )),
            None => warnings.push(
                "could not read Redis `maxmemory-policy` (`CONFIG GET` refused): make sure it is \
                 `noeviction`, or live sessions may be evicted under memory pressure"
                    .into(),
            ),
        }
        match self.appendonly.as_deref() {
            Some("yes") => {}
            Some(_) => warnings.push(
                "Redis keeps no append-only file (`appendonly no`): a restart reloads the last \
                 snapshot, so every session write since is lost and sessions destroyed since \
                 (logouts) come back with valid tokens; set `appendonly yes` (with `appendfsync \
                 everysec`, or `always` to lose nothing)"
                    .into(),
            ),
            None => warnings.push(
                "could not read Redis `appendonly` (`CONFIG GET` refused): without an append-only \
                 file a restart brings back sessions destroyed since the last snapshot"
                    .into(),
            ),
        }
        if self.appendonly.as_deref() == Some("yes") && self.appendfsync.as_deref() == Some("no") {
            warnings.push(
                "Redis `appendfsync no`: the append-only file is flushed when the OS decides \
                 (about every 30 s), so a power loss can bring back sessions destroyed in that \
                 time; set `appendfsync everysec` or `always`"
                    .into(),
            );
        }
        Ok(warnings)
    }
}

/// Refuses a node of a Redis Cluster named by a one-server `redis://`
/// URL (`INFO cluster` says `cluster_enabled:1`): its commands for other
/// nodes' slots would fail with `MOVED` at run time. Better a launch error
/// naming the way out.
pub(super) async fn refuse_cluster(store: &RedisStore) -> Result<()> {
    let info: Result<String> = store.run(redis::cmd("INFO").arg("cluster")).await;
    match info {
        Ok(info) if info.lines().any(|l| l.trim() == "cluster_enabled:1") => Err(Error::config(
            "this Redis server is a node of a Redis Cluster: write the url as \
             `redis+cluster://host:port,host:port` (any of its nodes, more than one so the store \
             connects while one is down), so that each command goes to the node of its slot",
        )),
        Ok(_) => Ok(()),
        // `INFO` refused (a locked-down managed service): the first
        // command for another node's slot would fail loudly anyway.
        Err(error) => {
            tracing::debug!(%error, "INFO cluster refused");
            Ok(())
        }
    }
}

/// Whether the server (the cluster primary at `node`) has a replica
/// connected (`INFO replication`); `false` when it would not say.
pub(super) async fn has_replica(store: &RedisStore, node: Option<&str>) -> bool {
    let info: Result<String> = store
        .run_on(node, redis::cmd("INFO").arg("replication"))
        .await;
    info.ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.trim().strip_prefix("connected_slaves:"))
                .and_then(|n| n.parse::<u32>().ok())
        })
        .is_some_and(|n| n > 0)
}

/// Reads the settings of the server (of the cluster node at `node`); a
/// refused `CONFIG GET` leaves them unknown.
pub(super) async fn read(store: &RedisStore, node: Option<&str>) -> RedisSettings {
    let mut settings = RedisSettings::default();
    let wanted: [(&str, &mut Option<String>); 3] = [
        ("appendonly", &mut settings.appendonly),
        ("appendfsync", &mut settings.appendfsync),
        ("maxmemory-policy", &mut settings.maxmemory_policy),
    ];
    for (name, slot) in wanted {
        let reply: Result<HashMap<String, String>> = store
            .run_on(node, redis::cmd("CONFIG").arg("GET").arg(name))
            .await;
        match reply {
            Ok(mut values) => *slot = values.remove(name),
            Err(error) => {
                tracing::debug!(%error, setting = name, "CONFIG GET refused");
            }
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::RedisSettings;

    fn settings(aof: &str, fsync: &str, policy: &str) -> RedisSettings {
        RedisSettings {
            appendonly: Some(aof.into()),
            appendfsync: Some(fsync.into()),
            maxmemory_policy: Some(policy.into()),
        }
    }

    #[test]
    fn evicting_policies_are_refused_with_the_fix() {
        for policy in [
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "volatile-lru",
            "volatile-ttl",
        ] {
            let error = settings("yes", "everysec", policy)
                .judge()
                .unwrap_err()
                .to_string();
            assert!(error.contains(policy), "{error}");
            assert!(error.contains("maxmemory-policy noeviction"), "{error}");
        }
    }

    #[test]
    fn snapshots_alone_are_warned_about() {
        assert!(settings("yes", "everysec", "noeviction")
            .judge()
            .unwrap()
            .is_empty());
        assert!(settings("yes", "always", "noeviction")
            .judge()
            .unwrap()
            .is_empty());
        let warnings = settings("no", "everysec", "noeviction").judge().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("appendonly yes"), "{warnings:?}");
        let warnings = settings("yes", "no", "noeviction").judge().unwrap();
        assert!(warnings[0].contains("appendfsync everysec"), "{warnings:?}");
        let unknown = RedisSettings::default().judge().unwrap();
        assert_eq!(
            unknown.len(),
            2,
            "both unread settings are named: {unknown:?}"
        );
        assert!(unknown.iter().all(|w| w.contains("could not read")));
    }
}
