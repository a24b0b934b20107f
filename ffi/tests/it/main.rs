//! The C ABI, the Kotlin bindings and the Swift sources against the real hub: C examples
//! under AddressSanitizer, C calls in-process, the Kotlin JUnit suite on the JVM, and the
//! Swift syntax check. One test binary, one module per area.

mod common;

mod c_examples;
mod c_session_calls;
mod kotlin;
mod swift_syntax;
