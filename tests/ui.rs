//! Compile-fail tests for `#[rpc_service]`: every case under `tests/ui/`
//! must fail to compile with exactly the errors in its `.stderr` file.
//!
//! After changing a message, regenerate with
//! `TRYBUILD=overwrite cargo test --test ui` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
