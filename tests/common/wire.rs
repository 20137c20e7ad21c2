//! Raw protocol bytes for tests that speak to a server (or play one) by hand;
//! see docs/PROTOCOL.md.

/// A client greeting frame: `RRPC`, role 0 (dialer), version 1, maximum
/// frame 16 MiB, runs no calls (0).
pub const CLIENT_HELLO: [u8; 16] = [
    0, 0, 0, 12, b'R', b'R', b'P', b'C', 0, 1, 0xfc, 0, 0, 0, 1, 0,
];

/// A server greeting frame: `RRPC`, role 1 (listener), version 1, maximum
/// frame 16 MiB, runs up to 1,024 calls at once (`fb 00 04`).
pub const SERVER_HELLO: [u8; 18] = [
    0, 0, 0, 14, b'R', b'R', b'P', b'C', 1, 1, 0xfc, 0, 0, 0, 1, 0xfb, 0, 4,
];
