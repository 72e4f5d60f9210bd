use session_rocket::Session;

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Cart {
    items: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct OldCart(String);

fn parse(old: String) -> Cart {
    Cart { items: vec![old] }
}

// No `From<OldCart>` for `Cart`; a conversion function of the wrong shape.
#[derive(Session)]
struct Shop {
    #[session(from = OldCart)]
    cart: Cart,
    #[session(from(String, with = parse))]
    other: Cart,
}

fn main() {}
