use session_rocket::Session;

// An alias is read with the session's one load.
#[derive(Session)]
struct Shop {
    #[session(alias = "old_a", deferred)]
    a: String,
}

fn main() {}
