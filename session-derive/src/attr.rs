//! `#[session(…)]` parsing: one typed slot per option, filled by a single
//! `parse_nested_meta` pass (serde `internals/attr.rs`).
//!
//! Nothing here returns `Result`: every problem goes to the [`Ctxt`] and
//! parsing continues, so one compile shows every bad attribute.

use proc_macro2::TokenTree;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{parse_quote, Expr, ExprLit, Lit, LitStr, Token};

use crate::ctxt::Ctxt;
use crate::symbol::{
    Symbol, ALIAS, CODEC, CONTAINER_KEYS, CRATE, DEFAULT, DEFERRED, FIELD_KEYS, FLASH, FROM,
    HANDLE, INDEX, MAX_SESSIONS, RENAME, REWRITE_ON_READ, SESSION, SLIDING, TTL, VERSIONED,
    WHEN_FULL, WITH,
};

const UNKNOWN: &str = "unknown session attribute";
const DUPLICATE: &str = "duplicate session attribute";
const EXPECTED_LIST: &str = "expected `#[session(…)]` with a list of attributes";
const EXPECTED_CRATE: &str = "expected `#[session(crate = \"path::to::runtime\")]`";
const EXPECTED_CODEC: &str = "expected `#[session(codec = \"path::to::Codec\")]`";
const EXPECTED_HANDLE: &str = "expected `#[session(handle = \"Name\")]`";
const EXPECTED_RENAME: &str = "expected `#[session(rename = \"name\")]`";
const EXPECTED_DEFERRED: &str = "expected `#[session(deferred)]`";
const EXPECTED_VERSIONED: &str = "expected `#[session(versioned)]`";
const EXPECTED_INDEX: &str = "expected `#[session(index)]`";
const EXPECTED_FLASH: &str = "expected `#[session(flash)]`";
const EXPECTED_ALIAS: &str = "expected `#[session(alias = \"old_name\")]`";
const EXPECTED_FROM: &str = "expected `#[session(from = OldType)]` or \
     `#[session(from(OldType, with = path::to::function))]`";
const EXPECTED_REWRITE_ON_READ: &str = "expected `#[session(from = OldType, rewrite_on_read)]`";
const EXPECTED_SLIDING: &str = "expected `#[session(ttl = \"…\", sliding)]`";
const EXPECTED_TTL: &str =
    "expected `#[session(ttl = \"10m\")]` (a whole number of `s`, `m`, `h` or `d`) \
     or `#[session(ttl = 600)]` (seconds), at least one second";
const EXPECTED_DEFAULT: &str = "expected `#[session(default = \"path::to::function\")]`";
const EXPECTED_MAX_SESSIONS: &str =
    "expected `#[session(index, max_sessions = N)]` with N a whole number from 1";
const EXPECTED_WHEN_FULL: &str =
    "expected `#[session(when_full = \"end_oldest\")]` or `#[session(when_full = \"refuse\")]`";

/// A slot for one attribute that may be set once.
struct Attr<'c, T> {
    cx: &'c Ctxt,
    name: Symbol,
    value: Option<T>,
}

impl<'c, T> Attr<'c, T> {
    fn none(cx: &'c Ctxt, name: Symbol) -> Self {
        Attr {
            cx,
            name,
            value: None,
        }
    }

    /// Fills the slot; a second occurrence is reported at `obj`.
    fn set<A: ToTokens>(&mut self, obj: A, value: T) {
        if self.value.is_some() {
            self.cx
                .error_spanned_by(obj, format!("{DUPLICATE} `{}`", self.name));
        } else {
            self.value = Some(value);
        }
    }

    fn get(self) -> Option<T> {
        self.value
    }
}

/// The struct's attributes.
pub struct Container {
    /// The runtime crate: `::session_rocket` unless `crate = "…"`.
    pub root: syn::Path,
    /// `codec = "…"`; `None` means the runtime's `JsonCodec`.
    pub codec: Option<syn::Path>,
    /// `handle = "…"`; `None` means `{Ident}Session`.
    pub handle: Option<syn::Ident>,
}

impl Container {
    pub fn from_ast(cx: &Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut root = Attr::none(cx, CRATE);
        let mut codec = Attr::none(cx, CODEC);
        let mut handle = Attr::none(cx, HANDLE);

        for_each_meta(cx, attrs, |meta| {
            if meta.path == CRATE {
                if let Some(lit) = string_value(cx, &meta, EXPECTED_CRATE)? {
                    if let Some(path) =
                        parse_lit(cx, &lit, EXPECTED_CRATE, LitStr::parse::<syn::Path>)
                    {
                        root.set(&meta.path, path);
                    }
                }
            } else if meta.path == CODEC {
                if let Some(lit) = string_value(cx, &meta, EXPECTED_CODEC)? {
                    if let Some(path) =
                        parse_lit(cx, &lit, EXPECTED_CODEC, LitStr::parse::<syn::Path>)
                    {
                        codec.set(&meta.path, path);
                    }
                }
            } else if meta.path == HANDLE {
                if let Some(lit) = string_value(cx, &meta, EXPECTED_HANDLE)? {
                    if let Some(ident) =
                        parse_lit(cx, &lit, EXPECTED_HANDLE, LitStr::parse::<syn::Ident>)
                    {
                        handle.set(&meta.path, ident);
                    }
                }
            } else {
                unknown(cx, &meta, CONTAINER_KEYS)?;
            }
            Ok(())
        });

        Container {
            root: root.get().unwrap_or_else(|| parse_quote!(::session_rocket)),
            codec: codec.get(),
            handle: handle.get(),
        }
    }
}

/// One field's attributes.
pub struct Field {
    /// `rename = "…"`: the stored name, kept as the literal for spans.
    pub rename: Option<LitStr>,
    /// `deferred`.
    pub deferred: bool,
    /// `versioned`, with the attribute's path for error spans.
    pub versioned: Option<syn::Path>,
    /// `index`.
    pub index: bool,
    /// `default = "…"`: a `fn() -> T`, spanned at the literal.
    pub default: Option<syn::ExprPath>,
    /// `max_sessions = N`, with the attribute's path for error spans.
    pub max_sessions: Option<(syn::Path, u32)>,
    /// `when_full = "refuse"` (`true`) or `"end_oldest"`, with its path.
    pub when_full: Option<(syn::Path, bool)>,
    /// `flash`, with the attribute's path for error spans.
    pub flash: Option<syn::Path>,
    /// `ttl = …` in seconds, with the attribute's path for error spans.
    pub ttl: Option<(syn::Path, u64)>,
    /// `sliding`, with the attribute's path for error spans.
    pub sliding: Option<syn::Path>,
    /// `alias = "…"`, each kept as the literal for spans, in order.
    pub aliases: Vec<LitStr>,
    /// `from = Old` or `from(Old, with = f)`, oldest first.
    pub from: Vec<FromType>,
    /// `rewrite_on_read`, with the attribute's path for error spans.
    pub rewrite_on_read: Option<syn::Path>,
}

/// One earlier type of a field (`from = Old`): its value converts into the
/// next type of the chain with `TryFrom`, or with the function `with`
/// names (`fn(Old) -> Result<Next, E>`).
pub struct FromType {
    pub ty: syn::Type,
    pub with: Option<syn::ExprPath>,
}

impl Field {
    pub fn from_ast(cx: &Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut rename = Attr::none(cx, RENAME);
        let mut deferred = Attr::none(cx, DEFERRED);
        let mut versioned = Attr::none(cx, VERSIONED);
        let mut index = Attr::none(cx, INDEX);
        let mut default = Attr::none(cx, DEFAULT);
        let mut max_sessions = Attr::none(cx, MAX_SESSIONS);
        let mut when_full = Attr::none(cx, WHEN_FULL);
        let mut flash = Attr::none(cx, FLASH);
        let mut ttl = Attr::none(cx, TTL);
        let mut sliding = Attr::none(cx, SLIDING);
        let mut aliases = Vec::new();
        let mut from = Vec::new();
        let mut rewrite_on_read = Attr::none(cx, REWRITE_ON_READ);

        for_each_meta(cx, attrs, |meta| {
            if meta.path == RENAME {
                if let Some(lit) = string_value(cx, &meta, EXPECTED_RENAME)? {
                    rename.set(&meta.path, lit);
                }
            } else if meta.path == DEFERRED {
                if flag(cx, &meta, EXPECTED_DEFERRED)? {
                    deferred.set(&meta.path, ());
                }
            } else if meta.path == VERSIONED {
                if flag(cx, &meta, EXPECTED_VERSIONED)? {
                    versioned.set(&meta.path, meta.path.clone());
                }
            } else if meta.path == TTL {
                match duration_value(&meta)? {
                    Some(seconds) if seconds >= 1 => {
                        ttl.set(&meta.path, (meta.path.clone(), seconds))
                    }
                    _ => cx.error_spanned_by(&meta.path, EXPECTED_TTL),
                }
            } else if meta.path == ALIAS {
                if let Some(lit) = string_value(cx, &meta, EXPECTED_ALIAS)? {
                    aliases.push(lit);
                }
            } else if meta.path == FROM {
                if let Some(step) = from_value(cx, &meta)? {
                    from.push(step);
                }
            } else if meta.path == REWRITE_ON_READ {
                if flag(cx, &meta, EXPECTED_REWRITE_ON_READ)? {
                    rewrite_on_read.set(&meta.path, meta.path.clone());
                }
            } else if meta.path == SLIDING {
                if flag(cx, &meta, EXPECTED_SLIDING)? {
                    sliding.set(&meta.path, meta.path.clone());
                }
            } else if meta.path == FLASH {
                if flag(cx, &meta, EXPECTED_FLASH)? {
                    flash.set(&meta.path, meta.path.clone());
                }
            } else if meta.path == INDEX {
                if flag(cx, &meta, EXPECTED_INDEX)? {
                    index.set(&meta.path, ());
                }
            } else if meta.path == MAX_SESSIONS {
                match int_value(&meta)? {
                    Some(n) if n >= 1 => max_sessions.set(&meta.path, (meta.path.clone(), n)),
                    _ => cx.error_spanned_by(&meta.path, EXPECTED_MAX_SESSIONS),
                }
            } else if meta.path == WHEN_FULL {
                if let Some(lit) = string_value(cx, &meta, EXPECTED_WHEN_FULL)? {
                    match lit.value().as_str() {
                        "end_oldest" => when_full.set(&meta.path, (meta.path.clone(), false)),
                        "refuse" => when_full.set(&meta.path, (meta.path.clone(), true)),
                        _ => cx.error_spanned_by(&lit, EXPECTED_WHEN_FULL),
                    }
                }
            } else if meta.path == DEFAULT {
                if let Some(lit) = string_value(cx, &meta, EXPECTED_DEFAULT)? {
                    if let Some(path) =
                        parse_lit(cx, &lit, EXPECTED_DEFAULT, LitStr::parse::<syn::ExprPath>)
                    {
                        default.set(&meta.path, path);
                    }
                }
            } else {
                unknown(cx, &meta, FIELD_KEYS)?;
            }
            Ok(())
        });

        Field {
            rename: rename.get(),
            deferred: deferred.get().is_some(),
            versioned: versioned.get(),
            index: index.get().is_some(),
            default: default.get(),
            max_sessions: max_sessions.get(),
            when_full: when_full.get(),
            flash: flash.get(),
            ttl: ttl.get(),
            sliding: sliding.get(),
            aliases,
            from,
            rewrite_on_read: rewrite_on_read.get(),
        }
    }
}

/// `from = Old`, `from = "Old"` (serde's spelling) or
/// `from(Old, with = path)`; anything else is reported and yields `None`.
fn from_value(cx: &Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<FromType>> {
    if meta.input.peek(Token![=]) {
        meta.input.parse::<Token![=]>()?;
        if meta.input.peek(LitStr) {
            let lit: LitStr = meta.input.parse()?;
            return Ok(
                parse_lit(cx, &lit, EXPECTED_FROM, LitStr::parse::<syn::Type>)
                    .map(|ty| FromType { ty, with: None }),
            );
        }
        let ty: syn::Type = meta.input.parse()?;
        return Ok(Some(FromType { ty, with: None }));
    }
    if !meta.input.peek(syn::token::Paren) {
        cx.error_spanned_by(&meta.path, EXPECTED_FROM);
        return Ok(None);
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let ty: syn::Type = content.parse()?;
    if content.is_empty() {
        return Ok(Some(FromType { ty, with: None }));
    }
    content.parse::<Token![,]>()?;
    let key: syn::Path = content.parse()?;
    if key != WITH || !content.peek(Token![=]) {
        cx.error_spanned_by(&key, EXPECTED_FROM);
        let _: proc_macro2::TokenStream = content.parse()?;
        return Ok(None);
    }
    content.parse::<Token![=]>()?;
    let with = if content.peek(LitStr) {
        let lit: LitStr = content.parse()?;
        parse_lit(cx, &lit, EXPECTED_FROM, LitStr::parse::<syn::ExprPath>)
    } else {
        Some(content.parse::<syn::ExprPath>()?)
    };
    let _ = content.parse::<Option<Token![,]>>()?;
    if !content.is_empty() {
        cx.error_spanned_by(&meta.path, EXPECTED_FROM);
        let _: proc_macro2::TokenStream = content.parse()?;
    }
    Ok(with.map(|with| FromType {
        ty,
        with: Some(with),
    }))
}

/// Whether a flag attribute (`deferred`, `index`…) stands alone, as it
/// must; a value after it is reported with `expected` and consumed.
fn flag(cx: &Ctxt, meta: &ParseNestedMeta, expected: &str) -> syn::Result<bool> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        cx.error_spanned_by(&meta.path, expected);
        skip_value(meta)?;
        return Ok(false);
    }
    Ok(true)
}

/// The expression in `key = expr`; `None` (the value consumed) when
/// there is no `=`.
fn expr_value(meta: &ParseNestedMeta) -> syn::Result<Option<Expr>> {
    if !meta.input.peek(Token![=]) {
        skip_value(meta)?;
        return Ok(None);
    }
    meta.input.parse::<Token![=]>()?;
    Ok(Some(meta.input.parse()?))
}

/// The whole number in `key = N`; `None` for anything else (the caller
/// reports it), the value consumed either way.
fn int_value(meta: &ParseNestedMeta) -> syn::Result<Option<u32>> {
    let Some(expr) = expr_value(meta)? else {
        return Ok(None);
    };
    Ok(match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u32>().ok(),
        _ => None,
    })
}

/// The seconds in `key = N` or `key = "N<unit>"` (`s`, `m`, `h`, `d`);
/// `None` for anything else (the caller reports it), the value consumed
/// either way.
fn duration_value(meta: &ParseNestedMeta) -> syn::Result<Option<u64>> {
    let Some(expr) = expr_value(meta)? else {
        return Ok(None);
    };
    Ok(match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => parse_duration(&text.value()),
        _ => None,
    })
}

/// `"90s"`, `"10m"`, `"2h"`, `"7d"` in seconds.
fn parse_duration(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// Runs `f` on every item of every `#[session(…)]` attribute.
fn for_each_meta(
    cx: &Ctxt,
    attrs: &[syn::Attribute],
    mut f: impl FnMut(ParseNestedMeta) -> syn::Result<()>,
) {
    for attr in attrs {
        if attr.path() != SESSION {
            continue;
        }
        if !matches!(attr.meta, syn::Meta::List(_)) {
            cx.error_spanned_by(attr, EXPECTED_LIST);
            continue;
        }
        if let Err(err) = attr.parse_nested_meta(&mut f) {
            cx.syn_error(err);
        }
    }
}

/// Reports an unknown key and skips its value, so the keys after it are
/// still checked.
fn unknown(cx: &Ctxt, meta: &ParseNestedMeta, expected: &[Symbol]) -> syn::Result<()> {
    let key = meta.path.to_token_stream().to_string().replace(' ', "");
    let expected = expected
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ");
    cx.error_spanned_by(
        &meta.path,
        format!("{UNKNOWN} `{key}`; expected one of {expected}"),
    );
    skip_value(meta)
}

/// Consumes `= value` or `(…)` after a key, if present.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.input.parse::<Token![=]>()?;
        meta.input.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// The string literal in `key = "…"`. A missing `=` or a value that is not a
/// string is reported with `expected` and yields `None`.
fn string_value(cx: &Ctxt, meta: &ParseNestedMeta, expected: &str) -> syn::Result<Option<LitStr>> {
    if !meta.input.peek(Token![=]) {
        cx.error_spanned_by(&meta.path, expected);
        skip_value(meta)?;
        return Ok(None);
    }
    meta.input.parse::<Token![=]>()?;
    let expr: Expr = meta.input.parse()?;
    let mut value = &expr;
    while let Expr::Group(group) = value {
        value = &group.expr;
    }
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(Some(lit.clone())),
        _ => {
            cx.error_spanned_by(&expr, expected);
            Ok(None)
        }
    }
}

/// Parses the contents of a string literal (spanned at the literal); a
/// parse failure is reported with `expected`.
fn parse_lit<T>(
    cx: &Ctxt,
    lit: &LitStr,
    expected: &str,
    parse: fn(&LitStr) -> syn::Result<T>,
) -> Option<T> {
    match parse(lit) {
        Ok(value) => Some(value),
        Err(_) => {
            cx.error_spanned_by(lit, expected);
            None
        }
    }
}
