//! Benchmarks live in `benches/benches/` and `src/bin/`; this library holds what the
//! benchmark binaries share.

pub mod plot;
