use session_rocket::Session;

#[derive(Session)]
union Shop {
    visits: u32,
}

fn main() {}
