//! Compile-fail cases for `#[derive(Session)]`, one folder per kind of
//! error, each with its checked-in `.stderr`; plus cases that must compile.
//! `private-api/` is the public-API snapshot from the other side: internal
//! machinery that must stay unreachable (its `.stderr` lists every item, so
//! one that becomes public changes it), next to `pass/public-api.rs`, which
//! names what apps and store authors rely on.
//!
//! The expected output follows this machine's stable compiler: regenerate
//! with `TRYBUILD=overwrite cargo test -p session-tests --test ui` only when
//! that compiler changes, and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    for category in [
        "unsupported-shape",
        "unknown-attribute",
        "duplicate-attribute",
        "malformed",
        "duplicate-name",
        "field-bounds",
        "reserved-name",
        "invalid-name",
        "private-api",
    ] {
        t.compile_fail(format!("ui/{category}/*.rs"));
    }
    t.pass("ui/pass/*.rs");
}
