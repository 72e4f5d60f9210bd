use serde::{Deserialize, Serialize};
use session_rocket::Session;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Item {
    sku: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Level(u8);

impl From<u8> for Level {
    fn from(n: u8) -> Self {
        Level(n)
    }
}

fn level_from_name(name: String) -> Result<u8, String> {
    name.parse().map_err(|_| format!("not a level: {name}"))
}

fn default_theme() -> String {
    "dark".into()
}

mod codecs {
    pub use session_rocket::__private::JsonCodec as Json;
}

#[derive(Session)]
#[session(crate = "session_rocket", codec = "codecs::Json", handle = "ShopHandle")]
pub struct Shop {
    #[session(index)]
    pub user_id: Option<u64>,
    cart: Vec<Item>,
    #[session(deferred)]
    history: Vec<String>,
    #[session(rename = "lang")]
    locale: String,
    #[session(default = "default_theme")]
    theme: String,
    #[session(rename = "user.session-id", deferred, default = "String::new")]
    session_id: String,
    #[session(versioned, rename = "hits", default = "one")]
    visits: u64,
    #[session(index, max_sessions = 3, when_full = "refuse")]
    seat: Option<u64>,
    #[session(flash)]
    notice: String,
    #[session(ttl = "10m", sliding)]
    sudo: bool,
    #[session(ttl = 300, flash, rename = "otp")]
    code: Option<u32>,
    #[session(ttl = "1d", versioned)]
    tries: u32,
    #[session(alias = "basket", alias = "old_cart", rename = "bag")]
    items: Vec<String>,
    #[session(from(String, with = level_from_name), from = u8, rewrite_on_read)]
    level: Level,
    #[session(index, alias = "uid", from = u32, rewrite_on_read)]
    account: u64,
}

fn one() -> u64 {
    1
}

async fn handler(mut session: ShopHandle) -> session_rocket::__private::Result<()> {
    if session.user_id().await?.is_none() {
        session.regenerate();
    }
    session.cart_mut().await?.push(Item::default());
    session.set_locale("fr".into());
    session.remove_history();
    let _ = session.theme().await?;
    let _ = session.session_id().await?;
    let visits: u64 = session.update_visits(|v| {
        *v += 1;
        *v
    }).await?;
    let _ = visits;
    for device in session.sessions_by_user_id(&Some(42)).await? {
        let _: Option<String> = device.field("lang");
        let _ = (device.id(), device.created_at(), device.last_seen(), device.is_current());
    }
    let _: u64 = session.destroy_other_sessions_by_user_id(&Some(42)).await?;
    let _: u64 = session.destroy_sessions_by_user_id(&Some(42)).await?;
    session.set_notice("saved".into());
    let _: Option<String> = session.take_notice().await?;
    let _: bool = *session.sudo().await?;
    let _: Option<Option<u32>> = session.take_code().await?;
    session.update_tries(|t| *t += 1).await?;
    Ok(())
}

fn main() {
    let _ = handler;
}
