fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc, so that a fresh machine needs no system protobuf compiler.
    // SAFETY: build scripts are single-threaded.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    tonic_prost_build::configure()
        .compile_protos(&["proto/driver.proto", "proto/executor.proto"], &["proto"])?;
    Ok(())
}
