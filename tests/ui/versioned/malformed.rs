use session_rocket::Session;

#[derive(Session)]
struct Shop {
    #[session(versioned = true)]
    visits: u64,
    #[session(versioned, versioned)]
    cart: Vec<String>,
}

fn main() {}
