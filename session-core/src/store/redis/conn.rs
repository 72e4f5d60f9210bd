//! The connection under the Redis store: one server (a reconnecting
//! multiplexed connection) or a Redis Cluster (one multiplexed connection
//! per node, commands routed by the hash slot of their first key).
//!
//! On a cluster the client's own retries are off: it would send a command
//! again after a connection dropped with the command in flight, and a
//! script that ran before the drop would then run twice (a save reported
//! as a conflict with itself, a destroy reported as not done). The store
//! retries itself, and only on answers that say the command did not run:
//! a redirect (`MOVED`, `ASK`), `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`,
//! `READONLY` (a primary just demoted), a refused connection or no
//! connection to the slot's node yet, as during a failover.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RetryMethod, Value};

use crate::error::{Error, Result};

/// How many times a cluster command that did not run is sent again, and
/// the longest pause between two tries (25 ms more each try): about 9 s in
/// all, which waits out the election after a failover with a short
/// `cluster-node-timeout` (2 s in the tests); with the default (15 s) a
/// request answers 503 until the new primary is elected.
const CLUSTER_TRIES: u32 = 40;
const CLUSTER_PAUSE_MAX: Duration = Duration::from_millis(250);

/// One server or a cluster; cheap to clone (both are handles).
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// What a store URL names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// `redis://` or `rediss://`: one server.
    Single(String),
    /// `redis+cluster://` or `rediss+cluster://`: the seed nodes, each as
    /// a `redis://` (or `rediss://`) URL with the credentials.
    Cluster(Vec<String>),
}

impl Target {
    /// Reads `url`: `redis+cluster://[user:password@]host:port[,host:port…][?…]`
    /// names a cluster by any of its nodes (more than one, so the store
    /// connects while one is down).
    pub(super) fn parse(url: &str) -> Result<Target> {
        let cluster = [
            ("redis+cluster://", "redis://"),
            ("rediss+cluster://", "rediss://"),
        ]
        .into_iter()
        .find_map(|(scheme, node)| url.strip_prefix(scheme).map(|rest| (rest, node)));
        let Some((rest, node_scheme)) = cluster else {
            return Ok(Target::Single(url.to_string()));
        };
        let (authority, tail) = rest
            .find(['/', '?'])
            .map_or((rest, ""), |at| rest.split_at(at));
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((user, hosts)) => (format!("{user}@"), hosts),
            None => (String::new(), authority),
        };
        let nodes: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|host| format!("{node_scheme}{credentials}{host}{tail}"))
            .collect();
        if nodes.is_empty() {
            return Err(Error::config(
                "a `redis+cluster://` url names no node: write \
                 `redis+cluster://host:port,host:port`",
            ));
        }
        Ok(Target::Cluster(nodes))
    }
}

impl Conn {
    /// Connects to what `target` names, within `wait`.
    pub(super) async fn open(target: &Target, wait: Duration) -> Result<Conn> {
        let bad = |e: RedisError| Error::config(format!("invalid Redis `url`: {e}"));
        let timed_out = || {
            Error::Unavailable(format!("Redis did not answer within {} s", wait.as_secs()).into())
        };
        match target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(bad)?;
                let conn = tokio::time::timeout(wait, ConnectionManager::new(client))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| Error::Unavailable(Box::new(e)))?;
                Ok(Conn::Single(conn))
            }
            Target::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .retries(0)
                    .connection_timeout(wait)
                    .build()
                    .map_err(bad)?;
                let conn = tokio::time::timeout(wait, client.get_async_connection())
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| Error::Unavailable(Box::new(e)))?;
                Ok(Conn::Cluster(conn))
            }
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// Sends `cmd` to the primary that holds `key` (`WAIT` for the writes
    /// sent there). One server: to it.
    pub(super) async fn to_primary_of(&self, key: &str, cmd: &Cmd) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(conn) => cmd.query_async(&mut conn.clone()).await,
            Conn::Cluster(conn) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::with_key(key, SlotAddr::Master),
                ));
                conn.clone().route_command(cmd.clone(), route).await
            }
        }
    }

    /// Sends `cmd` to the node at `address` (`host:port`).
    pub(super) async fn to_node(&self, address: &str, cmd: &Cmd) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(conn) => cmd.query_async(&mut conn.clone()).await,
            Conn::Cluster(conn) => {
                let (host, port) = split_address(address)?;
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.to_string(),
                    port,
                });
                conn.clone().route_command(cmd.clone(), route).await
            }
        }
    }

    /// The primaries of the cluster as `host:port`, ordered (`CLUSTER
    /// NODES`); one server: an empty list, meaning itself.
    pub(super) async fn primaries(&self) -> Result<Vec<String>> {
        let Conn::Cluster(conn) = self else {
            return Ok(Vec::new());
        };
        let nodes = conn
            .clone()
            .route_command(
                redis::cmd("CLUSTER").arg("NODES").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await
            .map_err(super::map_error)?;
        let text: String =
            redis::from_redis_value(nodes).map_err(|e| super::map_error(e.into()))?;
        let mut primaries: Vec<String> = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.split(' ');
                let (_, address, flags) = (parts.next()?, parts.next()?, parts.next()?);
                let live_primary =
                    flags.split(',').any(|f| f == "master") && !flags.contains("fail");
                // A primary that holds no slot has nothing to walk.
                let has_slots = parts.nth(5).is_some();
                let address = address.split('@').next()?;
                (live_primary && has_slots).then(|| address.to_string())
            })
            .collect();
        primaries.sort();
        Ok(primaries)
    }
}

fn split_address(address: &str) -> redis::RedisResult<(&str, u16)> {
    address
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse().ok()?)))
        .ok_or_else(|| {
            RedisError::from((
                redis::ErrorKind::Client,
                "a cluster node address is not host:port",
                address.to_string(),
            ))
        })
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => Box::pin(async move {
                let mut tries = 0;
                loop {
                    match conn.req_packed_command(cmd).await {
                        Err(e) if tries + 1 < CLUSTER_TRIES && did_not_run(&e) => {
                            tries += 1;
                            let pause = Duration::from_millis(25 * u64::from(tries));
                            tokio::time::sleep(pause.min(CLUSTER_PAUSE_MAX)).await;
                        }
                        reply => return reply,
                    }
                }
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Whether a cluster's answer says the command never ran, so sending it
/// again cannot apply it twice. A dropped connection or a timeout says
/// nothing of the kind: the command may have run.
pub(super) fn did_not_run(error: &RedisError) -> bool {
    error.is_connection_refusal()
        || matches!(
            error.retry_method(),
            RetryMethod::MovedRedirect
                | RetryMethod::AskRedirect
                | RetryMethod::WaitAndRetry
                | RetryMethod::RefreshSlotsAndRetry
                | RetryMethod::ReconnectFromInitialConnections
        )
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn cluster_urls_name_each_seed_node_with_the_credentials() {
        assert_eq!(
            Target::parse("redis://h:6379/0").unwrap(),
            Target::Single("redis://h:6379/0".into())
        );
        assert_eq!(
            Target::parse("redis+cluster://a:7001,b:7002").unwrap(),
            Target::Cluster(vec!["redis://a:7001".into(), "redis://b:7002".into()])
        );
        assert_eq!(
            Target::parse("rediss+cluster://u:p@a:7001,b:7002/?protocol=resp3").unwrap(),
            Target::Cluster(vec![
                "rediss://u:p@a:7001/?protocol=resp3".into(),
                "rediss://u:p@b:7002/?protocol=resp3".into()
            ])
        );
        assert!(Target::parse("redis+cluster://").is_err());
    }
}
