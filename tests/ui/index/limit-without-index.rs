use session_rocket::Session;

#[derive(Session)]
struct Shop {
    #[session(max_sessions = 2)]
    user: Option<u64>,
    #[session(index, when_full = "refuse")]
    team: Option<u64>,
}

fn main() {}
