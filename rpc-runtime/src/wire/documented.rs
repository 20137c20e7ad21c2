//! The byte examples of `docs/PROTOCOL.md`, checked against the codec: the
//! document is normative, so its examples must be what the code writes.

use bytes::Bytes;

use crate::error::RpcError;
use crate::status::Status;
use crate::wire::codec;
use crate::wire::frame::{self, Message};
use crate::wire::metadata::{Metadata, MetadataValue};

/// The bytes of the first `hex` block after `marker` in PROTOCOL.md.
fn documented(marker: &str) -> Vec<u8> {
    let doc = include_str!("../../../docs/PROTOCOL.md");
    let start = doc.find(marker).expect("the example") + marker.len();
    let open = start + doc[start..].find("```hex").expect("a hex block") + "```hex".len();
    let close = open + doc[open..].find("```").expect("its end");
    doc[open..close]
        .split_whitespace()
        .map(|byte| u8::from_str_radix(byte, 16).expect("hex"))
        .collect()
}

/// Section 5.0.
#[test]
fn the_documented_metadata_block() {
    let documented = documented("the single entry `authorization` = `Bearer t` is");
    let entries = vec![(
        "authorization".to_owned(),
        MetadataValue::Text("Bearer t".to_owned()),
    )];
    assert_eq!(&codec::encode_metadata(&entries)[..], &documented[..]);
    let (decoded, used) = codec::decode_metadata(&documented).expect("it decodes");
    assert_eq!(used, documented.len());
    assert_eq!(decoded, entries);
}

/// Section 5.1: an application status.
#[test]
fn the_documented_status_response() {
    let documented = documented("message `no`, and details `2a`, for request 3:");
    let status = Status::not_found("no").with_details(vec![0x2a]);
    let frame = codec::encode_response(3, Err(status.clone().into()), 1 << 20);
    assert_eq!(&frame[..], &documented[..]);
    // And back.
    let (message, used) = codec::decode_message(&frame).expect("it decodes");
    let Message::Response {
        status: frame::Status::Error { code, message },
        ..
    } = message
    else {
        panic!("not an error response");
    };
    let details = Bytes::copy_from_slice(&frame[used..]);
    match codec::error_from_wire(code, message, details, "S", "m") {
        RpcError::Status(back) => assert_eq!(back, status),
        other => panic!("{other:?}"),
    }
}

/// Section 5.1: reply metadata.
#[test]
fn the_documented_reply_metadata() {
    let documented = documented("`2a` (a `u8`) of call 3 with the entry `k` = `v`:");
    let metadata = Metadata::new().with("k", "v");
    let value = codec::encode_value(&0x2a_u8).expect("a u8 encodes");
    let frame = codec::encode_response_with(3, Ok(value), 1 << 20, &metadata, 8192);
    assert_eq!(&frame[..], &documented[..]);
    let (_, used) = codec::decode_message(&frame).expect("it decodes");
    let body = Bytes::copy_from_slice(&frame[used..]);
    let (back, rest) = codec::split_reply_metadata(body, 8192).expect("it splits");
    assert_eq!(back, metadata);
    assert_eq!(&rest[..], &[0x2a]);
}

/// Section 5.8.
#[test]
fn the_documented_head() {
    let documented = documented("listener sends `Head` before the first `Item`. For call 3:");
    let frame = codec::encode_control(&Message::Head { id: 3 });
    assert_eq!(&frame[..], &documented[..]);
}
