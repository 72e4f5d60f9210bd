//! Every path the generated code names, in one table (Rocket's
//! `core/codegen/src/exports.rs`).
//!
//! Inside the `const _: () = { … };` block the runtime is bound once as
//! `_session` ([`bind`]); everything there is `_session::…` or `::core::…`.
//! The handle type, which users name, sits outside the block and spells the
//! runtime out in full ([`full`]). Nothing names `std`, `serde` or a bare
//! `Option`/`Result`/`Vec`, which users may shadow.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// `use <root>::__private as _session;`, the first item of the block.
pub fn bind(root: &syn::Path) -> TokenStream {
    quote!(use #root::__private as _session;)
}

/// `<root>::__private::<item>`, for code outside the block.
pub fn full(root: &syn::Path, item: &str) -> TokenStream {
    let item = syn::Ident::new(item, Span::call_site());
    quote!(#root::__private::#item)
}

macro_rules! paths {
    ($($(#[$doc:meta])* $name:ident => { $($path:tt)* })*) => {
        $(
            $(#[$doc])*
            pub fn $name() -> TokenStream {
                quote!($($path)*)
            }
        )*
    };
}

macro_rules! spanned_paths {
    ($($(#[$doc:meta])* $name:ident => { $($path:tt)* })*) => {
        $(
            $(#[$doc])*
            pub fn $name(span: Span) -> TokenStream {
                quote_spanned!(span=> $($path)*)
            }
        )*
    };
}

paths! {
    /// The trait implemented for the struct.
    session_data => { _session::SessionData }
    /// The trait implemented for the handle.
    session_handle => { _session::SessionHandle }
    /// One entry of `SessionData::FIELDS`.
    field_def => { _session::FieldDef }
    /// An index field's `max_sessions`.
    session_limit => { _session::SessionLimit }
    /// What the schema lock records of a type.
    shapes => { _session::Shapes }
    /// A field's `from = …`.
    migration => { _session::Migration }
    /// The codec trait.
    codec_trait => { _session::Codec }
    /// A field's `ttl`.
    field_lifetime => { _session::FieldLifetime }
    /// The untyped per-request state.
    session_state => { _session::SessionState }
    /// One decoded field.
    slot => { _session::Slot }
    /// A session found through an indexed field.
    session_info => { _session::SessionInfo }
    /// A listed session's opaque id.
    session_id => { _session::SessionId }
    /// Encodes a value with a codec.
    storable_trait => { _session::Storable }
    /// The codec unless `codec = "…"`.
    json_codec => { _session::JsonCodec }
    /// `session_core::Result`, with the session error.
    result => { _session::Result }
    /// Turns the runtime's result into the root's error type (the web
    /// integration's own, so `?` reaches its framework's types).
    lift => { _session::lift }
    /// `core::result::Result`.
    std_result => { _session::StdResult }
    /// `core::option::Option`.
    option => { _session::Option }
    /// `std::vec::Vec`.
    vec => { _session::Vec }
    /// The boxed codec error.
    box_error => { _session::BoxError }
    /// `core::ops::Deref`.
    deref => { ::core::ops::Deref }
    /// `core::ops::DerefMut`.
    deref_mut => { ::core::ops::DerefMut }
    /// `core::fmt::Debug`.
    debug => { ::core::fmt::Debug }
    /// `core::fmt::Formatter`.
    formatter => { ::core::fmt::Formatter }
    /// `core::fmt::Result`.
    fmt_result => { ::core::fmt::Result }
}

spanned_paths! {
    /// `core::default::Default`, spanned at the field type.
    default => { _session::Default }
    /// The one bound on every field type (encodable, decodable, `Send +
    /// Sync`), whose diagnostic says what is missing in the crate's words.
    storable => { _session::Storable }
    /// One `from` step by `TryFrom`, spanned at the earlier type.
    convert => { _session::convert }
    /// One `from` step by a named function, spanned at its path.
    convert_with => { _session::convert_with }
}
