use session_rocket::Session;

#[derive(Session)]
struct Shop {
    #[session(rename = "expires")]
    expiry: u64,
    regenerate: bool,
}

fn main() {}
