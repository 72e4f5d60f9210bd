//! The shape of a type's serialized values, traced from its `Deserialize`
//! implementation (`serde-reflection`): what a stored value must look like
//! for the type to read it.
//!
//! The text names field names, variant names and the data model's types
//! (`u64`, `str`, `option<…>`, `seq<…>`, `map<…, …>`), never Rust type
//! names: renaming a struct leaves its values readable, renaming one of
//! its fields does not. A newtype struct is its content, as in JSON.

use serde::de::DeserializeOwned;
use serde_reflection::{
    ContainerFormat, Error, Format, FormatHolder, Named, Registry, Samples, Tracer, TracerConfig,
    VariantFormat,
};

/// The most rounds of tracing spent finding every variant of the enums a
/// type holds.
const ROUNDS: usize = 64;

/// `T`'s shape, or `opaque <Rust type name>` for a type whose
/// deserializer the tracer cannot follow (one that asks the format what
/// comes next, as `serde_json::Value`, untagged or internally tagged
/// enums and `flatten` do): its Rust type name is the best the lock can
/// compare.
pub(crate) fn shape_of<T: DeserializeOwned>() -> String {
    match trace::<T>() {
        Ok((format, registry)) => {
            let mut text = String::new();
            render(&format, &registry, &mut Vec::new(), &mut text);
            text
        }
        Err(_) => format!("opaque {}", std::any::type_name::<T>()),
    }
}

/// Traces `T` until every enum it holds, at any depth, shows every
/// variant.
fn trace<T: DeserializeOwned>() -> Result<(Format, Registry), Error> {
    let samples = Samples::new();
    let mut enums: Vec<String> = Vec::new();
    for _ in 0..ROUNDS {
        let mut tracer = Tracer::new(TracerConfig::default().is_human_readable(true));
        let mut format = Format::unknown();
        for _ in 0..ROUNDS {
            (format, _) = tracer.trace_type::<T>(&samples)?;
            let mut again = false;
            for name in &enums {
                again |= tracer.check_incomplete_enum(name).is_some();
            }
            if !again {
                break;
            }
        }
        match tracer.registry() {
            Ok(registry) => {
                format.normalize()?;
                return Ok((format, registry));
            }
            Err(Error::MissingVariants(names)) => {
                let before = enums.len();
                for name in names {
                    if !enums.contains(&name) {
                        enums.push(name);
                    }
                }
                if enums.len() == before {
                    break;
                }
            }
            Err(error) => return Err(error),
        }
    }
    Err(Error::NotSupported(
        "an enum whose variants tracing cannot reach",
    ))
}

/// Appends `format`'s text to `out`; `stack` holds the containers being
/// rendered, so a recursive type names itself instead of looping.
fn render(format: &Format, registry: &Registry, stack: &mut Vec<String>, out: &mut String) {
    let simple = match format {
        Format::Unit => "unit",
        Format::Bool => "bool",
        Format::I8 => "i8",
        Format::I16 => "i16",
        Format::I32 => "i32",
        Format::I64 => "i64",
        Format::I128 => "i128",
        Format::U8 => "u8",
        Format::U16 => "u16",
        Format::U32 => "u32",
        Format::U64 => "u64",
        Format::U128 => "u128",
        Format::F32 => "f32",
        Format::F64 => "f64",
        Format::Char => "char",
        Format::Str => "str",
        Format::Bytes => "bytes",
        Format::Variable(_) => "?",
        _ => "",
    };
    if !simple.is_empty() {
        out.push_str(simple);
        return;
    }
    match format {
        Format::Option(inner) => wrap("option<", inner, ">", registry, stack, out),
        Format::Seq(inner) => wrap("seq<", inner, ">", registry, stack, out),
        Format::Map { key, value } => {
            out.push_str("map<");
            render(key, registry, stack, out);
            out.push_str(", ");
            render(value, registry, stack, out);
            out.push('>');
        }
        Format::Tuple(items) => list("(", items, ")", registry, stack, out),
        Format::TupleArray { content, size } => {
            out.push('[');
            render(content, registry, stack, out);
            out.push_str(&format!("; {size}]"));
        }
        Format::TypeName(name) => container(name, registry, stack, out),
        _ => out.push('?'),
    }
}

fn wrap(
    open: &str,
    inner: &Format,
    close: &str,
    registry: &Registry,
    stack: &mut Vec<String>,
    out: &mut String,
) {
    out.push_str(open);
    render(inner, registry, stack, out);
    out.push_str(close);
}

fn list(
    open: &str,
    items: &[Format],
    close: &str,
    registry: &Registry,
    stack: &mut Vec<String>,
    out: &mut String,
) {
    out.push_str(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        render(item, registry, stack, out);
    }
    out.push_str(close);
}

fn fields(items: &[Named<Format>], registry: &Registry, stack: &mut Vec<String>, out: &mut String) {
    out.push('{');
    for (i, field) in items.iter().enumerate() {
        out.push_str(if i > 0 { ", " } else { " " });
        out.push_str(&field.name);
        out.push_str(": ");
        render(&field.value, registry, stack, out);
    }
    out.push_str(if items.is_empty() { "}" } else { " }" });
}

/// A struct or enum by its content; by its name only when it holds
/// itself.
fn container(name: &str, registry: &Registry, stack: &mut Vec<String>, out: &mut String) {
    let Some(format) = registry.get(name) else {
        out.push('?');
        return;
    };
    if stack.iter().any(|n| n == name) {
        out.push_str(&format!("recursive {name}"));
        return;
    }
    stack.push(name.to_owned());
    match format {
        ContainerFormat::UnitStruct => out.push_str("unit"),
        ContainerFormat::NewTypeStruct(inner) => render(inner, registry, stack, out),
        ContainerFormat::TupleStruct(items) => list("(", items, ")", registry, stack, out),
        ContainerFormat::Struct(items) => fields(items, registry, stack, out),
        ContainerFormat::Enum(variants) => {
            out.push_str("enum {");
            for (i, variant) in variants.values().enumerate() {
                out.push_str(if i > 0 { ", " } else { " " });
                out.push_str(&variant.name);
                match &variant.value {
                    VariantFormat::Unit | VariantFormat::Variable(_) => {}
                    VariantFormat::NewType(inner) => wrap("(", inner, ")", registry, stack, out),
                    VariantFormat::Tuple(items) => list("(", items, ")", registry, stack, out),
                    VariantFormat::Struct(items) => {
                        out.push(' ');
                        fields(items, registry, stack, out);
                    }
                }
            }
            out.push_str(" }");
        }
    }
    stack.pop();
}
