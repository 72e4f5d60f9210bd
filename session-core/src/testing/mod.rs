//! The store behaviour suite, written once and run against every store.
//!
//! The checks live by concern: `store` (the store contract on the store
//! alone), `kept` (whole requests, wherever sessions are kept), `requests`
//! (whole requests through the typed layer, looking at the store), `versioned`
//! and `security` (encryption, indexes); this module holds the session
//! types they use, their helpers and the macro.
//!
//! Each check is a plain async function taking a fresh store, or, for the
//! checks of whole requests that hold wherever sessions are kept, a
//! [`Keeper`] (a store, or the cookies themselves); the
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro turns
//! them into `#[tokio::test]`s for one store factory, and
//! [`cookie_conformance_tests!`](crate::cookie_conformance_tests) runs the
//! second kind on sessions kept in their cookies:
//!
//! ```ignore
//! async fn store() -> std::sync::Arc<dyn SessionStore> { /* a fresh, isolated store */ }
//! session_core::store_conformance_tests!(store);
//! ```
//!
//! The suite checks the store contract directly (expiry, no resurrection,
//! concurrent saves) and through a real session type, [`Cart`], counting the
//! statements each kind of request costs.

use std::sync::Arc;

use crate::clock::now;
use crate::config::Config;
use crate::manager::SessionManager;
use crate::schema::flush;
use crate::state::{CookieAction, Outcome};
use crate::store::{
    Changes, Expect, ExpiryUpdate, NewSession, Record, Rename, Replaced, Saved, SessionStore,
    Validity, PREVIOUS_KEY_GRACE,
};
use crate::token::{StoreKey, Token};

mod alias;
mod events;
mod flash;
mod kept;
mod lifetime;
mod migrate;
mod requests;
mod rotation;
mod security;
mod store;
mod versioned;

pub use alias::*;
pub use events::*;
pub use flash::*;
pub use kept::*;
pub use lifetime::*;
pub use migrate::*;
pub use requests::*;
pub use rotation::*;
pub use security::*;
pub use store::*;
pub use versioned::*;

/// The session type the suite runs through, made by the real
/// `#[derive(Session)]`: `user: Option<u64>`, `cart: Vec<String>`,
/// `visits: u32`, and a deferred `history: Vec<String>`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Cart {
    /// The logged-in user.
    pub user: Option<u64>,
    /// Items.
    pub cart: Vec<String>,
    /// A counter.
    pub visits: u32,
    /// A large field, loaded only when used.
    #[session(deferred)]
    pub history: Vec<String>,
}

/// A second session type, used with [`Cart`] on one request: `theme` of
/// its own and `visits`, the same stored field as `Cart`'s.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Prefs {
    /// A preference of its own.
    pub theme: String,
    /// The same stored field as [`Cart::visits`].
    pub visits: u32,
}

/// A session type with 32 fields of its own beside [`Cart`]'s `user`, so
/// that 32 parallel requests each write one.
macro_rules! burst {
    ($($i:literal $field:ident $set:ident),*) => {
        /// `user` (as [`Cart`]'s) and 32 numbers, one per parallel request.
        #[derive(Debug, session_derive::Session)]
        #[session(crate = "crate")]
        pub struct Burst {
            /// The logged-in user, as [`Cart::user`].
            pub user: Option<u64>,
            $(
                #[doc = "A number one request writes."]
                pub $field: u32,
            )*
        }

        impl BurstSession {
            /// Writes field number `i`.
            pub fn write(&mut self, i: usize, value: u32) {
                match i {
                    $($i => self.$set(value),)*
                    _ => panic!("Burst has 32 fields"),
                }
            }

            /// Reads field number `i`.
            pub async fn read(&self, i: usize) -> u32 {
                match i {
                    $($i => *self.$field().await.unwrap(),)*
                    _ => panic!("Burst has 32 fields"),
                }
            }
        }
    };
}

burst!(0 f0 set_f0, 1 f1 set_f1, 2 f2 set_f2, 3 f3 set_f3, 4 f4 set_f4, 5 f5 set_f5, 6 f6 set_f6, 7 f7 set_f7, 8 f8 set_f8, 9 f9 set_f9, 10 f10 set_f10, 11 f11 set_f11, 12 f12 set_f12, 13 f13 set_f13, 14 f14 set_f14, 15 f15 set_f15, 16 f16 set_f16, 17 f17 set_f17, 18 f18 set_f18, 19 f19 set_f19, 20 f20 set_f20, 21 f21 set_f21, 22 f22 set_f22, 23 f23 set_f23, 24 f24 set_f24, 25 f25 set_f25, 26 f26 set_f26, 27 f27 set_f27, 28 f28 set_f28, 29 f29 set_f29, 30 f30 set_f30, 31 f31 set_f31);

/// A session type with a flash field: `user` (as [`Cart`]'s) and a
/// `#[session(flash)] notice: String`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Notice {
    /// The logged-in user, as [`Cart::user`].
    pub user: Option<u64>,
    /// A message for the next request.
    #[session(flash)]
    pub notice: String,
}

/// A session type with fields that expire: `code` (10 s), `sudo`
/// (sliding, 60 s), `tries` (versioned, 10 s), and `user`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Timed {
    /// The logged-in user, as [`Cart::user`].
    pub user: Option<u64>,
    /// A one-time code, valid 10 s after it is written.
    #[session(ttl = 10)]
    pub code: String,
    /// A step-up window: 60 s, restarted when read.
    #[session(ttl = "1m", sliding)]
    pub sudo: bool,
    /// Attempts, counted by compare-and-set, forgotten 10 s after the last.
    #[session(ttl = "10s", versioned)]
    pub tries: u32,
}

/// A type as an app's previous release had it: `user`, `cart`, and a
/// versioned `hits`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Before {
    /// The logged-in user.
    pub user: Option<u64>,
    /// Items, renamed `items` in [`After`].
    pub cart: Vec<String>,
    /// A counter, renamed `visits` in [`After`].
    #[session(versioned)]
    pub hits: u64,
}

/// [`Before`] in the next release: `cart` renamed `items`, `hits`
/// renamed `visits`, each reading its old name.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct After {
    /// The logged-in user.
    pub user: Option<u64>,
    /// Was `cart`.
    #[session(alias = "cart")]
    pub items: Vec<String>,
    /// Was `hits`.
    #[session(alias = "hits", versioned)]
    pub visits: u64,
}

/// A type whose indexed user id is stored as `uid`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Badge {
    /// Whose session this is.
    #[session(index)]
    pub uid: u64,
}

/// [`Badge`] in the next release: `uid` renamed `user`, still indexed, two
/// live sessions at most per user.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Pass {
    /// Was `uid`.
    #[session(index, alias = "uid", max_sessions = 2)]
    pub user: u64,
}

/// [`Badge`] two releases later: `uid` renamed `holder` and retyped from
/// a bare id, still indexed; a read moves it.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Ticket {
    /// Was `uid`, a bare id.
    #[session(index, alias = "uid", from = u64, rewrite_on_read)]
    pub holder: Holder,
}

/// [`Ticket::holder`]'s type.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    /// The user's id.
    pub id: u64,
}

impl From<u64> for Holder {
    fn from(id: u64) -> Self {
        Holder { id }
    }
}

/// [`Before`] two releases later: fields renamed and retyped. Each value
/// stored by [`Before`] is read converted.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Later {
    /// Was a bare id; written back in its new type by the request that
    /// reads it.
    #[session(from(Option<u64>, with = user_from_id), rewrite_on_read)]
    pub user: Option<User>,
    /// Was `cart`, a list of names.
    #[session(alias = "cart", from(Vec<String>, with = items_from_names))]
    pub items: Vec<Item>,
    /// Was `hits`, a bare count.
    #[session(alias = "hits", from = u64, versioned)]
    pub visits: Visits,
    /// Was a level number ([`Ranked1`]), then a level name ([`Ranked2`]).
    #[session(from = LevelNumber, from = LevelName)]
    pub tier: Tier,
}

/// [`Later::user`]'s type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// The user's id.
    pub id: u64,
}

/// [`Later::items`]' type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    /// What it is.
    pub name: String,
    /// How many.
    pub qty: u32,
}

/// [`Later::visits`]' type.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Visits {
    /// How many.
    pub count: u64,
}

impl From<u64> for Visits {
    fn from(count: u64) -> Self {
        Visits { count }
    }
}

/// The conversion of [`Later::user`] from a bare id.
///
/// # Errors
/// Never.
pub fn user_from_id(id: Option<u64>) -> Result<Option<User>, std::convert::Infallible> {
    Ok(id.map(|id| User { id }))
}

/// The conversion of [`Later::items`] from names: one of each.
///
/// # Errors
/// Never.
pub fn items_from_names(names: Vec<String>) -> Result<Vec<Item>, std::convert::Infallible> {
    Ok(names
        .into_iter()
        .map(|name| Item { name, qty: 1 })
        .collect())
}

/// A level as [`Ranked1`] stored it: a number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LevelNumber(pub u8);

/// A level as [`Ranked2`] stored it: a name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LevelName(pub String);

/// [`Later::tier`]'s type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tier {
    /// The first.
    #[default]
    Bronze,
    /// The second.
    Silver,
    /// The third.
    Gold,
}

impl From<LevelNumber> for LevelName {
    fn from(level: LevelNumber) -> Self {
        let name = ["bronze", "silver", "gold"].get(usize::from(level.0));
        LevelName(name.copied().unwrap_or("unknown").into())
    }
}

impl TryFrom<LevelName> for Tier {
    type Error = String;

    fn try_from(level: LevelName) -> Result<Self, String> {
        match level.0.as_str() {
            "bronze" => Ok(Tier::Bronze),
            "silver" => Ok(Tier::Silver),
            "gold" => Ok(Tier::Gold),
            other => Err(format!("no tier is named {other:?}")),
        }
    }
}

/// The first release of [`Later::tier`]: a number.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Ranked1 {
    /// The level.
    pub tier: LevelNumber,
}

/// The second release of [`Later::tier`]: a name.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Ranked2 {
    /// The level.
    pub tier: LevelName,
}

/// The handle of [`Cart`].
pub type CartHandle = CartSession;

/// [`Cart`] as an older version of the app had it: `cart` was a string
/// (now a list, so its stored bytes no longer decode).
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Legacy {
    /// A string where [`Cart::cart`] is a list.
    pub cart: String,
}

/// Where a check's sessions are kept: the checks of whole requests that
/// hold for every keeper take one.
#[derive(Debug, Clone)]
pub enum Keeper {
    /// In a store.
    Store(Arc<dyn SessionStore>),
    /// In their cookies, sealed with a test key
    /// ([`SessionManager::in_cookies`]).
    #[cfg(feature = "cookie")]
    Cookies,
}

impl Keeper {
    /// A manager over this keeper with `config` (with a test encryption
    /// key added for cookies when `config` has none).
    pub fn manager_with(&self, config: Config) -> SessionManager {
        match self {
            Keeper::Store(store) => SessionManager::new(store.clone(), config).unwrap(),
            #[cfg(feature = "cookie")]
            Keeper::Cookies => {
                let mut config = config;
                if config.encryption_keys.is_empty() {
                    use base64::Engine as _;
                    config
                        .encryption_keys
                        .push(crate::sealing::EncryptionKey::new(
                            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
                        ));
                }
                SessionManager::in_cookies(config).unwrap()
            }
        }
    }

    /// A manager over this keeper with the default configuration.
    pub fn manager(&self) -> SessionManager {
        self.manager_with(Config::default())
    }

    /// The statements the store has run (none for cookies).
    pub fn statements(&self) -> u64 {
        match self {
            Keeper::Store(store) => store.stats().statements,
            #[cfg(feature = "cookie")]
            Keeper::Cookies => 0,
        }
    }
}

impl From<Arc<dyn SessionStore>> for Keeper {
    fn from(store: Arc<dyn SessionStore>) -> Self {
        Keeper::Store(store)
    }
}

/// A session type with a versioned field: `#[session(versioned)] hits:
/// u64` and a plain `note: String`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Counter {
    /// Changed by concurrent requests: compare-and-set.
    #[session(versioned)]
    pub hits: u64,
    /// A plain field written in the same requests.
    pub note: String,
}

/// A session type with an indexed field: `#[session(index)] user_id: u64`
/// and a plain `device: String`.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Account {
    /// Whose session this is: searchable across sessions.
    #[session(index)]
    pub user_id: u64,
    /// What a "your devices" page shows.
    pub device: String,
    /// Indexed and versioned: written by `update_team`.
    #[session(index, versioned)]
    pub team: u64,
}

/// A session type whose indexed user may have two live sessions: a third
/// login ends the oldest.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Seat {
    /// Whose session this is, two at most.
    #[session(index, max_sessions = 2)]
    pub user: u64,
}

/// The same limit, refusing the session past it instead.
#[derive(Debug, session_derive::Session)]
#[session(crate = "crate")]
pub struct Door {
    /// Whose session this is, two at most; a third is refused.
    #[session(index, max_sessions = 2, when_full = "refuse")]
    pub user: u64,
}

/// Runs every conformance check against stores from `$factory`, an async
/// function returning a fresh, isolated store. With a second argument, an
/// async function taking `&Store`, that function tears the store down after
/// each passing check (a failing one leaves its data for inspection).
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:path) => {
        $crate::store_conformance_tests!($factory, $crate::testing::no_teardown);
    };
    ($factory:path, $teardown:path) => {
        $crate::store_conformance_tests!(@kept $factory, $teardown;
            a_session_round_trips_through_requests,
            two_session_types_share_one_session,
            undecodable_field_keeps_its_bytes_until_changed,
            a_write_of_the_stored_value_sends_nothing,
        );
        $crate::store_conformance_tests!(@tests $factory, $teardown;
            create_then_load,
            load_skips_deferred_fields,
            create_refuses_a_taken_key,
            save_changes_only_named_fields,
            save_never_resurrects,
            remove_deletes_fields,
            expired_sessions_are_never_returned,
            rename_moves_data,
            rename_is_all_or_nothing,
            previous_key_reaches_the_session_for_destroy_only,
            every_key_replaced_within_the_grace_reaches_the_session,
            touch_never_shortens,
            expiry_updates_never_revive_a_dead_session,
            max_lifetime_bounds_writes_and_deferred_reads,
            expiry_is_capped_by_creation,
            cleanup_honours_max_lifetime,
            delete_expired_in_batches,
            concurrent_saves_of_different_fields_all_land,
            concurrent_adds_of_the_same_field_do_not_fail,
            destroy_one_checks_the_index_entry,
            live_sessions_are_counted_after_a_cleanup_pass,
            binary_values_round_trip,
            statement_counts_per_request_kind,
            regenerate_keeps_data_and_kills_old_token,
            destroy_wins_over_a_slower_request,
            concurrent_sessions_lose_no_update,
            writes_racing_a_destroy_never_resurrect,
            concurrent_touches_and_writes_of_one_session_all_succeed,
            blind_write_to_a_dead_cookie_starts_a_fresh_session,
            requests_racing_a_regenerate,
            a_session_keeps_its_own_expiry,
            writes_after_an_interrupted_flush_report_it,
            an_update_of_fields_that_went_meanwhile_is_never_lost,
            a_route_loads_the_fields_it_used_before,
            versioned_writes_need_the_expected_version,
            concurrent_compare_and_set_increments_all_land,
            concurrent_updates_of_a_versioned_field_lose_nothing,
            plain_writes_of_a_versioned_field_conflict,
            encrypted_values_open_only_where_they_were_sealed,
            a_token_rotates_and_the_old_one_is_followed_for_the_grace,
            a_replayed_token_after_the_grace_ends_the_session,
            parallel_requests_across_a_rotation_lose_nothing,
            a_regenerated_token_is_never_followed,
            a_token_near_its_rotation_is_not_sent_again,
            a_device_listed_before_its_rotation_is_signed_out_after_it,
            a_flash_is_taken_once,
            a_flash_taken_by_many_requests_at_once_goes_to_one,
            a_flash_follows_the_session,
            a_field_expires_at_the_edge_of_its_lifetime,
            a_sliding_field_lives_while_it_is_read,
            lifetimes_survive_regenerate_clear_and_encryption,
            an_expired_versioned_field_is_written_again,
            a_renamed_field_reads_its_old_name_and_moves_on_write,
            requests_moving_renamed_fields_at_once_lose_nothing,
            renamed_sealed_fields_open_and_move,
            a_renamed_indexed_field_is_found_under_both_names_and_moves,
            a_retyped_field_reads_its_earlier_type_and_converts_on_write,
            a_field_read_converted_is_written_back_with_rewrite_on_read,
            a_chain_of_earlier_types_converts_step_by_step,
            a_failed_conversion_falls_back_and_keeps_its_bytes,
            requests_converting_fields_at_once_lose_nothing,
            retyped_sealed_fields_open_and_convert,
            an_indexed_field_read_converted_is_found_by_its_new_value,
            encrypted_values_survive_many_rotations,
            encryption_keys_rotate_and_survive_regenerates,
            log_out_everywhere_ends_a_users_other_sessions,
            signing_out_one_device_ends_exactly_that_one,
            devices_are_listed_where_they_began,
            max_sessions_holds_under_parallel_logins,
            indexed_fields_follow_their_writes,
            lifecycle_events_fire_once_each,
        );
    };
    (@kept $factory:path, $teardown:path; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = ::std::sync::Arc::new($factory().await);
                let keeper = $crate::testing::Keeper::Store(store.clone());
                $crate::testing::$name(keeper).await;
                $teardown(&*store).await;
            }
        )*
    };
    (@tests $factory:path, $teardown:path; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = ::std::sync::Arc::new($factory().await);
                $crate::testing::$name(store.clone()).await;
                $teardown(&*store).await;
            }
        )*
    };
}

/// Runs the checks of whole requests that hold wherever sessions are kept
/// on sessions kept in their cookies (`url = "cookie"`); the limits of
/// that mode (no revocation, the last response wins, the size) have their
/// own tests.
#[cfg(feature = "cookie")]
#[macro_export]
macro_rules! cookie_conformance_tests {
    () => {
        $crate::cookie_conformance_tests!(@kept
            a_session_round_trips_through_requests,
            two_session_types_share_one_session,
            undecodable_field_keeps_its_bytes_until_changed,
            a_write_of_the_stored_value_sends_nothing,
        );
    };
    (@kept $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::testing::$name($crate::testing::Keeper::Cookies).await;
            }
        )*
    };
}

/// A table prefix (or file name) no other test uses: `tag`, then ten
/// random characters, then `_`.
pub fn unique_prefix(tag: &str) -> String {
    let random = Token::generate().unwrap().to_cookie_value()[..10]
        .to_ascii_lowercase()
        .replace(['-', '_'], "x");
    format!("{tag}{random}_")
}

/// The teardown of stores that need none.
pub async fn no_teardown<S>(_: &S) {}

fn at() -> Validity {
    let now = now();
    Validity {
        now,
        created_after: now - 1_000_000,
    }
}

fn v(now: i64) -> Validity {
    Validity {
        now,
        created_after: now - 1_000_000,
    }
}

fn ns(created_at: i64, expires_at: i64) -> NewSession {
    NewSession {
        created_at,
        expires_at,
        idle_timeout: 3600,
        persistent: None,
    }
}

fn rename_to(to: StoreKey) -> Changes {
    Changes {
        rename: Some(Rename {
            to,
            previous_until: now() + PREVIOUS_KEY_GRACE,
            reason: Replaced::Regenerated,
        }),
        ..Changes::default()
    }
}

fn key() -> StoreKey {
    Token::generate().unwrap().store_key()
}

fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

async fn make(store: &dyn SessionStore, fields: &[(&'static str, Vec<u8>)]) -> StoreKey {
    let key = key();
    let t = now();
    assert!(store.create(&key, ns(t, t + 3600), fields).await.unwrap());
    key
}

fn manager(store: Arc<dyn SessionStore>) -> SessionManager {
    SessionManager::new(store, Config::default()).unwrap()
}

async fn expires_at(store: &dyn SessionStore, key: &StoreKey) -> i64 {
    let record = store.load(key, &[], at()).await.unwrap();
    record.expect("session is alive").expires_at
}

async fn statements(store: &dyn SessionStore, run: impl std::future::Future<Output = ()>) -> u64 {
    let before = store.stats();
    run.await;
    (store.stats() - before).statements
}

/// Logs a user in through the session layer (a new session holding
/// `user`) and returns the cookie value the response would carry.
pub async fn login(manager: &SessionManager, user: u64) -> String {
    let mut handle = manager.open::<Cart>(None);
    handle.set_user(Some(user));
    assert_eq!(flush(&mut handle).await.unwrap(), Outcome::Created);
    cookie_token(&mut handle)
}

/// The value of the Set-Cookie a flushed handle's response would carry.
pub fn cookie_token<H: crate::schema::SessionHandle>(handle: &mut H) -> String {
    match handle.state().request().take_cookie_action() {
        Some(CookieAction::Set { value, .. }) => value,
        other => panic!("expected a Set-Cookie, got {other:?}"),
    }
}

fn version_of(record: &Record, name: &str) -> u64 {
    record
        .versions
        .iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| *v)
}

fn cas(name: &'static str, value: Option<&[u8]>, version: Option<u64>) -> Changes {
    Changes {
        upsert: value.map(|v| (name, v.to_vec())).into_iter().collect(),
        remove: if value.is_none() { vec![name] } else { vec![] },
        expect: vec![Expect { name, version }],
        ..Changes::default()
    }
}

/// A manager whose stored values are sealed with keys made of these bytes
/// (the first seals).
fn sealed_manager(store: Arc<dyn SessionStore>, keys: &[u8]) -> SessionManager {
    use base64::Engine as _;
    let config = Config {
        encryption_keys: keys
            .iter()
            .map(|&b| {
                crate::sealing::EncryptionKey::new(
                    base64::engine::general_purpose::STANDARD.encode([b; 32]),
                )
            })
            .collect(),
        ..Config::default()
    };
    SessionManager::new(store, config).unwrap()
}

/// A session as [`Before`] wrote it: user 1, cart `["tea"]`, hits 3 (at
/// version 1); its cookie.
async fn written_before(m: &SessionManager) -> String {
    let mut h = m.open::<Before>(None);
    h.set_user(Some(1));
    h.set_cart(vec!["tea".into()]);
    h.set_hits(3);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    cookie_token(&mut h)
}

/// The stored bytes of every field of the session behind `cookie`, as the
/// store holds them.
async fn raw_fields(store: &dyn SessionStore, cookie: &str) -> Vec<(String, Vec<u8>)> {
    let key = Token::parse(cookie).unwrap().store_key();
    store.load(&key, &[], at()).await.unwrap().unwrap().fields
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Logs `user` in on `device` as an [`Account`]; returns the cookie.
async fn sign_in(m: &SessionManager, user: u64, device: &str) -> String {
    let mut h = m.open::<Account>(None);
    h.set_user_id(user);
    h.set_device(device.into());
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    cookie_token(&mut h)
}

/// The devices of `user`'s live sessions, sorted, as seen from `cookie`'s
/// request, with the current one marked `*`.
async fn devices(m: &SessionManager, cookie: &str, user: u64) -> Vec<String> {
    let h = m.open::<Account>(Some(cookie));
    let mut found: Vec<String> = h
        .sessions_by_user_id(&user)
        .await
        .unwrap()
        .iter()
        .map(|s| {
            let device = s.data().device;
            assert_eq!(s.field::<String>("device").as_ref(), Some(&device));
            assert!(s.created_at() > 0 && s.last_seen() >= s.created_at());
            assert!(s.expires_at() > s.last_seen());
            if s.is_current() {
                format!("{device}*")
            } else {
                device
            }
        })
        .collect();
    found.sort();
    found
}
