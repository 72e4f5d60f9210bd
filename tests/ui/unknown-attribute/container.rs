use session_rocket::Session;

#[derive(Session)]
#[session(rename = "shop", handel = "Handle")]
struct Shop {
    visits: u32,
}

fn main() {}
