//! Formats as a person reads them: Rust-like types (`Vec<Point>`,
//! `Option<u32>`), and the definitions of the named ones.

use std::collections::BTreeSet;

use rpc_runtime::reflection::{ContainerFormat, Format, Named, Registry, VariantFormat};

/// `format` as a Rust type.
pub fn format(format: &Format) -> String {
    match format {
        Format::Variable(_) => "?".to_owned(),
        Format::TypeName(name) => name.clone(),
        Format::Unit => "()".to_owned(),
        Format::Bool => "bool".to_owned(),
        Format::I8 => "i8".to_owned(),
        Format::I16 => "i16".to_owned(),
        Format::I32 => "i32".to_owned(),
        Format::I64 => "i64".to_owned(),
        Format::I128 => "i128".to_owned(),
        Format::U8 => "u8".to_owned(),
        Format::U16 => "u16".to_owned(),
        Format::U32 => "u32".to_owned(),
        Format::U64 => "u64".to_owned(),
        Format::U128 => "u128".to_owned(),
        Format::F32 => "f32".to_owned(),
        Format::F64 => "f64".to_owned(),
        Format::Char => "char".to_owned(),
        Format::Str => "String".to_owned(),
        Format::Bytes => "bytes".to_owned(),
        Format::Option(inner) => format!("Option<{}>", self::format(inner)),
        Format::Seq(inner) => format!("Vec<{}>", self::format(inner)),
        Format::Map { key, value } => {
            format!("Map<{}, {}>", self::format(key), self::format(value))
        }
        Format::Tuple(formats) => match formats.as_slice() {
            [one] => format!("({},)", self::format(one)),
            _ => format!("({})", list(formats)),
        },
        Format::TupleArray { content, size } => format!("[{}; {size}]", self::format(content)),
    }
}

fn list(formats: &[Format]) -> String {
    formats.iter().map(format).collect::<Vec<_>>().join(", ")
}

fn fields(fields: &[Named<Format>]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.name, format(&f.value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The definition of the named type `name`: `struct Point { x: i32, y: i32 }`.
pub fn definition(name: &str, container: &ContainerFormat) -> String {
    match container {
        ContainerFormat::UnitStruct => format!("struct {name};"),
        ContainerFormat::NewTypeStruct(inner) => format!("struct {name}({});", format(inner)),
        ContainerFormat::TupleStruct(formats) => format!("struct {name}({});", list(formats)),
        ContainerFormat::Struct(f) => format!("struct {name} {{ {} }}", fields(f)),
        ContainerFormat::Enum(variants) => {
            let variants: Vec<String> = variants
                .values()
                .map(|v| match &v.value {
                    VariantFormat::Unit | VariantFormat::Variable(_) => v.name.clone(),
                    VariantFormat::NewType(inner) => format!("{}({})", v.name, format(inner)),
                    VariantFormat::Tuple(formats) => format!("{}({})", v.name, list(formats)),
                    VariantFormat::Struct(f) => format!("{} {{ {} }}", v.name, fields(f)),
                })
                .collect();
            format!("enum {name} {{ {} }}", variants.join(", "))
        }
    }
}

/// The named types `formats` use, and the ones those use, in name order.
pub fn used<'a>(
    formats: impl IntoIterator<Item = &'a Format>,
    types: &Registry,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&Format> = formats.into_iter().collect();
    while let Some(format) = todo.pop() {
        match format {
            Format::TypeName(name) if seen.insert(name.clone()) => match types.get(name) {
                Some(ContainerFormat::NewTypeStruct(inner)) => todo.push(inner),
                Some(ContainerFormat::TupleStruct(formats)) => todo.extend(formats),
                Some(ContainerFormat::Struct(fields)) => {
                    todo.extend(fields.iter().map(|f| &f.value))
                }
                Some(ContainerFormat::Enum(variants)) => {
                    for variant in variants.values() {
                        match &variant.value {
                            VariantFormat::NewType(inner) => todo.push(inner),
                            VariantFormat::Tuple(formats) => todo.extend(formats),
                            VariantFormat::Struct(fields) => {
                                todo.extend(fields.iter().map(|f| &f.value))
                            }
                            VariantFormat::Unit | VariantFormat::Variable(_) => {}
                        }
                    }
                }
                Some(ContainerFormat::UnitStruct) | None => {}
            },
            Format::Option(inner)
            | Format::Seq(inner)
            | Format::TupleArray { content: inner, .. } => todo.push(inner),
            Format::Map { key, value } => {
                todo.push(key);
                todo.push(value);
            }
            Format::Tuple(formats) => todo.extend(formats),
            _ => {}
        }
    }
    seen
}
