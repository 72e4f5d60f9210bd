use session_rocket::Session;

// An alias is an old stored name: a valid name, nobody else's.
#[derive(Session)]
struct Shop {
    #[session(alias = "old name")]
    a: String,
    #[session(alias = "b")]
    b: String,
    #[session(alias = "a_old")]
    c: String,
    #[session(alias = "a_old")]
    d: String,
    #[session(alias = 7)]
    e: String,
}

fn main() {}
