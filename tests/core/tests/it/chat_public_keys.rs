//! Chat tokens an app's auth service signs with its own key: RS256 and EdDSA, checked with
//! public keys from a JWK Set (a file, or a URL that is read again when a token names a
//! new key) or a PEM file; forged tokens (another key, a tampered payload, algorithm
//! confusion) are refused. Keys are made fresh by `openssl` (tests/support/jwt_keys.rs).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use streamhub::chat::client::{ChatClient, ChatConfig, TokenSource};
use streamhub::chat::protocol::{ErrorCode, Role};
use streamhub::chat::server::token::{JwksOptions, KeySource, PublicKey};
use streamhub::chat::server::{ChatServer, ChatServerConfig, Claims, PublicKeys, TokenKeys};
use tokio::net::TcpListener;

use streamhub_test_support::jwt_keys;

use jwt_keys::{KeyPair, jwks_json};

const SECRET: &[u8] = b"test secret";

fn claims(user: &str) -> Claims {
    Claims::new(user, Role::Viewer, vec!["cam1".into()], 600)
}

async fn serve_chat(public_keys: PublicKeys) -> (ChatServer, SocketAddr) {
    let mut config = ChatServerConfig::with_secret(SECRET);
    config.public_keys = public_keys;
    let chat = ChatServer::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = chat.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    (chat, addr)
}

/// Connects with `token`, joins `cam1` and sends a message; the error if any step fails.
async fn chat_with(addr: SocketAddr, token: String) -> Result<(), String> {
    let (client, _events) =
        ChatClient::connect(&format!("ws://{addr}/chat"), TokenSource::fixed(token), {
            let mut config = ChatConfig::default();
            config.command_timeout = Duration::from_secs(5);
            config
        })
        .await
        .map_err(|e| e.to_string())?;
    client.join("cam1").await.map_err(|e| e.to_string())?;
    client
        .send("cam1", "signed elsewhere")
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// `token` with its payload replaced by `claims` (the signature kept).
fn tampered(token: &str, claims: &Claims) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(claims).expect("JSON"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_and_eddsa_tokens_from_a_jwks_file_chat_and_forged_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rsa = KeyPair::rsa(dir.path(), "rsa");
    let ed = KeyPair::ed25519(dir.path(), "ed");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, jwks_json(vec![rsa.jwk("rsa1"), ed.jwk("ed1")])).expect("write");
    let keys = PublicKeys::with_jwks(
        Vec::new(),
        KeySource::File(jwks.clone()),
        JwksOptions::default(),
    )
    .await
    .expect("the JWK Set loads");
    assert_eq!(keys.keys().len(), 2);
    let (chat, addr) = serve_chat(keys).await;

    // Accepted: RS256 and EdDSA from the set, and HS256 with the shared secret still.
    chat_with(addr, rsa.sign(Some("rsa1"), &claims("ada")))
        .await
        .expect("RS256 token");
    chat_with(addr, ed.sign(Some("ed1"), &claims("bob")))
        .await
        .expect("EdDSA token");
    chat_with(addr, chat.keys().issue(&claims("cy")).expect("HS256"))
        .await
        .expect("HS256 token");

    // Refused: each forged token closes the chat connection as unauthorized.
    let other_rsa = KeyPair::rsa(dir.path(), "other-rsa");
    let other_ed = KeyPair::ed25519(dir.path(), "other-ed");
    let mut moderator = claims("ada");
    moderator.role = Role::Moderator;
    moderator.rooms = vec!["*".into()];
    let hs256_with_public_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("ada"),
        &EncodingKey::from_secret(&rsa.public_pem_bytes()),
    )
    .expect("HS256");
    let mut rs256_header_on_ed_kid = Header::new(Algorithm::RS256);
    rs256_header_on_ed_kid.kid = Some("ed1".into());
    let mut expired = claims("ada");
    expired.exp -= 1200;
    let forged = [
        (
            "another RSA key, same kid",
            other_rsa.sign(Some("rsa1"), &claims("ada")),
        ),
        (
            "another Ed25519 key, same kid",
            other_ed.sign(Some("ed1"), &claims("ada")),
        ),
        (
            "an RSA key under the Ed25519 kid",
            rsa.sign(Some("ed1"), &claims("ada")),
        ),
        ("an unknown kid", rsa.sign(Some("nobody"), &claims("ada"))),
        (
            "a tampered RS256 payload",
            tampered(&rsa.sign(Some("rsa1"), &claims("ada")), &moderator),
        ),
        (
            "a tampered EdDSA payload",
            tampered(&ed.sign(Some("ed1"), &claims("ada")), &moderator),
        ),
        (
            "HS256 with the RSA public key as secret",
            hs256_with_public_key,
        ),
        (
            "an RS256 header on an EdDSA signature",
            format!(
                "{}.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(&rs256_header_on_ed_kid).unwrap()),
                ed.sign(Some("ed1"), &claims("ada"))
                    .split_once('.')
                    .unwrap()
                    .1
            ),
        ),
    ];
    for (what, token) in forged {
        let refused = chat_with(addr, token.clone()).await;
        assert!(refused.is_err(), "{what} was accepted");
        assert_eq!(
            chat.keys().verify(&token).map_err(|e| e.code),
            Err(ErrorCode::Unauthorized),
            "{what}"
        );
    }
    // An expired token of a real key is expired, not forged.
    assert_eq!(
        chat.keys()
            .verify(&rsa.sign(Some("rsa1"), &expired))
            .map_err(|e| e.code),
        Err(ErrorCode::TokenExpired)
    );
}

#[test]
fn pem_public_keys_verify_tokens_with_or_without_a_kid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rsa = KeyPair::rsa(dir.path(), "rsa");
    let ed = KeyPair::ed25519(dir.path(), "ed");
    let pem_keys: Vec<PublicKey> = [&rsa, &ed]
        .iter()
        .map(|pair| PublicKey::from_pem(&pair.public_pem_bytes()).expect("PEM"))
        .collect();
    assert_eq!(pem_keys[0].algorithm(), Algorithm::RS256);
    assert_eq!(pem_keys[1].algorithm(), Algorithm::EdDSA);
    let keys = TokenKeys::hs256(SECRET).with_public_keys(PublicKeys::new(pem_keys));
    for token in [
        rsa.sign(None, &claims("ada")),
        rsa.sign(Some("any"), &claims("ada")),
        ed.sign(None, &claims("ada")),
    ] {
        assert_eq!(keys.verify(&token).expect("valid").sub, "ada");
    }
    let other = KeyPair::ed25519(dir.path(), "other");
    assert!(keys.verify(&other.sign(None, &claims("ada"))).is_err());
    // The private key is refused as a public key.
    let private = std::fs::read(&rsa.private_pem).unwrap();
    assert!(PublicKey::from_pem(&private).is_err());
}

/// A JWK Set served over HTTP, replaceable, with a count of the requests.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

async fn serve_jwks(body: String) -> JwksServer {
    use axum::extract::State;
    type Shared = (Arc<Mutex<String>>, Arc<AtomicUsize>);
    let body = Arc::new(Mutex::new(body));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/.well-known/jwks.json",
            axum::routing::get(|State((body, hits)): State<Shared>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let json = body.lock().unwrap().clone();
                ([("content-type", "application/json")], json)
            }),
        )
        .with_state((body.clone(), hits.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    JwksServer {
        url: format!("http://{addr}/.well-known/jwks.json"),
        body,
        hits,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_url_is_read_at_start_and_again_when_a_token_names_a_new_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = KeyPair::rsa(dir.path(), "first");
    let second = KeyPair::ed25519(dir.path(), "second");
    let server = serve_jwks(jwks_json(vec![first.jwk("k1")])).await;
    let source = KeySource::parse(&server.url).expect("URL");
    let options = JwksOptions {
        unknown_kid_every: Duration::ZERO,
        ..JwksOptions::default()
    };
    let keys = PublicKeys::with_jwks(Vec::new(), source.clone(), options)
        .await
        .expect("the JWK Set is fetched");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    let (chat, addr) = serve_chat(keys).await;
    chat_with(addr, first.sign(Some("k1"), &claims("ada")))
        .await
        .expect("a token of the fetched key");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "known kid: no fetch");

    // The auth service rotates to a new key: its first token makes the server read the
    // set again, and it is accepted.
    *server.body.lock().unwrap() = jwks_json(vec![second.jwk("k2")]);
    let rotated = second.sign(Some("k2"), &claims("bob"));
    assert!(chat.keys().verify(&rotated).is_err(), "not known yet");
    chat_with(addr, rotated).await.expect("the rotated key");
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    // The old key left the set: its tokens are refused now.
    assert!(
        chat_with(addr, first.sign(Some("k1"), &claims("ada")))
            .await
            .is_err()
    );

    // Unknown kids do not make the server fetch more than once per unknown_kid_every.
    let spaced = PublicKeys::with_jwks(Vec::new(), source, JwksOptions::default())
        .await
        .expect("fetched");
    let hits = server.hits.load(Ordering::SeqCst);
    let keys = TokenKeys::hs256(SECRET).with_public_keys(spaced);
    for n in 0..5 {
        let stranger = first.sign(Some(&format!("unknown-{n}")), &claims("ada"));
        assert!(keys.verify_or_refresh(&stranger).await.is_err());
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), hits);

    // A set that cannot be fetched at start is an error, within the timeout.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", gone.local_addr().unwrap());
    drop(gone);
    let started = std::time::Instant::now();
    let failed = PublicKeys::with_jwks(
        Vec::new(),
        KeySource::parse(&url).unwrap(),
        JwksOptions {
            timeout: Duration::from_secs(2),
            ..JwksOptions::default()
        },
    )
    .await;
    assert!(failed.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_url_is_read_again_periodically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = KeyPair::ed25519(dir.path(), "first");
    let second = KeyPair::ed25519(dir.path(), "second");
    let server = serve_jwks(jwks_json(vec![first.jwk("k1")])).await;
    let keys = PublicKeys::with_jwks(
        Vec::new(),
        KeySource::parse(&server.url).expect("URL"),
        JwksOptions {
            refresh_every: Duration::from_millis(200),
            unknown_kid_every: Duration::from_secs(3600),
            ..JwksOptions::default()
        },
    )
    .await
    .expect("fetched");
    let keys = TokenKeys::hs256(SECRET).with_public_keys(keys);
    *server.body.lock().unwrap() = jwks_json(vec![first.jwk("k1"), second.jwk("k2")]);
    let rotated = second.sign(Some("k2"), &claims("bob"));
    // Unknown kids may not trigger a read for an hour: refused for now.
    assert!(keys.verify_or_refresh(&rotated).await.is_err());
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    // Once refresh_every passed, checking any token starts a read in the background.
    let known = first.sign(Some("k1"), &claims("ada"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while keys.verify(&rotated).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the set was not read again within 10 s"
        );
        keys.verify_or_refresh(&known).await.expect("known key");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.hits.load(Ordering::SeqCst) >= 2);
}
