use session_rocket::Session;

#[derive(Session)]
struct Shop {
    café: u32,
}

fn main() {}
