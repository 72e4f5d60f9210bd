//! The shop's sessions outlive its deploys: this fails before a change to
//! `Shop` that would leave stored sessions unreadable (a field retyped
//! without `#[session(from = OldType)]`, renamed without
//! `#[session(alias = "old")]`), naming the field and the attribute. After
//! a deliberate change, rerun with `SESSION_LOCK=update` and commit
//! `sessions.lock` with it.

#[test]
fn sessions_stored_by_earlier_releases_still_read() {
    session_rocket::schema_lock::assert_locked::<shop::Shop>("sessions.lock");
}
