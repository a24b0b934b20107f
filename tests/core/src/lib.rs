//! The `streamhub` crate's integration tests live in `tests/it/` of this package (one
//! test binary, one module per area); this library is empty. See `Cargo.toml` for why
//! they are not in `core/tests/`.
