//! The schema lock: a session type checked against the lock an earlier
//! release of it wrote. A change that leaves stored values unreadable
//! fails, naming the field and the attribute that fixes it; a change that
//! covers them (`alias`, `from`) passes once the lock records it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use session_core::schema_lock::{check, update};
use session_core::testing::{Before, Later, Tier, User};
use session_derive::Session;

/// A fresh lock path of its own for each test.
fn lock(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("session-lock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.lock"));
    let _ = std::fs::remove_file(&path);
    path
}

/// [`Before`] retyped and renamed with nothing to carry the values over.
#[derive(Debug, Session)]
#[session(crate = "session_core")]
struct Careless {
    user: Option<User>,
    items: Vec<String>,
    #[session(versioned)]
    hits: u64,
}

/// [`Later`] a release after, its `from` on `user` dropped.
#[derive(Debug, Session)]
#[session(crate = "session_core")]
struct Forgetful {
    user: Option<User>,
    #[session(alias = "cart", from(Vec<String>, with = session_core::testing::items_from_names))]
    items: Vec<session_core::testing::Item>,
    #[session(alias = "hits", from = u64, versioned)]
    visits: session_core::testing::Visits,
    #[session(from = session_core::testing::LevelNumber, from = session_core::testing::LevelName)]
    tier: Tier,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Inner {
    tier: Tier,
    by_name: BTreeMap<String, Option<(u8, bool)>>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
enum Step {
    #[default]
    Start,
    Paid {
        amount: u64,
    },
    Shipped(String),
}

#[derive(Debug, Session)]
#[session(crate = "session_core")]
struct Shapes {
    inner: Inner,
    step: Step,
}

#[test]
fn a_type_matches_the_lock_it_wrote() {
    let path = lock("same");
    // The first check writes the lock.
    check::<Before>(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("field user ") && lines[0].ends_with(" option<u64>"));
    assert!(lines[1].starts_with("field cart ") && lines[1].ends_with(" seq<str>"));
    assert!(lines[2].starts_with("field hits ") && lines[2].ends_with(" u64"));
    check::<Before>(&path).unwrap();
}

#[test]
fn a_changed_type_or_a_vanished_name_fails_naming_the_field_and_the_fix() {
    let path = lock("careless");
    update::<Before>(&path).unwrap();
    let error = check::<Careless>(&path).unwrap_err();
    let problems = error.problems();
    assert_eq!(problems.len(), 2, "{error}");
    assert!(
        problems[0].contains("field `user` changed type")
            && problems[0].contains("`option<u64>`")
            && problems[0].contains("`option<{ id: u64 }>`")
            && problems[0].contains("#[session(from = OldType)]"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].contains("stored as `cart`")
            && problems[1].contains("#[session(alias = \"cart\")]"),
        "{}",
        problems[1]
    );
    // The panic says the same, with how to update.
    let message = std::panic::catch_unwind(|| {
        session_core::schema_lock::assert_locked::<Careless>(&path);
    })
    .unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("field `user` changed type"), "{message}");
    assert!(message.contains("SESSION_LOCK=update"), "{message}");
}

#[test]
fn renamed_and_retyped_fields_pass_once_the_lock_records_them() {
    let path = lock("later");
    update::<Before>(&path).unwrap();
    // Every stored value is covered; the lock is out of date only.
    let error = check::<Later>(&path).unwrap_err();
    assert_eq!(error.problems().len(), 1, "{error}");
    let problem = &error.problems()[0];
    assert!(problem.contains("out of date"), "{problem}");
    assert!(problem.contains("new field `tier`"), "{problem}");
    update::<Later>(&path).unwrap();
    check::<Later>(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\n  alias cart\n"), "{text}");
    assert!(text.contains(" seq<str>\n"), "the earlier type: {text}");
}

#[test]
fn dropping_an_earlier_type_is_caught() {
    let path = lock("forgetful");
    update::<Later>(&path).unwrap();
    let error = check::<Forgetful>(&path).unwrap_err();
    assert_eq!(error.problems().len(), 1, "{error}");
    assert!(
        error.problems()[0].contains("field `user` no longer converts from `option<u64>`"),
        "{error}"
    );
}

#[test]
fn shapes_name_fields_and_every_variant() {
    let path = lock("shapes");
    update::<Shapes>(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(
            " { tier: enum { Bronze, Silver, Gold }, by_name: map<str, option<(u8, bool)>> }\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(" enum { Start, Paid { amount: u64 }, Shipped(str) }\n"),
        "{text}"
    );
    assert!(text.contains("Session schema lock of `Shapes`"), "{text}");
}
