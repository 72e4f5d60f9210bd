use session_rocket::Session;

#[derive(Session)]
struct Shop {
    #[session(rename = "a", rename = "b")]
    visits: u32,
    #[session(deferred)]
    #[session(deferred)]
    history: Vec<String>,
}

fn main() {}
