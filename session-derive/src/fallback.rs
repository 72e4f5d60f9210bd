//! What is emitted next to the errors when the input is rejected: the
//! handle with no fields and the trait impls, so every use of the session
//! type elsewhere still compiles and the user sees only the real errors
//! (thiserror `fallback.rs`).

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Container;
use crate::paths;

pub fn expand(cont: &Container, errors: syn::Error) -> TokenStream {
    let errors = errors.into_compile_error();
    // A generic or unnamed item cannot get a matching impl; the errors alone
    // have to do.
    if cont.is_generic() {
        return errors;
    }

    let ident = cont.ident;
    let vis = cont.vis;
    let handle = cont.handle();
    let root = &cont.attrs.root;
    let bind = paths::bind(root);
    let state_full = paths::full(root, "SessionState");
    let session_data = paths::session_data();
    let session_handle = paths::session_handle();
    let field_def = paths::field_def();
    let state = paths::session_state();
    let codec = match &cont.attrs.codec {
        Some(codec) => quote!(#codec),
        None => paths::json_codec(),
    };
    let option = paths::option();
    let std_result = paths::std_result();
    let vec = paths::vec();
    let box_error = paths::box_error();
    let deref = paths::deref();
    let deref_mut = paths::deref_mut();
    let session_info = paths::session_info();

    quote! {
        #errors

        #[allow(missing_docs, missing_debug_implementations)]
        #vis struct #handle {
            state: #state_full,
        }

        const _: () = {
            #bind

            impl #session_data for #ident {
                const FIELDS: &'static [#field_def] = &[];
                const DEFERRED: &'static [&'static str] = &[];
                type Codec = #codec;
                type Handle = #handle;
                type Listed = ();

                fn listed(_: &#session_info<Self>) {}
            }

            impl #session_handle for #handle {
                type Data = #ident;

                fn from_state(state: #state) -> Self {
                    #handle { state }
                }

                fn state(&self) -> &#state {
                    &self.state
                }

                fn state_mut(&mut self) -> &mut #state {
                    &mut self.state
                }

                fn encode_field(
                    &self,
                    _index: usize,
                ) -> #option<#std_result<#vec<u8>, #box_error>> {
                    #option::None
                }
            }

            impl #deref for #handle {
                type Target = #state;

                fn deref(&self) -> &#state {
                    &self.state
                }
            }

            impl #deref_mut for #handle {
                fn deref_mut(&mut self) -> &mut #state {
                    &mut self.state
                }
            }
        };
    }
}
