//! Examples live in `examples/rust/`; this crate has no library code.
