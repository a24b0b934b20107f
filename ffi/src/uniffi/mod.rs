//! The uniffi exports (proc-macros) behind the Swift and Kotlin bindings: objects
//! ([`objects::StreamSession`], [`objects::FlvReader`]), records and enums
//! ([`types`]), one error enum per area ([`errors`]), and listener traits the app
//! implements.

pub mod errors;
pub mod objects;
pub mod types;
