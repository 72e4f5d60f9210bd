use session_rocket::Session;

#[derive(Session)]
struct Shop {
    id: u64,
    is_new: bool,
}

fn main() {}
