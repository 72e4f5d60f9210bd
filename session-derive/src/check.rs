//! Checks that need the whole model: stored names, and the method names the
//! accessors would take. Checks of a single attribute live in `attr.rs`.

use std::collections::BTreeMap;

use crate::ast::{Container, Field};
use crate::ctxt::Ctxt;

/// The longest stored name a store must accept.
const MAX_NAME_LEN: usize = 64;

/// Session methods reachable on the handle through `Deref`, which a
/// generated accessor of the same name would hide. `save` is reserved for
/// the runtime.
const SESSION_METHODS: &[&str] = &[
    "id",
    "is_new",
    "regenerate",
    "set_expiry",
    "destroy",
    "is_destroyed",
    "save",
    "expire_on_close",
    "clear",
    "start_over",
    "fields_mut",
];

pub fn check(cx: &Ctxt, cont: &Container) {
    check_stored_names(cx, &cont.fields);
    check_borrowed_types(cx, &cont.fields);
    check_reserved_names(cx, &cont.fields);
    check_versioned(cx, &cont.fields);
    check_flash(cx, &cont.fields);
    check_lifetimes(cx, &cont.fields);
    check_aliases(cx, &cont.fields);
    check_migrations(cx, &cont.fields);
    check_limits(cx, &cont.fields);
    check_accessor_collisions(cx, &cont.fields);
}

fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// An alias is an old stored name: valid as a name, taken by no field nor
/// other alias; read with the session's one load (not `deferred`).
fn check_aliases(cx: &Ctxt, fields: &[Field]) {
    let mut seen: BTreeMap<String, &Field> = fields.iter().map(|f| (f.name.clone(), f)).collect();
    for field in fields {
        for alias in &field.attrs.aliases {
            let name = alias.value();
            if !is_valid_name(&name) {
                cx.error_spanned_by(
                    alias,
                    format!(
                        "invalid alias `{}`: expected 1 to {MAX_NAME_LEN} ASCII letters, digits, `_`, `-` or `.`",
                        name.escape_debug()
                    ),
                );
            } else if let Some(other) = seen.get(&name) {
                cx.error_spanned_by(
                    alias,
                    format!(
                        "alias `{name}` of field `{}` is already the stored name or an alias of field `{}`",
                        field.base, other.base
                    ),
                );
            } else {
                seen.insert(name, field);
            }
        }
        if let Some(alias) = field.attrs.aliases.first() {
            let reason = if field.attrs.deferred {
                Some("`deferred`: an alias is read with the session's one load; drop `deferred`")
            } else {
                None
            };
            if let Some(reason) = reason {
                cx.error_spanned_by(
                    alias,
                    format!(
                        "field `{}` cannot have an `alias` and be {reason}",
                        field.base
                    ),
                );
            }
        }
    }
}

/// `rewrite_on_read` needs an earlier type, and cannot be on a versioned
/// field (a read would end in a compare-and-set that can fail); an indexed
/// field's earlier values are found under their old encoding, so it needs
/// `rewrite_on_read` to move them.
fn check_migrations(cx: &Ctxt, fields: &[Field]) {
    for field in fields {
        let base = &field.base;
        if let Some(path) = &field.attrs.rewrite_on_read {
            if field.attrs.from.is_empty() {
                cx.error_spanned_by(
                    path,
                    format!("`rewrite_on_read` on field `{base}` needs an earlier type: add `from = OldType`"),
                );
            } else if field.attrs.versioned.is_some() || field.is_flash() {
                cx.error_spanned_by(
                    path,
                    format!(
                        "field `{base}` cannot be written back on read: it is written only by compare-and-set, \
                         so a read could fail with a conflict; its next write converts it, drop `rewrite_on_read`"
                    ),
                );
            }
        }
        if let (true, Some(first)) = (field.attrs.index, field.attrs.from.first()) {
            if field.attrs.versioned.is_some() {
                cx.error_spanned_by(
                    &first.ty,
                    format!(
                        "field `{base}` cannot take `from` and be both `index` and `versioned`: \
                         sessions holding an earlier type are found only once rewritten"
                    ),
                );
            } else if field.attrs.rewrite_on_read.is_none() {
                cx.error_spanned_by(
                    &first.ty,
                    format!(
                        "indexed field `{base}` with `from` needs `rewrite_on_read`: a session is found by \
                         its new value only once the value is stored in the new type"
                    ),
                );
            }
        }
    }
}

/// Stored names are 1 to 64 of `[A-Za-z0-9_.-]`, and unique after `rename`.
fn check_stored_names(cx: &Ctxt, fields: &[Field]) {
    let mut seen: BTreeMap<&str, &Field> = BTreeMap::new();
    for field in fields {
        if !is_valid_name(&field.name) {
            cx.error_spanned_by(
                field.name_tokens(false),
                format!(
                    "invalid stored name `{}`: expected 1 to {MAX_NAME_LEN} ASCII letters, digits, `_`, `-` or `.`",
                    field.name.escape_debug()
                ),
            );
        }
        if let Some(first) = seen.get(field.name.as_str()) {
            cx.error_spanned_by(
                field.name_tokens(true),
                format!(
                    "duplicate stored name `{}`: field `{}` is already stored under it",
                    field.name.escape_debug(),
                    first.base
                ),
            );
        } else {
            seen.insert(&field.name, field);
        }
    }
}

/// No accessor may hide a method of the session state.
fn check_reserved_names(cx: &Ctxt, fields: &[Field]) {
    for field in fields {
        for accessor in field.methods() {
            let accessor = accessor.to_string();
            let accessor = accessor.trim_start_matches("r#");
            if SESSION_METHODS.contains(&accessor) {
                cx.error_spanned_by(
                    field.ident,
                    format!(
                        "field name `{base}` is reserved: its accessor `{accessor}()` would hide the session method `{accessor}()`; rename the field and keep the stored name with `#[session(rename = \"{name}\")]`",
                        base = field.base,
                        name = field.name,
                    ),
                );
            }
        }
    }
}

/// A versioned field's version comes with the session's one load; a
/// deferred field has a load of its own, which carries no version.
/// `max_sessions` limits the sessions of one value of an index: it needs
/// `index`; `when_full` says what the limit does, so it needs
/// `max_sessions`.
fn check_limits(cx: &Ctxt, fields: &[Field]) {
    for field in fields {
        if let (Some((path, _)), false) = (&field.attrs.max_sessions, field.attrs.index) {
            cx.error_spanned_by(
                path,
                format!(
                    "`max_sessions` on field `{}` limits the sessions of one value of an index: \
                     add `index`",
                    field.base
                ),
            );
        }
        if let (Some((path, _)), None) = (&field.attrs.when_full, &field.attrs.max_sessions) {
            cx.error_spanned_by(
                path,
                format!(
                    "`when_full` on field `{}` says what `max_sessions` does: add `max_sessions = N`",
                    field.base
                ),
            );
        }
    }
}

fn check_versioned(cx: &Ctxt, fields: &[Field]) {
    for field in fields {
        if let (Some(path), true) = (&field.attrs.versioned, field.attrs.deferred) {
            cx.error_spanned_by(
                path,
                format!(
                    "field `{}` cannot be both `versioned` and `deferred`: a versioned field is \
                     loaded with the session, where its version is read; drop `deferred`",
                    field.base
                ),
            );
        }
    }
}

/// A flash field is taken by compare-and-set of its version (so of two
/// requests taking it, one gets it): it is versioned already, loaded with
/// the session for its version, and a message is no index.
fn check_flash(cx: &Ctxt, fields: &[Field]) {
    for field in fields {
        let Some(path) = &field.attrs.flash else {
            continue;
        };
        let base = &field.base;
        if field.attrs.versioned.is_some() {
            cx.error_spanned_by(
                path,
                format!(
                    "field `{base}` cannot be both `flash` and `versioned`: a flash field is \
                     already taken by compare-and-set of its version; drop `versioned`"
                ),
            );
        }
        if field.attrs.deferred {
            cx.error_spanned_by(
                path,
                format!(
                    "field `{base}` cannot be both `flash` and `deferred`: a flash field is \
                     loaded with the session, where its version is read; drop `deferred`"
                ),
            );
        }
        if field.attrs.index {
            cx.error_spanned_by(
                path,
                format!(
                    "field `{base}` cannot be both `flash` and `index`: a message read once \
                     is not something to find sessions by; drop one"
                ),
            );
        }
    }
}

/// A field's lifetime is read with the session's one load (a deferred
/// field's own query does not carry it); an index entry would outlive the
/// value; `sliding` says how `ttl` counts.
fn check_lifetimes(cx: &Ctxt, fields: &[Field]) {
    for field in fields {
        let base = &field.base;
        if let (Some(path), None) = (&field.attrs.sliding, &field.attrs.ttl) {
            cx.error_spanned_by(
                path,
                format!("`sliding` on field `{base}` says how `ttl` counts: add `ttl = \"…\"`"),
            );
        }
        let Some((path, _)) = &field.attrs.ttl else {
            continue;
        };
        if field.attrs.deferred {
            cx.error_spanned_by(
                path,
                format!(
                    "field `{base}` cannot be both `ttl` and `deferred`: its lifetime is read \
                     with the session's one load; drop `deferred`"
                ),
            );
        }
        if field.attrs.index {
            cx.error_spanned_by(
                path,
                format!(
                    "field `{base}` cannot be both `ttl` and `index`: its index entry would \
                     outlive the value; drop one"
                ),
            );
        }
    }
}

/// A field cannot borrow: its value is decoded from stored bytes, which a
/// `&'static str` cannot point into. Said here, in one error, rather than
/// as serde's "implementation of `Deserialize` is not general enough".
fn check_borrowed_types(cx: &Ctxt, fields: &[Field]) {
    for field in fields {
        if let syn::Type::Reference(reference) = field.ty {
            let owned = match &*reference.elem {
                syn::Type::Path(p) if p.path.is_ident("str") => "String".to_string(),
                syn::Type::Slice(slice) => {
                    format!("Vec<{}>", quote::ToTokens::to_token_stream(&slice.elem))
                }
                other => quote::ToTokens::to_token_stream(other).to_string(),
            };
            cx.error_spanned_by(
                field.ty,
                format!(
                    "a session field cannot hold a reference: its value is decoded from stored bytes \
                     that it cannot borrow from; store an owned `{owned}` instead"
                ),
            );
        }
    }
}

/// Two fields may not generate the same method (`a` and `a_mut` both give
/// `a_mut()`).
fn check_accessor_collisions(cx: &Ctxt, fields: &[Field]) {
    let mut taken: BTreeMap<String, &Field> = BTreeMap::new();
    for field in fields {
        for accessor in field.methods() {
            let accessor = accessor.to_string().trim_start_matches("r#").to_owned();
            if let Some(first) = taken.get(&accessor) {
                cx.error_spanned_by(
                    field.ident,
                    format!(
                        "field `{}` would generate the method `{accessor}()`, which field `{}` already generates; rename one of them (the stored name can stay with `#[session(rename = \"…\")]`)",
                        field.base, first.base
                    ),
                );
            } else {
                taken.insert(accessor, field);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::{parse_quote, DeriveInput};

    use super::*;

    fn errors(item: DeriveInput) -> Vec<String> {
        let cx = Ctxt::new();
        let cont = Container::from_ast(&cx, &item);
        check(&cx, &cont);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn names() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("user.id-2_x"));
        assert!(is_valid_name(&"a".repeat(64)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"a".repeat(65)));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("café"));
    }

    #[test]
    fn duplicate_stored_name() {
        let errs = errors(parse_quote! {
            struct S { a: u32, #[session(rename = "a")] b: u32 }
        });
        assert_eq!(
            errs,
            ["duplicate stored name `a`: field `a` is already stored under it"]
        );
    }

    #[test]
    fn reserved_and_colliding() {
        let errs = errors(parse_quote! {
            struct S { id: u32, expiry: u32, cart: u32, cart_mut: u32, #[session(rename = "id2")] session_id: u32 }
        });
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("field name `id` is reserved: its accessor `id()`"));
        assert!(errs[1].contains("`set_expiry()`"));
        assert!(errs[2].starts_with("field `cart_mut` would generate the method `cart_mut()`"));
    }

    #[test]
    fn invalid_renamed_name() {
        let errs = errors(parse_quote! {
            struct S { #[session(rename = "")] a: u32, #[session(rename = "a\"b")] b: u32 }
        });
        assert_eq!(errs.len(), 2);
        assert!(errs[0].starts_with("invalid stored name ``"));
        assert!(errs[1].starts_with("invalid stored name `a\\\"b`"));
    }
}
