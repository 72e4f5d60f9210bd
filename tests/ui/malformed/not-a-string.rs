use session_rocket::Session;

#[derive(Session)]
#[session(handle = ShopHandle)]
struct Shop {
    #[session(rename = 1)]
    visits: u32,
    #[session(default = default_cart)]
    cart: Vec<String>,
}

fn main() {}
