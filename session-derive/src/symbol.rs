//! Attribute names as constants, compared against syn paths, so a misspelt
//! name is a compile error here rather than a silent miss (serde
//! `internals/symbol.rs`).

use std::fmt::{self, Display};

use syn::{Ident, Path};

/// One attribute name.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Symbol(pub &'static str);

/// The attribute itself: `#[session(…)]`.
pub const SESSION: Symbol = Symbol("session");

/// Container: the path of the runtime (`crate = "session_core"`).
pub const CRATE: Symbol = Symbol("crate");
/// Container: the codec type (`codec = "path::To::Codec"`).
pub const CODEC: Symbol = Symbol("codec");
/// Container: the name of the generated handle (`handle = "Name"`).
pub const HANDLE: Symbol = Symbol("handle");

/// Field: the stored name (`rename = "name"`).
pub const RENAME: Symbol = Symbol("rename");
/// Field: loaded by its own query on first use (`deferred`).
pub const DEFERRED: Symbol = Symbol("deferred");
/// Field: written only by compare-and-set of its version (`versioned`).
pub const VERSIONED: Symbol = Symbol("versioned");
/// Field: searchable across sessions (`index`).
pub const INDEX: Symbol = Symbol("index");
/// Field: the function giving the value of an absent field
/// (`default = "path::to::function"`).
pub const DEFAULT: Symbol = Symbol("default");
/// Field, with `index`: the most live sessions one value may have
/// (`max_sessions = 2`).
pub const MAX_SESSIONS: Symbol = Symbol("max_sessions");
/// Field, with `max_sessions`: what a session past the limit does
/// (`when_full = "end_oldest"` or `"refuse"`).
pub const WHEN_FULL: Symbol = Symbol("when_full");
/// Field: a message for the next request, read once (`take_x()`).
pub const FLASH: Symbol = Symbol("flash");
/// Field: reads as absent once this long has passed since it was written
/// (`ttl = "10m"` or seconds).
pub const TTL: Symbol = Symbol("ttl");
/// Field, with `ttl`: a read restarts the clock too.
pub const SLIDING: Symbol = Symbol("sliding");
/// Field: an old stored name its value is read from when the current one
/// is absent (`alias = "old"`, several allowed).
pub const ALIAS: Symbol = Symbol("alias");

/// Field: an earlier type of the field whose stored values are converted
/// (`from = Old`, or `from(Old, with = f)`; a chain, oldest first).
pub const FROM: Symbol = Symbol("from");
/// Inside `from(…)`: the conversion function.
pub const WITH: Symbol = Symbol("with");
/// Field, with `from`: a value read in an earlier type is written back.
pub const REWRITE_ON_READ: Symbol = Symbol("rewrite_on_read");

/// The keys accepted on the struct, in the order the docs list them.
pub const CONTAINER_KEYS: &[Symbol] = &[CRATE, CODEC, HANDLE];
/// The keys accepted on a field.
pub const FIELD_KEYS: &[Symbol] = &[
    RENAME,
    DEFERRED,
    VERSIONED,
    INDEX,
    MAX_SESSIONS,
    WHEN_FULL,
    DEFAULT,
    FLASH,
    TTL,
    SLIDING,
    ALIAS,
    FROM,
    REWRITE_ON_READ,
];

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for &Ident {
    fn eq(&self, word: &Symbol) -> bool {
        *self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl PartialEq<Symbol> for &Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
