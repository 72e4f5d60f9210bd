use session_rocket::Session;

// An alias is read with the session's one load; index entries are kept
// under the stored name.
#[derive(Session)]
struct Shop {
    #[session(alias = "old_a", deferred)]
    a: String,
    #[session(index, alias = "old_b")]
    b: String,
}

fn main() {}
