//! Spans that make a trait-bound error in the generated code point at the
//! user's type instead of at `#[rpc_service]`.
//!
//! rustc reports an unsatisfied bound at the expression that introduced it:
//! an argument when the bound's type parameter is in the argument's type,
//! else the call itself, or the explicit generic argument when there is one.
//! It gives an expression the span from its first token to its last, so an
//! expression whose first token carries the span of the type's first token
//! and whose last token carries that of the type's last token is reported
//! as the type, exactly as written. Tokens given a user's span also resolve
//! names as the user's tokens do, so only absolute paths, and local names
//! declared with the same span, are spanned that way.

use proc_macro2::{Ident, Span};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::Type;

/// The spans of the first and of the last token of `ty`.
pub fn ends(ty: &Type) -> (Span, Span) {
    let mut tokens = ty.to_token_stream().into_iter();
    let first = tokens
        .next()
        .map_or_else(|| ty.span(), |token| token.span());
    let last = tokens.last().map_or(first, |token| token.span());
    (first, last)
}

/// One token's span that stands for `ty`, for an error that can only be
/// reported at one token: a path type's name (`Vec` in `std::vec::Vec<T>`),
/// or the whole of a bracketed type (`(A, B)`, `[T; 4]`).
pub fn point(ty: &Type) -> Span {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .map_or_else(|| ty.span(), |segment| segment.ident.span()),
        Type::Group(group) => group.group_token.span,
        Type::Paren(paren) => paren.paren_token.span.join(),
        Type::Tuple(tuple) => tuple.paren_token.span.join(),
        Type::Array(array) => array.bracket_token.span.join(),
        Type::Slice(slice) => slice.bracket_token.span.join(),
        _ => ty.span(),
    }
}

/// `ident`, resolved as before, but reported at `span`.
pub fn located_at(ident: &Ident, span: Span) -> Ident {
    let mut ident = ident.clone();
    ident.set_span(ident.span().located_at(span));
    ident
}
