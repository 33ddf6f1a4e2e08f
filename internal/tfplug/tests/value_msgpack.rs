//! The msgpack codec against the byte-exact vectors of Terraform's wire format (taken from
//! terraform-plugin-go's and go-cty's test suites), round trips of every type, type mismatches,
//! malformed input and a small random-input fuzz loop.

use std::collections::{BTreeMap, BTreeSet};

use tfplug::value::{msgpack, CodecError, Number, Refinements, Type, Value};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// terraform-plugin-go's vector for a string-prefix refinement cut at the length limit.
fn long_prefix_golden() -> String {
    let middle = "2333435363738392d303132333435363738392d303132333435363738392d303132333435363738392d303132333435363738392d303132333435363738392d30313";
    format!(
        "c801050c8201c202d9ff7072656669783a2f2f303132333435363738392d303132333435363738392d303132333435363738392d30313{}2333435363738392d30313233",
        middle.repeat(3)
    )
}

fn obj_ty(attrs: &[(&str, Type)]) -> Type {
    Type::object(attrs.iter().cloned())
}

fn refined(f: impl FnOnce(&mut Refinements)) -> Value {
    let mut r = Refinements::default();
    f(&mut r);
    Value::Unknown(r)
}

fn not_null() -> Value {
    refined(|r| r.not_null = true)
}

fn float(f: f64) -> Value {
    Value::Number(Number::Float(f))
}

fn big(s: &str) -> Value {
    Value::Number(Number::Big(s.into()))
}

/// Vectors that encode to exactly these bytes and decode back to the same value.
fn two_way_vectors() -> Vec<(&'static str, Value, Type, String)> {
    let s = Type::String;
    let greeting = |v: Value| Value::object([("greeting", v)]);
    let hello = || Value::string("hello");
    let long_prefix_cut = format!("prefix://{}0123", "0123456789-".repeat(22));
    assert_eq!(long_prefix_cut.len(), 255);
    vec![
        ("hello-string", hello(), s.clone(), "a568656c6c6f".into()),
        ("empty-string", Value::string(""), s.clone(), "a0".into()),
        ("null-string", Value::Null, s.clone(), "c0".into()),
        (
            "unknown-string",
            Value::unknown(),
            s.clone(),
            "d40000".into(),
        ),
        ("true-bool", Value::Bool(true), Type::Bool, "c3".into()),
        ("false-bool", Value::Bool(false), Type::Bool, "c2".into()),
        ("null-bool", Value::Null, Type::Bool, "c0".into()),
        (
            "unknown-bool",
            Value::unknown(),
            Type::Bool,
            "d40000".into(),
        ),
        ("int-number", Value::int(1), Type::Number, "01".into()),
        (
            "int64-positive-number",
            Value::int(i64::MAX),
            Type::Number,
            "cf7fffffffffffffff".into(),
        ),
        (
            "int64-negative-number",
            Value::int(i64::MIN),
            Type::Number,
            "d38000000000000000".into(),
        ),
        (
            "uint64-number",
            big("18446744073709551615"),
            Type::Number,
            "b43138343436373434303733373039353531363135".into(),
        ),
        (
            "float-number",
            float(1.5),
            Type::Number,
            "cb3ff8000000000000".into(),
        ),
        (
            "smallest-float",
            float(f64::from_bits(1)),
            Type::Number,
            "cb0000000000000001".into(),
        ),
        (
            "big-number",
            big(&"9".repeat(100)),
            Type::Number,
            format!("d964{}", "39".repeat(100)),
        ),
        (
            "awkward-fraction-number",
            big("0.8"),
            Type::Number,
            "a3302e38".into(),
        ),
        (
            "positive-infinity-number",
            float(f64::INFINITY),
            Type::Number,
            "cb7ff0000000000000".into(),
        ),
        (
            "negative-infinity-number",
            float(f64::NEG_INFINITY),
            Type::Number,
            "cbfff0000000000000".into(),
        ),
        (
            "dynamic-bool",
            Value::Bool(true),
            Type::Dynamic,
            "92c40622626f6f6c22c3".into(),
        ),
        (
            "dynamic-list",
            Value::List(vec![hello()]),
            Type::Dynamic,
            "92c4115b226c697374222c22737472696e67225d91a568656c6c6f".into(),
        ),
        (
            "dynamic-map",
            Value::string_map([("hello", "hello")]),
            Type::Dynamic,
            "92c4105b226d6170222c22737472696e67225d81a568656c6c6fa568656c6c6f".into(),
        ),
        (
            "dynamic-number",
            Value::int(1),
            Type::Dynamic,
            "92c408226e756d6265722201".into(),
        ),
        (
            "dynamic-object",
            greeting(hello()),
            obj_ty(&[("greeting", Type::Dynamic)]),
            "81a86772656574696e6792c40822737472696e6722a568656c6c6f".into(),
        ),
        (
            "dynamic-set",
            Value::Set(vec![hello()]),
            Type::Dynamic,
            "92c4105b22736574222c22737472696e67225d91a568656c6c6f".into(),
        ),
        (
            "dynamic-string",
            hello(),
            Type::Dynamic,
            "92c40822737472696e6722a568656c6c6f".into(),
        ),
        (
            "list-dynamic",
            Value::List(vec![hello()]),
            Type::list(Type::Dynamic),
            "9192c40822737472696e6722a568656c6c6f".into(),
        ),
        (
            "list-string-hello",
            Value::List(vec![hello()]),
            Type::list(s.clone()),
            "91a568656c6c6f".into(),
        ),
        (
            "list-string-unknown",
            Value::List(vec![Value::unknown()]),
            Type::list(s.clone()),
            "91d40000".into(),
        ),
        (
            "list-string-null-string",
            Value::List(vec![Value::Null]),
            Type::list(s.clone()),
            "91c0".into(),
        ),
        (
            "list-string-null",
            Value::Null,
            Type::list(s.clone()),
            "c0".into(),
        ),
        (
            "list-string-empty",
            Value::List(vec![]),
            Type::list(s.clone()),
            "90".into(),
        ),
        (
            "set-dynamic",
            Value::Set(vec![hello()]),
            Type::set(Type::Dynamic),
            "9192c40822737472696e6722a568656c6c6f".into(),
        ),
        (
            "set-string-hello",
            Value::Set(vec![hello()]),
            Type::set(s.clone()),
            "91a568656c6c6f".into(),
        ),
        (
            "set-string-unknown",
            Value::Set(vec![Value::unknown()]),
            Type::set(s.clone()),
            "91d40000".into(),
        ),
        (
            "set-string-null-string",
            Value::Set(vec![Value::Null]),
            Type::set(s.clone()),
            "91c0".into(),
        ),
        (
            "set-string-empty",
            Value::Set(vec![]),
            Type::set(s.clone()),
            "90".into(),
        ),
        (
            "map-dynamic",
            Value::string_map([("greeting", "hello")]),
            Type::map(Type::Dynamic),
            "81a86772656574696e6792c40822737472696e6722a568656c6c6f".into(),
        ),
        (
            "map-string-hello",
            Value::string_map([("greeting", "hello")]),
            Type::map(s.clone()),
            "81a86772656574696e67a568656c6c6f".into(),
        ),
        (
            "map-string-unknown",
            Value::Map([("greeting".to_string(), Value::unknown())].into()),
            Type::map(s.clone()),
            "81a86772656574696e67d40000".into(),
        ),
        (
            "map-string-null",
            Value::Map([("greeting".to_string(), Value::Null)].into()),
            Type::map(s.clone()),
            "81a86772656574696e67c0".into(),
        ),
        (
            "map-string-empty",
            Value::Map(BTreeMap::new()),
            Type::map(s.clone()),
            "80".into(),
        ),
        (
            "tuple-dynamic",
            Value::Tuple(vec![hello(), Value::string("world")]),
            Type::Tuple(vec![Type::Dynamic, Type::Dynamic]),
            "9292c40822737472696e6722a568656c6c6f92c40822737472696e6722a5776f726c64".into(),
        ),
        (
            "tuple-string-hello",
            Value::Tuple(vec![hello()]),
            Type::Tuple(vec![s.clone()]),
            "91a568656c6c6f".into(),
        ),
        (
            "tuple-string-unknown",
            Value::Tuple(vec![Value::unknown()]),
            Type::Tuple(vec![s.clone()]),
            "91d40000".into(),
        ),
        (
            "tuple-string-null",
            Value::Tuple(vec![Value::Null]),
            Type::Tuple(vec![s.clone()]),
            "91c0".into(),
        ),
        (
            "tuple-empty",
            Value::Tuple(vec![]),
            Type::Tuple(vec![]),
            "90".into(),
        ),
        (
            "object-string-hello",
            greeting(hello()),
            obj_ty(&[("greeting", s.clone())]),
            "81a86772656574696e67a568656c6c6f".into(),
        ),
        (
            "object-string-unknown",
            greeting(Value::unknown()),
            obj_ty(&[("greeting", s.clone())]),
            "81a86772656574696e67d40000".into(),
        ),
        (
            "object-string-null",
            greeting(Value::Null),
            obj_ty(&[("greeting", s.clone())]),
            "81a86772656574696e67c0".into(),
        ),
        (
            "object-string-multi-null",
            Value::object([("a", Value::Null), ("b", Value::Null)]),
            obj_ty(&[("a", s.clone()), ("b", s.clone())]),
            "82a161c0a162c0".into(),
        ),
        (
            "object-string-multi-unknown",
            Value::object([("a", Value::unknown()), ("b", Value::unknown())]),
            obj_ty(&[("a", s.clone()), ("b", s.clone())]),
            "82a161d40000a162d40000".into(),
        ),
        (
            "object-empty",
            Value::Object(BTreeMap::new()),
            obj_ty(&[]),
            "80".into(),
        ),
        ("dynamic-null", Value::Null, Type::Dynamic, "c0".into()),
        (
            "object-dynamic-null",
            Value::object([("a", Value::Null)]),
            obj_ty(&[("a", Type::Dynamic)]),
            "81a161c0".into(),
        ),
        (
            "dynamic-unknown",
            Value::unknown(),
            Type::Dynamic,
            "d40000".into(),
        ),
        (
            "dynamic-list-unknown",
            Value::List(vec![Value::unknown()]),
            Type::list(Type::Dynamic),
            "91d40000".into(),
        ),
        (
            "unknown-bool-with-nullness-refinement",
            not_null(),
            Type::Bool,
            "c7030c8101c2".into(),
        ),
        (
            "unknown-number-with-nullness-refinement",
            not_null(),
            Type::Number,
            "c7030c8101c2".into(),
        ),
        (
            "unknown-string-with-nullness-refinement",
            not_null(),
            s.clone(),
            "c7030c8101c2".into(),
        ),
        (
            "unknown-list-with-nullness-refinement",
            not_null(),
            Type::list(s.clone()),
            "c7030c8101c2".into(),
        ),
        (
            "unknown-object-with-nullness-refinement",
            not_null(),
            obj_ty(&[("attr", s.clone())]),
            "c7030c8101c2".into(),
        ),
        (
            "unknown-string-with-prefix-refinement",
            refined(|r| {
                r.not_null = true;
                r.string_prefix = Some("prefix://".into());
            }),
            s.clone(),
            "c70e0c8201c202a97072656669783a2f2f".into(),
        ),
        (
            "unknown-number-with-bound-refinements-integers-inclusive",
            refined(|r| {
                r.not_null = true;
                r.number_lower = Some((Number::Int(1), true));
                r.number_upper = Some((Number::Int(5), true));
            }),
            Type::Number,
            "c70b0c8301c2039201c3049205c3".into(),
        ),
        (
            "unknown-number-with-bound-refinements-integers-exclusive",
            refined(|r| {
                r.not_null = true;
                r.number_lower = Some((Number::Int(1), false));
                r.number_upper = Some((Number::Int(5), false));
            }),
            Type::Number,
            "c70b0c8301c2039201c2049205c2".into(),
        ),
        (
            "unknown-number-with-bound-refinements-float-inclusive",
            refined(|r| {
                r.not_null = true;
                r.number_lower = Some((Number::Float(1.23), true));
                r.number_upper = Some((Number::Float(5.67), true));
            }),
            Type::Number,
            "c71b0c8301c20392cb3ff3ae147ae147aec30492cb4016ae147ae147aec3".into(),
        ),
        (
            "unknown-number-with-bound-refinements-float-exclusive",
            refined(|r| {
                r.not_null = true;
                r.number_lower = Some((Number::Float(1.23), false));
                r.number_upper = Some((Number::Float(5.67), false));
            }),
            Type::Number,
            "c71b0c8301c20392cb3ff3ae147ae147aec20492cb4016ae147ae147aec2".into(),
        ),
        (
            "unknown-list-with-bound-refinements",
            refined(|r| {
                r.not_null = true;
                r.length_lower = Some(1);
                r.length_upper = Some(5);
            }),
            Type::list(s.clone()),
            "c7070c8301c205010605".into(),
        ),
        (
            "unknown-map-with-bound-refinements",
            refined(|r| {
                r.not_null = true;
                r.length_lower = Some(0);
                r.length_upper = Some(4);
            }),
            Type::map(Type::Number),
            "c7070c8301c205000604".into(),
        ),
        (
            "unknown-set-with-bound-refinements",
            refined(|r| {
                r.not_null = true;
                r.length_lower = Some(2);
                r.length_upper = Some(6);
            }),
            Type::set(Type::Bool),
            "c7070c8301c205020606".into(),
        ),
        (
            "unknown-string-with-cut-long-prefix",
            refined(|r| {
                r.not_null = true;
                r.string_prefix = Some(long_prefix_cut);
            }),
            s.clone(),
            long_prefix_golden(),
        ),
    ]
}

#[test]
fn golden_vectors_encode_byte_exact_and_decode_back() {
    for (name, value, ty, want) in two_way_vectors() {
        let got =
            msgpack::encode(&value, &ty).unwrap_or_else(|e| panic!("{name}: encode failed: {e}"));
        assert_eq!(to_hex(&got), want, "{name}: encoding");
        let back = msgpack::decode(&hex(&want), &ty)
            .unwrap_or_else(|e| panic!("{name}: decode failed: {e}"));
        assert_eq!(back, value, "{name}: decoding");
    }
}

/// Values whose encoding loses something on purpose: the bytes are what Terraform expects.
#[test]
fn golden_vectors_encode_only() {
    let long_prefix = format!("prefix://{}thiswillbecutoff2", "0123456789-".repeat(23));
    let cases: Vec<(&str, Value, Type, String)> = vec![
        // Refinements never go with dynamic values, nor where they do not apply to the type.
        (
            "unknown-dynamic-refinements-ignored",
            not_null(),
            Type::Dynamic,
            "d40000".into(),
        ),
        (
            "unknown-with-invalid-refinement-type",
            refined(|r| r.string_prefix = Some("ignored".into())),
            Type::Bool,
            "d40000".into(),
        ),
        (
            "number-bounds-on-a-string",
            refined(|r| r.number_lower = Some((Number::Int(0), true))),
            Type::String,
            "d40000".into(),
        ),
        (
            "length-bounds-on-an-object",
            refined(|r| r.length_lower = Some(1)),
            obj_ty(&[("a", Type::Bool)]),
            "d40000".into(),
        ),
        // An empty prefix says nothing and is left out.
        (
            "unknown-string-with-empty-prefix-refinement",
            refined(|r| {
                r.not_null = true;
                r.string_prefix = Some(String::new());
            }),
            Type::String,
            "c7030c8101c2".into(),
        ),
        // Prefixes beyond 256 bytes are cut to 255 (go-cty's rule, and Terraform's 1 KiB limit).
        (
            "unknown-string-with-long-prefix-refinement",
            refined(|r| {
                r.not_null = true;
                r.string_prefix = Some(long_prefix.clone());
            }),
            Type::String,
            long_prefix_golden(),
        ),
        // Integral floats within i64 are written as integers; other numbers canonically.
        ("integral-float", float(3.0), Type::Number, "03".into()),
        (
            "big-integral-within-i64",
            big("1e3"),
            Type::Number,
            "cd03e8".into(),
        ),
        (
            "big-exact-f64",
            big("0.5"),
            Type::Number,
            "cb3fe0000000000000".into(),
        ),
        (
            "big-noncanonical",
            big("0.80"),
            Type::Number,
            "a3302e38".into(),
        ),
        // Objects always carry every attribute of their type, null when the value lacks it.
        (
            "object-missing-attribute",
            Value::object([("b", Value::Bool(true))]),
            obj_ty(&[("a", Type::String), ("b", Type::Bool)]),
            "82a161c0a162c3".into(),
        ),
        // A map value may stand for an object and the other way round; a tuple for a list.
        (
            "map-as-object",
            Value::string_map([("a", "x")]),
            obj_ty(&[("a", Type::String)]),
            "81a161a178".into(),
        ),
        (
            "tuple-as-list",
            Value::Tuple(vec![Value::int(1)]),
            Type::list(Type::Number),
            "9101".into(),
        ),
    ];
    for (name, value, ty, want) in cases {
        let got =
            msgpack::encode(&value, &ty).unwrap_or_else(|e| panic!("{name}: encode failed: {e}"));
        assert_eq!(to_hex(&got), want, "{name}");
    }
}

/// What Terraform (or another encoder) may send that this encoder never writes.
#[test]
fn golden_vectors_decode_only() {
    let max_f64_shortest = format!("17976931348623157{}", "0".repeat(292));
    let cases: Vec<(&str, String, Type, Value)> = vec![
        // A typed null inside a dynamic value: the type is dropped, null stays.
        (
            "string-dynamic-null",
            "92c40822737472696e6722c0".into(),
            Type::Dynamic,
            Value::Null,
        ),
        (
            "dynamic-list-string-null",
            "9192c40822737472696e6722c0".into(),
            Type::list(Type::Dynamic),
            Value::List(vec![Value::Null]),
        ),
        // terraform-plugin-go writes integers beyond i64 as decimal text.
        (
            "large-uint64",
            "b339323233333732303336383534373735383038".into(),
            Type::Number,
            float(9_223_372_036_854_775_808.0),
        ),
        (
            "uint64-as-msgpack-uint",
            "cfffffffffffffffff".into(),
            Type::Number,
            big("18446744073709551615"),
        ),
        (
            "uint64-fits-i64",
            "cf0000000000000005".into(),
            Type::Number,
            Value::int(5),
        ),
        (
            "float64-positive-number-as-text",
            format!("da0135{}", to_hex(max_f64_shortest.as_bytes())),
            Type::Number,
            big(&max_f64_shortest),
        ),
        // Integral floats become Int; float32 is read too.
        (
            "integral-float64",
            "cb4000000000000000".into(),
            Type::Number,
            Value::int(2),
        ),
        ("float32", "ca3fc00000".into(), Type::Number, float(1.5)),
        ("int8", "d0ff".into(), Type::Number, Value::int(-1)),
        ("int16", "d1fc18".into(), Type::Number, Value::int(-1000)),
        ("uint16", "cd0100".into(), Type::Number, Value::int(256)),
        (
            "number-as-text-integral",
            "a23432".into(),
            Type::Number,
            Value::int(42),
        ),
        // Any extension is an unknown; only code 12 carries refinements.
        (
            "ext-zero-length",
            "c70000".into(),
            Type::String,
            Value::unknown(),
        ),
        (
            "ext-other-code-with-payload",
            "d5050102".into(),
            Type::String,
            Value::unknown(),
        ),
        (
            "refinements-on-dynamic-ignored",
            "c7030c8101c2".into(),
            Type::Dynamic,
            Value::unknown(),
        ),
        // Nullness `true` ("definitely null") leaves the unknown unrefined.
        (
            "nullness-true",
            "c7030c8101c3".into(),
            Type::String,
            Value::unknown(),
        ),
        // Unknown refinement keys are skipped, whatever their value's shape.
        (
            "unknown-refinement-key-skipped",
            "c7080c82079201a17801c2".into(),
            Type::String,
            not_null(),
        ),
        // Refinements that do not apply to the type are dropped.
        (
            "prefix-on-a-number",
            "c7040c8102a178".into(),
            Type::Number,
            Value::unknown(),
        ),
        // An object missing attributes decodes them as null.
        (
            "object-missing-attribute",
            "81a162c3".into(),
            obj_ty(&[("a", Type::String), ("b", Type::Bool)]),
            Value::object([("a", Value::Null), ("b", Value::Bool(true))]),
        ),
        (
            "object-empty-map",
            "80".into(),
            obj_ty(&[("a", Type::String)]),
            Value::object([("a", Value::Null)]),
        ),
        // The type of a dynamic value may come as a msgpack string instead of binary.
        (
            "dynamic-type-as-str",
            "92a8226e756d6265722201".into(),
            Type::Dynamic,
            Value::int(1),
        ),
        // str16 and array16 forms.
        (
            "str16",
            format!("da0003{}", to_hex(b"abc")),
            Type::String,
            Value::string("abc"),
        ),
        (
            "array16",
            "dc000101".into(),
            Type::list(Type::Number),
            Value::List(vec![Value::int(1)]),
        ),
        (
            "map16",
            "de0001a161c3".into(),
            Type::map(Type::Bool),
            Value::Map([("a".to_string(), Value::Bool(true))].into()),
        ),
    ];
    for (name, h, ty, want) in cases {
        let got =
            msgpack::decode(&hex(&h), &ty).unwrap_or_else(|e| panic!("{name}: decode failed: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

fn sample_type() -> Type {
    Type::Object {
        attrs: [
            ("name".to_string(), Type::String),
            ("size".to_string(), Type::Number),
            ("enabled".to_string(), Type::Bool),
            ("labels".to_string(), Type::map(Type::String)),
            ("zones".to_string(), Type::set(Type::String)),
            ("ports".to_string(), Type::list(Type::Number)),
            (
                "pair".to_string(),
                Type::Tuple(vec![Type::String, Type::Number]),
            ),
            ("extra".to_string(), Type::Dynamic),
            (
                "volume".to_string(),
                Type::list(Type::object([
                    ("path", Type::String),
                    ("read_only", Type::Bool),
                    ("tags", Type::list(Type::String)),
                ])),
            ),
        ]
        .into(),
        optional: BTreeSet::new(),
    }
}

fn sample_value(i: i64) -> Value {
    Value::object([
        ("name", Value::string(format!("node-{i}"))),
        ("size", Value::int(i * 1024)),
        ("enabled", Value::Bool(i % 2 == 0)),
        (
            "labels",
            Value::string_map([("app", "tezos"), ("tier", "node")]),
        ),
        (
            "zones",
            Value::Set(vec![Value::string("a"), Value::string("b")]),
        ),
        (
            "ports",
            Value::List(vec![
                Value::int(8732),
                Value::int(9732),
                float(0.5),
                big("0.1"),
            ]),
        ),
        (
            "pair",
            Value::Tuple(vec![Value::string("x"), Value::int(-7)]),
        ),
        (
            "extra",
            Value::object([
                (
                    "nested",
                    Value::List(vec![
                        Value::Map([("k".to_string(), Value::int(1))].into()),
                        Value::Map(BTreeMap::new()),
                    ]),
                ),
                ("maybe", Value::Null),
                ("later", Value::unknown()),
            ]),
        ),
        (
            "volume",
            Value::List(vec![Value::object([
                ("path", Value::string("/data")),
                ("read_only", Value::Null),
                ("tags", refined(|r| r.length_lower = Some(1))),
            ])]),
        ),
    ])
}

#[test]
fn every_type_round_trips_including_nested_dynamic_unknown_and_refined() {
    let ty = sample_type();
    let cases = vec![
        sample_value(1),
        sample_value(2),
        Value::Null,
        Value::unknown(),
        not_null(),
        Value::object([
            (
                "name",
                refined(|r| {
                    r.not_null = true;
                    r.string_prefix = Some("node-".into());
                }),
            ),
            (
                "size",
                refined(|r| {
                    r.number_lower = Some((Number::Int(0), true));
                    r.number_upper = Some((Number::Big("1e30".into()), false));
                }),
            ),
            ("zones", refined(|r| r.length_upper = Some(3))),
            ("extra", Value::unknown()),
        ]),
    ];
    for v in cases {
        let bytes = msgpack::encode(&v, &ty).unwrap();
        let back = msgpack::decode(&bytes, &ty).unwrap();
        // Absent attributes come back as explicit nulls; big numbers in canonical form.
        let again = msgpack::encode(&back, &ty).unwrap();
        assert_eq!(
            again, bytes,
            "re-encoding a decoded value gives the same bytes"
        );
        assert_eq!(msgpack::decode(&again, &ty).unwrap(), back);
        if let Value::Object(m) = &v {
            for (k, x) in m {
                let got = back.get(k);
                match (x, got) {
                    (Value::Unknown(r), Value::Unknown(g)) if r.number_upper.is_some() => {
                        assert_eq!(
                            g.number_upper,
                            Some((Number::Big("1000000000000000000000000000000".into()), false))
                        );
                    }
                    _ => assert!(x.equals(got), "attribute {k}: {x:?} came back as {got:?}"),
                }
            }
        } else {
            assert_eq!(back, v);
        }
    }
}

#[test]
fn dynamic_values_carry_their_inferred_type() {
    let v = Value::object([
        (
            "list",
            Value::List(vec![Value::Null, Value::string("a"), Value::unknown()]),
        ),
        ("empty", Value::List(vec![])),
        (
            "tuple",
            Value::Tuple(vec![Value::Bool(true), Value::int(1)]),
        ),
        (
            "objs",
            Value::List(vec![
                Value::object([("x", Value::Null)]),
                Value::object([("x", Value::int(3))]),
            ]),
        ),
    ]);
    let bytes = msgpack::encode(&v, &Type::Dynamic).unwrap();
    let want_type = br#"["object",{"empty":["list","dynamic"],"list":["list","string"],"objs":["list",["object",{"x":"number"}]],"tuple":["tuple",["bool","number"]]}]"#;
    assert_eq!(bytes[0], 0x92);
    assert_eq!(bytes[1], 0xc4);
    assert_eq!(usize::from(bytes[2]), want_type.len());
    assert_eq!(&bytes[3..3 + want_type.len()], want_type);
    assert_eq!(msgpack::decode(&bytes, &Type::Dynamic).unwrap(), v);
}

fn mismatch_detail(r: Result<impl std::fmt::Debug, CodecError>) -> (String, String) {
    match r {
        Err(CodecError::TypeMismatch { ty, detail }) => (ty, detail),
        other => panic!("expected a type mismatch, got {other:?}"),
    }
}

#[test]
fn values_that_do_not_match_the_type_are_refused_with_their_path() {
    let ty = sample_type();
    let mut v = sample_value(1);
    v.set("size", Value::string("big"));
    let (t, d) = mismatch_detail(msgpack::encode(&v, &ty));
    assert_eq!(t, "number");
    assert!(d.contains(".size") && d.contains("string"), "{d}");

    let mut v = sample_value(1);
    v.set(
        "volume",
        Value::List(vec![
            Value::object([("path", Value::string("/"))]),
            Value::object([("path", Value::Bool(true))]),
        ]),
    );
    let (_, d) = mismatch_detail(msgpack::encode(&v, &ty));
    assert!(d.starts_with("at .volume[1].path:"), "{d}");

    let mut v = sample_value(1);
    v.set(
        "labels",
        Value::Map([("env".to_string(), Value::int(1))].into()),
    );
    let (_, d) = mismatch_detail(msgpack::encode(&v, &ty));
    assert!(d.starts_with("at .labels[\"env\"]:"), "{d}");

    let mut v = sample_value(1);
    v.set("surplus", Value::Bool(true));
    let (_, d) = mismatch_detail(msgpack::encode(&v, &ty));
    assert!(d.contains("\"surplus\""), "{d}");

    let (_, d) = mismatch_detail(msgpack::encode(
        &Value::Tuple(vec![Value::int(1)]),
        &Type::Tuple(vec![Type::Number, Type::Number]),
    ));
    assert!(d.contains("1 elements"), "{d}");

    // A dynamic list whose elements disagree on their type has no cty type.
    let (_, d) = mismatch_detail(msgpack::encode(
        &Value::List(vec![Value::int(1), Value::string("a")]),
        &Type::Dynamic,
    ));
    assert!(d.contains("[1]") && d.contains("share a type"), "{d}");

    mismatch_detail(msgpack::encode(&float(f64::NAN), &Type::Number));
    mismatch_detail(msgpack::encode(&big("twelve"), &Type::Number));

    // Decoding: well-formed msgpack of the wrong shape.
    let (t, d) = mismatch_detail(msgpack::decode(&hex("c3"), &Type::String));
    assert_eq!(t, "string");
    assert!(d.contains("boolean"), "{d}");
    let (_, d) = mismatch_detail(msgpack::decode(
        &hex("81a161a162"),
        &obj_ty(&[("a", Type::Number)]),
    ));
    assert!(d.starts_with("at .a:"), "{d}");
    let (_, d) = mismatch_detail(msgpack::decode(
        &hex("81a17ac0"),
        &obj_ty(&[("a", Type::Number)]),
    ));
    assert!(d.contains("unsupported attribute \"z\""), "{d}");
    mismatch_detail(msgpack::decode(
        &hex("9101"),
        &Type::Tuple(vec![Type::Number, Type::Number]),
    ));
    mismatch_detail(msgpack::decode(&hex("a3616263"), &Type::Number));
    mismatch_detail(msgpack::decode(&hex("cb7ff8000000000000"), &Type::Number));
    mismatch_detail(msgpack::decode(&hex("9101"), &Type::Dynamic));
}

fn assert_malformed(bytes: &[u8], ty: &Type) -> String {
    match msgpack::decode(bytes, ty) {
        Err(CodecError::Malformed { format, detail }) => {
            assert_eq!(format, "msgpack");
            detail
        }
        other => panic!("{}: expected malformed, got {other:?}", to_hex(bytes)),
    }
}

#[test]
fn malformed_bytes_are_errors() {
    let ty = sample_type();
    let good = msgpack::encode(&sample_value(3), &ty).unwrap();
    // Every strict prefix is truncated input.
    for n in 0..good.len() {
        assert_malformed(&good[..n], &ty);
    }
    let mut trailing = good.clone();
    trailing.push(0xc0);
    assert!(assert_malformed(&trailing, &ty).contains("left over"));
    assert!(assert_malformed(&hex("c1"), &Type::String).contains("0xc1"));
    assert!(assert_malformed(&hex("a2c328"), &Type::String).contains("UTF-8"));
    assert!(
        assert_malformed(&hex("81c3c3"), &Type::map(Type::Bool)).contains("keys must be strings")
    );
    assert!(assert_malformed(&hex("82a161c3a161c2"), &Type::map(Type::Bool)).contains("duplicate"));
    assert!(assert_malformed(&hex("c7020c0101"), &Type::String).contains("refinements"));
    assert!(assert_malformed(&hex("c7030c8101a0"), &Type::String).contains("nullness"));
    assert!(assert_malformed(&hex("92c4036e6f7401"), &Type::Dynamic).contains("type JSON"));
    assert!(
        assert_malformed(&hex("92c4085b226c697374225d90"), &Type::Dynamic).contains("type JSON")
    );
    // A length far beyond the input.
    assert_malformed(&hex("dbffffffff"), &Type::String);
    assert_malformed(&hex("ddffffffff"), &Type::list(Type::Bool));
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    // [["list","dynamic"], [ [["list","dynamic"], [ ... ]] ]] nested 10 000 deep.
    let head = hex("92c4125b226c697374222c2264796e616d6963225d91");
    let mut bytes = Vec::new();
    for _ in 0..10_000 {
        bytes.extend_from_slice(&head);
    }
    bytes.push(0xc0);
    let detail = assert_malformed(&bytes, &Type::Dynamic);
    assert!(detail.contains("deeper"), "{detail}");

    let mut v = Value::Null;
    for _ in 0..1_000 {
        v = Value::List(vec![v]);
    }
    mismatch_detail(msgpack::encode(&v, &Type::Dynamic));
}

/// xorshift64*: reproducible pseudo-random bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_and_mutated_input_never_panics_and_what_decodes_round_trips() {
    let types = vec![
        Type::String,
        Type::Number,
        Type::Bool,
        Type::Dynamic,
        Type::list(Type::Dynamic),
        Type::map(Type::Number),
        Type::set(Type::String),
        Type::Tuple(vec![Type::Number, Type::String]),
        sample_type(),
    ];
    let seeds: Vec<Vec<u8>> = vec![
        msgpack::encode(&sample_value(5), &sample_type()).unwrap(),
        msgpack::encode(&sample_value(6), &Type::Dynamic).unwrap(),
        hex("c70b0c8301c2039201c3049205c3"),
        hex("92c4115b226c697374222c22737472696e67225d91a568656c6c6f"),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0usize;
    for round in 0..40_000 {
        let bytes: Vec<u8> = if round % 2 == 0 {
            let n = (rng.next() % 48) as usize;
            (0..n).map(|_| rng.next() as u8).collect()
        } else {
            let mut b = seeds[(rng.next() % seeds.len() as u64) as usize].clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() % b.len() as u64) as usize;
                b[i] = rng.next() as u8;
            }
            b
        };
        for ty in &types {
            if let Ok(v) = msgpack::decode(&bytes, ty) {
                decoded += 1;
                // What decodes re-encodes (unless a dynamic collection mixes element types,
                // which no cty value can) and decodes to the same value.
                if let Ok(again) = msgpack::encode(&v, ty) {
                    assert_eq!(
                        msgpack::decode(&again, ty).as_ref(),
                        Ok(&v),
                        "input {}",
                        to_hex(&bytes)
                    );
                } else {
                    assert!(
                        matches!(ty, Type::Dynamic)
                            || matches!(ty, Type::List(_))
                            || ty == &sample_type(),
                        "input {}",
                        to_hex(&bytes)
                    );
                }
            }
        }
    }
    assert!(
        decoded > 100,
        "the fuzz loop should also exercise successful decodes ({decoded})"
    );
}
