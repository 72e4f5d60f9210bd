use session_rocket::Session;

#[derive(Session)]
#[session]
struct Shop {
    #[session = "v"]
    visits: u32,
}

fn main() {}
