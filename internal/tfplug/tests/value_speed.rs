//! Codec speed on the values a plan of 200 resources moves: prints figures, asserts nothing
//! about time. Run with `cargo test -p tfplug --release --test value_speed -- --ignored --nocapture`.

use std::time::Instant;

use tfplug::value::{json, msgpack, Number, Refinements, Type, Value};

/// A resource-sized object: a dozen attributes, a map, a set, a nested block list.
fn resource_type() -> Type {
    Type::object([
        ("id", Type::String),
        ("name", Type::String),
        ("namespace", Type::String),
        ("storage_class", Type::String),
        ("size_bytes", Type::Number),
        ("ratio", Type::Number),
        ("read_only", Type::Bool),
        ("labels", Type::map(Type::String)),
        ("access_modes", Type::set(Type::String)),
        ("extra", Type::Dynamic),
        (
            "mount",
            Type::list(Type::object([
                ("path", Type::String),
                ("sub_path", Type::String),
                ("read_only", Type::Bool),
            ])),
        ),
    ])
}

fn resource(i: i64) -> Value {
    Value::object([
        (
            "id",
            Value::Unknown(Refinements {
                not_null: true,
                string_prefix: Some("pvc-".into()),
                ..Default::default()
            }),
        ),
        ("name", Value::string(format!("tezos-node-{i}"))),
        ("namespace", Value::string("testnet")),
        ("storage_class", Value::string("fast-ssd")),
        ("size_bytes", Value::int(i * 1_073_741_824)),
        ("ratio", Value::Number(Number::Float(0.75))),
        ("read_only", Value::Bool(false)),
        (
            "labels",
            Value::string_map([("app", "tezos"), ("role", "baker"), ("network", "ghostnet")]),
        ),
        (
            "access_modes",
            Value::Set(vec![Value::string("ReadWriteOnce")]),
        ),
        (
            "extra",
            Value::object([("a", Value::int(1)), ("b", Value::string_list(["x", "y"]))]),
        ),
        (
            "mount",
            Value::List(
                (0..3)
                    .map(|m| {
                        Value::object([
                            ("path", Value::string(format!("/data/{m}"))),
                            ("sub_path", Value::Null),
                            ("read_only", Value::Bool(m == 0)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

#[test]
#[ignore = "benchmark: prints figures"]
fn codec_speed_for_200_resources() {
    let ty = resource_type();
    let values: Vec<Value> = (0..200).map(resource).collect();
    let rounds = 50;

    let start = Instant::now();
    let mut bytes = 0usize;
    let mut encoded = Vec::new();
    for _ in 0..rounds {
        encoded = values
            .iter()
            .map(|v| msgpack::encode(v, &ty).expect("encode"))
            .collect::<Vec<_>>();
        bytes += encoded.iter().map(Vec::len).sum::<usize>();
    }
    let enc = start.elapsed();

    let start = Instant::now();
    for _ in 0..rounds {
        for b in &encoded {
            std::hint::black_box(msgpack::decode(b, &ty).expect("decode"));
        }
    }
    let dec = start.elapsed();

    let known: Vec<Value> = values
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v.set("id", Value::string("pvc-123"));
            v
        })
        .collect();
    let start = Instant::now();
    let mut jbytes = 0usize;
    let mut jencoded = Vec::new();
    for _ in 0..rounds {
        jencoded = known
            .iter()
            .map(|v| json::encode(v, &ty).expect("json encode"))
            .collect::<Vec<_>>();
        jbytes += jencoded.iter().map(Vec::len).sum::<usize>();
    }
    let jenc = start.elapsed();
    let start = Instant::now();
    for _ in 0..rounds {
        for b in &jencoded {
            std::hint::black_box(json::decode(b, &ty).expect("json decode"));
        }
    }
    let jdec = start.elapsed();

    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / (rounds as f64 * 200.0);
    let mbps = |n: usize, d: std::time::Duration| n as f64 / d.as_secs_f64() / 1e6;
    println!("msgpack: {} bytes per resource", encoded[0].len());
    println!(
        "msgpack encode: {:.2} us per resource, {:.0} MB/s; 200 resources in {:.3} ms",
        per(enc),
        mbps(bytes, enc),
        per(enc) * 0.2
    );
    println!(
        "msgpack decode: {:.2} us per resource, {:.0} MB/s; 200 resources in {:.3} ms",
        per(dec),
        mbps(bytes, dec),
        per(dec) * 0.2
    );
    println!("json: {} bytes per resource", jencoded[0].len());
    println!(
        "json encode: {:.2} us per resource, {:.0} MB/s",
        per(jenc),
        mbps(jbytes, jenc)
    );
    println!(
        "json decode: {:.2} us per resource, {:.0} MB/s",
        per(jdec),
        mbps(jbytes, jdec)
    );
}
