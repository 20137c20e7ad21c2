//! Expansion snapshots: each `tests/expand/NAME.rs` holds one annotated trait;
//! its expansion, pretty-printed, must equal `tests/expand/NAME.expanded.rs`.
//! Run with `UPDATE_EXPAND=1` to rewrite the snapshots after a deliberate
//! change to the generated code (then review the diff).

use std::fs;
use std::path::Path;

use quote::ToTokens;

fn expand_file(input: &str) -> String {
    let file: syn::File = syn::parse_str(input).expect("the snapshot input parses");
    let mut output = proc_macro2::TokenStream::new();
    for item in file.items {
        match item {
            syn::Item::Trait(mut item) => {
                let position = item
                    .attrs
                    .iter()
                    .position(|a| a.path().is_ident("rpc_service"))
                    .expect("the trait carries #[rpc_service]");
                let attr = item.attrs.remove(position);
                let args = match attr.meta {
                    syn::Meta::List(list) => list.tokens,
                    _ => proc_macro2::TokenStream::new(),
                };
                output.extend(crate::expand::expand(args, item.into_token_stream()));
            }
            other => other.to_tokens(&mut output),
        }
    }
    let expanded: syn::File = syn::parse2(output).expect("the expansion parses as a file");
    prettyplease::unparse(&expanded)
}

#[test]
fn expansions_match_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let update = std::env::var_os("UPDATE_EXPAND").is_some();
    let mut checked = 0;
    for entry in fs::read_dir(&dir).expect("tests/expand exists") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.ends_with(".rs") || name.ends_with(".expanded.rs") {
            continue;
        }
        let input = fs::read_to_string(&path).expect("read the input");
        let actual = expand_file(&input);
        let snapshot = path.with_extension("expanded.rs");
        if update || !snapshot.exists() {
            fs::write(&snapshot, &actual).expect("write the snapshot");
        }
        let expected = fs::read_to_string(&snapshot).expect("read the snapshot");
        assert!(
            expected == actual,
            "the expansion of {name} changed; run `UPDATE_EXPAND=1 cargo test -p rpc-macros` and review the diff of {}\n--- actual ---\n{actual}",
            snapshot.display()
        );
        checked += 1;
    }
    assert!(checked > 0, "no snapshot inputs in {}", dir.display());
}
