use session_rocket::Session;

// `update_visits()` of the versioned `visits` would clash with the getter
// of a field named `update_visits`.
#[derive(Session)]
struct Shop {
    #[session(versioned)]
    visits: u64,
    update_visits: u64,
}

fn main() {}
