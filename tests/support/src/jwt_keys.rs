//! Signing keys as an app's auth service would have them, made fresh by the `openssl`
//! command (scripts/install-test-deps.sh installs it): RSA 2048 (RS256) and Ed25519
//! (EdDSA) key pairs as PEM files, JWK Sets of their public halves, and tokens signed
//! with them.

use std::path::{Path, PathBuf};
use std::process::Command;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// One key pair on disk.
pub struct KeyPair {
    /// The algorithm the pair signs with.
    pub alg: Algorithm,
    /// The private key, PKCS#8 PEM.
    pub private_pem: PathBuf,
    /// The public key, SPKI PEM (`openssl pkey -pubout`).
    pub public_pem: PathBuf,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("the openssl command is needed (scripts/install-test-deps.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl KeyPair {
    /// A fresh RSA 2048 pair (RS256) in `dir`, files named after `name`.
    pub fn rsa(dir: &Path, name: &str) -> KeyPair {
        let private_pem = dir.join(format!("{name}.key.pem"));
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            path(&private_pem),
        ]);
        KeyPair::finish(Algorithm::RS256, dir, name, private_pem)
    }

    /// A fresh Ed25519 pair (EdDSA) in `dir`.
    pub fn ed25519(dir: &Path, name: &str) -> KeyPair {
        let private_pem = dir.join(format!("{name}.key.pem"));
        openssl(&[
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            path(&private_pem),
        ]);
        KeyPair::finish(Algorithm::EdDSA, dir, name, private_pem)
    }

    fn finish(alg: Algorithm, dir: &Path, name: &str, private_pem: PathBuf) -> KeyPair {
        let public_pem = dir.join(format!("{name}.pub.pem"));
        openssl(&[
            "pkey",
            "-in",
            path(&private_pem),
            "-pubout",
            "-out",
            path(&public_pem),
        ]);
        KeyPair {
            alg,
            private_pem,
            public_pem,
        }
    }

    fn encoding_key(&self) -> EncodingKey {
        let pem = std::fs::read(&self.private_pem).expect("private key");
        match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).expect("RSA key"),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem).expect("Ed25519 key"),
            other => panic!("no key pairs for {other:?}"),
        }
    }

    /// The public half as a JWK with this `kid` and `alg`.
    pub fn jwk(&self, kid: &str) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding_key(), self.alg).expect("JWK");
        jwk.common.key_id = Some(kid.to_string());
        jwk
    }

    /// `claims` signed with this key, the header naming `kid` (when given).
    pub fn sign(&self, kid: Option<&str>, claims: &impl Serialize) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).expect("signing")
    }

    /// The public key PEM's bytes.
    pub fn public_pem_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.public_pem).expect("public key")
    }
}

/// A JWK Set as JSON.
pub fn jwks_json(keys: Vec<Jwk>) -> String {
    serde_json::to_string(&JwkSet { keys }).expect("JWK Set JSON")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
