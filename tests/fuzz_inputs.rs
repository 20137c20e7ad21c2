//! Randomized inputs on every test run (the stable-toolchain side of the
//! `fuzz/` targets): the decoders and a whole server connection get
//! thousands of arbitrary inputs and must neither panic nor stop serving.
//! A failing case is printed by proptest and belongs in a regression test.

mod common;

use std::time::Duration;

use common::{Calc, CalculatorClient, CalculatorServer};
use proptest::prelude::*;
use rpc_runtime::__private::fuzz;
use rpc_runtime::transport::memory;
use rpc_runtime::{Channel, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The client greeting, then frames of arbitrary payloads: mostly
/// plausible headers (a valid variant byte first), sometimes pure noise.
fn frames() -> impl Strategy<Value = Vec<u8>> {
    let payload = prop_oneof![
        // A message variant (0..=8) and arbitrary fields.
        (0u8..=8, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(variant, rest)| {
            let mut payload = vec![variant];
            payload.extend(rest);
            payload
        }),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    prop::collection::vec(payload, 0..12).prop_map(|payloads| {
        let mut out = common::wire::CLIENT_HELLO.to_vec();
        for payload in payloads {
            out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
            out.extend(payload);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn decoders_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = fuzz::decode_frame(&bytes);
        let _ = fuzz::decode_hello(&bytes);
        let _ = fuzz::decode_args(&bytes);
    }

    #[test]
    fn decoders_take_plausible_headers(
        variant in 0u8..=8,
        id in any::<u64>(),
        rest in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut payload = vec![variant];
        payload.extend_from_slice(&id.to_le_bytes()[..2]);
        payload.extend(rest);
        let _ = fuzz::decode_frame(&payload);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A connection fed arbitrary frames: the server answers or closes it,
    /// never panics, and a second connection is served afterwards.
    #[test]
    fn a_server_connection_takes_any_frames(input in frames()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (listener, addr) = memory::listener();
            let server = Server::builder()
                .add_service(CalculatorServer::new(Calc))
                .serve(listener)
                .unwrap();
            let mut raw = addr.connect().unwrap();
            let _ = raw.write_all(&input).await;
            // Read whatever comes back until the server closes or goes
            // quiet.
            let mut sink = vec![0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(20), raw.read(&mut sink)).await
            {
                if n == 0 {
                    break;
                }
            }
            drop(raw);
            let channel = Channel::builder()
                .connect_io(addr.connect().unwrap(), "memory")
                .await
                .unwrap();
            let honest = CalculatorClient::new(channel);
            assert_eq!(honest.add(20, 22).await.unwrap(), 42);
            server.abort().await;
        });
    }
}
