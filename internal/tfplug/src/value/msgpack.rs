//! cty values in MessagePack, the encoding of `DynamicValue.msgpack` (Terraform's
//! `docs/plugin-protocol/object-wire-format.md`, byte-compatible with go-cty's `cty/msgpack`).
//!
//! - null is nil; an unknown is extension 0 (`d4 00 00`), or extension 12 carrying a map of
//!   refinements (1: nullness, 2: string prefix, 3/4: number bounds `[n, inclusive]`, 5/6:
//!   collection length bounds) when it has any that apply to its type.
//! - numbers: an integer within `i64` as the most compact msgpack int, any other `f64` as a
//!   float64, anything else as its decimal text; all three decode, into the canonical
//!   [`Number`] (integral floats within `i64` become `Int`, strings an `f64` holds exactly
//!   become `Float`).
//! - lists, sets and tuples are arrays (a set's elements in the order the `Value` holds them),
//!   maps and objects are maps (object attributes in name order, every attribute of the type,
//!   null where the `Value` lacks it).
//! - where the type is `dynamic`, a known value goes as `[type JSON as bin, value]` with the type
//!   inferred from the `Value`; null and unknown go bare, as go-cty writes them.
//!
//! Decoding tolerates object attributes missing from the map (they decode as null) but refuses
//! attributes the type does not have. Any extension code is an unknown; only code 12's payload
//! is read, and refinement keys it does not know are skipped.

use std::collections::BTreeMap;

use super::json::{number_from_f64, parse_number};
use super::types_json::{
    infer_type, type_from_json_bytes, value_kind, write_type_json, PathError, Step, MAX_DEPTH,
};
use super::{CodecError, Number, Refinements, Type, Value};

const FORMAT: &str = "msgpack";
/// go-cty shortens string-prefix refinements to this many bytes; Terraform refuses refinement
/// payloads over 1 KiB.
const MAX_PREFIX_BYTES: usize = 256;
const EXT_UNKNOWN_REFINED: i8 = 12;

/// Encodes `v` as msgpack of type `ty`.
pub fn encode(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(256);
    encode_into(v, ty, &mut out)?;
    Ok(out)
}

/// Encodes `v` as msgpack of type `ty`, appending to `out` (lets a caller reuse one buffer).
pub fn encode_into(v: &Value, ty: &Type, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut w = Writer { out };
    w.value(v, ty, 0).map_err(|e| e.into_codec_error(FORMAT))
}

/// Decodes msgpack of type `ty`. The whole input must be one value.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut r = Reader { b: bytes, pos: 0 };
    let v = r.value(ty, 0).map_err(|e| e.into_codec_error(FORMAT))?;
    if r.pos != bytes.len() {
        return Err(PathError::malformed(
            format!("{} bytes left over after the value", bytes.len() - r.pos),
            r.pos,
        )
        .into_codec_error(FORMAT));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Writing.

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn nil(&mut self) {
        self.out.push(0xc0);
    }

    fn bool(&mut self, b: bool) {
        self.out.push(if b { 0xc3 } else { 0xc2 });
    }

    fn uint(&mut self, u: u64) {
        if u < 0x80 {
            self.out.push(u as u8);
        } else if u <= 0xff {
            self.out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            self.out.push(0xcd);
            self.out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            self.out.push(0xce);
            self.out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            self.out.push(0xcf);
            self.out.extend_from_slice(&u.to_be_bytes());
        }
    }

    /// The most compact form, as go-cty's encoder picks it (non-negative values as unsigned).
    fn int(&mut self, i: i64) {
        if i >= 0 {
            self.uint(i as u64);
        } else if i >= -32 {
            self.out.push(i as i8 as u8);
        } else if i >= i64::from(i8::MIN) {
            self.out.extend_from_slice(&[0xd0, i as i8 as u8]);
        } else if i >= i64::from(i16::MIN) {
            self.out.push(0xd1);
            self.out.extend_from_slice(&(i as i16).to_be_bytes());
        } else if i >= i64::from(i32::MIN) {
            self.out.push(0xd2);
            self.out.extend_from_slice(&(i as i32).to_be_bytes());
        } else {
            self.out.push(0xd3);
            self.out.extend_from_slice(&i.to_be_bytes());
        }
    }

    fn f64(&mut self, f: f64) {
        self.out.push(0xcb);
        self.out.extend_from_slice(&f.to_bits().to_be_bytes());
    }

    fn str(&mut self, s: &str) {
        let n = s.len();
        if n < 32 {
            self.out.push(0xa0 | n as u8);
        } else if n <= 0xff {
            self.out.extend_from_slice(&[0xd9, n as u8]);
        } else if n <= 0xffff {
            self.out.push(0xda);
            self.out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.out.push(0xdb);
            self.out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self.out.extend_from_slice(s.as_bytes());
    }

    fn bin_header(&mut self, n: usize) {
        if n <= 0xff {
            self.out.extend_from_slice(&[0xc4, n as u8]);
        } else if n <= 0xffff {
            self.out.push(0xc5);
            self.out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.out.push(0xc6);
            self.out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    fn array_header(&mut self, n: usize) {
        if n < 16 {
            self.out.push(0x90 | n as u8);
        } else if n <= 0xffff {
            self.out.push(0xdc);
            self.out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.out.push(0xdd);
            self.out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    fn map_header(&mut self, n: usize) {
        if n < 16 {
            self.out.push(0x80 | n as u8);
        } else if n <= 0xffff {
            self.out.push(0xde);
            self.out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.out.push(0xdf);
            self.out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    fn ext_header(&mut self, code: i8, n: usize) {
        match n {
            1 => self.out.push(0xd4),
            2 => self.out.push(0xd5),
            4 => self.out.push(0xd6),
            8 => self.out.push(0xd7),
            16 => self.out.push(0xd8),
            _ if n <= 0xff => self.out.extend_from_slice(&[0xc7, n as u8]),
            _ if n <= 0xffff => {
                self.out.push(0xc8);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            _ => {
                self.out.push(0xc9);
                self.out.extend_from_slice(&(n as u32).to_be_bytes());
            }
        }
        self.out.push(code as u8);
    }

    fn number(&mut self, n: &Number, ty: &Type) -> Result<(), PathError> {
        match n {
            Number::Int(i) => self.int(*i),
            Number::Float(f) if f.is_nan() => {
                return Err(PathError::mismatch(ty, "NaN is not a number cty can hold"))
            }
            Number::Float(f) => match number_from_f64(*f) {
                Number::Int(i) => self.int(i),
                _ => self.f64(*f),
            },
            Number::Big(s) => match parse_number(s).map_err(|e| PathError::mismatch(ty, e))? {
                Number::Int(i) => self.int(i),
                Number::Float(f) => self.f64(f),
                Number::Big(canonical) => self.str(&canonical),
            },
        }
        Ok(())
    }

    fn unknown(&mut self, r: &Refinements, ty: &Type) -> Result<(), PathError> {
        // Refinements are only written where they apply to the type, as go-cty does.
        let mut body = Vec::new();
        let mut entries = 0usize;
        {
            let mut w = Writer { out: &mut body };
            if r.not_null && *ty != Type::Dynamic {
                w.uint(1);
                w.bool(false);
                entries += 1;
            }
            match ty {
                Type::String => {
                    if let Some(p) = r.string_prefix.as_deref().filter(|p| !p.is_empty()) {
                        w.uint(2);
                        w.str(shorten_prefix(p));
                        entries += 1;
                    }
                }
                Type::Number => {
                    for (key, bound) in [(3, &r.number_lower), (4, &r.number_upper)] {
                        if let Some((n, inclusive)) = bound {
                            w.uint(key);
                            w.array_header(2);
                            w.number(n, ty)?;
                            w.bool(*inclusive);
                            entries += 1;
                        }
                    }
                }
                Type::List(_) | Type::Set(_) | Type::Map(_) => {
                    for (key, bound) in [(5, r.length_lower), (6, r.length_upper)] {
                        if let Some(n) = bound {
                            w.uint(key);
                            w.uint(n);
                            entries += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        if entries == 0 {
            self.out.extend_from_slice(&[0xd4, 0, 0]);
            return Ok(());
        }
        let mut head = Vec::with_capacity(3);
        Writer { out: &mut head }.map_header(entries);
        self.ext_header(EXT_UNKNOWN_REFINED, head.len() + body.len());
        self.out.extend_from_slice(&head);
        self.out.extend_from_slice(&body);
        Ok(())
    }

    fn value(&mut self, v: &Value, ty: &Type, depth: usize) -> Result<(), PathError> {
        if depth > MAX_DEPTH {
            return Err(PathError::mismatch(
                ty,
                format!("value nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        match v {
            Value::Null => {
                self.nil();
                return Ok(());
            }
            Value::Unknown(r) => return self.unknown(r, ty),
            _ => {}
        }
        let mismatch = || PathError::mismatch(ty, format!("got a {}", value_kind(v)));
        match ty {
            Type::Dynamic => {
                let concrete = infer_type(v, depth)?;
                self.array_header(2);
                let mut tj = Vec::with_capacity(16);
                write_type_json(&concrete, &mut tj);
                self.bin_header(tj.len());
                self.out.extend_from_slice(&tj);
                self.value(v, &concrete, depth + 1)?;
            }
            Type::Bool => match v {
                Value::Bool(b) => self.bool(*b),
                _ => return Err(mismatch()),
            },
            Type::Number => match v {
                Value::Number(n) => self.number(n, ty)?,
                _ => return Err(mismatch()),
            },
            Type::String => match v {
                Value::String(s) => self.str(s),
                _ => return Err(mismatch()),
            },
            Type::List(et) | Type::Set(et) => match v {
                Value::List(elems) | Value::Set(elems) | Value::Tuple(elems) => {
                    self.array_header(elems.len());
                    for (i, e) in elems.iter().enumerate() {
                        self.value(e, et, depth + 1)
                            .map_err(|err| err.at(Step::Index(i)))?;
                    }
                }
                _ => return Err(mismatch()),
            },
            Type::Tuple(ets) => match v {
                Value::List(elems) | Value::Set(elems) | Value::Tuple(elems) => {
                    if elems.len() != ets.len() {
                        return Err(PathError::mismatch(
                            ty,
                            format!("got {} elements", elems.len()),
                        ));
                    }
                    self.array_header(elems.len());
                    for (i, (e, et)) in elems.iter().zip(ets).enumerate() {
                        self.value(e, et, depth + 1)
                            .map_err(|err| err.at(Step::Index(i)))?;
                    }
                }
                _ => return Err(mismatch()),
            },
            Type::Map(et) => match v {
                Value::Map(m) | Value::Object(m) => {
                    self.map_header(m.len());
                    for (k, e) in m {
                        self.str(k);
                        self.value(e, et, depth + 1)
                            .map_err(|err| err.at(Step::Key(k.clone())))?;
                    }
                }
                _ => return Err(mismatch()),
            },
            Type::Object { attrs, .. } => match v {
                Value::Object(m) | Value::Map(m) => {
                    if m.len() > attrs.len() || m.keys().any(|k| !attrs.contains_key(k)) {
                        let extra = m
                            .keys()
                            .find(|k| !attrs.contains_key(*k))
                            .cloned()
                            .unwrap_or_default();
                        return Err(PathError::mismatch(
                            ty,
                            format!("the type has no attribute {extra:?}"),
                        ));
                    }
                    self.map_header(attrs.len());
                    for (k, at) in attrs {
                        self.str(k);
                        let e = m.get(k).unwrap_or(&Value::Null);
                        self.value(e, at, depth + 1)
                            .map_err(|err| err.at(Step::Attr(k.clone())))?;
                    }
                }
                _ => return Err(mismatch()),
            },
        }
        Ok(())
    }
}

/// A string-prefix refinement cut to at most 256 bytes; a cut prefix also loses its last
/// character (which might have been the start of a longer grapheme), as go-cty does.
fn shorten_prefix(p: &str) -> &str {
    if p.len() <= MAX_PREFIX_BYTES {
        return p;
    }
    let mut end = MAX_PREFIX_BYTES - 1;
    while !p.is_char_boundary(end) {
        end -= 1;
    }
    &p[..end]
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// Inserts `k`, handing it back if it was already there.
fn insert_new(m: &mut BTreeMap<String, Value>, k: String, v: Value) -> Option<String> {
    use std::collections::btree_map::Entry;
    match m.entry(k) {
        Entry::Vacant(e) => {
            e.insert(v);
            None
        }
        Entry::Occupied(e) => Some(e.key().clone()),
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

/// What the next msgpack item is, with its length or payload where it has one.
enum Item<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(usize),
    Map(usize),
    Ext(i8, &'a [u8]),
}

impl<'a> Item<'a> {
    fn describe(&self) -> &'static str {
        match self {
            Item::Nil => "nil",
            Item::Bool(_) => "boolean",
            Item::Int(_) | Item::Uint(_) => "integer",
            Item::Float(_) => "float",
            Item::Str(_) => "string",
            Item::Bin(_) => "binary",
            Item::Array(_) => "array",
            Item::Map(_) => "map",
            Item::Ext(..) => "extension",
        }
    }
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PathError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(PathError::malformed(
                format!("unexpected end of input (wanted {n} more bytes)"),
                self.pos,
            )),
        }
    }

    fn be(&mut self, n: usize) -> Result<u64, PathError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn item(&mut self) -> Result<Item<'a>, PathError> {
        let at = self.pos;
        let c = *self
            .take(1)?
            .first()
            .ok_or_else(|| PathError::malformed("unexpected end of input", at))?;
        Ok(match c {
            0x00..=0x7f => Item::Int(i64::from(c)),
            0x80..=0x8f => Item::Map(usize::from(c & 0x0f)),
            0x90..=0x9f => Item::Array(usize::from(c & 0x0f)),
            0xa0..=0xbf => Item::Str(self.take(usize::from(c & 0x1f))?),
            0xc0 => Item::Nil,
            0xc2 => Item::Bool(false),
            0xc3 => Item::Bool(true),
            0xc4..=0xc6 => {
                let n = self.be(1 << (c - 0xc4))? as usize;
                Item::Bin(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.be(1 << (c - 0xc7))? as usize;
                let code = self.take(1)?[0] as i8;
                Item::Ext(code, self.take(n)?)
            }
            0xca => Item::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Item::Float(f64::from_bits(self.be(8)?)),
            0xcc..=0xcf => Item::Uint(self.be(1 << (c - 0xcc))?),
            0xd0 => Item::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Item::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Item::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Item::Int(self.be(8)? as i64),
            0xd4..=0xd8 => {
                let code = self.take(1)?[0] as i8;
                Item::Ext(code, self.take(1 << (c - 0xd4))?)
            }
            0xd9..=0xdb => {
                let n = self.be(1 << (c - 0xd9))? as usize;
                Item::Str(self.take(n)?)
            }
            0xdc | 0xdd => Item::Array(self.be(2 << (c - 0xdc))? as usize),
            0xde | 0xdf => Item::Map(self.be(2 << (c - 0xde))? as usize),
            0xe0..=0xff => Item::Int(i64::from(c as i8)),
            0xc1 => {
                return Err(PathError::malformed(
                    "byte 0xc1 is never used in msgpack",
                    at,
                ))
            }
        })
    }

    fn utf8(&self, s: &'a [u8], at: usize) -> Result<&'a str, PathError> {
        std::str::from_utf8(s)
            .map_err(|e| PathError::malformed(format!("string is not valid UTF-8 ({e})"), at))
    }

    /// Skips `n` items of any shape without recursion.
    fn skip(&mut self, mut n: usize) -> Result<(), PathError> {
        while n > 0 {
            n -= 1;
            match self.item()? {
                Item::Array(k) => n = n.saturating_add(k),
                Item::Map(k) => n = n.saturating_add(k.saturating_mul(2)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Dispatches on the type; each kind has its own function so that the frame repeated per
    /// nesting level stays small (debug builds especially).
    fn value(&mut self, ty: &Type, depth: usize) -> Result<Value, PathError> {
        if depth > MAX_DEPTH {
            return Err(PathError::malformed(
                format!("nested deeper than {MAX_DEPTH} levels"),
                self.pos,
            ));
        }
        let at = self.pos;
        let item = self.item()?;
        match (item, ty) {
            (Item::Nil, _) => Ok(Value::Null),
            (Item::Ext(code, payload), _) => self.unknown(code, payload, ty, at),
            (Item::Array(2), Type::Dynamic) => self.dynamic(depth),
            (item, Type::Dynamic) => Err(PathError::mismatch(
                ty,
                format!(
                    "a dynamic value is a 2-element array [type, value], got a msgpack {}",
                    item.describe()
                ),
            )),
            (item, Type::Bool | Type::Number | Type::String) => self.primitive(item, ty, at),
            (Item::Array(n), Type::List(et) | Type::Set(et)) => {
                let elems = self.elements(n, et, depth)?;
                Ok(if matches!(ty, Type::List(_)) {
                    Value::List(elems)
                } else {
                    Value::Set(elems)
                })
            }
            (Item::Array(n), Type::Tuple(ets)) => self.tuple(n, ets, ty, depth),
            (Item::Map(n), Type::Map(et)) => self.map(n, et, depth, at),
            (Item::Map(n), Type::Object { attrs, .. }) => self.object(n, attrs, ty, depth, at),
            (item, _) => Err(PathError::mismatch(
                ty,
                format!("got a msgpack {}", item.describe()),
            )),
        }
    }

    fn dynamic(&mut self, depth: usize) -> Result<Value, PathError> {
        let tat = self.pos;
        let tj = match self.item()? {
            Item::Bin(b) | Item::Str(b) => b,
            other => {
                return Err(PathError::mismatch(
                    &Type::Dynamic,
                    format!(
                        "the type of a dynamic value is JSON in a binary, got a msgpack {}",
                        other.describe()
                    ),
                ))
            }
        };
        let concrete =
            type_from_json_bytes(tj).map_err(|e| PathError::malformed(e.to_string(), tat))?;
        self.value(&concrete, depth + 1)
    }

    fn primitive(&mut self, item: Item<'a>, ty: &Type, at: usize) -> Result<Value, PathError> {
        match (ty, item) {
            (Type::Bool, Item::Bool(b)) => Ok(Value::Bool(b)),
            (Type::Number, Item::Int(i)) => Ok(Value::Number(Number::Int(i))),
            (Type::Number, Item::Uint(u)) => Ok(Value::Number(match i64::try_from(u) {
                Ok(i) => Number::Int(i),
                Err(_) => parse_number(&u.to_string()).map_err(|e| PathError::malformed(e, at))?,
            })),
            (Type::Number, Item::Float(f)) if f.is_nan() => {
                Err(PathError::mismatch(ty, "NaN is not a number cty can hold"))
            }
            (Type::Number, Item::Float(f)) => Ok(Value::Number(number_from_f64(f))),
            (Type::Number, Item::Str(s)) => {
                let text = self.utf8(s, at)?;
                parse_number(text)
                    .map(Value::Number)
                    .map_err(|e| PathError::mismatch(ty, e))
            }
            (Type::String, Item::Str(s)) => Ok(Value::String(self.utf8(s, at)?.to_owned())),
            (_, item) => Err(PathError::mismatch(
                ty,
                format!("got a msgpack {}", item.describe()),
            )),
        }
    }

    fn elements(&mut self, n: usize, et: &Type, depth: usize) -> Result<Vec<Value>, PathError> {
        let mut elems = Vec::with_capacity(n.min(self.b.len() - self.pos));
        for i in 0..n {
            elems.push(
                self.value(et, depth + 1)
                    .map_err(|e| e.at(Step::Index(i)))?,
            );
        }
        Ok(elems)
    }

    fn tuple(
        &mut self,
        n: usize,
        ets: &[Type],
        ty: &Type,
        depth: usize,
    ) -> Result<Value, PathError> {
        if n != ets.len() {
            return Err(PathError::mismatch(
                ty,
                format!("got an array of {n} elements"),
            ));
        }
        let mut elems = Vec::with_capacity(n);
        for (i, et) in ets.iter().enumerate() {
            elems.push(
                self.value(et, depth + 1)
                    .map_err(|e| e.at(Step::Index(i)))?,
            );
        }
        Ok(Value::Tuple(elems))
    }

    fn map(&mut self, n: usize, et: &Type, depth: usize, at: usize) -> Result<Value, PathError> {
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = self.key()?;
            let v = self
                .value(et, depth + 1)
                .map_err(|e| e.at(Step::Key(k.clone())))?;
            if let Some(k) = insert_new(&mut m, k, v) {
                return Err(PathError::malformed(format!("duplicate map key {k:?}"), at));
            }
        }
        Ok(Value::Map(m))
    }

    fn object(
        &mut self,
        n: usize,
        attrs: &BTreeMap<String, Type>,
        ty: &Type,
        depth: usize,
        at: usize,
    ) -> Result<Value, PathError> {
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = self.key()?;
            let Some(at_ty) = attrs.get(&k) else {
                return Err(PathError::mismatch(
                    ty,
                    format!("unsupported attribute {k:?}"),
                ));
            };
            let v = self
                .value(at_ty, depth + 1)
                .map_err(|e| e.at(Step::Attr(k.clone())))?;
            if let Some(k) = insert_new(&mut m, k, v) {
                return Err(PathError::malformed(
                    format!("duplicate attribute {k:?}"),
                    at,
                ));
            }
        }
        if m.len() < attrs.len() {
            for k in attrs.keys() {
                if !m.contains_key(k) {
                    m.insert(k.clone(), Value::Null);
                }
            }
        }
        Ok(Value::Object(m))
    }

    fn key(&mut self) -> Result<String, PathError> {
        let at = self.pos;
        match self.item()? {
            Item::Str(s) => Ok(self.utf8(s, at)?.to_owned()),
            other => Err(PathError::malformed(
                format!(
                    "map keys must be strings, got a msgpack {}",
                    other.describe()
                ),
                at,
            )),
        }
    }

    /// An unknown value; extension 12 with a payload carries refinements (ignored where the
    /// type is dynamic, as go-cty does).
    fn unknown(
        &mut self,
        code: i8,
        payload: &'a [u8],
        ty: &Type,
        at: usize,
    ) -> Result<Value, PathError> {
        if code != EXT_UNKNOWN_REFINED || payload.len() <= 1 || *ty == Type::Dynamic {
            return Ok(Value::unknown());
        }
        let mut r = Reader { b: payload, pos: 0 };
        let bad = |what: &str| {
            PathError::malformed(format!("invalid unknown-value refinements: {what}"), at)
        };
        let Item::Map(n) = r.item().map_err(|_| bad("not a map"))? else {
            return Err(bad("not a map"));
        };
        let mut refs = Refinements::default();
        for _ in 0..n {
            let key = match r.item().map_err(|_| bad("truncated"))? {
                Item::Int(k) => k,
                Item::Uint(k) => i64::try_from(k).unwrap_or(i64::MAX),
                _ => return Err(bad("a key is not an integer")),
            };
            match key {
                1 => match r.item().map_err(|_| bad("truncated"))? {
                    // false: definitely not null. true ("definitely null") is not a useful
                    // unknown; it is left unrefined.
                    Item::Bool(is_null) => refs.not_null = !is_null,
                    _ => return Err(bad("nullness is not a boolean")),
                },
                2 => match r.item().map_err(|_| bad("truncated"))? {
                    Item::Str(s) => {
                        let s = std::str::from_utf8(s)
                            .map_err(|_| bad("string prefix is not UTF-8"))?;
                        if *ty == Type::String && !s.is_empty() {
                            refs.string_prefix = Some(s.to_owned());
                        }
                    }
                    _ => return Err(bad("string prefix is not a string")),
                },
                3 | 4 => {
                    let bound = r
                        .value(&Type::Tuple(vec![Type::Number, Type::Bool]), 0)
                        .map_err(|_| bad("number bound is not [number, bool]"))?;
                    let Value::Tuple(parts) = bound else {
                        return Err(bad("number bound is not [number, bool]"));
                    };
                    let (Some(Value::Number(n)), Some(Value::Bool(inclusive))) =
                        (parts.first(), parts.get(1))
                    else {
                        return Err(bad("number bound is not [number, bool]"));
                    };
                    if *ty == Type::Number {
                        let b = Some((n.clone(), *inclusive));
                        if key == 3 {
                            refs.number_lower = b;
                        } else {
                            refs.number_upper = b;
                        }
                    }
                }
                5 | 6 => {
                    let n = match r.item().map_err(|_| bad("truncated"))? {
                        Item::Int(i) if i >= 0 => i as u64,
                        Item::Uint(u) => u,
                        _ => return Err(bad("length bound is not a non-negative integer")),
                    };
                    if matches!(ty, Type::List(_) | Type::Set(_) | Type::Map(_)) {
                        if key == 5 {
                            refs.length_lower = Some(n);
                        } else {
                            refs.length_upper = Some(n);
                        }
                    }
                }
                _ => r.skip(1).map_err(|_| bad("truncated"))?,
            }
        }
        Ok(Value::Unknown(refs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_forms_are_the_most_compact() {
        let enc = |i: i64| encode(&Value::int(i), &Type::Number).unwrap();
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0xcc, 0x80]);
        assert_eq!(enc(256), [0xcd, 0x01, 0x00]);
        assert_eq!(enc(65536), [0xce, 0, 1, 0, 0]);
        assert_eq!(enc(1 << 32), [0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(enc(-1), [0xff]);
        assert_eq!(enc(-32), [0xe0]);
        assert_eq!(enc(-33), [0xd0, 0xdf]);
        assert_eq!(enc(-129), [0xd1, 0xff, 0x7f]);
        assert_eq!(enc(-32769), [0xd2, 0xff, 0xff, 0x7f, 0xff]);
        assert_eq!(enc(i64::MIN), [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn long_prefixes_are_cut_at_a_character_boundary() {
        assert_eq!(shorten_prefix(&"a".repeat(1024)).len(), 255);
        assert_eq!(shorten_prefix(&"c".repeat(256)).len(), 256);
        let d = format!("{}🤷🤷", "d".repeat(255));
        assert_eq!(shorten_prefix(&d), "d".repeat(255));
    }
}
