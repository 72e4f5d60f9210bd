use session_rocket::Session;

// A lifetime is whole seconds, or a whole number of `s`, `m`, `h` or `d`.
#[derive(Session)]
struct Shop {
    #[session(ttl = "10x")]
    a: String,
    #[session(ttl = 0)]
    b: String,
    #[session(ttl)]
    c: String,
    #[session(ttl = "1.5h")]
    d: String,
    #[session(ttl = 10, sliding = true)]
    e: String,
}

fn main() {}
