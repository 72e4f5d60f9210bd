use session_rocket::Session;

#[derive(serde::Serialize, serde::Deserialize, Default, Clone, Copy)]
struct Visits(u64);

impl From<u32> for Visits {
    fn from(n: u32) -> Self {
        Visits(n.into())
    }
}

// `rewrite_on_read` needs an earlier type and a field written without a
// compare-and-set; an indexed field needs it with `from`.
#[derive(Session)]
struct Shop {
    #[session(rewrite_on_read)]
    a: u64,
    #[session(from = u32, versioned, rewrite_on_read)]
    b: Visits,
    #[session(index, from = u32)]
    c: Visits,
    #[session(from(u32, via = Visits::from))]
    d: Visits,
    #[session(from)]
    e: Visits,
}

fn main() {}
