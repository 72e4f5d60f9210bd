//! The lock file: written from a session type, read back and compared.
//!
//! One line per fact, so a change shows as a one-line diff:
//!
//! ```text
//! field items 3be1f0c2a5d9e874 seq<{ name: str, qty: u32 }>
//!   alias cart
//!   from 8f2c0e7c1b5a9d30 seq<str>
//! ```
//!
//! The fingerprint (the first 16 hex digits of the shape's SHA-256) is what
//! is compared; the shape follows it for the reader.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Shapes;
use crate::schema::SessionData;

/// The environment variable that makes [`assert_locked`] and [`check`]
/// write the lock instead of comparing: `SESSION_LOCK=update`.
const UPDATE_VAR: &str = "SESSION_LOCK";

/// Why a session type does not match its lock: every problem found, each
/// naming the stored field and the attribute that fixes it, or the lock
/// could not be read or written.
#[derive(Debug)]
pub struct LockError {
    path: PathBuf,
    problems: Vec<String>,
}

impl LockError {
    /// Each problem, in words.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the session schema lock {} does not match:",
            self.path.display()
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        write!(
            f,
            "Rerun with {UPDATE_VAR}=update to record the type as it is now, once stored \
             sessions can no longer hold what the lock says, or the change is deliberate."
        )
    }
}

impl std::error::Error for LockError {}

/// Checks session type `D` against the lock at `path` (relative paths from
/// the current directory: a package's root under `cargo test`) and panics
/// with every problem, each naming the field and the fix. Writes the lock
/// when it does not exist yet, or with `SESSION_LOCK=update`.
///
/// # Panics
/// When [`check`] fails.
#[track_caller]
pub fn assert_locked<D: SessionData>(path: impl AsRef<Path>) {
    if let Err(error) = check::<D>(path) {
        panic!("{error}");
    }
}

/// Checks session type `D` against the lock at `path`, as
/// [`assert_locked`] does, returning the problems instead of panicking.
///
/// # Errors
/// A field whose stored values' shape changed with no `from` for it; a
/// stored name, old name or earlier type no field reads any more; a lock
/// that is out of date (a new field, a new `from`); a lock that cannot be
/// read or written.
pub fn check<D: SessionData>(path: impl AsRef<Path>) -> Result<(), LockError> {
    let path = path.as_ref();
    let update_asked = std::env::var(UPDATE_VAR).is_ok_and(|v| v == "update");
    if update_asked || !path.exists() {
        return update::<D>(path);
    }
    let error = |problems| LockError {
        path: path.to_owned(),
        problems,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(vec![format!("cannot read the lock: {e}")]))?;
    let locked = parse(&text).map_err(|p| error(vec![p]))?;
    let current = fields::<D>().map_err(|p| error(vec![p]))?;
    let problems = compare(&locked, &current);
    if !problems.is_empty() {
        return Err(error(problems));
    }
    // A checkout may have turned the lock's line ends into CRLF.
    if render::<D>(&current) != text.replace("\r\n", "\n") {
        return Err(error(vec![format!(
            "the lock is out of date ({}): it must record every field and earlier type \
             the app reads, or the next change to them is not checked",
            additions(&locked, &current).join("; ")
        )]));
    }
    Ok(())
}

/// Writes the lock for session type `D` at `path`, replacing any.
///
/// # Errors
/// The file cannot be written; `D` does not describe its fields (a
/// `SessionData` implemented by hand rather than derived).
pub fn update<D: SessionData>(path: impl AsRef<Path>) -> Result<(), LockError> {
    let path = path.as_ref();
    let error = |problem| LockError {
        path: path.to_owned(),
        problems: vec![problem],
    };
    let text = render::<D>(&fields::<D>().map_err(error)?);
    std::fs::write(path, text).map_err(|e| error(format!("cannot write the lock: {e}")))
}

/// One field as the lock records it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    name: String,
    aliases: Vec<String>,
    shape: Shape,
    from: Vec<Shape>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    fingerprint: String,
    text: String,
}

impl Shape {
    fn new(text: String) -> Self {
        let digest = Sha256::digest(text.as_bytes());
        let fingerprint = digest[..8].iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        Shape { fingerprint, text }
    }
}

/// `D`'s fields as they are now.
/// `D`'s fields as they are now; a problem when `D` does not describe
/// them (a `SessionData` implemented by hand).
fn fields<D: SessionData>() -> Result<Vec<Field>, String> {
    let mut shapes = Shapes::default();
    D::describe(&mut shapes);
    if shapes.fields.len() != D::FIELDS.len() {
        return Err(format!(
            "`{}` describes {} of its {} fields' types: only `#[derive(Session)]` types \
             can be locked",
            std::any::type_name::<D>(),
            shapes.fields.len(),
            D::FIELDS.len()
        ));
    }
    Ok(D::FIELDS
        .iter()
        .zip(shapes.fields)
        .map(|(def, shapes)| Field {
            name: def.name.to_owned(),
            aliases: def.aliases.iter().map(|&a| a.to_owned()).collect(),
            shape: Shape::new(shapes.shape),
            from: shapes.from.into_iter().map(Shape::new).collect(),
        })
        .collect())
}

fn render<D>(fields: &[Field]) -> String {
    let name = std::any::type_name::<D>();
    let name = name.rsplit("::").next().unwrap_or(name);
    let mut out = format!(
        "# Session schema lock of `{name}`: each field's stored name and the shape of its\n\
         # values, checked by `schema_lock::assert_locked` in a test. Rerun that test\n\
         # with {UPDATE_VAR}=update after a deliberate change, and commit the diff.\n"
    );
    for field in fields {
        let _ = writeln!(
            out,
            "field {} {} {}",
            field.name, field.shape.fingerprint, field.shape.text
        );
        for alias in &field.aliases {
            let _ = writeln!(out, "  alias {alias}");
        }
        for from in &field.from {
            let _ = writeln!(out, "  from {} {}", from.fingerprint, from.text);
        }
    }
    out
}

fn parse(text: &str) -> Result<Vec<Field>, String> {
    let mut fields: Vec<Field> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let bad = || {
            format!(
                "line {} of the lock is not one it writes: {line:?}",
                number + 1
            )
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut words = trimmed.splitn(4, ' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("field"), Some(name), Some(fingerprint), text) => fields.push(Field {
                name: name.to_owned(),
                aliases: Vec::new(),
                shape: Shape {
                    fingerprint: fingerprint.to_owned(),
                    text: text.unwrap_or_default().to_owned(),
                },
                from: Vec::new(),
            }),
            (Some("alias"), Some(alias), None, None) => {
                fields
                    .last_mut()
                    .ok_or_else(bad)?
                    .aliases
                    .push(alias.to_owned());
            }
            (Some("from"), Some(fingerprint), first, rest) => {
                let text = [first, rest]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                fields.last_mut().ok_or_else(bad)?.from.push(Shape {
                    fingerprint: fingerprint.to_owned(),
                    text,
                });
            }
            _ => return Err(bad()),
        }
    }
    Ok(fields)
}

/// What in `locked` the `current` type can no longer read, each with its
/// fix.
fn compare(locked: &[Field], current: &[Field]) -> Vec<String> {
    let mut problems = Vec::new();
    let reader = |name: &str| {
        current
            .iter()
            .find(|f| f.name == name || f.aliases.iter().any(|a| a == name))
    };
    for old in locked {
        let Some(field) = reader(&old.name) else {
            problems.push(format!(
                "no field reads the values stored as `{}` any more ({}): if a field was renamed, \
                 add `#[session(alias = \"{}\")]` to it; if the field was dropped on purpose, \
                 update the lock (the bytes stay unread until each session ends)",
                old.name, old.shape.text, old.name
            ));
            continue;
        };
        for alias in &old.aliases {
            if reader(alias).is_none() {
                problems.push(format!(
                    "field `{}` no longer reads its old name `{alias}`, which sessions stored \
                     before may still hold: keep `#[session(alias = \"{alias}\")]`, or update \
                     the lock once every such session has ended (`max_lifetime`)",
                    field.name
                ));
            }
        }
        let reads = |shape: &Shape| {
            field.shape.fingerprint == shape.fingerprint
                || field
                    .from
                    .iter()
                    .any(|f| f.fingerprint == shape.fingerprint)
        };
        if !reads(&old.shape) {
            let stored = if field.name == old.name {
                format!("`{}`", field.name)
            } else {
                format!("`{}` (stored as `{}`)", field.name, old.name)
            };
            problems.push(format!(
                "field {stored} changed type: stored values are `{}`, the field now reads `{}`. \
                 Add `#[session(from = OldType)]` naming the type it had (with \
                 `impl From<OldType> for NewType`, or `from(OldType, with = function)`), so \
                 stored values are converted instead of falling back to the default",
                old.shape.text, field.shape.text
            ));
        }
        for from in &old.from {
            if !reads(from) {
                problems.push(format!(
                    "field `{}` no longer converts from `{}`, which sessions stored before may \
                     still hold: keep that `from`, or update the lock once every such session \
                     has ended (`max_lifetime`)",
                    field.name, from.text
                ));
            }
        }
    }
    problems
}

/// What `current` has that `locked` does not record.
fn additions(locked: &[Field], current: &[Field]) -> Vec<String> {
    let mut added = Vec::new();
    for field in current {
        match locked.iter().find(|f| f.name == field.name) {
            None => added.push(format!("new field `{}`", field.name)),
            Some(old) if old != field => added.push(format!("field `{}` changed", field.name)),
            Some(_) => {}
        }
    }
    if added.is_empty() {
        added.push("fields renamed or dropped".to_owned());
    }
    added
}
