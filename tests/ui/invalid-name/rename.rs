use session_rocket::Session;

#[derive(Session)]
struct Shop {
    #[session(rename = "user id")]
    user_id: u64,
    #[session(rename = "")]
    empty: u64,
    #[session(rename = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    long: u64,
}

fn main() {}
