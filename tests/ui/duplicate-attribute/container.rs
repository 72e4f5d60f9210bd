use session_rocket::Session;

#[derive(Session)]
#[session(codec = "session_rocket::__private::JsonCodec")]
#[session(codec = "session_rocket::__private::JsonCodec", handle = "A", handle = "B")]
struct Shop {
    visits: u32,
}

fn main() {}
