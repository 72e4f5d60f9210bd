use session_rocket::Session;

#[derive(Session)]
struct Shop {
    #[session(index, max_sessions = 0)]
    user: Option<u64>,
    #[session(index, max_sessions = "2")]
    team: Option<u64>,
    #[session(index, max_sessions = 2, when_full = "drop_all")]
    org: Option<u64>,
}

fn main() {}
