//! The Redis store on a Redis Cluster: every script touches the keys of
//! one hash slot, and what spans slots is split into steps, each atomic
//! on its node and ordered so that a crash between two of them leaves
//! nothing unsafe behind.
//!
//! - **Keys.** A session's hash and its previous-key marker share a slot
//!   (the key in a hash tag, as on one server). An index is a sorted set,
//!   `{prefix}zidx:<name>:<tag hex>`, of key hexes scored by when each was
//!   added, in a slot of its own.
//! - **Index entries** are added to the set *before* the session's hash
//!   names them and removed *after*: a crash leaves at worst a member
//!   whose hash does not name the set, never a session the set misses
//!   ("log out everywhere" would miss it). Such a member is dropped by a
//!   walk of the set once it is older than [`PRUNE_AFTER`], so a member
//!   added for a write still on its way is never dropped. Sets expire
//!   `max_lifetime` and an hour after their last entry was added: no
//!   session of theirs lives longer, and no step on a session's other
//!   writes has to reach them.
//! - **Regenerate** (the key changes slot): (1) on the old key, one script
//!   checks and applies the request's changes and marks the hash as moving
//!   (`_m` = `<until> <new key hex>`): from then on the old key is dead
//!   for reads and writes and a destroy through it follows the move;
//!   (2) the new key's hex joins the session's index sets; (3) the new
//!   hash is written whole; (4) the old hash is replaced by the
//!   previous-key marker, unless a destroy took it meanwhile, in which case
//!   the new hash is destroyed too. A crash after (1) ends the session (the
//!   old token is dead, the new cookie never sent); never are both tokens
//!   valid.
//! - **Destroy** waits (`WAIT 1`) until a replica has the deletion when
//!   every primary has a replica: a failover right after a logout cannot
//!   bring the session back. A replica that does not confirm within a
//!   second makes the logout a 503, to be tried again.
//! - **Cleanup** walks every primary's keyspace with its own `SCAN`
//!   cursor, and examines a page with one script on that node
//!   (`allow-cross-slot-keys`, Redis 7 or later).

use std::collections::BTreeSet;

use futures_util::future::join_all;
use redis::{Script, Value};

use super::reply::{hex, parse_hex};
use super::scripts::with_helpers;
use super::RedisStore;
use crate::error::{Error, Result};
use crate::store::{Changes, IndexTag, Saved, Timestamp, Validity};
use crate::token::StoreKey;

mod scripts;

use self::scripts::{DESTROY, ENTER, FINISH, MEMBER, MOVE_IN, PREVIOUS, PRUNE, PURGE, SAVE};

/// How old (seconds) an index member whose session does not name its set
/// must be before a walk drops it: the time between adding a member and
/// writing the session that names it.
pub(super) const PRUNE_AFTER: i64 = 300;

/// The cluster's scripts and what was learnt of it at connect.
pub(super) struct Cluster {
    save: Script,
    pub(super) previous: Script,
    enter: Script,
    move_in: Script,
    finish: Script,
    destroy: Script,
    member: Script,
    prune: Script,
    purge: Script,
}

impl Cluster {
    pub(super) fn new() -> Cluster {
        Cluster {
            save: Script::new(&with_helpers(SAVE)),
            previous: Script::new(PREVIOUS),
            enter: Script::new(&with_helpers(ENTER)),
            move_in: Script::new(MOVE_IN),
            finish: Script::new(FINISH),
            destroy: Script::new(&with_helpers(DESTROY)),
            member: Script::new(&with_helpers(MEMBER)),
            prune: Script::new(PRUNE),
            purge: Script::new(&format!(
                "#!lua flags=allow-cross-slot-keys\n{}",
                with_helpers(PURGE)
            )),
        }
    }
}

/// What the save script answered.
struct SaveReply {
    outcome: i64,
    /// Sets the old key hex leaves.
    leave: Vec<String>,
    /// For a regenerate: the whole hash, as pairs.
    content: Vec<Vec<u8>>,
    /// The session's expiry after the save.
    expires_at: i64,
}

impl RedisStore {
    fn cluster(&self) -> &Cluster {
        self.cluster
            .as_ref()
            .expect("cluster steps run on a cluster connection")
    }

    fn index_set(&self, name: &str, tag: &str) -> String {
        format!("{}zidx:{name}:{tag}", self.prefix)
    }

    /// Adds `member` to each set (step one of any index entry), kept at
    /// least until `deadline`.
    async fn enter_sets(&self, sets: &[String], member: &str, deadline: i64) -> Result<()> {
        let calls = sets.iter().map(|set| async move {
            let mut call = self.cluster().enter.key(set);
            call.arg(member).arg(deadline);
            self.eval::<i64>(&call).await
        });
        for reply in join_all(calls).await {
            reply?;
        }
        Ok(())
    }

    /// Removes `member` from each set, after the session stopped naming
    /// them; a failure leaves a member the next walk drops.
    async fn leave_sets(&self, sets: &[String], member: &str) {
        let calls = sets.iter().map(|set| async move {
            self.run::<i64>(redis::cmd("ZREM").arg(set).arg(member))
                .await
        });
        for reply in join_all(calls).await {
            if let Err(error) = reply {
                tracing::debug!(%error, "leaving an index set failed; a walk of it drops the member");
            }
        }
    }

    pub(super) async fn cluster_save(
        &self,
        key: &StoreKey,
        changes: &Changes,
        at: Validity,
    ) -> Result<Saved> {
        // No session outlives `max_lifetime` from its creation, which was
        // no later than now.
        let deadline = at.now + at.max_lifetime() + 3600;
        let own = hex(key.as_bytes());
        match changes.rename {
            None => {
                let entered: Vec<String> = changes
                    .index
                    .iter()
                    .filter_map(|u| Some(self.index_set(u.name, &hex(&u.tag?))))
                    .collect();
                self.enter_sets(&entered, &own, deadline).await?;
            }
            // Step 1 kills the old key: the new one must be free first
            // (a 256-bit key taken is a bug, but it must fail cleanly).
            Some(rename) => {
                let taken: i64 = self
                    .run(redis::cmd("EXISTS").arg(self.session_key(&rename.to)))
                    .await?;
                if taken == 1 {
                    return Err(Error::Backend("the new session key is taken".into()));
                }
            }
        }
        let call = self.save_call(&self.cluster().save, key, changes, at);
        let reply = save_reply(self.eval::<Value>(&call).await?)?;
        if reply.outcome != 1 {
            return Ok(outcome(reply.outcome));
        }
        self.counters
            .wrote(changes.upsert.iter().map(|(_, v)| v.as_slice()));
        let Some(rename) = changes.rename else {
            self.leave_sets(&reply.leave, &own).await;
            return Ok(Saved::Saved);
        };
        // Step 1 is done: the old key is dead. Steps 2 to 4.
        let to = hex(rename.to.as_bytes());
        let sets: Vec<String> = reply
            .content
            .chunks_exact(2)
            .filter_map(|pair| {
                let name = std::str::from_utf8(&pair[0]).ok()?.strip_prefix("x:")?;
                Some(self.index_set(name, std::str::from_utf8(&pair[1]).ok()?))
            })
            .collect();
        self.enter_sets(&sets, &to, deadline).await?;
        let mut call = self.cluster().move_in.key(self.session_key(&rename.to));
        call.arg(reply.expires_at);
        for pair in reply.content.chunks_exact(2) {
            if pair[0] != b"_m" {
                call.arg(pair[0].as_slice()).arg(pair[1].as_slice());
            }
        }
        self.eval::<i64>(&call).await?;
        let mut call = self.cluster().finish.key(self.session_key(key));
        call.key(self.previous_key(key))
            .arg(at.now)
            .arg(rename.previous_until)
            .arg(&to);
        match self.eval::<i64>(&call).await {
            Ok(1) => {}
            Ok(_) => {
                // A destroy took the old key between steps 1 and 4: the
                // session ended, and the copy under the new key goes too.
                self.cluster_destroy(&rename.to, at.now).await?;
                self.leave_sets(&reply.leave, &own).await;
                return Ok(Saved::Gone);
            }
            // The old hash stays marked as moving until it expires: dead
            // for reads and writes, so the regenerate stands.
            Err(error) => {
                tracing::warn!(%error, "replacing a regenerated session's old key failed; it stays dead until it expires");
            }
        }
        self.leave_sets(&reply.leave, &own).await;
        Ok(Saved::Saved)
    }

    pub(super) async fn cluster_destroy(&self, key: &StoreKey, now: Timestamp) -> Result<bool> {
        let mut key = *key;
        for _ in 0..=super::super::MAX_REGENERATES_IN_GRACE {
            let session = self.session_key(&key);
            let mut call = self.cluster().destroy.key(&session);
            call.key(self.previous_key(&key)).arg(now).arg(&self.prefix);
            let (gone, to, sets): (i64, String, Vec<String>) = self.eval(&call).await?;
            self.leave_sets(&sets, &hex(key.as_bytes())).await;
            if gone == 1 {
                self.confirm(Some(&session)).await?;
                return Ok(true);
            }
            match parse_hex(&to) {
                Some(next) => key = next,
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// "Log out everywhere" and the devices list on a cluster: each page
    /// of an index set (`ZSCAN`), then one script per member on the
    /// member's own node, then the members found stale dropped from the
    /// set.
    pub(super) async fn cluster_walk_index(
        &self,
        name: &str,
        tags: &[IndexTag],
        at: Validity,
        except: Option<&StoreKey>,
        mode: &str,
    ) -> Result<Vec<StoreKey>> {
        let except = except.map_or_else(String::new, |k| hex(k.as_bytes()));
        let mut keys = BTreeSet::new();
        let mut destroyed = false;
        for tag in tags {
            let tag = hex(tag);
            let set = self.index_set(name, &tag);
            let mut cursor = "0".to_string();
            loop {
                let (next, page): (String, Vec<String>) = self
                    .run(
                        redis::cmd("ZSCAN")
                            .arg(&set)
                            .arg(&cursor)
                            .arg("COUNT")
                            .arg(200),
                    )
                    .await?;
                // ZSCAN pairs each member with its score.
                let members: Vec<&String> = page.iter().step_by(2).collect();
                let calls = members.iter().map(|member| {
                    let (tag, except) = (&tag, &except);
                    async move {
                        let mut call = self
                            .cluster()
                            .member
                            .key(format!("{}sess:{{{member}}}", self.prefix));
                        call.arg(at.now)
                            .arg(at.created_after)
                            .arg(&self.prefix)
                            .arg(name)
                            .arg(tag)
                            .arg(mode)
                            .arg(member.as_str() == except.as_str());
                        self.eval::<(String, Vec<String>)>(&call).await
                    }
                });
                let (mut stale, mut killed) = (Vec::new(), Vec::new());
                for (member, reply) in members.iter().zip(join_all(calls).await) {
                    let (verdict, sets) = reply?;
                    match verdict.as_str() {
                        "live" => {
                            keys.extend(parse_hex(member));
                        }
                        "killed" => {
                            keys.extend(parse_hex(member));
                            let others: Vec<String> =
                                sets.into_iter().filter(|s| *s != set).collect();
                            self.leave_sets(&others, member).await;
                            killed.push(member.as_str());
                        }
                        "stale" => stale.push(member.as_str()),
                        _ => {}
                    }
                }
                if !killed.is_empty() {
                    destroyed = true;
                    self.run::<i64>(redis::cmd("ZREM").arg(&set).arg(&killed))
                        .await?;
                }
                if !stale.is_empty() {
                    let mut call = self.cluster().prune.key(&set);
                    call.arg(PRUNE_AFTER);
                    for member in &stale {
                        call.arg(member);
                    }
                    self.eval::<i64>(&call).await?;
                }
                if next == "0" {
                    break;
                }
                cursor = next;
            }
        }
        if destroyed {
            self.confirm(None).await?;
        }
        Ok(keys.into_iter().collect())
    }

    /// One session ended if it holds one of `tags` in index `name`: the
    /// member script on its node, which checks and deletes in one step.
    pub(super) async fn cluster_destroy_one(
        &self,
        name: &str,
        tags: &[IndexTag],
        key: &StoreKey,
    ) -> Result<bool> {
        let member = hex(key.as_bytes());
        for tag in tags {
            let tag = hex(tag);
            let session = self.session_key(key);
            let mut call = self.cluster().member.key(&session);
            call.arg(0)
                .arg(0)
                .arg(&self.prefix)
                .arg(name)
                .arg(&tag)
                .arg("destroy")
                .arg(false);
            let (verdict, sets): (String, Vec<String>) = self.eval(&call).await?;
            if verdict == "killed" {
                self.leave_sets(&sets, &member).await;
                self.confirm(Some(&session)).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Cleanup on a cluster: the walk goes primary by primary, each with
    /// its own `SCAN` cursor; a page is examined by one script on its
    /// node.
    pub(super) async fn cluster_purge_page(
        &self,
        keys: &[String],
        at: Validity,
        batch: usize,
    ) -> Result<super::cleanup::PurgeReply> {
        let Some((first, rest)) = keys.split_first() else {
            return Ok((0, Vec::new(), 0));
        };
        let mut call = self.cluster().purge.key(first);
        call.arg(at.now)
            .arg(at.created_after)
            .arg(&self.prefix)
            .arg(batch);
        for key in rest {
            call.arg(key);
        }
        self.eval(&call).await
    }
}

fn outcome(code: i64) -> Saved {
    match code {
        1 => Saved::Saved,
        2 => Saved::Moved,
        3 => Saved::Conflict,
        _ => Saved::Gone,
    }
}

fn save_reply(value: Value) -> Result<SaveReply> {
    let corrupt = || Error::Backend("a Redis cluster save answered in an unknown shape".into());
    let Value::Array(items) = value else {
        return Err(corrupt());
    };
    let mut items = items.into_iter();
    let outcome: i64 = match items.next() {
        Some(v) => redis::from_redis_value(v).map_err(|_| corrupt())?,
        None => return Err(corrupt()),
    };
    let mut reply = SaveReply {
        outcome,
        leave: Vec::new(),
        content: Vec::new(),
        expires_at: 0,
    };
    if outcome == 1 {
        let (leave, content, expires_at) = (items.next(), items.next(), items.next());
        reply.leave = redis::from_redis_value(leave.ok_or_else(corrupt)?).map_err(|_| corrupt())?;
        reply.content =
            redis::from_redis_value(content.ok_or_else(corrupt)?).map_err(|_| corrupt())?;
        reply.expires_at =
            redis::from_redis_value(expires_at.ok_or_else(corrupt)?).map_err(|_| corrupt())?;
    }
    Ok(reply)
}
