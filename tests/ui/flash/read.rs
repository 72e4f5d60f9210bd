use session_rocket::{Session, SessionError};

#[derive(Session)]
struct Shop {
    #[session(flash)]
    notice: String,
}

// A flash value is read by taking it: there is no borrow of it.
async fn peek(s: &Session<Shop>) -> Result<String, SessionError> {
    Ok(s.notice().await?.clone())
}

fn main() {
    let _ = peek;
}
