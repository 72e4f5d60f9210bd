use std::cell::Cell;

use session_rocket::Session;

#[derive(Session)]
struct Shop {
    visits: Cell<u32>,
}

fn main() {}
