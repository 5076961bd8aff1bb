//! Compiles proto/sre/v1/*.proto with protox (pure Rust, no system protoc) and emits the
//! file descriptor set that the services hand to tonic-reflection.
use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/sre/v1/common.proto",
    "proto/sre/v1/planner.proto",
    "proto/sre/v1/policy.proto",
    "proto/sre/v1/scanner.proto",
    "proto/sre/v1/validator.proto",
    "proto/sre/v1/pr.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("sre_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
