use session_rocket::Session;

#[derive(Session)]
struct Shop {
    visits: u32,
    #[session(rename = "visits")]
    count: u32,
    #[session(rename = "lang")]
    locale: String,
    #[session(rename = "lang")]
    language: String,
}

fn main() {}
