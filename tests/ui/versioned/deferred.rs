use session_rocket::Session;

// A versioned field's version is read with the session's one load; a
// deferred field has a load of its own.
#[derive(Session)]
struct Shop {
    #[session(versioned, deferred)]
    visits: u64,
}

fn main() {}
