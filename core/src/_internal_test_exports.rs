//! Not API. The sans-I/O parsers and state machines that this crate's own tests,
//! benchmarks and fuzz targets drive directly, re-exported from the private modules
//! they live in. Hidden from the docs; nothing here is covered by semver, and apps use
//! the public modules instead. The pattern is str0m's `_internal_test_exports`.

/// RTMP's wire pieces: AMF0, chunks, the chunk reader, the packetizer, the publish
/// session.
pub mod rtmp {
    /// See `crate::rtmp::amf0`.
    pub mod amf0 {
        pub use crate::rtmp::amf0::*;
    }
    /// See `crate::rtmp::chunk`.
    pub mod chunk {
        pub use crate::rtmp::chunk::*;
    }
    /// See `crate::rtmp::chunk_reader`.
    pub mod chunk_reader {
        pub use crate::rtmp::chunk_reader::*;
    }
    /// See `crate::rtmp::packetizer`.
    pub mod packetizer {
        pub use crate::rtmp::packetizer::*;
    }
    /// See `crate::rtmp::session`.
    pub mod session {
        pub use crate::rtmp::session::*;
    }
}

/// The hub's RTMP ingest session and feed, and a live stream's fan-out.
#[cfg(feature = "server")]
pub mod hub {
    /// See `crate::hub::ingest`.
    pub mod ingest {
        /// See `crate::hub::ingest::feed`.
        pub mod feed {
            pub use crate::hub::ingest::feed::*;
        }
        /// See `crate::hub::ingest::session`.
        pub mod session {
            pub use crate::hub::ingest::session::*;
        }
    }
    /// See `crate::hub::stream`.
    pub mod stream {
        pub use crate::hub::stream::*;
    }
}

/// The player's reorder buffer, depacketizers and WHEP HTTP helpers.
#[cfg(feature = "whep")]
pub mod whep {
    /// See `crate::whep::depacketize`.
    pub mod depacketize {
        pub use crate::whep::depacketize::*;
    }
    /// See `crate::whep::http`.
    pub mod http {
        pub use crate::whep::http::*;
    }
    /// See `crate::whep::jitter`.
    pub mod jitter {
        pub use crate::whep::jitter::*;
    }
}

/// The chat client's connection driven by fuzz input.
#[cfg(feature = "chat")]
pub mod chat_client_fuzzing {
    pub use crate::chat::client::fuzzing::*;
}

/// The chat server's connection driven by fuzz input.
#[cfg(feature = "server")]
pub mod chat_server_fuzzing {
    pub use crate::chat::server::fuzzing::*;
}
