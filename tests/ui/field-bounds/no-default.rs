use serde::{Deserialize, Serialize};
use session_rocket::Session;

#[derive(Serialize, Deserialize)]
struct Theme(String);

#[derive(Session)]
struct Shop {
    theme: Theme,
}

fn main() {}
