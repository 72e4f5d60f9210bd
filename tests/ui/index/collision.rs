use session_rocket::Session;

// `index` on `user` generates `sessions_by_user()`, which the field
// `sessions_by_user` generates too.
#[derive(Session)]
struct Account {
    #[session(index)]
    user: u64,
    sessions_by_user: u32,
}

fn main() {}
