//! A value's encoding to JSON, following its type's format: what a call
//! answers, printed as `serde_json` would print the Rust value.

use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde_json::{Map, Number, Value};

use rpc_runtime::reflection::{ContainerFormat, Format, Named, Registry, VariantFormat};

/// Deeper than this, a format refers to itself without end.
const MAX_DEPTH: usize = 256;

/// Decodes one value of `format` from `bytes` (the whole of them).
///
/// # Errors
/// When the bytes are not a value of that format.
pub fn decode(format: &Format, types: &Registry, bytes: &[u8]) -> Result<Value, String> {
    rpc_runtime::reflection::decode_seed(
        Seed {
            format,
            types,
            depth: 0,
        },
        bytes,
    )
    .map_err(|e| e.to_string())
}

/// Decodes a value of `format` into JSON.
#[derive(Clone, Copy)]
struct Seed<'a> {
    format: &'a Format,
    types: &'a Registry,
    depth: usize,
}

impl<'a> Seed<'a> {
    fn inner(self, format: &'a Format) -> Seed<'a> {
        Seed {
            format,
            types: self.types,
            depth: self.depth + 1,
        }
    }
}

fn custom<E: serde::de::Error>(message: impl fmt::Display) -> E {
    E::custom(message)
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(custom(format_args!(
                "nested more than {MAX_DEPTH} levels deep"
            )));
        }
        match self.format {
            Format::Unit => d.deserialize_unit(Json(self)),
            Format::Bool => d.deserialize_bool(Json(self)),
            Format::I8 => d.deserialize_i8(Json(self)),
            Format::I16 => d.deserialize_i16(Json(self)),
            Format::I32 => d.deserialize_i32(Json(self)),
            Format::I64 => d.deserialize_i64(Json(self)),
            Format::I128 => d.deserialize_i128(Json(self)),
            Format::U8 => d.deserialize_u8(Json(self)),
            Format::U16 => d.deserialize_u16(Json(self)),
            Format::U32 => d.deserialize_u32(Json(self)),
            Format::U64 => d.deserialize_u64(Json(self)),
            Format::U128 => d.deserialize_u128(Json(self)),
            Format::F32 => d.deserialize_f32(Json(self)),
            Format::F64 => d.deserialize_f64(Json(self)),
            Format::Char => d.deserialize_char(Json(self)),
            Format::Str => d.deserialize_string(Json(self)),
            Format::Bytes => d.deserialize_byte_buf(Json(self)),
            Format::Option(_) => d.deserialize_option(Json(self)),
            Format::Seq(_) => d.deserialize_seq(Json(self)),
            Format::Map { .. } => d.deserialize_map(Json(self)),
            Format::Tuple(formats) => d.deserialize_tuple(formats.len(), Json(self)),
            Format::TupleArray { size, .. } => d.deserialize_tuple(*size, Json(self)),
            Format::TypeName(name) => match self.types.get(name) {
                Some(ContainerFormat::UnitStruct) => d.deserialize_unit(Json(self)),
                // The encoding of a newtype is its content's.
                Some(ContainerFormat::NewTypeStruct(inner)) => self.inner(inner).deserialize(d),
                Some(ContainerFormat::TupleStruct(formats)) => {
                    d.deserialize_tuple(formats.len(), Container(self, name))
                }
                Some(ContainerFormat::Struct(fields)) => {
                    d.deserialize_tuple(fields.len(), Container(self, name))
                }
                Some(ContainerFormat::Enum(_)) => {
                    d.deserialize_enum("", &[], Container(self, name))
                }
                None => Err(custom(format_args!("the description has no type `{name}`"))),
            },
            Format::Variable(_) => Err(custom("the description is incomplete")),
        }
    }
}

/// The visitor for a format that is not a named type.
struct Json<'a>(Seed<'a>);

impl<'de> Visitor<'de> for Json<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of {}", crate::render::format(self.0.format))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or_else(
            |_| Value::String(v.to_string()),
            |v| Value::Number(v.into()),
        ))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(u64::try_from(v).map_or_else(
            |_| Value::String(v.to_string()),
            |v| Value::Number(v.into()),
        ))
    }
    fn visit_f32<E: serde::de::Error>(self, v: f32) -> Result<Value, E> {
        // Through the f32's shortest decimal: widened as it is, `0.1_f32`
        // would print as 0.10000000149011612.
        let shortest = v.to_string().parse().unwrap_or(f64::from(v));
        Ok(float(shortest))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }
    fn visit_char<E: serde::de::Error>(self, v: char) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Array(
            v.iter().map(|b| Value::Number((*b).into())).collect(),
        ))
    }
    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        self.visit_bytes(&v)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0.format {
            Format::Option(inner) => self.0.inner(inner).deserialize(d),
            _ => Err(custom("an option where the format has none")),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let seed = self.0;
        let mut items = Vec::new();
        match seed.format {
            Format::Seq(inner) | Format::TupleArray { content: inner, .. } => {
                while let Some(item) = seq.next_element_seed(seed.inner(inner))? {
                    items.push(item);
                }
            }
            Format::Tuple(formats) => {
                for format in formats {
                    items.push(next(&mut seq, seed.inner(format))?);
                }
            }
            _ => return Err(custom("a sequence where the format has none")),
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Format::Map { key, value } = self.0.format else {
            return Err(custom("a map where the format has none"));
        };
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry_seed(self.0.inner(key), self.0.inner(value))? {
            entries.push(entry);
        }
        // As serde_json prints a map: an object, keys as strings; a map
        // whose keys cannot be strings, as [key, value] pairs.
        if entries
            .iter()
            .all(|(k, _)| matches!(k, Value::String(_) | Value::Number(_) | Value::Bool(_)))
        {
            Ok(Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| match k {
                        Value::String(s) => (s, v),
                        other => (other.to_string(), v),
                    })
                    .collect(),
            ))
        } else {
            Ok(Value::Array(
                entries
                    .into_iter()
                    .map(|(k, v)| Value::Array(vec![k, v]))
                    .collect(),
            ))
        }
    }
}

fn next<'de, A: SeqAccess<'de>>(seq: &mut A, seed: Seed<'_>) -> Result<Value, A::Error> {
    seq.next_element_seed(seed)?
        .ok_or_else(|| custom("the value ends early"))
}

/// JSON has no NaN or infinities: those print as strings.
fn float(v: f64) -> Value {
    Number::from_f64(v).map_or_else(
        || {
            Value::String(if v.is_nan() {
                "NaN".to_owned()
            } else if v > 0.0 {
                "inf".to_owned()
            } else {
                "-inf".to_owned()
            })
        },
        Value::Number,
    )
}

/// The visitor for a named struct, tuple struct or enum.
struct Container<'a>(Seed<'a>, &'a str);

impl<'a> Container<'a> {
    fn container(&self) -> Option<&'a ContainerFormat> {
        self.0.types.get(self.1)
    }
}

impl<'de> Visitor<'de> for Container<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of {}", self.1)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        match self.container() {
            Some(ContainerFormat::TupleStruct(formats)) => {
                let mut items = Vec::new();
                for format in formats {
                    items.push(next(&mut seq, self.0.inner(format))?);
                }
                Ok(Value::Array(items))
            }
            Some(ContainerFormat::Struct(fields)) => fields_of(&mut seq, self.0, fields),
            _ => Err(custom("a sequence where the format has none")),
        }
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let Some(ContainerFormat::Enum(variants)) = self.container() else {
            return Err(custom("an enum where the format has none"));
        };
        let (index, variant) = data.variant_seed(Index)?;
        let Some(Named {
            name,
            value: format,
        }) = variants.get(&index)
        else {
            return Err(custom(format_args!("{} has no variant {index}", self.1)));
        };
        let content = match format {
            VariantFormat::Unit => {
                variant.unit_variant()?;
                return Ok(Value::String(name.clone()));
            }
            VariantFormat::NewType(inner) => variant.newtype_variant_seed(self.0.inner(inner))?,
            VariantFormat::Tuple(formats) => {
                variant.tuple_variant(formats.len(), Fields(self.0, FieldsOf::Tuple(formats)))?
            }
            // Encoded as a tuple of its fields.
            VariantFormat::Struct(fields) => {
                variant.tuple_variant(fields.len(), Fields(self.0, FieldsOf::Struct(fields)))?
            }
            VariantFormat::Variable(_) => return Err(custom("the description is incomplete")),
        };
        let mut object = Map::new();
        object.insert(name.clone(), content);
        Ok(Value::Object(object))
    }
}

fn fields_of<'de, A: SeqAccess<'de>>(
    seq: &mut A,
    seed: Seed<'_>,
    fields: &[Named<Format>],
) -> Result<Value, A::Error> {
    let mut object = Map::new();
    for field in fields {
        object.insert(field.name.clone(), next(seq, seed.inner(&field.value))?);
    }
    Ok(Value::Object(object))
}

enum FieldsOf<'a> {
    Tuple(&'a [Format]),
    Struct(&'a [Named<Format>]),
}

/// The visitor for a tuple or struct variant's fields.
struct Fields<'a>(Seed<'a>, FieldsOf<'a>);

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a variant's fields")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        match self.1 {
            FieldsOf::Tuple(formats) => {
                let mut items = Vec::new();
                for format in formats {
                    items.push(next(&mut seq, self.0.inner(format))?);
                }
                Ok(Value::Array(items))
            }
            FieldsOf::Struct(fields) => fields_of(&mut seq, self.0, fields),
        }
    }
}

/// A variant's index, as the encoding gives it.
struct Index;

impl<'de> DeserializeSeed<'de> for Index {
    type Value = u32;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u32, D::Error> {
        serde::Deserialize::deserialize(d)
    }
}
