// The flush machinery is not reachable from a handler through the
// handle's `Deref` to `SessionState`: every call is an error.
fn plan(state: &session_rocket::SessionState) {
    let _ = state.plan(|_| None);
}

fn apply(state: &mut session_rocket::SessionState) {
    let _ = state.is_untouched();
}

fn cookie(state: &mut session_rocket::SessionState) {
    let _ = state.take_cookie_action();
}

fn main() {}
