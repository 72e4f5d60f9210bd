use session_rocket::Session;

// A flash field is taken by compare-and-set of its version: it is
// versioned already, loaded with the session, and no index.
#[derive(Session)]
struct Shop {
    #[session(flash, versioned)]
    a: String,
    #[session(flash, deferred)]
    b: String,
    #[session(index, flash)]
    c: String,
}

fn main() {}
