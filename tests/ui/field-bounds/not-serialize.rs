use session_rocket::Session;

#[derive(Default)]
struct Opaque;

#[derive(Session)]
struct Shop {
    visits: u32,
    opaque: Opaque,
}

fn main() {}
