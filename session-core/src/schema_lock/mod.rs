//! The schema lock: a file committed with the app that records, for a
//! session type, each field's stored name and the shape of its values, so
//! a test fails **before the deploy** when a change would leave stored
//! sessions unreadable: a field's type changed shape without a `from` for
//! the old one, or a stored name vanished without an `alias` for it.
//!
//! ```no_run
//! # fn check<Shop: session_core::schema::SessionData>() {
//! // In a test of the app (`tests/sessions.rs`), for each session type:
//! session_core::schema_lock::assert_locked::<Shop>("sessions.lock");
//! # }
//! ```
//!
//! The first run writes the file; commit it. After a deliberate change
//! (a new field, a `from` added, a field dropped on purpose), rerun with
//! `SESSION_LOCK=update` and commit the diff: it is the record of what
//! sessions may hold.
//!
//! Shapes are traced from each type's `Deserialize` implementation (with
//! `serde-reflection`): field and variant names and the data model's
//! types, never Rust type names, so renaming a struct changes nothing and
//! renaming one of its fields does. A type whose deserializer asks the
//! format what comes next (`serde_json::Value`, untagged or internally
//! tagged enums, `flatten`) is recorded by its Rust type name instead. An
//! enum is recorded with every variant when it is the field's type or a
//! struct field's; inside a list, map or option, tracing reaches its first
//! variant only, so a change to its other variants is not caught.
//! Needs the `schema-lock` feature (a dev-dependency feature: it costs the
//! app's own build nothing).

#[cfg(feature = "schema-lock")]
mod check;

#[cfg(feature = "schema-lock")]
pub use check::{assert_locked, check, update, LockError};

use crate::codec::Storable;

/// The shapes of a session type's field types and of their earlier types,
/// filled by the code `#[derive(Session)]` generates
/// ([`SessionData::describe`](crate::schema::SessionData::describe)).
/// Without the `schema-lock` feature it records nothing.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Shapes {
    #[cfg(feature = "schema-lock")]
    fields: Vec<FieldShapes>,
}

/// One field's shape and its earlier types' (`from`), oldest first.
#[cfg(feature = "schema-lock")]
#[derive(Debug)]
struct FieldShapes {
    shape: String,
    from: Vec<String>,
}

impl Shapes {
    /// The next field's type (bound by [`Storable`], as every field type
    /// is, so a type that falls short is reported once, at the field).
    #[inline]
    pub fn field<T: Storable>(&mut self) {
        #[cfg(feature = "schema-lock")]
        self.fields.push(FieldShapes {
            shape: T::shape(),
            from: Vec::new(),
        });
    }

    /// One earlier type of the field named last.
    #[inline]
    pub fn from<T: serde::de::DeserializeOwned>(&mut self) {
        #[cfg(feature = "schema-lock")]
        if let Some(field) = self.fields.last_mut() {
            field.from.push(crate::codec::shape_of::<T>());
        }
    }
}
