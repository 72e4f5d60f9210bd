use session_rocket::Session;

#[derive(Session)]
#[session(crate)]
struct Shop {
    #[session(rename, deferred = true)]
    visits: u32,
    #[session(default("f"))]
    cart: Vec<String>,
}

fn main() {}
