//! Fidelity: a row decoded from a captured event equals the same row read
//! by a direct tokio-postgres query, field for field.
//!
//! Every test writes rows through SQL into a fresh database with dawdle's
//! triggers, decodes `dawdle.events` with `Watched::from_json` and compares
//! with a direct query, floats bit for bit (NaN equal to NaN, -0 not 0).

mod harness;

mod arrays;
mod changes;
mod custom;
mod errors;
mod json;
mod numeric_text;
mod properties;
mod readable;
mod scalars;
mod sessions;
mod temporal;
