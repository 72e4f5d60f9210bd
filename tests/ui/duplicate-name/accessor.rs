use session_rocket::Session;

#[derive(Session)]
struct Shop {
    cart: Vec<String>,
    cart_mut: bool,
    set_cart: bool,
}

fn main() {}
