//! Awkward inputs that must expand to lint-clean code (serde `test_gen.rs`).
//! Compiling this file is the test.

#![deny(warnings)]
#![deny(missing_docs, missing_debug_implementations)]

use serde::{Deserialize, Serialize};
use session_rocket::Session;

/// Shadows `core`: generated code must write `::core`.
mod core {}

/// Shadows the prelude names generated code might use bare.
mod shadowing {
    use serde::{Deserialize, Serialize};
    use session_rocket::Session;

    /// A user type named `Result`.
    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct Result;
    /// A user type named `Option`.
    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct Option;
    /// A user type named `Vec`.
    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct Vec;

    /// Fields of the shadowing types.
    #[derive(Debug, Session)]
    pub struct Shadowed {
        /// A `Result`.
        pub result: Result,
        /// An `Option`.
        pub option: Option,
        /// A `Vec`.
        pub vec: Vec,
        /// A real option.
        pub real: ::core::option::Option<u8>,
    }
}

/// Raw identifiers and names close to generated ones.
#[derive(Debug, Session)]
pub struct Raw {
    /// `r#type` gives `r#type()`, `type_mut()`, `set_type()`, `remove_type()`.
    pub r#type: String,
    /// Looks like `self`.
    pub self_: u32,
    /// A raw non-keyword.
    pub r#plain: u32,
    /// Named like the handle's private fields.
    pub state: u32,
    /// Named like the handle's private fields.
    pub slots: u32,
    /// Named like the trait method.
    pub index: u32,
    /// Named like the parameter of `set_x`.
    pub value: u32,
}

/// A private struct with private fields.
#[derive(Debug, Session)]
struct Private {
    a: u32,
    b: Vec<String>,
}

/// Mixed field visibility on a public struct.
#[derive(Debug, Session)]
pub struct Mixed {
    /// Public.
    pub a: u32,
    pub(crate) b: u32,
    c: u32,
    pub(self) d: u32,
}

/// Thirteen fields: tuples this long have no `Default`.
#[derive(Debug, Session)]
pub struct Wide {
    /// 1
    pub f1: u8,
    /// 2
    pub f2: u8,
    /// 3
    pub f3: u8,
    /// 4
    pub f4: u8,
    /// 5
    pub f5: u8,
    /// 6
    pub f6: u8,
    /// 7
    pub f7: u8,
    /// 8
    pub f8: u8,
    /// 9
    pub f9: u8,
    /// 10
    pub f10: u8,
    /// 11
    pub f11: u8,
    /// 12
    pub f12: u8,
    /// 13
    pub f13: u8,
    /// 14
    pub f14: String,
}

/// No fields at all: only the state methods.
#[derive(Debug, Session)]
pub struct Empty {}

/// One field: a one-element tuple.
#[derive(Debug, Session)]
pub struct One {
    /// The only field.
    pub only: u32,
}

/// Every attribute, against `session_core` directly.
#[derive(Debug, Session)]
#[session(
    crate = "session_core",
    codec = "session_core::codec::JsonCodec",
    handle = "CoreHandle"
)]
pub struct Core {
    /// Renamed.
    #[session(rename = "x.y-z")]
    pub renamed: u32,
    /// Deferred, with a default function and no `Default` impl.
    #[session(deferred, default = "NoDefault::make")]
    pub nd: NoDefault,
}

/// A type without `Default`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NoDefault(u32);

impl NoDefault {
    /// The default for [`Core::nd`].
    pub fn make() -> Self {
        NoDefault(7)
    }
}

/// Generated handle names can be used as types and are documented.
pub fn handles(
    _: RawSession,
    _: MixedSession,
    _: WideSession,
    _: EmptySession,
    _: OneSession,
    _: CoreHandle,
    _: shadowing::ShadowedSession,
) {
}

/// Every accessor exists with the expected signature.
pub async fn use_accessors(mut raw: RawSession, wide: WideSession, mut core: CoreHandle) {
    let _: &String = raw.r#type().await.unwrap();
    let _: &mut String = raw.type_mut().await.unwrap();
    raw.set_type(String::new());
    raw.remove_type();
    raw.set_self_(1);
    raw.set_plain(1);
    let _: &u32 = raw.state().await.unwrap();
    raw.set_value(1);
    let _: &u8 = wide.f13().await.unwrap();
    let _: &String = wide.f14().await.unwrap();
    let _: &NoDefault = core.nd().await.unwrap();
    core.set_renamed(1);
    let _: bool = core.is_new();
    core.regenerate();
}

#[test]
fn schemas() {
    use session_core::SessionData;
    let names: Vec<_> = Raw::FIELDS.iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        ["type", "self_", "plain", "state", "slots", "index", "value"]
    );
    assert_eq!(Wide::FIELDS.len(), 14);
    assert!(Empty::FIELDS.is_empty());
    assert_eq!(Core::FIELDS[0].name, "x.y-z");
    assert!(Core::FIELDS[1].deferred);
    assert_eq!(Core::DEFERRED, ["nd"]);
    assert_eq!(<Private as SessionData>::FIELDS.len(), 2);
}
