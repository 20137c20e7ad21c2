//! Generates the tonic peer's client and server from a description in Rust
//! (tonic-build's manual mode: no `.proto` file, no protoc). The messages
//! are hand-written prost structs in `src/peer_tonic.rs`.

fn main() {
    let method = |name: &str, route: &str, input: &str, output: &str| {
        tonic_build::manual::Method::builder()
            .name(name)
            .route_name(route)
            .input_type(input)
            .output_type(output)
            .codec_path("tonic_prost::ProstCodec")
            .build()
    };
    let service = tonic_build::manual::Service::builder()
        .name("Bench")
        .package("bench")
        .method(method(
            "add",
            "Add",
            "crate::peer_tonic::AddRequest",
            "crate::peer_tonic::AddReply",
        ))
        .method(method(
            "echo",
            "Echo",
            "crate::peer_tonic::Blob",
            "crate::peer_tonic::Blob",
        ))
        .build();
    tonic_build::manual::Builder::new().compile(&[service]);
}
