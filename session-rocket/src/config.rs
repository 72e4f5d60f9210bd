//! Reading `[default.sessions]` from Rocket's figment.

use rocket::figment::error::Kind;
use rocket::figment::providers::{Env, Serialized};
use rocket::figment::value::Dict;
use rocket::figment::Figment;
use session_core::Config;

pub use session_core::config::{OnDecodeError, SameSite};
pub use session_core::sealing::EncryptionKey;
pub use session_core::signing::SigningKey;

/// The section the settings live in.
const SECTION: &str = "sessions";

/// Extracts the session [`Config`] from a Rocket figment: the `sessions`
/// table (`[default.sessions]` in `Rocket.toml`, or
/// `ROCKET_SESSIONS='{ttl=3600}'`), then `ROCKET_SESSIONS_*` variables
/// (`ROCKET_SESSIONS_TTL=3600`), over the safe defaults of
/// [`Config::default`].
///
/// Rocket's own figment reads `ROCKET_*` variables without splitting on `_`,
/// so `ROCKET_SESSIONS_TTL` would arrive as a key `sessions_ttl` that nothing
/// reads; merging `Env::prefixed("ROCKET_SESSIONS_")` here makes that form
/// work too.
///
/// # Errors
/// A figment error naming the bad key with its section
/// (`sessions.cookie-name`) and, for a near miss, the key it resembles
/// (unknown keys are errors, so a typo never silently falls back to a
/// default).
///
/// ```
/// use rocket::figment::{Figment, providers::{Format, Toml}};
///
/// let toml = Toml::string("[default.sessions]\nttl = 600\nsecure = false").nested();
/// let figment = Figment::from(toml);
/// let config = session_rocket::config::extract(&figment).unwrap();
/// assert_eq!(config.ttl, 600);
/// assert!(!config.secure);
/// assert_eq!(config.cookie_name, "session");
/// ```
// figment's own error type, returned as figment returns it, so callers can
// hand it to `rocket::config::pretty_print_error`.
#[allow(clippy::result_large_err)]
pub fn extract(figment: &Figment) -> Result<Config, rocket::figment::Error> {
    let mut config: Config = figment
        .focus(SECTION)
        .join(Serialized::defaults(Config::default()))
        .merge(Env::prefixed("ROCKET_SESSIONS_").global())
        .extract()
        .map_err(in_section)?;
    if config.sign_with_secret_key && config.signing_keys.is_empty() {
        config.signing_keys.push(from_secret_key(
            figment,
            session_core::signing::derive_signing_key,
            "`sessions.sign_with_secret_key = true` needs",
        )?);
    }
    if session_core::open::needs_encryption_key(&config) && config.encryption_keys.is_empty() {
        // As Rocket's private cookies are sealed with it.
        config.encryption_keys.push(from_secret_key(
            figment,
            session_core::sealing::derive_encryption_key,
            "`sessions.url = \"cookie\"` seals each session into its cookie with \
             `sessions.encryption_keys`, none is set, and so it needs",
        )?);
    }
    Ok(config)
}

/// A key derived from Rocket's `secret_key` by `derive` (see
/// [`derive_signing_key`](session_core::signing::derive_signing_key) and
/// [`derive_encryption_key`](session_core::sealing::derive_encryption_key));
/// `missing` says what needed it when there is none.
#[allow(clippy::result_large_err)]
fn from_secret_key<K>(
    figment: &Figment,
    derive: fn(&str) -> Option<K>,
    missing: &str,
) -> Result<K, rocket::figment::Error> {
    let secret: Option<String> = figment.extract_inner("secret_key").ok();
    secret.as_deref().and_then(derive).ok_or_else(|| {
        rocket::figment::Error::from(format!(
            "{missing} Rocket's `secret_key` (base64 or hex of 32 or 64 random bytes, e.g. \
             `openssl rand -base64 64`), and none is configured"
        ))
    })
}

/// Puts the section in front of every error's key, and suggests the key a
/// misspelled one resembles.
#[allow(clippy::result_large_err)]
fn in_section(error: rocket::figment::Error) -> rocket::figment::Error {
    let mut errors: Vec<_> = error.into_iter().collect();
    for e in &mut errors {
        e.path.insert(0, SECTION.to_string());
        if let Kind::UnknownField(field, expected) = &e.kind {
            if let Some(near) = nearest(field, expected.iter().copied()) {
                e.kind = Kind::Message(format!(
                    "unknown key `{field}`: did you mean `{near}`? (expected one of {})",
                    expected.join(", ")
                ));
            }
        }
    }
    // `into_iter` yields the newest first; chain them back in order.
    let mut errors = errors.into_iter().rev();
    let first = errors
        .next()
        .unwrap_or_else(|| "invalid [sessions] configuration".into());
    errors.fold(first, |chain, e| chain.chain(e))
}

/// The top-level keys of Rocket's configuration that look like a misspelt
/// `sessions` section (`session`, `sesions`, `Sessions`): such a section is
/// never read, and the app would silently run on the defaults.
pub(crate) fn misspelt_sections(figment: &Figment) -> Vec<String> {
    let Ok(top) = figment.extract::<Dict>() else {
        return Vec::new();
    };
    top.keys()
        .filter(|k| k.as_str() != SECTION && nearest(k, [SECTION]).is_some())
        .cloned()
        .collect()
}

/// Environment variables that look like a misspelt `ROCKET_SESSIONS_*`
/// (`ROCKET_SESION_TTL`, `ROCKET_SESSION_URL`), each with the name it
/// resembles: Rocket reads them as top-level keys nothing uses, so the app
/// would silently run on the defaults. `names` are the variables' names
/// (`std::env::vars()` at launch).
pub(crate) fn misspelt_env_vars(names: impl IntoIterator<Item = String>) -> Vec<(String, String)> {
    names
        .into_iter()
        .filter_map(|name| {
            let rest = name.strip_prefix("ROCKET_")?;
            let (head, tail) = rest.split_once('_').unwrap_or((rest, ""));
            if head.eq_ignore_ascii_case(SECTION) || nearest(head, [SECTION]).is_none() {
                return None;
            }
            let suggestion = if tail.is_empty() {
                "ROCKET_SESSIONS".to_string()
            } else {
                format!("ROCKET_SESSIONS_{tail}")
            };
            Some((name, suggestion))
        })
        .collect()
}

/// The candidate within two edits of `word` (case-insensitively), if any.
fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase().replace('-', "_");
    candidates
        .into_iter()
        .map(|c| (distance(&word, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use rocket::figment::providers::{Format, Toml};
    use rocket::figment::Figment;

    fn figment(toml: &str) -> Figment {
        Figment::from(Toml::string(toml).nested())
    }

    #[test]
    fn a_misspelt_key_names_its_section_and_the_key_it_resembles() {
        let err = super::extract(&figment("[default.sessions]\ncookie-name = \"sid\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sessions.cookie-name"), "{err}");
        assert!(err.contains("did you mean `cookie_name`?"), "{err}");
        let err = super::extract(&figment("[default.sessions]\ntll = 60"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `ttl`?"), "{err}");
    }

    #[test]
    fn a_misspelt_environment_variable_is_named_with_the_one_it_resembles() {
        let names = [
            "ROCKET_SESION_TTL",
            "ROCKET_SESSION_URL",
            "ROCKET_SESSIONS_TTL",
            "ROCKET_SESSIONS",
            "ROCKET_PORT",
            "ROCKET_SECRET_KEY",
            "PATH",
        ]
        .map(String::from);
        assert_eq!(
            super::misspelt_env_vars(names),
            [
                ("ROCKET_SESION_TTL".into(), "ROCKET_SESSIONS_TTL".into()),
                ("ROCKET_SESSION_URL".into(), "ROCKET_SESSIONS_URL".into()),
            ]
        );
    }

    #[test]
    fn enum_values_are_case_insensitive() {
        let config = super::extract(&figment(
            "[default.sessions]\nsame_site = \"Lax\"\non_decode_error = \"Error\"",
        ))
        .unwrap();
        assert_eq!(config.same_site, session_core::config::SameSite::Lax);
        assert_eq!(
            config.on_decode_error,
            session_core::config::OnDecodeError::Error
        );
        let err = super::extract(&figment("[default.sessions]\nsame_site = \"loose\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("strict") && err.contains("lax") && err.contains("none"),
            "{err}"
        );
    }

    #[test]
    fn sign_with_secret_key_derives_the_signing_key_from_rockets_secret() {
        let secret = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
        let config = super::extract(&figment(&format!(
            "[default]\nsecret_key = \"{secret}\"\n[default.sessions]\nsign_with_secret_key = true"
        )))
        .unwrap();
        assert_eq!(
            config.signing_keys,
            [session_core::signing::derive_signing_key(secret).unwrap()]
        );
        config.validate().unwrap();
        // Explicit keys win.
        let config = super::extract(&figment(&format!(
            "[default]\nsecret_key = \"{secret}\"\n[default.sessions]\nsign_with_secret_key = true\nsigning_keys = [\"{secret}\"]"
        )))
        .unwrap();
        assert_eq!(config.signing_keys.len(), 1);
        assert_ne!(
            config.signing_keys[0],
            session_core::signing::derive_signing_key(secret).unwrap()
        );
        let err = super::extract(&figment("[default.sessions]\nsign_with_secret_key = true"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs Rocket's `secret_key`"), "{err}");
    }

    #[test]
    fn the_cookie_store_seals_with_a_key_derived_from_rockets_secret() {
        let secret = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
        let config = super::extract(&figment(&format!(
            "[default]\nsecret_key = \"{secret}\"\n[default.sessions]\nurl = \"cookie\""
        )))
        .unwrap();
        let derived = session_core::sealing::derive_encryption_key(secret).unwrap();
        assert_eq!(config.encryption_keys, std::slice::from_ref(&derived));
        config.validate().unwrap();
        // Not the secret itself, nor the signing key of the same secret.
        assert_ne!(derived, session_core::sealing::EncryptionKey::new(secret));
        // Explicit keys win; other stores derive nothing.
        let config = super::extract(&figment(&format!(
            "[default]\nsecret_key = \"{secret}\"\n[default.sessions]\nurl = \"cookie\"\nencryption_keys = [\"{secret}\"]"
        )))
        .unwrap();
        assert_eq!(config.encryption_keys.len(), 1);
        assert_ne!(config.encryption_keys[0], derived);
        let config = super::extract(&figment(&format!(
            "[default]\nsecret_key = \"{secret}\"\n[default.sessions]\nurl = \"memory\""
        )))
        .unwrap();
        assert!(config.encryption_keys.is_empty());
        let err = super::extract(&figment("[default.sessions]\nurl = \"cookie\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("secret_key") && err.contains("encryption_keys"),
            "{err}"
        );
    }

    #[test]
    fn misspelt_sections_are_found() {
        let f = figment(
            "[default.session]\nttl = 60\n[default.sessions]\nttl = 61\n[default.limits]\nform = 1",
        );
        assert_eq!(super::misspelt_sections(&f.select("default")), ["session"]);
        let f = figment("[default.Sesions]\nttl = 60");
        assert_eq!(super::misspelt_sections(&f.select("default")), ["Sesions"]);
    }
}
