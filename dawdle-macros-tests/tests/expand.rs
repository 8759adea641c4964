//! Snapshots of what `#[derive(Watched)]` expands to. The derive's own
//! modules are compiled into this test, so the expansion can be called on a
//! `syn::DeriveInput` without a compiler in between.

#[path = "../../dawdle-derive/src/ctxt.rs"]
mod ctxt;
#[path = "../../dawdle-derive/src/watched/mod.rs"]
mod watched;

use syn::{parse_quote, DeriveInput};

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
