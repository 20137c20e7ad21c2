//! The greeting's payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpc_runtime::__private::fuzz;

fuzz_target!(|data: &[u8]| {
    let _ = fuzz::decode_hello(data);
});
