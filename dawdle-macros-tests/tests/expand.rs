//! Snapshots of what `#[derive(Watched)]` and `#[dawdle::handler]` expand
//! to. The macros' own modules are compiled into this test, so the
//! expansion can be called on `syn` input without a compiler in between.

#[path = "../../dawdle-derive/src/ctxt.rs"]
mod ctxt;
#[path = "../../dawdle-derive/src/handler/mod.rs"]
mod handler;
#[path = "../../dawdle-derive/src/meta.rs"]
mod meta;
#[path = "../../dawdle-derive/src/watched/mod.rs"]
mod watched;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{parse_quote, DeriveInput, ItemFn};

/// The input and its expansion, both pretty-printed, for review.
fn expand(input: &DeriveInput) -> String {
    let pretty = |tokens| prettyplease::unparse(&syn::parse2(tokens).expect("a valid file"));
    let input_text = pretty(quote::quote!(#input));
    let expansion = pretty(watched::derive(input));
    format!("// input\n{input_text}\n// expansion\n{expansion}")
}

#[test]
fn basic() {
    let input = parse_quote! {
        #[dawdle(table = "users")]
        pub struct User {
            pub id: uuid::Uuid,
            pub name: String,
        }
    };
    insta::assert_snapshot!(expand(&input));
}

#[test]
fn every_attribute() {
    let input = parse_quote! {
        #[dawdle(table = "Readings", schema = "sensors")]
        #[dawdle(events(insert, delete), capture_unchanged)]
        struct Reading {
            #[dawdle(primary_key)]
            sensor: uuid::Uuid,
            #[dawdle(primary_key, rename = "taken at")]
            taken_at: chrono::NaiveDateTime,
            #[dawdle(sql = "ST_AsGeoJSON($1)")]
            location: Option<String>,
            #[dawdle(serde)]
            mood: Mood,
            history: Vec<Option<f64>>,
            r#type: [u8; 4],
        }
    };
    insta::assert_snapshot!(expand(&input));
}

#[test]
fn crate_override() {
    let input = parse_quote! {
        #[dawdle(table = "users", crate = "my_app::reexported::dawdle")]
        struct User {
            id: i64,
        }
    };
    insta::assert_snapshot!(expand(&input));
}

#[test]
fn error_with_stub() {
    let input = parse_quote! {
        #[dawdle(tabel = "users")]
        struct User {
            #[dawdle(renmae = "key")]
            id: i64,
        }
    };
    insta::assert_snapshot!(expand(&input));
}

#[test]
fn error_without_stub() {
    // A generic struct cannot have a stub: `Watched: 'static`.
    let input = parse_quote! {
        #[dawdle(table = "things")]
        struct Thing<T> {
            id: T,
        }
    };
    insta::assert_snapshot!(expand(&input));
}

/// `#[dawdle::handler(args)] item` and its expansion, both pretty-printed.
fn expand_handler(args: TokenStream, item: &ItemFn) -> String {
    let pretty = |tokens| prettyplease::unparse(&syn::parse2(tokens).expect("a valid file"));
    let attr = if args.is_empty() {
        quote!(#[dawdle::handler])
    } else {
        quote!(#[dawdle::handler(#args)])
    };
    let input_text = pretty(quote!(#attr #item));
    let expansion = pretty(handler::attribute(args, quote!(#item)));
    format!("// input\n{input_text}\n// expansion\n{expansion}")
}

#[test]
fn handler() {
    let item = parse_quote! {
        /// Greets a new user.
        pub async fn welcome(event: Insert<User>) -> Result<(), MyError> {
            greet(&event.new).await
        }
    };
    insta::assert_snapshot!(expand_handler(TokenStream::new(), &item));
}

#[test]
fn handler_with_options() {
    let item = parse_quote! {
        #[cfg(feature = "audit")]
        async fn audit(event: Change<User>) {}
    };
    let args = quote!(name = "audit v2", crate = "my_app::reexported::dawdle");
    insta::assert_snapshot!(expand_handler(args, &item));
}

#[test]
fn handler_error() {
    // The function is emitted untouched, next to the errors.
    let item = parse_quote! {
        fn welcome(event: Insert<User>, extra: u32) {}
    };
    insta::assert_snapshot!(expand_handler(quote!(nmae = "welcome"), &item));
}
