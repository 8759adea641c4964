//! dawdle captures row changes in PostgreSQL and delivers them as typed Rust
//! values.
//!
//! This release holds the capture half: [`#[derive(Watched)]`](derive@Watched)
//! describes a table by a Rust struct, [`sql`] turns the descriptions into
//! triggers that record every change durably in the same transaction, and
//! [`Watched::from_json`] turns a recorded row back into the struct.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

// Lets the crate's own tests and docs use the derive, which names `::dawdle`.
#[allow(unused_extern_crates)]
extern crate self as dawdle;

pub mod decode;
pub mod registry;
pub mod sql;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
mod watched;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use decode::{Decode, DecodeError, Interval};
pub use table::{Action, Column, Encoding, Events, Table};
pub use watched::Watched;

#[cfg(feature = "derive")]
pub use dawdle_derive::Watched;
