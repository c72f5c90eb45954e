//! Generates the Rust types and tonic stubs from `proto/mrtdose/v1/*.proto` into OUT_DIR.
//! protox parses the files in pure Rust, so no `protoc` has to be installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        root.join("mrtdose/v1/stage.proto"),
        root.join("mrtdose/v1/study.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
