//! Frame payloads after the greeting: the message header, request metadata,
//! and arguments as a generated server decodes them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_runtime::__private::fuzz;

fuzz_target!(|data: &[u8]| {
    let _ = fuzz::decode_frame(data);
    let _ = fuzz::decode_args(data);
});
