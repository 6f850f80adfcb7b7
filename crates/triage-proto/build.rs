//! Generates the gRPC code from `proto/triage/v1` with protox (pure Rust, no system protoc)
//! and writes a descriptor set for gRPC reflection.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with env!: cargo reuses a compiled build script for the
    // same workspace at another path (CI clones share one CARGO_TARGET_DIR), and a baked-in
    // path would point at the other clone's protos.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "triage/v1/common.proto",
        "triage/v1/router.proto",
        "triage/v1/classifier.proto",
        "triage/v1/policy.proto",
        "triage/v1/backends.proto",
        "triage/v1/context.proto",
        "triage/v1/ledger.proto",
        "triage/v1/admin.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("triage_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .message_attribute(".", "#[serde(default)]")
        .compile_fds(fds)?;
    Ok(())
}
