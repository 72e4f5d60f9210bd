use session_rocket::Session;

#[derive(Session)]
#[session(crate = "not a path", codec = "Json Codec", handle = "Shop Handle")]
struct Shop {
    #[session(default = "1 + 1")]
    visits: u32,
}

fn main() {}
