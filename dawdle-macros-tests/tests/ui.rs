//! Compile-time behaviour of the macros: what compiles, and the errors of
//! what does not. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p dawdle-macros-tests --test ui`, then read them.

#[test]
fn watched() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/watched/pass/*.rs");
    t.compile_fail("tests/ui/watched/fail/*.rs");
}

#[test]
fn handler() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/handler/pass/*.rs");
    t.compile_fail("tests/ui/handler/fail/*.rs");
}

#[test]
fn signal() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/signal/pass/*.rs");
    t.compile_fail("tests/ui/signal/fail/*.rs");
}
