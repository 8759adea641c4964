//! Tests for dawdle-derive. Not published.
