//! Implementation detail of `session-rocket`: the `#[derive(Session)]` macro.
//! Do not depend on this crate directly; depend on `session-rocket`.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod fallback;
mod paths;
mod symbol;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives a typed session; see `session_rocket::Session` for the reference.
#[proc_macro_derive(Session, attributes(session))]
pub fn derive_session(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
