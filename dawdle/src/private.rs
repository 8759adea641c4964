//! Not public API: what generated code reaches through `::dawdle::__private`.

pub use inventory;
pub use serde_json;

pub use crate::registry::WatchedType;

/// Fails to compile, on the field's type, when it cannot be decoded.
pub const fn assert_decode<T: crate::decode::Decode>() {}

/// Fails to compile, on the field's type, when `#[dawdle(serde)]` cannot deserialize it.
pub const fn assert_deserialize<T: serde::de::DeserializeOwned>() {}
