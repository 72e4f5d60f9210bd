use session_rocket::Session;

#[derive(Session)]
struct Shop {
    since: Option<std::time::Instant>,
}

fn main() {}
