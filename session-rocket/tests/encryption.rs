//! Encryption at rest over HTTP on MariaDB: with `encryption_keys`, a dump
//! of the session tables made by `mariadb-dump` holds no plaintext of a
//! value the app stored (without keys, the same dump does: the check can
//! see it), and the app reads its values back.

use std::process::Command;

use rocket::{get, post, routes};
use session_rocket::{Session, SessionError, Sessions};

mod support;
use support::{database_url, figment, http, launch, unique};

const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const CARD: &str = "card-4111-secret";

#[derive(Session)]
struct Account {
    user: Option<u64>,
    card: String,
    #[session(deferred)]
    notes: Vec<String>,
}

#[post("/login")]
fn login(mut s: Session<Account>) -> &'static str {
    s.set_user(Some(987_654_321));
    s.set_card(CARD.into());
    s.set_notes(vec![format!("note-{CARD}")]);
    "ok"
}

#[get("/me")]
async fn me(s: Session<Account>) -> Result<String, SessionError> {
    Ok(format!(
        "{:?} {} {:?}",
        s.user().await?,
        s.card().await?,
        s.notes().await?
    ))
}

/// `mariadb-dump` of the two session tables with this prefix.
fn dump(prefix: &str) -> String {
    // mysql://user@host:port/database
    let url = database_url();
    let rest = url.split_once("://").expect("a URL").1;
    let (user, rest) = rest.split_once('@').unwrap_or(("root", rest));
    let (address, database) = rest.split_once('/').expect("a database in DATABASE_URL");
    let (host, port) = address.split_once(':').unwrap_or((address, "3306"));
    let output = Command::new("mariadb-dump")
        .args([
            "-h",
            host,
            "-P",
            port,
            "-u",
            user.split(':').next().unwrap(),
        ])
        .arg(database.split('?').next().unwrap())
        .arg(format!("{prefix}sessions"))
        .arg(format!("{prefix}session_fields"))
        .output()
        .expect("mariadb-dump runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Logs in on an app with these keys and returns the dump and what `/me`
/// answered.
async fn session_dump(keys: &[&str]) -> (String, String) {
    let prefix = unique("enc");
    let rocket = rocket::custom(
        figment()
            .merge(("sessions.url", database_url()))
            .merge(("sessions.table_prefix", &prefix))
            .merge(("sessions.encryption_keys", keys.to_vec())),
    )
    .attach(Sessions::fairing())
    .mount("/", routes![login, me]);
    let (app, shutdown, _) = launch(rocket).await;
    let (status, cookie, _) = http(app, "POST", "/login", None).await;
    assert_eq!(status, 200);
    let (status, _, body) = http(app, "GET", "/me", cookie.as_deref()).await;
    assert_eq!(status, 200);
    shutdown.notify();
    (dump(&prefix), body)
}

#[rocket::async_test]
async fn a_dump_of_an_encrypted_store_holds_no_plaintext() {
    let expected = format!("Some(987654321) {CARD} [\"note-{CARD}\"]");

    let (plain, body) = session_dump(&[]).await;
    assert_eq!(body, expected);
    assert!(plain.contains("INSERT INTO"), "the dump has the rows");
    assert!(
        shows(&plain, CARD) && shows(&plain, "987654321"),
        "without keys the dump shows the values"
    );

    let (sealed, body) = session_dump(&[KEY]).await;
    assert_eq!(body, expected, "the app reads its values back");
    assert!(sealed.contains("INSERT INTO"), "the dump has the rows");
    for plaintext in [CARD, "987654321", "4111", "note-"] {
        assert!(!shows(&sealed, plaintext), "the dump shows {plaintext:?}");
    }
}

/// Whether `dump` shows `text`: as it is (a field row's bytes), or inside
/// a base64 value (the session row's document of small fields).
fn shows(dump: &str, text: &str) -> bool {
    use base64::Engine as _;
    dump.contains(text)
        || dump
            .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
            .filter_map(|token| base64::engine::general_purpose::STANDARD.decode(token).ok())
            .any(|bytes| String::from_utf8_lossy(&bytes).contains(text))
}
