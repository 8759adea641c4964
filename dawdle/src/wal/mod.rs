//! Capture from the write-ahead log: the pieces the watcher's WAL reader
//! (`watcher/wal.rs`) builds on: `pgoutput`'s messages, the captured
//! tables as up registered them, and each change's event built in Rust.

// `pub` for `__private`, where its tests reach it.
pub mod encode;
pub(crate) mod event;
pub(crate) mod pgoutput;
pub(crate) mod tables;
