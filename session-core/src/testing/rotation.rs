//! Checks of tokens that rotate (`rotate_after`): a session read after
//! its token is that old gets a new one with its data; requests in flight
//! with the replaced token follow it for `rotation_grace`, writes
//! included, and set no cookie; a replay after the grace ends the session
//! for every holder.

use super::*;
use crate::events::{DestroyCause, EventKind};

/// The rotation the checks run with: a token rotates after 60 s, and a
/// replaced one is followed for 10 s.
const AFTER: i64 = 60;
const GRACE: i64 = 10;

/// A manager over `store` with rotation on (and values sealed); `None`
/// for a store that cannot rotate, after checking that such a manager is
/// refused, saying why.
fn rotating(store: Arc<dyn SessionStore>, sealed: bool) -> Option<(SessionManager, EventLog)> {
    use base64::Engine as _;
    let log = EventLog::default();
    let mut config = Config {
        rotate_after: Some(AFTER as u64),
        rotation_grace: GRACE as u64,
        ..Config::default()
    };
    if sealed {
        config
            .encryption_keys
            .push(crate::sealing::EncryptionKey::new(
                base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
            ));
    }
    if let Some(why) = store.cannot_rotate() {
        let error = SessionManager::new(store, config).unwrap_err().to_string();
        assert!(
            error.contains("`rotate_after` is not available") && error.contains(why),
            "{error}"
        );
        return None;
    }
    let manager = SessionManager::new(store, config)
        .unwrap()
        .with_events(log.events())
        .unwrap();
    Some((manager, log))
}

/// A new session at `at` holding `user` and a cart; its cookie.
async fn begin(m: &SessionManager, at: i64, user: u64) -> String {
    let mut h = m.open_at::<Cart>(None, at);
    h.set_user(Some(user));
    h.set_cart(vec!["tea".into()]);
    h.set_history(vec!["home".into()]);
    assert_eq!(flush(&mut h).await.unwrap(), Outcome::Created);
    cookie_token(&mut h)
}

/// A request at `at` that reads the session; the cookie its response
/// sets, if any.
async fn read_at(m: &SessionManager, cookie: &str, at: i64) -> (Option<u64>, Option<String>) {
    let mut h = m.open_at::<Cart>(Some(cookie), at);
    let user = *h.user().await.unwrap();
    flush(&mut h).await.unwrap();
    let set = match h.request().take_cookie_action() {
        Some(CookieAction::Set { value, .. }) => Some(value),
        Some(CookieAction::Remove) | None => None,
    };
    (user, set)
}

/// A token older than `rotate_after` is replaced at the first read after
/// that, the data kept, in one more statement (the move); a read before
/// costs what it always did and sets no cookie. The replaced token
/// reaches the session for the grace, reads and writes included, and its
/// responses set no cookie; the new token sees what they wrote.
pub async fn a_token_rotates_and_the_old_one_is_followed_for_the_grace(
    store: Arc<dyn SessionStore>,
) {
    let Some((m, log)) = rotating(store.clone(), false) else {
        return;
    };
    let t0 = now();
    let first = begin(&m, t0, 7).await;
    log.take(&m).await;

    // Before `rotate_after`: one load, no cookie.
    let n = statements(&*store, async {
        assert_eq!(read_at(&m, &first, t0 + AFTER - 1).await, (Some(7), None));
    })
    .await;
    assert_eq!(n, 1, "a read that does not rotate costs its load");

    // After it: the load and the move, and the new cookie.
    let t1 = t0 + AFTER;
    let mut second = None;
    let n = statements(&*store, async {
        let (user, set) = read_at(&m, &first, t1).await;
        assert_eq!(user, Some(7));
        second = set;
    })
    .await;
    let second = second.expect("the rotating response sets the new token");
    assert_ne!(second, first);
    // What a read with a `regenerate()` costs on this store: a rotation is
    // one, in the same store call.
    let other = begin(&m, t0, 70).await;
    let regenerate = statements(&*store, async {
        let mut h = m.open_at::<Cart>(Some(&other), t0 + 1);
        assert_eq!(*h.user().await.unwrap(), Some(70));
        h.regenerate();
        assert_eq!(flush(&mut h).await.unwrap(), Outcome::Saved);
    })
    .await;
    assert_eq!(n, regenerate, "a rotation costs what a regenerate does");
    let events = log.take(&m).await;
    assert!(
        events.iter().any(|e| e.kind
            == EventKind::Rotated {
                previous: id_of(&first)
            }
            && e.session == id_of(&second)),
        "a Rotated event names both ids: {events:?}"
    );

    // The replaced token within the grace: read and written, no cookie.
    let mut late = m.open_at::<Cart>(Some(&first), t1 + GRACE - 1);
    assert_eq!(*late.user().await.unwrap(), Some(7));
    assert_eq!(*late.history().await.unwrap(), vec!["home".to_string()]);
    late.cart_mut().await.unwrap().push("jam".into());
    assert_eq!(flush(&mut late).await.unwrap(), Outcome::Saved);
    assert_eq!(
        late.request().take_cookie_action(),
        None,
        "a request that followed a replaced token sets no cookie"
    );
    // A blind write with it lands too.
    let mut blind = m.open_at::<Cart>(Some(&first), t1 + GRACE - 1);
    blind.set_visits(3);
    assert_eq!(flush(&mut blind).await.unwrap(), Outcome::Saved);
    assert_eq!(blind.request().take_cookie_action(), None);

    let now_ = m.open_at::<Cart>(Some(&second), t1 + 1);
    assert_eq!(
        *now_.cart().await.unwrap(),
        vec!["tea".to_string(), "jam".into()]
    );
    assert_eq!(*now_.visits().await.unwrap(), 3);
    assert_eq!(*now_.user().await.unwrap(), Some(7));

    // The new token is not due again until `rotate_after` after its own
    // issue: a read at t1 + AFTER - 1 keeps it.
    assert_eq!(read_at(&m, &second, t1 + AFTER - 1).await, (Some(7), None));
    assert!(log
        .take(&m)
        .await
        .iter()
        .all(|e| !matches!(e.kind, EventKind::Destroyed { .. })));
}

/// A replaced token presented after its grace was held by two parties:
/// the session ends for both (the new token finds nothing), with a
/// `TheftSuspected` event naming whose session it was; the replay itself
/// gets no session. Within the grace nothing of that happens.
pub async fn a_replayed_token_after_the_grace_ends_the_session(store: Arc<dyn SessionStore>) {
    let Some((m, log)) = rotating(store.clone(), false) else {
        return;
    };
    let t0 = now();
    let first = begin(&m, t0, 8).await;
    let t1 = t0 + AFTER;
    let second = read_at(&m, &first, t1).await.1.expect("rotated");
    log.take(&m).await;

    // At the last second of the grace: followed, nothing ends.
    assert_eq!(read_at(&m, &first, t1 + GRACE - 1).await, (Some(8), None));
    assert!(log.take(&m).await.is_empty());

    // One second after: the session ends for both holders.
    let mut thief = m.open_at::<Cart>(Some(&first), t1 + GRACE);
    assert_eq!(
        *thief.user().await.unwrap(),
        None,
        "the replay gets no session"
    );
    assert!(thief.is_new());
    assert_eq!(flush(&mut thief).await.unwrap(), Outcome::Unchanged);
    assert_eq!(
        thief.request().take_cookie_action(),
        Some(CookieAction::Remove),
        "the replayed cookie is removed"
    );
    let owner = m.open_at::<Cart>(Some(&second), t1 + GRACE + 1);
    assert_eq!(
        *owner.user().await.unwrap(),
        None,
        "the owner's token ended too"
    );
    let events = log.take(&m).await;
    let ended: Vec<_> = events
        .iter()
        .filter(|e| {
            e.kind
                == EventKind::Destroyed {
                    cause: DestroyCause::TheftSuspected,
                }
        })
        .collect();
    assert_eq!(ended.len(), 1, "{events:?}");
    assert_eq!(
        ended[0].session,
        id_of(&second),
        "the session's id when it ended"
    );

    // A second replay finds nothing left to end.
    assert_eq!(read_at(&m, &first, t1 + GRACE + 2).await, (None, None));
    assert!(log.take(&m).await.is_empty());
}

/// Two requests of one page: what each writes lands, whichever of them
/// loaded before the other's rotation and whichever after.
pub async fn parallel_requests_across_a_rotation_lose_nothing(store: Arc<dyn SessionStore>) {
    let Some((m, log)) = rotating(store.clone(), false) else {
        return;
    };
    let m = Arc::new(m);
    let t0 = now();

    // The races, one by one: three requests load the session before any
    // of them saves; two found the token due, one (a second earlier) did
    // not. The first to save rotates; the others follow, writes included.
    let first = begin(&m, t0, 9).await;
    let t1 = t0 + AFTER;
    let mut early = m.open_at::<Burst>(Some(&first), t1 - 1);
    let mut a = m.open_at::<Burst>(Some(&first), t1);
    let mut b = m.open_at::<Burst>(Some(&first), t1);
    for h in [&early, &a, &b] {
        assert_eq!(*h.user().await.unwrap(), Some(9));
    }
    a.write(0, 1);
    b.write(1, 2);
    early.write(2, 3);
    assert_eq!(flush(&mut a).await.unwrap(), Outcome::Saved);
    let second = cookie_token(&mut a);
    assert_eq!(
        flush(&mut b).await.unwrap(),
        Outcome::Saved,
        "a second rotation follows the first"
    );
    assert_eq!(b.request().take_cookie_action(), None);
    assert_eq!(
        flush(&mut early).await.unwrap(),
        Outcome::Saved,
        "a write that loaded before follows"
    );
    assert_eq!(early.request().take_cookie_action(), None);
    let h = m.open_at::<Burst>(Some(&second), t1 + GRACE + 1);
    assert_eq!(
        [h.read(0).await, h.read(1).await, h.read(2).await],
        [1, 2, 3]
    );
    log.take(&m).await;

    let first = begin(&m, t0, 9).await;
    // 32 requests, half a second before the rotation is due and half at
    // it, each adding its own item to a list of its own field… as the
    // typed layer has fixed fields, each writes one of `Burst`'s 32.
    let mut tasks = Vec::new();
    for i in 0..32usize {
        let m = m.clone();
        let cookie = first.clone();
        tasks.push(tokio::spawn(async move {
            let at = if i % 2 == 0 { t1 - 1 } else { t1 };
            let mut h = m.open_at::<Burst>(Some(&cookie), at);
            assert_eq!(
                *h.user().await.unwrap(),
                Some(9),
                "request {i} reads the session"
            );
            h.write(i, 100 + i as u32);
            let outcome = flush(&mut h).await;
            let cookie = match h.request().take_cookie_action() {
                Some(CookieAction::Set { value, .. }) => Some(value),
                Some(CookieAction::Remove) => panic!("request {i} removed the cookie"),
                None => None,
            };
            (i, outcome, cookie)
        }));
    }
    let mut set = Vec::new();
    for task in tasks {
        let (i, outcome, cookie) = task.await.unwrap();
        assert_eq!(
            outcome.unwrap(),
            Outcome::Saved,
            "request {i}'s write landed"
        );
        set.extend(cookie);
    }
    assert_eq!(set.len(), 1, "exactly one response sets a cookie: {set:?}");
    let second = &set[0];
    assert_ne!(second, &first, "and it is a new token");
    // After the grace, the new token has every write; nothing was taken
    // for a theft.
    let h = m.open_at::<Burst>(Some(second), t1 + GRACE + 5);
    for i in 0..32 {
        assert_eq!(h.read(i).await, 100 + i as u32, "field {i}");
    }
    let events = log.take(&m).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Rotated { .. }))
            .count(),
        1,
        "one rotation: {events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| !matches!(e.kind, EventKind::Destroyed { .. })),
        "{events:?}"
    );
}

/// With rotation on, a token replaced by `regenerate()` (a login) is
/// still never followed: a token planted before login reads nothing and
/// writes nothing after it, and is not taken for a stolen one.
pub async fn a_regenerated_token_is_never_followed(store: Arc<dyn SessionStore>) {
    let Some((m, log)) = rotating(store.clone(), false) else {
        return;
    };
    let t0 = now();
    let planted = begin(&m, t0, 0).await;
    let mut login = m.open_at::<Cart>(Some(&planted), t0 + 1);
    login.set_user(Some(10));
    login.regenerate();
    assert_eq!(flush(&mut login).await.unwrap(), Outcome::Saved);
    let mine = cookie_token(&mut login);
    log.take(&m).await;

    let mut attacker = m.open_at::<Cart>(Some(&planted), t0 + 2);
    assert_eq!(*attacker.user().await.unwrap(), None);
    attacker.set_cart(vec!["evil".into()]);
    assert_eq!(flush(&mut attacker).await.unwrap(), Outcome::Interrupted);
    assert_eq!(attacker.request().take_cookie_action(), None);
    let h = m.open_at::<Cart>(Some(&mine), t0 + 3);
    assert_eq!(*h.user().await.unwrap(), Some(10));
    assert_eq!(*h.cart().await.unwrap(), vec!["tea".to_string()]);
    // Long after the grace: an unknown cookie, nothing ends.
    assert_eq!(read_at(&m, &planted, t0 + 600).await, (None, None));
    assert_eq!(read_at(&m, &mine, t0 + 601).await.0, Some(10));
    assert!(log
        .take(&m)
        .await
        .iter()
        .all(|e| !matches!(e.kind, EventKind::Destroyed { .. })));
}

/// With values encrypted, a value written once opens after many more
/// rotations than a session keeps previous keys for, and a value written
/// by a request that followed a replaced token opens under the new one.
pub async fn encrypted_values_survive_many_rotations(store: Arc<dyn SessionStore>) {
    let Some((m, _log)) = rotating(store.clone(), true) else {
        return;
    };
    let t0 = now();
    let mut cookie = begin(&m, t0, 11).await;
    let mut at = t0;
    for round in 0..12 {
        at += AFTER;
        let (user, set) = read_at(&m, &cookie, at).await;
        assert_eq!(user, Some(11), "round {round}");
        let next = set.expect("rotated");
        if round == 5 {
            // A request in flight with the replaced token writes.
            let mut late = m.open_at::<Cart>(Some(&cookie), at + 1);
            late.set_visits(5);
            assert_eq!(flush(&mut late).await.unwrap(), Outcome::Saved);
            // A blind write with the new one.
            let mut blind = m.open_at::<Cart>(Some(&next), at + 1);
            blind.set_cart(vec!["blind".into()]);
            assert_eq!(flush(&mut blind).await.unwrap(), Outcome::Saved);
        }
        cookie = next;
    }
    let h = m.open_at::<Cart>(Some(&cookie), at + 1);
    assert_eq!(*h.user().await.unwrap(), Some(11));
    assert_eq!(*h.visits().await.unwrap(), 5);
    assert_eq!(*h.cart().await.unwrap(), vec!["blind".to_string()]);
    assert_eq!(*h.history().await.unwrap(), vec!["home".to_string()]);
}

/// With `rolling` cookies, a response sends the token it read again, but
/// not once the token is within `rotation_grace` of its rotation: such a
/// response could reach the browser after the rotating one and leave it
/// holding the replaced token, which after the grace would be taken for a
/// stolen one.
pub async fn a_token_near_its_rotation_is_not_sent_again(store: Arc<dyn SessionStore>) {
    let Some((m, _log)) = rotating(store.clone(), false) else {
        return;
    };
    let config = Config {
        rolling: true,
        ..m.config().clone()
    };
    let m = SessionManager::new(store, config).unwrap();
    let t0 = now();
    let first = begin(&m, t0, 12).await;
    assert_eq!(
        read_at(&m, &first, t0 + AFTER - GRACE - 1).await,
        (Some(12), Some(first.clone())),
        "a rolling cookie is sent again"
    );
    assert_eq!(
        read_at(&m, &first, t0 + AFTER - GRACE).await,
        (Some(12), None),
        "not within the grace of its rotation"
    );
    let (_, set) = read_at(&m, &first, t0 + AFTER).await;
    assert!(set.is_some_and(|c| c != first), "then it rotates");
}

/// A devices page shown before a rotation still signs that device out
/// after it: a rotated session keeps the id it was listed by, and the
/// listing after the rotation shows the same id.
pub async fn a_device_listed_before_its_rotation_is_signed_out_after_it(
    store: Arc<dyn SessionStore>,
) {
    let Some((m, _log)) = rotating(store.clone(), false) else {
        return;
    };
    let t0 = now();
    let sign_in = |device: &'static str| {
        let mut h = m.open_at::<Account>(None, t0);
        h.set_user_id(21);
        h.set_device(device.into());
        h
    };
    let (mut laptop, mut phone) = (sign_in("laptop"), sign_in("phone"));
    assert_eq!(flush(&mut laptop).await.unwrap(), Outcome::Created);
    assert_eq!(flush(&mut phone).await.unwrap(), Outcome::Created);
    let (laptop, phone) = (cookie_token(&mut laptop), cookie_token(&mut phone));
    let listed = |cookie: String, at: i64| {
        let m = &m;
        async move {
            let h = m.open_at::<Account>(Some(&cookie), at);
            h.sessions_by_user_id(&21)
                .await
                .unwrap()
                .iter()
                .map(|s| (s.data().device, s.id(), s.is_current()))
                .collect::<Vec<_>>()
        }
    };
    let before = listed(laptop.clone(), t0 + 1).await;
    let phone_id = before.iter().find(|(d, _, _)| d == "phone").unwrap().1;

    // The phone's token rotates.
    let mut h = m.open_at::<Account>(Some(&phone), t0 + AFTER);
    assert_eq!(*h.user_id().await.unwrap(), 21);
    flush(&mut h).await.unwrap();
    let phone_now = cookie_token(&mut h);
    assert_ne!(phone_now, phone);
    // Listed by the id it had, and current where it is.
    let after = listed(phone_now.clone(), t0 + AFTER + 1).await;
    assert!(
        after.contains(&("phone".into(), phone_id, true)),
        "{after:?}"
    );

    // Signed out from the laptop with the id shown before.
    let mut h = m.open_at::<Account>(Some(&laptop), t0 + AFTER + 2);
    assert!(h.destroy_session_by_user_id(&21, &phone_id).await.unwrap());
    let h = m.open_at::<Account>(Some(&phone_now), t0 + AFTER + 3);
    assert_eq!(*h.user_id().await.unwrap(), 0, "the phone is signed out");
    let left = listed(laptop, t0 + AFTER + 4).await;
    assert_eq!(left.len(), 1, "{left:?}");
}
