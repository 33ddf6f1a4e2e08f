//! The cty JSON codec and the type JSON form, against go-cty's vectors, plus the conversions,
//! errors and edge cases Terraform's stored state can bring.

use std::collections::{BTreeMap, BTreeSet};

use tfplug::value::{
    json, msgpack, type_from_json, type_from_json_bytes, type_to_json, type_to_json_bytes,
    CodecError, Number, Type, Value,
};

fn obj_ty(attrs: &[(&str, Type)]) -> Type {
    Type::object(attrs.iter().cloned())
}

fn float(f: f64) -> Value {
    Value::Number(Number::Float(f))
}

fn big(s: &str) -> Value {
    Value::Number(Number::Big(s.into()))
}

/// go-cty's `TestValueJSONable` vectors that do not rely on converting on encode.
#[test]
fn golden_vectors_encode_byte_exact_and_decode_back() {
    let nines = "9".repeat(100);
    let cases: Vec<(Value, Type, &str)> = vec![
        (Value::string("hello"), Type::String, r#""hello""#),
        (Value::string(""), Type::String, r#""""#),
        (Value::Null, Type::String, "null"),
        (Value::int(2), Type::Number, "2"),
        (float(2.5), Type::Number, "2.5"),
        (Value::Bool(true), Type::Bool, "true"),
        (Value::Bool(false), Type::Bool, "false"),
        (
            Value::List(vec![Value::Bool(true), Value::Bool(false)]),
            Type::list(Type::Bool),
            "[true,false]",
        ),
        (Value::List(vec![]), Type::list(Type::Bool), "[]"),
        (
            Value::Set(vec![Value::Bool(false), Value::Bool(true)]),
            Type::set(Type::Bool),
            "[false,true]",
        ),
        (Value::Set(vec![]), Type::set(Type::Bool), "[]"),
        (
            Value::Tuple(vec![Value::Bool(true), Value::int(5)]),
            Type::Tuple(vec![Type::Bool, Type::Number]),
            "[true,5]",
        ),
        (Value::Tuple(vec![]), Type::Tuple(vec![]), "[]"),
        (Value::Map(BTreeMap::new()), Type::map(Type::Bool), "{}"),
        (
            Value::Map(
                [
                    ("yes".to_string(), Value::Bool(true)),
                    ("no".to_string(), Value::Bool(false)),
                ]
                .into(),
            ),
            Type::map(Type::Bool),
            r#"{"no":false,"yes":true}"#,
        ),
        (Value::Null, Type::map(Type::Bool), "null"),
        (Value::Object(BTreeMap::new()), obj_ty(&[]), "{}"),
        (
            Value::object([("bool", Value::Bool(true)), ("number", Value::int(0))]),
            obj_ty(&[("bool", Type::Bool), ("number", Type::Number)]),
            r#"{"bool":true,"number":0}"#,
        ),
        (
            Value::Bool(true),
            Type::Dynamic,
            r#"{"value":true,"type":"bool"}"#,
        ),
        (
            Value::string("hello"),
            Type::Dynamic,
            r#"{"value":"hello","type":"string"}"#,
        ),
        (
            Value::int(5),
            Type::Dynamic,
            r#"{"value":5,"type":"number"}"#,
        ),
        (
            Value::List(vec![Value::Bool(true), Value::Bool(false)]),
            Type::Dynamic,
            r#"{"value":[true,false],"type":["list","bool"]}"#,
        ),
        (
            Value::List(vec![Value::Bool(true), Value::Bool(false)]),
            Type::list(Type::Dynamic),
            r#"[{"value":true,"type":"bool"},{"value":false,"type":"bool"}]"#,
        ),
        (
            Value::object([
                ("static", Value::Bool(true)),
                ("dynamic", Value::Bool(true)),
            ]),
            obj_ty(&[("static", Type::Bool), ("dynamic", Type::Dynamic)]),
            r#"{"dynamic":{"value":true,"type":"bool"},"static":true}"#,
        ),
        (
            Value::object([
                ("static", Value::Bool(true)),
                ("dynamic", Value::Bool(true)),
            ]),
            Type::Dynamic,
            r#"{"value":{"dynamic":true,"static":true},"type":["object",{"dynamic":"bool","static":"bool"}]}"#,
        ),
        (Value::Null, Type::Dynamic, "null"),
        // Big decimals keep every digit.
        (big("0.8"), Type::Number, "0.8"),
        (big(&nines), Type::Number, &nines),
        (Value::int(i64::MIN), Type::Number, "-9223372036854775808"),
        // Strings escape what JSON requires.
        (
            Value::string("a\"b\\c\n\u{1}é"),
            Type::String,
            "\"a\\\"b\\\\c\\n\\u0001é\"",
        ),
    ];
    for (v, ty, want) in cases {
        let got = json::encode(&v, &ty).unwrap_or_else(|e| panic!("{v:?}: {e}"));
        assert_eq!(String::from_utf8(got).unwrap(), want, "{v:?} as {ty:?}");
        assert_eq!(
            json::decode(want.as_bytes(), &ty).unwrap(),
            v,
            "decoding {want}"
        );
    }
}

#[test]
fn decoding_converts_primitives_as_cty_does() {
    let cases: Vec<(&str, Type, Value)> = vec![
        ("15", Type::Number, Value::int(15)),
        (r#""15""#, Type::Number, Value::int(15)),
        (r#"" 1.5 ""#, Type::Number, float(1.5)),
        ("5", Type::String, Value::string("5")),
        ("1.50", Type::String, Value::string("1.50")),
        ("true", Type::String, Value::string("true")),
        (r#""true""#, Type::Bool, Value::Bool(true)),
        (r#""false""#, Type::Bool, Value::Bool(false)),
        // Numbers: exact text, canonical form.
        ("1e3", Type::Number, Value::int(1000)),
        ("-0", Type::Number, Value::int(0)),
        ("2.0", Type::Number, Value::int(2)),
        ("0.1", Type::Number, big("0.1")),
        (
            "12345678901234567890123",
            Type::Number,
            big("12345678901234567890123"),
        ),
        (
            "9223372036854775808",
            Type::Number,
            float(9_223_372_036_854_775_808.0),
        ),
        // Whitespace anywhere JSON allows it, escapes of every kind.
        (
            " [ 1 ,\n2 ]\t",
            Type::list(Type::Number),
            Value::List(vec![Value::int(1), Value::int(2)]),
        ),
        (
            r#""\u00e9\ud83d\ude00\/\t""#,
            Type::String,
            Value::string("é😀/\t"),
        ),
        // Missing attributes are null; the dynamic wrapper's keys come in any order.
        (
            r#"{"b":true}"#,
            obj_ty(&[("a", Type::String), ("b", Type::Bool)]),
            Value::object([("a", Value::Null), ("b", Value::Bool(true))]),
        ),
        (
            r#"{"type":["list","number"],"value":[1]}"#,
            Type::Dynamic,
            Value::List(vec![Value::int(1)]),
        ),
        (
            r#"{"type":"string","value":null}"#,
            Type::Dynamic,
            Value::Null,
        ),
        (
            r#"[null]"#,
            Type::set(Type::String),
            Value::Set(vec![Value::Null]),
        ),
    ];
    for (text, ty, want) in cases {
        let got = json::decode(text.as_bytes(), &ty).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, want, "{text}");
    }
}

#[test]
fn numbers_keep_their_value_through_json() {
    // Integral floats beyond i64 are written with every digit, so they read back exactly.
    let two_63 = float(9_223_372_036_854_775_808.0);
    let text = json::encode(&two_63, &Type::Number).unwrap();
    assert_eq!(text, b"9223372036854775808");
    assert_eq!(json::decode(&text, &Type::Number).unwrap(), two_63);
    // A fraction goes out as its shortest text (as go-cty writes it) and comes back as that
    // decimal, which equals the float semantically.
    let tenth = float(0.1);
    let text = json::encode(&tenth, &Type::Number).unwrap();
    assert_eq!(text, b"0.1");
    let back = json::decode(&text, &Type::Number).unwrap();
    assert_eq!(back, big("0.1"));
    assert!(back.equals(&tenth));
}

#[test]
fn unknowns_and_mismatches_are_refused_with_their_path() {
    let ty = obj_ty(&[("spec", obj_ty(&[("tags", Type::list(Type::String))]))]);
    let v = Value::object([(
        "spec",
        Value::object([(
            "tags",
            Value::List(vec![Value::string("a"), Value::unknown()]),
        )]),
    )]);
    match json::encode(&v, &ty) {
        Err(CodecError::TypeMismatch { ty, detail }) => {
            assert_eq!(ty, "string");
            assert!(
                detail.starts_with("at .spec.tags[1]:") && detail.contains("unknown"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        json::encode(&float(f64::INFINITY), &Type::Number),
        Err(CodecError::TypeMismatch { .. })
    ));
    assert!(matches!(
        json::encode(&Value::int(1), &Type::String),
        Err(CodecError::TypeMismatch { .. })
    ));

    let mismatches: Vec<(&str, Type, &str)> = vec![
        (
            r#"{"a":1,"z":2}"#,
            obj_ty(&[("a", Type::Number)]),
            "unsupported attribute \"z\"",
        ),
        (r#"{"a":"x"}"#, obj_ty(&[("a", Type::Number)]), "at .a:"),
        (
            r#"{"m":{"k":[1]}}"#,
            obj_ty(&[("m", Type::map(Type::Number))]),
            "at .m[\"k\"]:",
        ),
        (
            "[1,2,3]",
            Type::Tuple(vec![Type::Number, Type::Number]),
            "more than 2",
        ),
        (
            "[1]",
            Type::Tuple(vec![Type::Number, Type::Number]),
            "1 elements",
        ),
        ("true", Type::Number, "boolean"),
        (r#""maybe""#, Type::Bool, "not a bool"),
        ("[1]", Type::String, "array"),
        ("1", Type::list(Type::Number), "number"),
        (r#"{"value":1}"#, Type::Dynamic, "both"),
        (
            r#"{"value":1,"type":"number","extra":0}"#,
            Type::Dynamic,
            "invalid key",
        ),
    ];
    for (text, ty, needle) in mismatches {
        match json::decode(text.as_bytes(), &ty) {
            Err(CodecError::TypeMismatch { detail, .. }) => {
                assert!(detail.contains(needle), "{text}: {detail}")
            }
            other => panic!("{text}: expected a mismatch, got {other:?}"),
        }
    }
}

#[test]
fn malformed_json_is_an_error_never_a_panic() {
    let ty = obj_ty(&[
        ("a", Type::list(Type::Dynamic)),
        ("b", Type::map(Type::String)),
        ("n", Type::Number),
    ]);
    let good = br#"{"a":[{"value":[1,"x"],"type":["tuple",["number","string"]]}],"b":{"k":"v\u00e9"},"n":-1.5e3}"#;
    let v = json::decode(good, &ty).unwrap();
    assert_eq!(v.get("n"), &Value::int(-1500));
    for n in 0..good.len() {
        match json::decode(&good[..n], &ty) {
            Err(_) => {}
            Ok(v) => panic!(
                "prefix {:?} decoded to {v:?}",
                String::from_utf8_lossy(&good[..n])
            ),
        }
    }
    let bad: Vec<(&[u8], Type)> = vec![
        (b"", Type::String),
        (b"nul", Type::String),
        (b"\"abc", Type::String),
        (b"\"a\x01b\"", Type::String),
        (b"\"\\x\"", Type::String),
        (b"\"\\ud800\"", Type::String),
        (b"\"\xff\"", Type::String),
        (b"[1,]", Type::list(Type::Number)),
        (b"{\"a\" 1}", Type::map(Type::Number)),
        (b"1 2", Type::Number),
        (b"{\"value\":1,\"type\":\"nothing\"}", Type::Dynamic),
    ];
    for (text, ty) in bad {
        match json::decode(text, &ty) {
            Err(CodecError::Malformed { format, .. }) => assert!(format == "JSON"),
            other => panic!(
                "{:?}: expected malformed, got {other:?}",
                String::from_utf8_lossy(text)
            ),
        }
    }
    // Deep nesting through dynamic values stops at the depth limit.
    let mut deep = String::new();
    for _ in 0..5_000 {
        deep.push_str(r#"{"type":["list","dynamic"],"value":["#);
    }
    deep.push_str("null");
    for _ in 0..5_000 {
        deep.push_str("]}");
    }
    assert!(json::decode(deep.as_bytes(), &Type::Dynamic).is_err());
}

#[test]
fn json_and_msgpack_agree_on_every_known_value() {
    let ty = Type::Object {
        attrs: [
            ("s".to_string(), Type::String),
            ("n".to_string(), Type::list(Type::Number)),
            ("b".to_string(), Type::Bool),
            ("m".to_string(), Type::map(Type::set(Type::String))),
            (
                "t".to_string(),
                Type::Tuple(vec![Type::Dynamic, Type::Number]),
            ),
            ("d".to_string(), Type::Dynamic),
        ]
        .into(),
        optional: BTreeSet::new(),
    };
    let v = Value::object([
        ("s", Value::string("x")),
        (
            "n",
            Value::List(vec![
                Value::int(-3),
                float(0.5),
                big("1e40"),
                big("0.3"),
                Value::Null,
            ]),
        ),
        ("b", Value::Null),
        (
            "m",
            Value::Map([("k".to_string(), Value::Set(vec![Value::string("a")]))].into()),
        ),
        (
            "t",
            Value::Tuple(vec![
                Value::object([("q", Value::List(vec![]))]),
                Value::int(7),
            ]),
        ),
        (
            "d",
            Value::Map([("x".to_string(), Value::Tuple(vec![Value::Bool(false)]))].into()),
        ),
    ]);
    let from_json = json::decode(&json::encode(&v, &ty).unwrap(), &ty).unwrap();
    let from_msgpack = msgpack::decode(&msgpack::encode(&v, &ty).unwrap(), &ty).unwrap();
    assert_eq!(from_json, from_msgpack);
    assert!(
        from_json.equals(&v) || from_json.get("n") != v.get("n"),
        "{from_json:?}"
    );
    assert_eq!(
        from_json.get("n").elements()[2],
        big("10000000000000000000000000000000000000000")
    );
}

#[test]
fn type_json_round_trips_every_kind() {
    let cases: Vec<(Type, &str)> = vec![
        (Type::String, r#""string""#),
        (Type::Number, r#""number""#),
        (Type::Bool, r#""bool""#),
        (Type::Dynamic, r#""dynamic""#),
        (Type::list(Type::String), r#"["list","string"]"#),
        (Type::set(Type::Number), r#"["set","number"]"#),
        (
            Type::map(Type::list(Type::Bool)),
            r#"["map",["list","bool"]]"#,
        ),
        (
            obj_ty(&[("b", Type::Number), ("a", Type::String)]),
            r#"["object",{"a":"string","b":"number"}]"#,
        ),
        (
            Type::Object {
                attrs: [
                    ("a".to_string(), Type::String),
                    ("b".to_string(), Type::Number),
                ]
                .into(),
                optional: ["b".to_string()].into(),
            },
            r#"["object",{"a":"string","b":"number"},["b"]]"#,
        ),
        (
            Type::Tuple(vec![Type::String, Type::Dynamic]),
            r#"["tuple",["string","dynamic"]]"#,
        ),
        (Type::Tuple(vec![]), r#"["tuple",[]]"#),
        (obj_ty(&[]), r#"["object",{}]"#),
    ];
    for (ty, text) in cases {
        assert_eq!(String::from_utf8(type_to_json_bytes(&ty)).unwrap(), text);
        assert_eq!(serde_json::to_string(&type_to_json(&ty)).unwrap(), text);
        assert_eq!(type_from_json_bytes(text.as_bytes()).unwrap(), ty);
        let j: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(type_from_json(&j).unwrap(), ty);
    }
    // Whitespace is fine on input.
    assert_eq!(
        type_from_json_bytes(br#"[ "list" , "string" ]"#).unwrap(),
        Type::list(Type::String)
    );
}

#[test]
fn invalid_type_json_is_refused() {
    for text in [
        r#""strung""#,
        r#"["list"]"#,
        r#"["list","string","extra"]"#,
        r#"["lost","string"]"#,
        r#"["object",["a"]]"#,
        r#"["object",{"a":"string"},["b"]]"#,
        r#"["tuple","string"]"#,
        r#"[1,"string"]"#,
        "42",
        "[",
        "",
    ] {
        match type_from_json_bytes(text.as_bytes()) {
            Err(CodecError::Malformed { format, .. }) => assert_eq!(format, "type JSON", "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}
