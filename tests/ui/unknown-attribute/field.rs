use session_rocket::Session;

#[derive(Session)]
struct Shop {
    #[session(lazy)]
    history: Vec<String>,
    #[session(renamed = "v", deferred)]
    visits: u32,
}

// The fallback keeps the rest of the program free of follow-on errors.
fn open(manager: &session_core::SessionManager) -> ShopSession {
    manager.open::<Shop>(None)
}

fn main() {
    let _ = open;
}
