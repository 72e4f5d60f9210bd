use session_rocket::Session;

#[derive(Session)]
struct Shop<T> {
    cart: Vec<T>,
}

#[derive(Session)]
struct Borrowed<'a> {
    name: &'a str,
}

fn main() {}
