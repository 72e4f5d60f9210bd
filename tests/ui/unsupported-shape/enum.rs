use session_rocket::Session;

#[derive(Session)]
enum Shop {
    Empty,
}

fn main() {}
