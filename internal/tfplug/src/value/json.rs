//! cty values in JSON, as Terraform writes them in `RawState.json` (UpgradeResourceState) and
//! as the fallback `DynamicValue.json`.
//!
//! Objects and maps are JSON objects, lists, sets and tuples arrays, numbers JSON numbers with
//! their full decimal precision (parsed from the text, never through `f64`), and a value of type
//! `dynamic` is `{"value": V, "type": T}`. JSON has no unknown values: encoding one is an error.
//!
//! Decoding follows go-cty: an object attribute missing from the JSON decodes as null, an
//! attribute the type does not know is an error, and primitives convert as cty does (`"5"` for a
//! number, `true` or `12` for a string, `"true"` for a bool), so state written under an older
//! schema still reads.

use std::collections::BTreeMap;

use super::types_json::{
    friendly_name, infer_type, value_kind, write_json_string, write_type_json, PathError, Step,
    MAX_DEPTH,
};
use super::{CodecError, Number, Type, Value};

const FORMAT: &str = "JSON";

/// Encodes `v` as cty JSON of type `ty`.
pub fn encode(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    encode_value(v, ty, &mut out, 0).map_err(|e| e.into_codec_error(FORMAT))?;
    Ok(out)
}

/// Decodes cty JSON of type `ty`.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut p = Parser { b: bytes, pos: 0 };
    let v = p.value(ty, 0).map_err(|e| e.into_codec_error(FORMAT))?;
    p.ws();
    if p.pos != bytes.len() {
        return Err(
            PathError::malformed("trailing data after the value", p.pos).into_codec_error(FORMAT)
        );
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Numbers as decimal text, shared with the msgpack codec (which carries big numbers as strings).

/// Parses a decimal number (`-12`, `0.8`, `1e400`) into its canonical [`Number`]: `Int` when it
/// is integral and fits `i64`, `Float` when an `f64` holds it exactly, otherwise `Big` with a
/// plain decimal text (no exponent). Errors say what is wrong with the text.
pub(crate) fn parse_number(text: &str) -> Result<Number, String> {
    let d = Decimal::parse(text)?;
    Ok(d.classify())
}

/// The decimal text of a number as it goes into JSON: exact for integers, the shortest text that
/// reads back as the same `f64` for fractions (as go-cty writes them). Non-finite floats fail.
pub(crate) fn number_text(n: &Number) -> Result<String, String> {
    match n {
        Number::Int(i) => Ok(i.to_string()),
        Number::Float(f) if !f.is_finite() => {
            Err(format!("{f} cannot be written as a decimal number"))
        }
        Number::Float(f) if f.fract() == 0.0 => Ok(format!("{f:.0}")),
        Number::Float(f) => Ok(format!("{f}")),
        Number::Big(s) => match parse_number(s)? {
            Number::Big(canonical) => Ok(canonical),
            other => number_text(&other),
        },
    }
}

/// The canonical number for an `f64`: integral values within `i64` become `Int`.
pub(crate) fn number_from_f64(f: f64) -> Number {
    if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
    {
        Number::Int(f as i64)
    } else {
        Number::Float(f)
    }
}

/// Beyond this many digits or powers of ten, a number is refused rather than expanded.
const MAX_DECIMAL_DIGITS: i64 = 10_000;

/// A decimal `±digits × 10^exp`, `digits` without leading or trailing zeros (empty for zero).
#[derive(Debug, PartialEq)]
struct Decimal {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

impl Decimal {
    fn parse(text: &str) -> Result<Decimal, String> {
        let b = text.as_bytes();
        let bad = || format!("{text:?} is not a decimal number");
        let mut i = 0;
        let neg = match b.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_part = &b[int_start..i];
        let mut frac_part: &[u8] = &[];
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_part = &b[s..i];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let mut exp: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let eneg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if exp < 1_000_000_000 {
                    exp = exp * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if s == i {
                return Err(bad());
            }
            if eneg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return Err(bad());
        }
        let mut digits: Vec<u8> = int_part.iter().chain(frac_part).map(|c| c - b'0').collect();
        exp -= frac_part.len() as i64;
        let lead = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..lead);
        while digits.last() == Some(&0) {
            digits.pop();
            exp += 1;
        }
        if digits.is_empty() {
            return Ok(Decimal {
                neg: false,
                digits,
                exp: 0,
            });
        }
        let magnitude = exp + digits.len() as i64;
        if digits.len() as i64 > MAX_DECIMAL_DIGITS
            || !(-MAX_DECIMAL_DIGITS..=MAX_DECIMAL_DIGITS).contains(&magnitude)
        {
            return Err(format!(
                "{text:?} is beyond the {MAX_DECIMAL_DIGITS} decimal digits this provider handles"
            ));
        }
        Ok(Decimal { neg, digits, exp })
    }

    fn classify(&self) -> Number {
        if self.digits.is_empty() {
            return Number::Int(0);
        }
        if self.exp >= 0 && self.digits.len() as i64 + self.exp <= 19 {
            let mut m: i128 = 0;
            for &d in &self.digits {
                m = m * 10 + i128::from(d);
            }
            for _ in 0..self.exp {
                m *= 10;
            }
            if self.neg {
                m = -m;
            }
            if let Ok(i) = i64::try_from(m) {
                return Number::Int(i);
            }
        }
        if let Some(f) = self.exact_f64() {
            return Number::Float(f);
        }
        Number::Big(self.plain_text())
    }

    /// The `f64` equal to this decimal, if there is one.
    fn exact_f64(&self) -> Option<f64> {
        // Cheap refusals first. A fraction d×10^-k is dyadic only if 5^k divides d, so d must end
        // in 5; an integer d×10^k has an odd part of at least 5^k, which exceeds 2^53 past k=22;
        // an f64 has at most 767 significant decimal digits.
        if self.digits.len() > 767
            || self.exp > 22
            || (self.exp < 0 && self.digits.last() != Some(&5))
        {
            return None;
        }
        let text: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        let f: f64 = format!("{text}e{}", self.exp).parse().ok()?;
        if !f.is_finite() || f == 0.0 {
            return None;
        }
        // `{:.800e}` prints the exact binary value (it needs at most 767 digits).
        let exact = Decimal::parse(&format!("{f:.800e}")).ok()?;
        if exact.digits == self.digits && exact.exp == self.exp {
            Some(if self.neg { -f } else { f })
        } else {
            None
        }
    }

    fn plain_text(&self) -> String {
        let mut s = String::with_capacity(self.digits.len() + 4);
        if self.neg {
            s.push('-');
        }
        let digit = |d: &u8| char::from(b'0' + d);
        if self.exp >= 0 {
            s.extend(self.digits.iter().map(digit));
            s.extend(std::iter::repeat_n('0', self.exp as usize));
        } else {
            let point = self.digits.len() as i64 + self.exp;
            if point > 0 {
                let (a, b) = self.digits.split_at(point as usize);
                s.extend(a.iter().map(digit));
                s.push('.');
                s.extend(b.iter().map(digit));
            } else {
                s.push_str("0.");
                s.extend(std::iter::repeat_n('0', (-point) as usize));
                s.extend(self.digits.iter().map(digit));
            }
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding.

fn encode_value(v: &Value, ty: &Type, out: &mut Vec<u8>, depth: usize) -> Result<(), PathError> {
    if depth > MAX_DEPTH {
        return Err(PathError::mismatch(
            ty,
            format!("value nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    if let Value::Unknown(_) = v {
        return Err(PathError::mismatch(
            ty,
            "an unknown value cannot be written as JSON",
        ));
    }
    if let Value::Null = v {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    let mismatch = || PathError::mismatch(ty, format!("got a {}", value_kind(v)));
    match ty {
        Type::Dynamic => {
            let concrete = infer_type(v, depth)?;
            out.extend_from_slice(br#"{"value":"#);
            encode_value(v, &concrete, out, depth + 1)?;
            out.extend_from_slice(br#","type":"#);
            write_type_json(&concrete, out);
            out.push(b'}');
        }
        Type::Bool => match v {
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            _ => return Err(mismatch()),
        },
        Type::Number => match v {
            Value::Number(n) => {
                let text = number_text(n).map_err(|e| PathError::mismatch(ty, e))?;
                out.extend_from_slice(text.as_bytes());
            }
            _ => return Err(mismatch()),
        },
        Type::String => match v {
            Value::String(s) => write_json_string(s, out),
            _ => return Err(mismatch()),
        },
        Type::List(et) | Type::Set(et) => match v {
            Value::List(elems) | Value::Set(elems) | Value::Tuple(elems) => {
                out.push(b'[');
                for (i, e) in elems.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    encode_value(e, et, out, depth + 1).map_err(|err| err.at(Step::Index(i)))?;
                }
                out.push(b']');
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
                out.push(b'[');
                for (i, (e, et)) in elems.iter().zip(ets).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    encode_value(e, et, out, depth + 1).map_err(|err| err.at(Step::Index(i)))?;
                }
                out.push(b']');
            }
            _ => return Err(mismatch()),
        },
        Type::Map(et) => match v {
            Value::Map(m) | Value::Object(m) => {
                out.push(b'{');
                for (i, (k, e)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_string(k, out);
                    out.push(b':');
                    encode_value(e, et, out, depth + 1)
                        .map_err(|err| err.at(Step::Key(k.clone())))?;
                }
                out.push(b'}');
            }
            _ => return Err(mismatch()),
        },
        Type::Object { attrs, .. } => match v {
            Value::Object(m) | Value::Map(m) => {
                if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                    return Err(PathError::mismatch(
                        ty,
                        format!("the type has no attribute {extra:?}"),
                    ));
                }
                out.push(b'{');
                for (i, (k, at)) in attrs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_string(k, out);
                    out.push(b':');
                    let e = m.get(k).unwrap_or(&Value::Null);
                    encode_value(e, at, out, depth + 1)
                        .map_err(|err| err.at(Step::Attr(k.clone())))?;
                }
                out.push(b'}');
            }
            _ => return Err(mismatch()),
        },
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decoding: a small type-directed JSON reader that keeps number text intact.

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

/// One JSON token's worth of value, before the type says what it means.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Num(&'a str),
    Str(String),
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Result<u8, PathError> {
        self.ws();
        self.b
            .get(self.pos)
            .copied()
            .ok_or_else(|| PathError::malformed("unexpected end of input", self.pos))
    }

    fn expect(&mut self, c: u8) -> Result<(), PathError> {
        if self.peek()? == c {
            self.pos += 1;
            Ok(())
        } else {
            Err(PathError::malformed(
                format!("expected '{}'", char::from(c)),
                self.pos,
            ))
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), PathError> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(PathError::malformed("invalid literal", self.pos))
        }
    }

    /// Reads a null, boolean, number or string; `None` when the next token opens an array or object.
    fn scalar(&mut self) -> Result<Option<Scalar<'a>>, PathError> {
        let c = self.peek()?;
        Ok(Some(match c {
            b'n' => {
                self.literal(b"null")?;
                Scalar::Null
            }
            b't' => {
                self.literal(b"true")?;
                Scalar::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Scalar::Bool(false)
            }
            b'"' => Scalar::Str(self.string()?),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while let Some(&c) = self.b.get(self.pos) {
                    if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                // Only ASCII was consumed, so this cannot fail.
                let text = std::str::from_utf8(&self.b[start..self.pos])
                    .map_err(|_| PathError::malformed("invalid number", start))?;
                Scalar::Num(text)
            }
            b'[' | b'{' => return Ok(None),
            _ => {
                return Err(PathError::malformed(
                    format!("unexpected character {:?}", char::from(c)),
                    self.pos,
                ))
            }
        }))
    }

    fn string(&mut self) -> Result<String, PathError> {
        self.expect(b'"')?;
        let start = self.pos;
        // Fast path: no escapes.
        while let Some(&c) = self.b.get(self.pos) {
            match c {
                b'"' => {
                    let s = std::str::from_utf8(&self.b[start..self.pos])
                        .map_err(|_| PathError::malformed("string is not valid UTF-8", start))?;
                    self.pos += 1;
                    return Ok(s.to_owned());
                }
                b'\\' => break,
                0..=0x1f => {
                    return Err(PathError::malformed(
                        "control character in string",
                        self.pos,
                    ))
                }
                _ => self.pos += 1,
            }
        }
        let mut buf: Vec<u8> = self.b[start..self.pos].to_vec();
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return Err(PathError::malformed("unterminated string", start));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.b.get(self.pos) else {
                        return Err(PathError::malformed("unterminated string", start));
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => buf.push(e),
                        b'b' => buf.push(0x08),
                        b'f' => buf.push(0x0c),
                        b'n' => buf.push(b'\n'),
                        b'r' => buf.push(b'\r'),
                        b't' => buf.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                if self.b[self.pos..].starts_with(b"\\u") {
                                    self.pos += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(PathError::malformed(
                                            "unpaired surrogate in string",
                                            self.pos,
                                        ));
                                    }
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    return Err(PathError::malformed(
                                        "unpaired surrogate in string",
                                        self.pos,
                                    ));
                                }
                            }
                            let ch = char::from_u32(cp).ok_or_else(|| {
                                PathError::malformed("invalid \\u escape", self.pos)
                            })?;
                            let mut tmp = [0u8; 4];
                            buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => {
                            return Err(PathError::malformed(
                                "invalid escape in string",
                                self.pos - 1,
                            ))
                        }
                    }
                }
                0..=0x1f => {
                    return Err(PathError::malformed(
                        "control character in string",
                        self.pos - 1,
                    ))
                }
                _ => buf.push(c),
            }
        }
        String::from_utf8(buf).map_err(|_| PathError::malformed("string is not valid UTF-8", start))
    }

    fn hex4(&mut self) -> Result<u32, PathError> {
        let h = self
            .b
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| PathError::malformed("truncated \\u escape", self.pos))?;
        let s = std::str::from_utf8(h)
            .map_err(|_| PathError::malformed("invalid \\u escape", self.pos))?;
        let v = u32::from_str_radix(s, 16)
            .map_err(|_| PathError::malformed("invalid \\u escape", self.pos))?;
        self.pos += 4;
        Ok(v)
    }

    /// Skips one JSON value of any shape without recursion, returning its byte span.
    fn skip(&mut self) -> Result<(usize, usize), PathError> {
        self.ws();
        let start = self.pos;
        let mut depth = 0usize;
        loop {
            let c = self.peek()?;
            match c {
                b'[' | b'{' => {
                    depth += 1;
                    self.pos += 1;
                    continue;
                }
                b']' | b'}' => {
                    if depth == 0 {
                        return Err(PathError::malformed("unexpected closing bracket", self.pos));
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                b',' | b':' if depth > 0 => {
                    self.pos += 1;
                    continue;
                }
                _ => {
                    if self.scalar()?.is_none() {
                        return Err(PathError::malformed("unexpected bracket", self.pos));
                    }
                }
            }
            if depth == 0 {
                return Ok((start, self.pos));
            }
        }
    }

    fn value(&mut self, ty: &Type, depth: usize) -> Result<Value, PathError> {
        if depth > MAX_DEPTH {
            return Err(PathError::malformed(
                format!("nested deeper than {MAX_DEPTH} levels"),
                self.pos,
            ));
        }
        match ty {
            Type::Dynamic => return self.dynamic(depth),
            Type::Bool | Type::Number | Type::String => {
                let Some(s) = self.scalar()? else {
                    return Err(PathError::mismatch(
                        ty,
                        format!("got a JSON {}", self.container_name()),
                    ));
                };
                return primitive(s, ty);
            }
            _ => {}
        }
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(Value::Null);
        }
        match ty {
            Type::List(et) | Type::Set(et) => {
                let elems = self.array(
                    |p, i| p.value(et, depth + 1).map_err(|e| e.at(Step::Index(i))),
                    ty,
                )?;
                Ok(if matches!(ty, Type::List(_)) {
                    Value::List(elems)
                } else {
                    Value::Set(elems)
                })
            }
            Type::Tuple(ets) => {
                let elems = self.array(
                    |p, i| match ets.get(i) {
                        Some(et) => p.value(et, depth + 1).map_err(|e| e.at(Step::Index(i))),
                        None => Err(PathError::mismatch(
                            ty,
                            format!("more than {} elements", ets.len()),
                        )),
                    },
                    ty,
                )?;
                if elems.len() != ets.len() {
                    return Err(PathError::mismatch(
                        ty,
                        format!("got {} elements", elems.len()),
                    ));
                }
                Ok(Value::Tuple(elems))
            }
            Type::Map(et) => {
                let mut m = BTreeMap::new();
                self.object(ty, |p, k| {
                    let v = p
                        .value(et, depth + 1)
                        .map_err(|e| e.at(Step::Key(k.clone())))?;
                    m.insert(k, v);
                    Ok(())
                })?;
                Ok(Value::Map(m))
            }
            Type::Object { attrs, .. } => {
                let mut m = BTreeMap::new();
                self.object(ty, |p, k| {
                    let Some(at) = attrs.get(&k) else {
                        return Err(PathError::mismatch(
                            ty,
                            format!("unsupported attribute {k:?}"),
                        ));
                    };
                    let v = p
                        .value(at, depth + 1)
                        .map_err(|e| e.at(Step::Attr(k.clone())))?;
                    m.insert(k, v);
                    Ok(())
                })?;
                for k in attrs.keys() {
                    if !m.contains_key(k) {
                        m.insert(k.clone(), Value::Null);
                    }
                }
                Ok(Value::Object(m))
            }
            _ => unreachable!("primitive and dynamic types are handled above"),
        }
    }

    fn container_name(&mut self) -> &'static str {
        match self.peek() {
            Ok(b'[') => "array",
            _ => "object",
        }
    }

    fn array(
        &mut self,
        mut elem: impl FnMut(&mut Self, usize) -> Result<Value, PathError>,
        ty: &Type,
    ) -> Result<Vec<Value>, PathError> {
        if self.peek()? != b'[' {
            return Err(self.not_container(ty, "array"));
        }
        self.pos += 1;
        let mut out = Vec::new();
        if self.peek()? == b']' {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            out.push(elem(self, out.len())?);
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => return Err(PathError::malformed("expected ',' or ']'", self.pos)),
            }
        }
    }

    fn object(
        &mut self,
        ty: &Type,
        mut member: impl FnMut(&mut Self, String) -> Result<(), PathError>,
    ) -> Result<(), PathError> {
        if self.peek()? != b'{' {
            return Err(self.not_container(ty, "object"));
        }
        self.pos += 1;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if self.peek()? != b'"' {
                return Err(PathError::malformed("expected a property name", self.pos));
            }
            let k = self.string()?;
            self.expect(b':')?;
            member(self, k)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(PathError::malformed("expected ',' or '}'", self.pos)),
            }
        }
    }

    fn not_container(&mut self, ty: &Type, wanted: &str) -> PathError {
        let at = self.pos;
        let got = match self.scalar() {
            Ok(Some(Scalar::Bool(_))) => "boolean",
            Ok(Some(Scalar::Num(_))) => "number",
            Ok(Some(Scalar::Str(_))) => "string",
            Ok(Some(Scalar::Null)) => "null",
            Ok(None) => self.container_name(),
            Err(e) => return e,
        };
        let mut e = PathError::mismatch(ty, format!("expected a JSON {wanted}, got a JSON {got}"));
        e.offset = Some(at);
        e
    }

    /// `{"value": V, "type": T}` in either order; the value waits for its type.
    fn dynamic(&mut self, depth: usize) -> Result<Value, PathError> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Ok(Value::Null);
        }
        let mut ty: Option<Type> = None;
        let mut value_span: Option<(usize, usize)> = None;
        self.object(&Type::Dynamic, |p, k| match k.as_str() {
            "type" => {
                let (s, e) = p.skip()?;
                let t = super::types_json::type_from_json_bytes(&p.b[s..e]).map_err(|err| PathError::malformed(err.to_string(), s))?;
                ty = Some(t);
                Ok(())
            }
            "value" => {
                value_span = Some(p.skip()?);
                Ok(())
            }
            other => Err(PathError::mismatch(&Type::Dynamic, format!("invalid key {other:?} in a dynamically-typed value (only \"value\" and \"type\")"))),
        })?;
        let end = self.pos;
        let (Some(ty), Some((vs, ve))) = (ty, value_span) else {
            return Err(PathError::mismatch(
                &Type::Dynamic,
                "a dynamically-typed value needs both \"value\" and \"type\"",
            ));
        };
        let mut inner = Parser {
            b: &self.b[..ve],
            pos: vs,
        };
        let v = inner.value(&ty, depth + 1)?;
        self.pos = end;
        Ok(v)
    }
}

/// A JSON scalar read as a primitive of `ty`, converting as cty does.
fn primitive(s: Scalar<'_>, ty: &Type) -> Result<Value, PathError> {
    let got = |what: &str| PathError::mismatch(ty, format!("got a JSON {what}"));
    match (ty, s) {
        (_, Scalar::Null) => Ok(Value::Null),
        (Type::Bool, Scalar::Bool(b)) => Ok(Value::Bool(b)),
        (Type::Bool, Scalar::Str(s)) => match s.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(PathError::mismatch(ty, format!("{s:?} is not a bool"))),
        },
        (Type::Bool, Scalar::Num(_)) => Err(got("number")),
        (Type::Number, Scalar::Num(t)) => parse_number(t)
            .map(Value::Number)
            .map_err(|e| PathError::mismatch(ty, e)),
        (Type::Number, Scalar::Str(t)) => parse_number(t.trim())
            .map(Value::Number)
            .map_err(|e| PathError::mismatch(ty, e)),
        (Type::Number, Scalar::Bool(_)) => Err(got("boolean")),
        (Type::String, Scalar::Str(s)) => Ok(Value::String(s)),
        (Type::String, Scalar::Num(t)) => {
            // Checked so that garbage like "1-2" does not become a string silently.
            parse_number(t).map_err(|e| PathError::mismatch(ty, e))?;
            Ok(Value::String(t.to_owned()))
        }
        (Type::String, Scalar::Bool(b)) => Ok(Value::String(b.to_string())),
        (other, _) => Err(PathError::mismatch(
            other,
            format!("not a primitive type: {}", friendly_name(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_classify_canonically() {
        assert_eq!(parse_number("12").unwrap(), Number::Int(12));
        assert_eq!(parse_number("-0").unwrap(), Number::Int(0));
        assert_eq!(parse_number("1.0").unwrap(), Number::Int(1));
        assert_eq!(parse_number("1e3").unwrap(), Number::Int(1000));
        assert_eq!(
            parse_number("9223372036854775807").unwrap(),
            Number::Int(i64::MAX)
        );
        assert_eq!(
            parse_number("-9223372036854775808").unwrap(),
            Number::Int(i64::MIN)
        );
        // 2^63 is exactly an f64; 2^63+1 is not.
        assert_eq!(
            parse_number("9223372036854775808").unwrap(),
            Number::Float(9_223_372_036_854_775_808.0)
        );
        assert_eq!(
            parse_number("9223372036854775809").unwrap(),
            Number::Big("9223372036854775809".into())
        );
        assert_eq!(parse_number("0.5").unwrap(), Number::Float(0.5));
        assert_eq!(parse_number("-1.375").unwrap(), Number::Float(-1.375));
        assert_eq!(parse_number("0.8").unwrap(), Number::Big("0.8".into()));
        assert_eq!(parse_number("0.80").unwrap(), Number::Big("0.8".into()));
        assert_eq!(parse_number("8e-1").unwrap(), Number::Big("0.8".into()));
        assert_eq!(parse_number("1e-3").unwrap(), Number::Big("0.001".into()));
        // 0.1 as an f64 is exactly this long decimal.
        assert_eq!(
            parse_number("0.1000000000000000055511151231257827021181583404541015625").unwrap(),
            Number::Float(0.1)
        );
        assert_eq!(
            parse_number("1e30").unwrap(),
            Number::Big("1000000000000000000000000000000".into())
        );
        assert_eq!(
            parse_number("1267650600228229401496703205376").unwrap(),
            Number::Float(2f64.powi(100))
        );
        assert!(parse_number("").is_err());
        assert!(parse_number("1.2.3").is_err());
        assert!(parse_number("inf").is_err());
        assert!(parse_number("NaN").is_err());
        assert!(parse_number("1e").is_err());
        assert!(parse_number("1e99999999999").is_err());
    }

    #[test]
    fn number_text_is_exact_for_integers_and_shortest_for_fractions() {
        assert_eq!(number_text(&Number::Float(0.1)).unwrap(), "0.1");
        assert_eq!(
            number_text(&Number::Float(9_223_372_036_854_775_808.0)).unwrap(),
            "9223372036854775808"
        );
        assert_eq!(number_text(&Number::Big("1e3".into())).unwrap(), "1000");
        assert!(number_text(&Number::Float(f64::INFINITY)).is_err());
    }
}
