//! The model the expansion reads: the struct, its fields and their parsed
//! attributes, each with a reference back to the syn node for spans.

use proc_macro2::TokenStream;
use quote::{format_ident, ToTokens};
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Ident, Type, Visibility};

use crate::attr;
use crate::ctxt::Ctxt;

const UNSUPPORTED_SHAPE: &str = "`#[derive(Session)]` only supports structs with named fields";
const GENERIC: &str = "generic session types are not supported";

/// The struct `#[derive(Session)]` is applied to.
pub struct Container<'a> {
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub attrs: attr::Container,
    /// Empty when the shape is unsupported (the error is already reported).
    pub fields: Vec<Field<'a>>,
    pub original: &'a DeriveInput,
}

/// One named field.
pub struct Field<'a> {
    /// The identifier as written, possibly raw (`r#type`).
    pub ident: &'a Ident,
    /// The identifier without `r#`: the base of the accessor names.
    pub base: String,
    /// The stored name: `rename`, or `base`.
    pub name: String,
    pub vis: &'a Visibility,
    pub ty: &'a Type,
    pub attrs: attr::Field,
    pub original: &'a syn::Field,
}

impl<'a> Container<'a> {
    pub fn from_ast(cx: &Ctxt, item: &'a DeriveInput) -> Container<'a> {
        let attrs = attr::Container::from_ast(cx, &item.attrs);

        let generics = &item.generics;
        if !generics.params.is_empty() {
            cx.error_spanned_by(generics, GENERIC);
        } else if let Some(where_clause) = &generics.where_clause {
            cx.error_spanned_by(where_clause, GENERIC);
        }

        let fields = match &item.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => fields
                    .named
                    .iter()
                    .map(|field| Field::from_ast(cx, field))
                    .collect(),
                Fields::Unnamed(fields) => {
                    cx.error_spanned_by(fields, UNSUPPORTED_SHAPE);
                    Vec::new()
                }
                Fields::Unit => {
                    cx.error_spanned_by(&item.ident, UNSUPPORTED_SHAPE);
                    Vec::new()
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(data.enum_token, UNSUPPORTED_SHAPE);
                Vec::new()
            }
            Data::Union(data) => {
                cx.error_spanned_by(data.union_token, UNSUPPORTED_SHAPE);
                Vec::new()
            }
        };

        Container {
            ident: &item.ident,
            vis: &item.vis,
            attrs,
            fields,
            original: item,
        }
    }

    /// Whether the item has generics (reported; no impl can match it).
    pub fn is_generic(&self) -> bool {
        let generics = &self.original.generics;
        !generics.params.is_empty() || generics.where_clause.is_some()
    }

    /// The generated handle type: `handle = "…"` or `{Ident}Session`.
    pub fn handle(&self) -> Ident {
        match &self.attrs.handle {
            Some(handle) => handle.clone(),
            None => format_ident!("{}Session", self.ident.unraw(), span = self.ident.span()),
        }
    }
}

impl<'a> Field<'a> {
    fn from_ast(cx: &Ctxt, field: &'a syn::Field) -> Field<'a> {
        let attrs = attr::Field::from_ast(cx, &field.attrs);
        let ident = field
            .ident
            .as_ref()
            .expect("named fields always have an identifier");
        let base = ident.unraw().to_string();
        let name = match &attrs.rename {
            Some(lit) => lit.value(),
            None => base.clone(),
        };
        Field {
            ident,
            base,
            name,
            vis: &field.vis,
            ty: &field.ty,
            attrs,
            original: field,
        }
    }

    /// Where an error about the stored name points: the `rename` value, or
    /// else the identifier (`whole_field` widens that to the field).
    pub fn name_tokens(&self, whole_field: bool) -> TokenStream {
        match &self.attrs.rename {
            Some(lit) => lit.to_token_stream(),
            None if whole_field => self.original.to_token_stream(),
            None => self.ident.to_token_stream(),
        }
    }

    /// The four accessor names, in the order they are generated.
    pub fn accessors(&self) -> [Ident; 4] {
        let span = self.ident.span();
        [
            self.ident.clone(),
            format_ident!("{}_mut", self.base, span = span),
            format_ident!("set_{}", self.base, span = span),
            format_ident!("remove_{}", self.base, span = span),
        ]
    }

    /// `update_x()`, generated for a `versioned` field.
    pub fn update_accessor(&self) -> Option<Ident> {
        self.attrs
            .versioned
            .as_ref()
            .map(|_| format_ident!("update_{}", self.base, span = self.ident.span()))
    }

    /// `sessions_by_x()`, `destroy_sessions_by_x()`,
    /// `destroy_other_sessions_by_x()` and `destroy_session_by_x()`,
    /// generated for an `index` field.
    pub fn index_accessors(&self) -> Option<[Ident; 4]> {
        let span = self.ident.span();
        self.attrs.index.then(|| {
            [
                format_ident!("sessions_by_{}", self.base, span = span),
                format_ident!("destroy_sessions_by_{}", self.base, span = span),
                format_ident!("destroy_other_sessions_by_{}", self.base, span = span),
                format_ident!("destroy_session_by_{}", self.base, span = span),
            ]
        })
    }

    /// `take_x()`, generated for a `flash` field (in place of `x()` and
    /// `x_mut()`: reading a flash value takes it).
    pub fn take_accessor(&self) -> Option<Ident> {
        self.attrs
            .flash
            .as_ref()
            .map(|_| format_ident!("take_{}", self.base, span = self.ident.span()))
    }

    /// Whether the field is a `flash` one.
    pub fn is_flash(&self) -> bool {
        self.attrs.flash.is_some()
    }

    /// Every method the field generates.
    pub fn methods(&self) -> impl Iterator<Item = Ident> {
        let [get, get_mut, set, remove] = self.accessors();
        let reads = (!self.is_flash()).then_some([get, get_mut]);
        reads
            .into_iter()
            .flatten()
            .chain([set, remove])
            .chain(self.take_accessor())
            .chain(self.update_accessor())
            .chain(self.index_accessors().into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn tokens(t: impl ToTokens) -> String {
        t.to_token_stream().to_string()
    }

    fn errors(item: &DeriveInput) -> Vec<String> {
        let cx = Ctxt::new();
        let _ = Container::from_ast(&cx, item);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn fields_and_attributes() {
        let item: DeriveInput = parse_quote! {
            #[session(crate = "session_core", codec = "my::Codec", handle = "Handle")]
            pub struct Shop {
                pub user_id: Option<u64>,
                #[session(deferred)] history: Vec<String>,
                #[session(rename = "lang")] locale: String,
                #[session(default = "default_theme")] r#type: String,
            }
        };
        let cx = Ctxt::new();
        let cont = Container::from_ast(&cx, &item);
        cx.check().unwrap();
        assert_eq!(cont.handle(), "Handle");
        assert_eq!(tokens(&cont.attrs.root), "session_core");
        assert_eq!(tokens(&cont.attrs.codec), "my :: Codec");
        let names: Vec<_> = cont.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["user_id", "history", "lang", "type"]);
        let deferred: Vec<_> = cont.fields.iter().map(|f| f.attrs.deferred).collect();
        assert_eq!(deferred, [false, true, false, false]);
        let ty = &cont.fields[3];
        assert_eq!(tokens(&ty.attrs.default), "default_theme");
        let accessors = ty.accessors().map(|i| i.to_string());
        assert_eq!(accessors, ["r#type", "type_mut", "set_type", "remove_type"]);
    }

    #[test]
    fn defaults() {
        let item: DeriveInput = parse_quote!(
            struct Shop {
                a: u32,
            }
        );
        let cx = Ctxt::new();
        let cont = Container::from_ast(&cx, &item);
        cx.check().unwrap();
        assert_eq!(cont.handle(), "ShopSession");
        assert_eq!(tokens(&cont.attrs.root), ":: session_rocket");
        assert!(cont.attrs.codec.is_none());
        assert!(cont.fields[0].attrs.rename.is_none());
        assert!(cont.fields[0].attrs.default.is_none());
    }

    #[test]
    fn unsupported_shapes() {
        for item in [
            parse_quote!(
                enum E {
                    A,
                }
            ),
            parse_quote!(union U { a: u32 }),
            parse_quote!(
                struct T(u32);
            ),
            parse_quote!(
                struct U;
            ),
        ] {
            assert_eq!(errors(&item), [UNSUPPORTED_SHAPE]);
        }
        assert_eq!(
            errors(&parse_quote!(
                struct G<T> {
                    a: T,
                }
            )),
            [GENERIC]
        );
        assert_eq!(
            errors(&parse_quote!(
                struct L<'a> {
                    a: &'a str,
                }
            )),
            [GENERIC]
        );
    }

    #[test]
    fn every_attribute_error_is_reported() {
        let item: DeriveInput = parse_quote! {
            #[session(crate = 1, nope, handle = "not an ident")]
            #[session(codec = "a::B", codec = "c::D")]
            struct Shop {
                #[session(rename = "a", rename = "b", deferred = true, unknown = "x", default)]
                a: u32,
                #[session]
                b: u32,
                #[session(default = "not a path!")]
                c: u32,
            }
        };
        assert_eq!(
            errors(&item),
            [
                "expected `#[session(crate = \"path::to::runtime\")]`",
                "unknown session attribute `nope`; expected one of `crate`, `codec`, `handle`",
                "expected `#[session(handle = \"Name\")]`",
                "duplicate session attribute `codec`",
                "duplicate session attribute `rename`",
                "expected `#[session(deferred)]`",
                "unknown session attribute `unknown`; expected one of `rename`, `deferred`, `versioned`, `index`, `max_sessions`, `when_full`, `default`, `flash`, `ttl`, `sliding`, `alias`, `from`, `rewrite_on_read`",
                "expected `#[session(default = \"path::to::function\")]`",
                "expected `#[session(…)]` with a list of attributes",
                "expected `#[session(default = \"path::to::function\")]`",
            ]
        );
    }

    #[test]
    fn other_attributes_are_ignored() {
        let item: DeriveInput = parse_quote! {
            #[derive(Debug)]
            #[serde(rename = "x")]
            struct Shop { #[doc = "a"] #[session()] a: u32 }
        };
        assert!(errors(&item).is_empty());
    }
}
