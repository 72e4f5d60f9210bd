use session_rocket::Session;

#[derive(Session)]
struct Shop {
    #[session(flash = true)]
    notice: String,
    #[session(flash, flash)]
    alert: String,
}

fn main() {}
