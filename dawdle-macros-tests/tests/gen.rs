//! The generated code compiles whatever the user has in scope: every path in
//! it is absolute (serde's `test_suite/tests/test_gen.rs`).
#![deny(warnings)]
#![allow(
    dead_code,
    non_camel_case_types,
    non_snake_case,
    clippy::upper_case_acronyms
)]

mod shadowed {
    // Prelude names a user might define for themselves.
    struct Result;
    struct Ok;
    struct Err;
    struct Option;
    struct Some;
    struct None;
    struct Vec;
    struct String;
    struct Box;
    struct Send;
    struct Sync;
    struct Sized;
    struct concat;
    struct module_path;
    struct row;
    struct PARTS;
    struct Handler;
    struct EventArg;
    struct Insert;
    struct Future;
    mod core {}
    mod std {}
    mod dawdle {}
    mod inventory {}

    #[derive(::dawdle::Watched)]
    #[dawdle(table = "users")]
    pub struct User {
        id: i64,
        name: ::std::string::String,
        email: ::core::option::Option<::std::string::String>,
        scores: ::std::vec::Vec<i32>,
        #[dawdle(serde)]
        extra: ::std::collections::BTreeMap<::std::string::String, i32>,
    }

    // A field named like the generated code's locals.
    #[derive(::dawdle::Watched)]
    #[dawdle(table = "rows")]
    pub struct Row {
        #[dawdle(primary_key)]
        row: i64,
        PARTS: i64,
        decode: bool,
        TABLE: bool,
    }

    // Handlers named like the generated code's helpers and locals.
    #[::dawdle::handler]
    async fn register(_event: ::dawdle::Insert<User>) {}

    #[::dawdle::handler]
    async fn call(
        _event: ::dawdle::Update<User>,
    ) -> ::core::result::Result<(), ::std::string::String> {
        ::core::result::Result::Ok(())
    }

    #[::dawdle::handler]
    async fn __arg(_event: ::dawdle::Delete<User>) {}

    #[::dawdle::handler]
    async fn HANDLER(_event: ::dawdle::Delete<Row>) {}

    #[::dawdle::handler(name = "shadowed")]
    async fn handler(_event: ::dawdle::Change<Row>) {}
}

// Two watched types in one module, and a watched type and a handler in a
// function body.
mod neighbours {
    #[derive(dawdle::Watched)]
    #[dawdle(table = "a")]
    struct A {
        id: i32,
    }

    #[derive(dawdle::Watched)]
    #[dawdle(table = "b")]
    struct B {
        id: i32,
    }
}

#[test]
fn inside_a_function() {
    #[derive(dawdle::Watched)]
    #[dawdle(table = "local")]
    struct Local {
        id: i32,
    }

    #[dawdle::handler]
    async fn local(_event: dawdle::Insert<Local>) {}

    assert_eq!(<Local as dawdle::Watched>::TABLE.name, "local");
    assert!(dawdle::handler::handlers()
        .iter()
        .any(|handler| handler.name == "gen::local"));
}
