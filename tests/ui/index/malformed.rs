use session_rocket::Session;

#[derive(Session)]
struct Account {
    #[session(index = true)]
    user_id: u64,
    #[session(index, index)]
    email: String,
}

fn main() {}
