use session_rocket::Session;

fn default_visits() -> String {
    String::new()
}

#[derive(Session)]
struct Shop {
    #[session(default = "default_visits")]
    visits: u32,
}

fn main() {}
