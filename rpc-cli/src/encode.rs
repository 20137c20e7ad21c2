//! JSON to a value that serializes exactly as the Rust type it stands for,
//! following the type's format: the arguments and stream items a call
//! sends.
//!
//! The JSON is what `serde_json` makes of the Rust type (structs as
//! objects, enums externally tagged: `"Unit"`, `{"Variant": ...}`,
//! newtypes as their content), so a value printed by `rpc call` can be
//! passed back in. Written here rather than taken from serde-reflection's
//! `json_converter` for two things that one lacks: errors that name the
//! argument and the field, and serde_json's own forms of unit variants and
//! maps.

use serde::ser::{SerializeMap, SerializeSeq, SerializeTuple, SerializeTupleVariant};
use serde::{Serialize, Serializer};
use serde_json::Value;

use rpc_runtime::reflection::{ContainerFormat, Format, Named, Registry, VariantFormat};

use crate::render;

/// Deeper than this, a format refers to itself without end (a newtype of
/// itself) or the JSON is unreasonable.
const MAX_DEPTH: usize = 256;

/// A value ready to serialize as its type does.
#[derive(Debug, Clone)]
pub enum Encoded {
    /// `()`, a unit struct: nothing on the wire.
    Unit,
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    I128(i128),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    U128(u128),
    F32(f32),
    F64(f64),
    Char(char),
    Str(String),
    Bytes(Vec<u8>),
    Option(Option<Box<Encoded>>),
    /// A sequence: its length, then its elements.
    Seq(Vec<Encoded>),
    /// A map: its length, then each key and value.
    Map(Vec<(Encoded, Encoded)>),
    /// Elements one after the other: a tuple, an array, a struct's fields.
    Tuple(Vec<Encoded>),
    /// An enum's variant: its index, then its content.
    Variant(u32, VariantValue),
}

/// What a variant holds.
#[derive(Debug, Clone)]
pub enum VariantValue {
    Unit,
    NewType(Box<Encoded>),
    Fields(Vec<Encoded>),
}

/// Where in a value a mismatch is, and what it is.
#[derive(Debug)]
pub struct Mismatch {
    /// `.field`, `[index]`, `{"key"}`, `.Variant` steps from the top.
    pub at: String,
    pub message: String,
}

/// Encodes `json` as `format` says.
///
/// # Errors
/// The first place where the JSON does not fit the format.
pub fn encode(format: &Format, json: &Value, types: &Registry) -> Result<Encoded, Mismatch> {
    let mut path = Vec::new();
    Encoder { types }
        .format(format, json, &mut path)
        .map_err(|message| Mismatch {
            at: path.concat(),
            message,
        })
}

struct Encoder<'a> {
    types: &'a Registry,
}

type Path = Vec<String>;

impl Encoder<'_> {
    fn format(&self, format: &Format, json: &Value, path: &mut Path) -> Result<Encoded, String> {
        if path.len() > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        let expected = || expected(format, json);
        Ok(match format {
            Format::Unit => match json {
                Value::Null => Encoded::Unit,
                _ => return Err(expected()),
            },
            Format::Bool => Encoded::Bool(json.as_bool().ok_or_else(expected)?),
            Format::I8 => Encoded::I8(int(json).ok_or_else(expected)?),
            Format::I16 => Encoded::I16(int(json).ok_or_else(expected)?),
            Format::I32 => Encoded::I32(int(json).ok_or_else(expected)?),
            Format::I64 => Encoded::I64(int(json).ok_or_else(expected)?),
            Format::I128 => Encoded::I128(int(json).ok_or_else(expected)?),
            Format::U8 => Encoded::U8(int(json).ok_or_else(expected)?),
            Format::U16 => Encoded::U16(int(json).ok_or_else(expected)?),
            Format::U32 => Encoded::U32(int(json).ok_or_else(expected)?),
            Format::U64 => Encoded::U64(int(json).ok_or_else(expected)?),
            Format::U128 => Encoded::U128(int(json).ok_or_else(expected)?),
            #[allow(clippy::cast_possible_truncation)]
            Format::F32 => Encoded::F32(float(json).ok_or_else(expected)? as f32),
            Format::F64 => Encoded::F64(float(json).ok_or_else(expected)?),
            Format::Char => {
                let s = json.as_str().ok_or_else(expected)?;
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Encoded::Char(c),
                    _ => return Err(expected()),
                }
            }
            Format::Str => Encoded::Str(json.as_str().ok_or_else(expected)?.to_owned()),
            Format::Bytes => {
                let items = json.as_array().ok_or_else(expected)?;
                let mut bytes = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    bytes.push(int::<u8>(item).ok_or_else(|| {
                        format!(
                            "byte [{i}] must be an integer 0 to 255, found {}",
                            found(item)
                        )
                    })?);
                }
                Encoded::Bytes(bytes)
            }
            Format::Option(inner) => match json {
                Value::Null => Encoded::Option(None),
                _ => Encoded::Option(Some(Box::new(self.format(inner, json, path)?))),
            },
            Format::Seq(inner) => {
                let items = json.as_array().ok_or_else(expected)?;
                Encoded::Seq(self.elements(items.iter().map(|item| (inner.as_ref(), item)), path)?)
            }
            Format::Tuple(formats) => {
                Encoded::Tuple(self.fixed(formats.iter(), json, format, path)?)
            }
            Format::TupleArray { content, size } => Encoded::Tuple(self.fixed(
                std::iter::repeat_n(content.as_ref(), *size),
                json,
                format,
                path,
            )?),
            Format::Map { key, value } => self.map(key, value, json, path)?,
            Format::TypeName(name) => self.named(name, json, path)?,
            Format::Variable(_) => return Err("the description is incomplete".to_owned()),
        })
    }

    /// Each `(format, json)` in turn, its index on the path.
    fn elements<'f, 'j>(
        &self,
        items: impl Iterator<Item = (&'f Format, &'j Value)>,
        path: &mut Path,
    ) -> Result<Vec<Encoded>, String> {
        items
            .enumerate()
            .map(|(i, (format, item))| {
                path.push(format!("[{i}]"));
                let encoded = self.format(format, item, path)?;
                path.pop();
                Ok(encoded)
            })
            .collect()
    }

    /// An array of exactly as many elements as `formats`.
    fn fixed<'f>(
        &self,
        formats: impl ExactSizeIterator<Item = &'f Format>,
        json: &Value,
        whole: &Format,
        path: &mut Path,
    ) -> Result<Vec<Encoded>, String> {
        let items = json.as_array().ok_or_else(|| expected(whole, json))?;
        if items.len() != formats.len() {
            return Err(format!(
                "expected {} elements ({}), found {}",
                formats.len(),
                render::format(whole),
                items.len()
            ));
        }
        self.elements(formats.zip(items), path)
    }

    /// An object (keys as JSON writes them: strings), or an array of
    /// `[key, value]` pairs (for keys that are not strings or numbers).
    fn map(
        &self,
        key: &Format,
        value: &Format,
        json: &Value,
        path: &mut Path,
    ) -> Result<Encoded, String> {
        let whole = || Format::Map {
            key: Box::new(key.clone()),
            value: Box::new(value.clone()),
        };
        let mut entries = Vec::new();
        match json {
            Value::Object(object) => {
                for (k, v) in object {
                    path.push(format!("{{{}}}", Value::String(k.clone())));
                    let k = self.key(key, k, path)?;
                    let v = self.format(value, v, path)?;
                    path.pop();
                    entries.push((k, v));
                }
            }
            Value::Array(pairs) => {
                for (i, pair) in pairs.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    let [k, v] = pair.as_array().map(Vec::as_slice).unwrap_or_default() else {
                        return Err(format!(
                            "expected a [key, value] pair, found {}",
                            found(pair)
                        ));
                    };
                    let k = self.format(key, k, path)?;
                    let v = self.format(value, v, path)?;
                    path.pop();
                    entries.push((k, v));
                }
            }
            _ => return Err(expected(&whole(), json)),
        }
        Ok(Encoded::Map(entries))
    }

    /// An object's key: the string itself for a string key, else the JSON
    /// it holds (`"7"` for the integer 7).
    fn key(&self, format: &Format, key: &str, path: &mut Path) -> Result<Encoded, String> {
        let as_string = Value::String(key.to_owned());
        let depth = path.len();
        match self.format(format, &as_string, path) {
            Ok(encoded) => Ok(encoded),
            Err(first) => match serde_json::from_str::<Value>(key) {
                Ok(parsed)
                    if {
                        path.truncate(depth);
                        true
                    } =>
                {
                    self.format(format, &parsed, path).map_err(|_| first)
                }
                _ => Err(first),
            },
        }
    }

    fn named(&self, name: &str, json: &Value, path: &mut Path) -> Result<Encoded, String> {
        let container = self
            .types
            .get(name)
            .ok_or_else(|| format!("the description has no type `{name}`"))?;
        Ok(match container {
            ContainerFormat::UnitStruct => match json {
                Value::Null => Encoded::Unit,
                _ => return Err(format!("expected null ({name}), found {}", found(json))),
            },
            ContainerFormat::NewTypeStruct(inner) => {
                path.push(String::new());
                let encoded = self.format(inner, json, path)?;
                path.pop();
                encoded
            }
            ContainerFormat::TupleStruct(formats) => {
                let items = json
                    .as_array()
                    .ok_or_else(|| format!("expected an array ({name}), found {}", found(json)))?;
                if items.len() != formats.len() {
                    return Err(format!(
                        "expected {} elements ({name}), found {}",
                        formats.len(),
                        items.len()
                    ));
                }
                Encoded::Tuple(self.elements(formats.iter().zip(items), path)?)
            }
            ContainerFormat::Struct(fields) => {
                Encoded::Tuple(self.fields(name, fields, json, path)?)
            }
            ContainerFormat::Enum(variants) => self.variant(name, variants, json, path)?,
        })
    }

    /// A struct's fields from an object, in the declared order: a missing
    /// `Option` field is `None` (as serde_json takes it), any other missing
    /// or unknown field an error.
    fn fields(
        &self,
        name: &str,
        fields: &[Named<Format>],
        json: &Value,
        path: &mut Path,
    ) -> Result<Vec<Encoded>, String> {
        let object = json
            .as_object()
            .ok_or_else(|| format!("expected an object ({name}), found {}", found(json)))?;
        if let Some(unknown) = object
            .keys()
            .find(|k| !fields.iter().any(|f| &f.name == *k))
        {
            return Err(format!(
                "{name} has no field `{unknown}`; its fields are: {}",
                names(fields)
            ));
        }
        fields
            .iter()
            .map(|field| {
                path.push(format!(".{}", field.name));
                let encoded = match (object.get(&field.name), &field.value) {
                    (Some(value), format) => self.format(format, value, path)?,
                    (None, Format::Option(_)) => Encoded::Option(None),
                    (None, format) => {
                        return Err(format!(
                            "missing field `{}` ({})",
                            field.name,
                            render::format(format)
                        ))
                    }
                };
                path.pop();
                Ok(encoded)
            })
            .collect()
    }

    /// `"Variant"` for a unit variant, `{"Variant": content}` for any.
    fn variant(
        &self,
        name: &str,
        variants: &std::collections::BTreeMap<u32, Named<VariantFormat>>,
        json: &Value,
        path: &mut Path,
    ) -> Result<Encoded, String> {
        let (variant, content) = match json {
            Value::String(variant) => (variant, &Value::Null),
            Value::Object(object) if object.len() == 1 => match object.iter().next() {
                Some((variant, content)) => (variant, content),
                None => return Err(format!("expected a variant of {name}")),
            },
            _ => {
                return Err(format!(
                    "expected a variant of {name} (\"Variant\" or {{\"Variant\": ...}}), found {}",
                    found(json)
                ))
            }
        };
        let Some((index, format)) = variants
            .iter()
            .find(|(_, v)| &v.name == variant)
            .map(|(index, v)| (*index, &v.value))
        else {
            let known: Vec<&str> = variants.values().map(|v| v.name.as_str()).collect();
            return Err(format!(
                "{name} has no variant `{variant}`; its variants are: {}",
                known.join(", ")
            ));
        };
        path.push(format!(".{variant}"));
        let value = match format {
            VariantFormat::Unit => match content {
                Value::Null => VariantValue::Unit,
                _ => {
                    return Err(format!(
                        "`{variant}` holds nothing, found {}",
                        found(content)
                    ))
                }
            },
            VariantFormat::NewType(inner) => {
                VariantValue::NewType(Box::new(self.format(inner, content, path)?))
            }
            VariantFormat::Tuple(formats) => {
                let items = content.as_array().ok_or_else(|| {
                    format!(
                        "expected an array (the fields of `{variant}`), found {}",
                        found(content)
                    )
                })?;
                if items.len() != formats.len() {
                    return Err(format!(
                        "expected {} elements (the fields of `{variant}`), found {}",
                        formats.len(),
                        items.len()
                    ));
                }
                VariantValue::Fields(self.elements(formats.iter().zip(items), path)?)
            }
            VariantFormat::Struct(fields) => {
                VariantValue::Fields(self.fields(variant, fields, content, path)?)
            }
            VariantFormat::Variable(_) => return Err("the description is incomplete".to_owned()),
        };
        path.pop();
        Ok(Encoded::Variant(index, value))
    }
}

fn names(fields: &[Named<Format>]) -> String {
    fields
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An integer: a JSON integer in range, or a string holding one (for
/// 64- and 128-bit values that JSON tools round).
fn int<T: TryFrom<i128> + TryFrom<u128>>(json: &Value) -> Option<T> {
    match json {
        Value::Number(n) => n
            .as_i64()
            .and_then(|i| T::try_from(i128::from(i)).ok())
            .or_else(|| n.as_u64().and_then(|u| T::try_from(u128::from(u)).ok())),
        Value::String(s) => s
            .parse::<i128>()
            .ok()
            .and_then(|i| T::try_from(i).ok())
            .or_else(|| s.parse::<u128>().ok().and_then(|u| T::try_from(u).ok())),
        _ => None,
    }
}

/// A number, or `"NaN"`, `"inf"`, `"-inf"` (JSON has none of them).
fn float(json: &Value) -> Option<f64> {
    match json {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "inf" | "Infinity" => Some(f64::INFINITY),
            "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn expected(format: &Format, json: &Value) -> String {
    format!("expected {}, found {}", render::format(format), found(json))
}

/// The JSON a person wrote, shortened.
pub fn found(json: &Value) -> String {
    let text = json.to_string();
    if text.chars().count() > 40 {
        let short: String = text.chars().take(37).collect();
        format!("{short}...")
    } else {
        text
    }
}

impl Serialize for Encoded {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Encoded::Unit => serializer.serialize_unit(),
            Encoded::Bool(v) => serializer.serialize_bool(*v),
            Encoded::I8(v) => serializer.serialize_i8(*v),
            Encoded::I16(v) => serializer.serialize_i16(*v),
            Encoded::I32(v) => serializer.serialize_i32(*v),
            Encoded::I64(v) => serializer.serialize_i64(*v),
            Encoded::I128(v) => serializer.serialize_i128(*v),
            Encoded::U8(v) => serializer.serialize_u8(*v),
            Encoded::U16(v) => serializer.serialize_u16(*v),
            Encoded::U32(v) => serializer.serialize_u32(*v),
            Encoded::U64(v) => serializer.serialize_u64(*v),
            Encoded::U128(v) => serializer.serialize_u128(*v),
            Encoded::F32(v) => serializer.serialize_f32(*v),
            Encoded::F64(v) => serializer.serialize_f64(*v),
            Encoded::Char(v) => serializer.serialize_char(*v),
            Encoded::Str(v) => serializer.serialize_str(v),
            Encoded::Bytes(v) => serializer.serialize_bytes(v),
            Encoded::Option(None) => serializer.serialize_none(),
            Encoded::Option(Some(v)) => serializer.serialize_some(v.as_ref()),
            Encoded::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Encoded::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Encoded::Tuple(items) => {
                let mut tuple = serializer.serialize_tuple(items.len())?;
                for item in items {
                    tuple.serialize_element(item)?;
                }
                tuple.end()
            }
            // Names are not written by the encoding; only the index is.
            Encoded::Variant(index, VariantValue::Unit) => {
                serializer.serialize_unit_variant("", *index, "")
            }
            Encoded::Variant(index, VariantValue::NewType(v)) => {
                serializer.serialize_newtype_variant("", *index, "", v.as_ref())
            }
            Encoded::Variant(index, VariantValue::Fields(fields)) => {
                let mut variant =
                    serializer.serialize_tuple_variant("", *index, "", fields.len())?;
                for field in fields {
                    variant.serialize_field(field)?;
                }
                variant.end()
            }
        }
    }
}
