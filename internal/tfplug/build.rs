//! Generates the protocol code from `proto/` with a pure-Rust protobuf compiler (protox), so
//! building tfplug needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/tfplugin6.proto", "proto/go_plugin.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Unimplemented-by-default methods let small test servers implement only what they need.
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
