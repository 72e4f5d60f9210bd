//! Compile-fail cases for `#[derive(Session)]`, one folder per kind of
//! error, each with its checked-in `.stderr`; plus cases that must compile.
//! `pass/public-api.rs` names what apps and store authors rely on; the
//! crate's own doctests (`src/lib.rs`) check that internals stay internal.
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
        "versioned",
        "index",
        "flash",
        "ttl",
        "alias",
        "from",
    ] {
        t.compile_fail(format!("ui/{category}/*.rs"));
    }
    t.pass("ui/pass/*.rs");
}
