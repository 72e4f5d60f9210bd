use session_rocket::Session;

// `sliding` says how `ttl` counts; a lifetime is read with the session's
// one load, and an index entry would outlive the value.
#[derive(Session)]
struct Shop {
    #[session(sliding)]
    a: String,
    #[session(ttl = "10m", deferred)]
    b: String,
    #[session(index, ttl = 60)]
    c: String,
}

fn main() {}
