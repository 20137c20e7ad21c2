//! The byte examples of `docs/PROTOCOL.md`, checked against the codec: the
//! document is normative, so its examples must be what the code writes.

#[cfg(test)]
mod reply_metadata_tests {
    /// The example in `docs/PROTOCOL.md`, section 5.1.
    #[test]
    fn the_documented_reply_metadata() {
        let doc = include_str!("../../../docs/PROTOCOL.md");
        let marker = "`2a` (a `u8`) of call 3 with the entry `k` = `v`:";
        let start = doc.find(marker).expect("the example") + marker.len();
        let open = start + doc[start..].find("```hex").expect("a hex block") + "```hex".len();
        let close = open + doc[open..].find("```").expect("its end");
        let documented: Vec<u8> = doc[open..close]
            .split_whitespace()
            .map(|byte| u8::from_str_radix(byte, 16).expect("hex"))
            .collect();
        let metadata = crate::wire::metadata::Metadata::new().with("k", "v");
        let value = crate::wire::codec::encode_value(&0x2a_u8).expect("a u8 encodes");
        let frame =
            crate::wire::codec::encode_response_with(3, Ok(value), 1 << 20, &metadata, 8192);
        assert_eq!(&frame[..], &documented[..]);
        let (_, used) = crate::wire::codec::decode_message(&frame).expect("it decodes");
        let body = bytes::Bytes::copy_from_slice(&frame[used..]);
        let (back, rest) = crate::wire::codec::split_reply_metadata(body, 8192).expect("it splits");
        assert_eq!(back, metadata);
        assert_eq!(&rest[..], &[0x2a]);
    }
}

#[cfg(test)]
mod head_tests {
    /// The example in `docs/PROTOCOL.md`, section 5.8.
    #[test]
    fn the_documented_head() {
        let doc = include_str!("../../../docs/PROTOCOL.md");
        let marker = "listener sends `Head` before the first `Item`. For call 3:";
        let start = doc.find(marker).expect("the example") + marker.len();
        let open = start + doc[start..].find("```hex").expect("a hex block") + "```hex".len();
        let close = open + doc[open..].find("```").expect("its end");
        let documented: Vec<u8> = doc[open..close]
            .split_whitespace()
            .map(|byte| u8::from_str_radix(byte, 16).expect("hex"))
            .collect();
        let frame =
            crate::wire::codec::encode_control(&crate::wire::frame::Message::Head { id: 3 });
        assert_eq!(&frame[..], &documented[..]);
    }
}

#[cfg(test)]
mod status_tests {
    /// The example in `docs/PROTOCOL.md`, section 5.1.
    #[test]
    fn the_documented_status_response() {
        let doc = include_str!("../../../docs/PROTOCOL.md");
        let marker = "message `no`, and details `2a`, for request 3:";
        let start = doc.find(marker).expect("the example") + marker.len();
        let open = start + doc[start..].find("```hex").expect("a hex block") + "```hex".len();
        let close = open + doc[open..].find("```").expect("its end");
        let documented: Vec<u8> = doc[open..close]
            .split_whitespace()
            .map(|byte| u8::from_str_radix(byte, 16).expect("hex"))
            .collect();
        let status = crate::Status::not_found("no").with_details(vec![0x2a]);
        let frame = crate::wire::codec::encode_response(3, Err(status.clone().into()), 1 << 20);
        assert_eq!(&frame[..], &documented[..]);
        // And back.
        let (message, used) = crate::wire::codec::decode_message(&frame).expect("it decodes");
        let crate::wire::frame::Message::Response {
            status: crate::wire::frame::Status::Error { code, message },
            ..
        } = message
        else {
            panic!("not an error response");
        };
        let details = bytes::Bytes::copy_from_slice(&frame[used..]);
        match crate::wire::codec::error_from_wire(code, message, details, "S", "m") {
            crate::RpcError::Status(back) => assert_eq!(back, status),
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod metadata_tests {
    /// The example in `docs/PROTOCOL.md`, section 5.0.
    #[test]
    fn the_documented_metadata_block() {
        let doc = include_str!("../../../docs/PROTOCOL.md");
        let marker = "the single entry `authorization` = `Bearer t` is";
        let start = doc.find(marker).expect("the example") + marker.len();
        let open = start + doc[start..].find("```hex").expect("a hex block") + "```hex".len();
        let close = open + doc[open..].find("```").expect("its end");
        let documented: Vec<u8> = doc[open..close]
            .split_whitespace()
            .map(|byte| u8::from_str_radix(byte, 16).expect("hex"))
            .collect();
        let entries = vec![(
            "authorization".to_owned(),
            crate::wire::metadata::MetadataValue::Text("Bearer t".to_owned()),
        )];
        assert_eq!(
            &crate::wire::codec::encode_metadata(&entries)[..],
            &documented[..]
        );
        let (decoded, used) = crate::wire::codec::decode_metadata(&documented).expect("it decodes");
        assert_eq!(used, documented.len());
        assert_eq!(decoded, entries);
    }
}
