//! Limits for decoding: a `serde` deserializer adapter that fails a value
//! nested deeper than a bound, instead of recursing until the stack
//! overflows, and one that holds more values than its input could encode.
//! A recursive type (a tree of `Box`es) costs one byte per level on the
//! wire, so without a bound a single frame could nest millions deep; and a
//! sequence of zero-sized values (`Vec<()>`) costs nothing per element, so
//! a length field of 2^60 would keep the decoder busy forever.
//!
//! Every `deserialize_*` call goes one level down; the visitor, the
//! sequence, map and enum accessors and the seeds they are handed carry the
//! levels left. Everything else is passed through unchanged (including
//! `is_human_readable`, which types consult to pick their format).

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// How deep a decoded value may nest. Far beyond any non-recursive type,
/// and far below what the default 2 MiB thread stack survives.
pub(crate) const MAX_DEPTH: usize = 256;

/// Values a decode may produce per byte of input (plus a small allowance):
/// every value but a zero-sized one costs at least a byte, and wrappers
/// (newtypes, nested structs) add a few more values per byte.
const VALUES_PER_BYTE: usize = 16;

/// Decodes with seed `S` (a `PhantomData<T>` for a `T`) from `len` bytes,
/// with at most `MAX_DEPTH` levels of nesting and at most
/// `VALUES_PER_BYTE` values per byte.
pub(crate) struct Limited<S> {
    len: usize,
    seed: S,
}

impl<S> Limited<S> {
    pub(crate) fn with_seed(len: usize, seed: S) -> Self {
        Limited { len, seed }
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Limited<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        let fuel = Cell::new(
            self.len
                .saturating_mul(VALUES_PER_BYTE)
                .saturating_add(4096),
        );
        self.seed.deserialize(Depth {
            inner: deserializer,
            left: MAX_DEPTH,
            fuel: &fuel,
        })
    }
}

/// A deserializer with `left` levels to go, and the values left for the
/// whole decode.
struct Depth<'f, D> {
    inner: D,
    left: usize,
    fuel: &'f Cell<usize>,
}

/// A visitor, seed or accessor whose nested values have `left` levels.
struct Level<'f, X> {
    inner: X,
    left: usize,
    fuel: &'f Cell<usize>,
}

fn too_deep<E: de::Error>() -> E {
    E::custom(format_args!(
        "the value nests more than {MAX_DEPTH} levels deep"
    ))
}

fn too_many<E: de::Error>() -> E {
    E::custom("the value holds more elements than its encoding could (zero-sized elements?)")
}

macro_rules! forward {
    ($($method:ident $(($($arg:ident: $ty:ty),*))?;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($($arg: $ty,)*)? visitor: V) -> Result<V::Value, D::Error> {
                let left = self.left.checked_sub(1).ok_or_else(too_deep::<D::Error>)?;
                let fuel = self.fuel.get().checked_sub(1).ok_or_else(too_many::<D::Error>)?;
                self.fuel.set(fuel);
                self.inner.$method($($($arg,)*)? Level { inner: visitor, left, fuel: self.fuel })
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Depth<'_, D> {
    type Error = D::Error;

    forward! {
        deserialize_any; deserialize_bool; deserialize_i8; deserialize_i16; deserialize_i32;
        deserialize_i64; deserialize_i128; deserialize_u8; deserialize_u16; deserialize_u32;
        deserialize_u64; deserialize_u128; deserialize_f32; deserialize_f64; deserialize_char;
        deserialize_str; deserialize_string; deserialize_bytes; deserialize_byte_buf;
        deserialize_option; deserialize_unit; deserialize_seq; deserialize_map;
        deserialize_identifier; deserialize_ignored_any;
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! pass {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Level<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    pass! {
        visit_bool(bool); visit_i8(i8); visit_i16(i16); visit_i32(i32); visit_i64(i64);
        visit_i128(i128); visit_u8(u8); visit_u16(u16); visit_u32(u32); visit_u64(u64);
        visit_u128(u128); visit_f32(f32); visit_f64(f64); visit_char(char);
        visit_str(&str); visit_borrowed_str(&'de str); visit_string(String);
        visit_bytes(&[u8]); visit_borrowed_bytes(&'de [u8]); visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Depth {
            inner: d,
            left: self.left,
            fuel: self.fuel,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Depth {
            inner: d,
            left: self.left,
            fuel: self.fuel,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(Level {
            inner: seq,
            left: self.left,
            fuel: self.fuel,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(Level {
            inner: map,
            left: self.left,
            fuel: self.fuel,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(Level {
            inner: data,
            left: self.left,
            fuel: self.fuel,
        })
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Level<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Depth {
            inner: d,
            left: self.left,
            fuel: self.fuel,
        })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Level<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Level {
            inner: seed,
            left: self.left,
            fuel: self.fuel,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Level<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Level {
            inner: seed,
            left: self.left,
            fuel: self.fuel,
        })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(Level {
            inner: seed,
            left: self.left,
            fuel: self.fuel,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'f, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Level<'f, A> {
    type Error = A::Error;
    type Variant = Level<'f, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let (left, fuel) = (self.left, self.fuel);
        let (value, variant) = self.inner.variant_seed(Level {
            inner: seed,
            left,
            fuel,
        })?;
        Ok((
            value,
            Level {
                inner: variant,
                left,
                fuel,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Level<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(Level {
            inner: seed,
            left: self.left,
            fuel: self.fuel,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(
            len,
            Level {
                inner: visitor,
                left: self.left,
                fuel: self.fuel,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(
            fields,
            Level {
                inner: visitor,
                left: self.left,
                fuel: self.fuel,
            },
        )
    }
}
