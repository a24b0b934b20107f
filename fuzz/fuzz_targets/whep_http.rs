//! The WHEP server's response headers as the player reads them: `Location` (resolved
//! against the URL posted to), `Link` (ICE servers, with quoted parameters) and
//! `Retry-After`.
//!
//! Input: lines; the first is the `Location`, the second the `Retry-After`, every
//! other one a `Link` header value.
#![no_main]

use http::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use libfuzzer_sys::fuzz_target;
use streamhub::_internal_test_exports::whep::http::{
    parse_ice_server_links, parse_retry_after, resolve_location,
};
use url::Url;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let location = lines.next().unwrap_or_default();
    let retry_after = lines.next().unwrap_or_default();
    let links: Vec<String> = lines
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect();

    let base = Url::parse("https://whep.example.com:8443/live/cam1/whep").expect("a valid URL");
    if let Ok(location) = std::str::from_utf8(location) {
        let _ = resolve_location(&base, location);
    }

    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(retry_after) {
        headers.insert(RETRY_AFTER, value);
    }
    let _ = parse_retry_after(&headers);

    for server in parse_ice_server_links(links.iter().map(String::as_str)) {
        assert!(
            !server.url.contains('>'),
            "an ICE server URL with its bracket: {server:?}"
        );
    }
});
