//! Raw protocol bytes for tests that speak to a server (or play one) by hand;
//! see docs/PROTOCOL.md.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client greeting frame of version 3 (which a server answers with
/// [`SERVER_HELLO`]): `RRPC`, role 0 (dialer), version 3, maximum
/// frame 16 MiB, runs no calls (0), accepts no compression (0).
pub const CLIENT_HELLO: [u8; 17] = [
    0, 0, 0, 13, b'R', b'R', b'P', b'C', 0, 3, 0xfc, 0, 0, 0, 1, 0, 0,
];

/// A server's answer to [`CLIENT_HELLO`], in version 3's layout: `RRPC`,
/// role 1 (listener), version 3, maximum
/// frame 16 MiB, runs up to 1,024 calls at once (`fb 00 04`), accepts zstd
/// (1).
pub const SERVER_HELLO: [u8; 19] = [
    0, 0, 0, 15, b'R', b'R', b'P', b'C', 1, 3, 0xfc, 0, 0, 0, 1, 0xfb, 0, 4, 1,
];

/// A current server's greeting, for tests that play the server: `RRPC`,
/// role 1, newest version 4, maximum frame 16 MiB, 1,024 calls at once,
/// oldest version 3, and the extension zstd (1). A client settles on
/// version 4 with it.
pub const SERVER_HELLO_RANGED: [u8; 21] = [
    0, 0, 0, 17, b'R', b'R', b'P', b'C', 1, 4, 0xfc, 0, 0, 0, 1, 0xfb, 0, 4, 3, 1, 1,
];

/// How long the raw helpers wait for the server.
pub const LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A client greeting's payload (without its length prefix).
pub const HELLO: [u8; 13] = [b'R', b'R', b'P', b'C', 0, 3, 0xfc, 0, 0, 0, 1, 0, 0];

/// A frame: the payload behind its big-endian length.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Reads one frame's payload; `None` when the server closed the connection.
pub async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut len))
        .await
        .expect("the server neither answered nor closed")
        .ok()?;
    let mut payload = vec![0; u32::from_be_bytes(len) as usize];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut payload))
        .await
        .expect("the server stalled mid-frame")
        .ok()?;
    Some(payload)
}

/// Asserts the server closes the connection (after at most a goodbye frame,
/// which is returned).
pub async fn expect_close(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let goodbye = read_frame(stream).await;
    if goodbye.is_some() {
        assert_eq!(
            read_frame(stream).await,
            None,
            "the server kept the connection open"
        );
    }
    goodbye
}

/// A raw connection that has greeted the server.
pub async fn greeted(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&frame(&HELLO)).await.unwrap();
    let hello = read_frame(&mut stream).await.expect("server greeting");
    assert_eq!(&hello[..5], b"RRPC\x01", "server greeting: {hello:?}");
    stream
}

/// A request frame for `<service>.<method>` with request id `id` (< 251),
/// without a deadline or flags.
pub fn request_to(service: &str, id: u8, method: &str, body: &[u8]) -> Vec<u8> {
    request_with(service, id, method, None, 0, body)
}

/// A request frame for `<service>.<method>` with request id `id` (< 251),
/// `timeout` µs to live (`None`: no deadline) and `flags`.
pub fn request_with(
    service: &str,
    id: u8,
    method: &str,
    timeout: Option<u64>,
    flags: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut payload = vec![0, id];
    payload.extend_from_slice(&rpc_runtime::method_id(service, method).to_le_bytes());
    payload.extend_from_slice(&timeout_field(timeout));
    payload.push(flags);
    payload.extend_from_slice(body);
    frame(&payload)
}

/// A request's `timeout` field as docs/PROTOCOL.md §5.0 defines it: `n << 2
/// | unit` in the finest unit (µs, ms, s, min) that keeps it below 2^16,
/// rounded up; a varint.
pub fn timeout_field(micros: Option<u64>) -> Vec<u8> {
    let value = match micros {
        None => 0,
        // No time left: zero milliseconds.
        Some(0) => 1,
        Some(micros) => {
            let mut value = 0;
            for (code, unit) in [1u64, 1_000, 1_000_000, 60_000_000].into_iter().enumerate() {
                value = micros.div_ceil(unit) * 4 + code as u64;
                if value < 1 << 16 {
                    break;
                }
            }
            value
        }
    };
    match value {
        0..=250 => vec![u8::try_from(value).unwrap()],
        251..=0xffff => {
            let mut out = vec![251];
            out.extend_from_slice(&u16::try_from(value).unwrap().to_le_bytes());
            out
        }
        _ => {
            let mut out = vec![252];
            out.extend_from_slice(&u32::try_from(value).unwrap().to_le_bytes());
            out
        }
    }
}
