use session_rocket::Session;

#[derive(Session)]
struct Shop;

fn main() {}
