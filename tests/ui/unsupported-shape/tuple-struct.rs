use session_rocket::Session;

#[derive(Session)]
struct Shop(u32, String);

fn main() {}
