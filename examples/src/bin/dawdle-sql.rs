//! dawdle's migration for the example models: `cargo run --bin dawdle-sql -- --help`.
use dawdle_examples as _; // links the models, so that dawdle finds them
fn main() -> std::process::ExitCode {
    dawdle::sql::cli()
}
