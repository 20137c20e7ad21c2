//! The `#[rpc_service]` attribute. Use it through `rpc-runtime`, which
//! re-exports it and holds everything the generated code needs.
//!
//! The expansion runs in three passes, each in its own module:
//! 1. [`parse`] (with [`attr`] for the macro's own arguments) reads the trait
//!    into a small model of the service that keeps the original tokens for
//!    spans;
//! 2. [`valid`] checks the model and records *every* problem, each spanned on
//!    the offending tokens ([`ctxt`] collects them);
//! 3. [`expand`] generates the trait, the client and the server from a model
//!    that passed; generation never fails. When validation fails, the trait
//!    is emitted beside the errors (minus whatever would make rustc report
//!    the same problem again), so the rest of the crate still type-checks.

extern crate proc_macro;

mod attr;
mod ctxt;
mod expand;
mod parse;
mod valid;

#[cfg(test)]
mod snapshot;

use proc_macro::TokenStream;

/// See `rpc_runtime::rpc_service`.
#[proc_macro_attribute]
pub fn rpc_service(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::expand(args.into(), input.into()).into()
}
