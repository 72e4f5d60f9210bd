use session_rocket::Session;

#[derive(Session)]
struct Shop {
    greeting: &'static str,
}

fn main() {}
