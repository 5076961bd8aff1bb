//! RSA key pairs for GitHub App tests: the private key goes to the client as a PEM file, the public key to
//! the fake, which verifies the App JWTs with it.

use std::sync::OnceLock;

use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::LineEnding;

/// A 2048-bit RSA key pair as PEM (PKCS#1, the form GitHub hands out).
#[derive(Clone)]
pub struct AppKey {
    pub private_pem: String,
    pub public_pem: String,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(<redacted>)")
    }
}

impl AppKey {
    /// A fresh key pair (about a second in a debug build).
    pub fn generate() -> Result<Self, String> {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(|e| e.to_string())?;
        let private_pem = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| e.to_string())?.to_string();
        let public_pem = key.to_public_key().to_pkcs1_pem(LineEnding::LF).map_err(|e| e.to_string())?;
        Ok(Self { private_pem, public_pem })
    }

    /// The pair of a PKCS#1 private key PEM (`openssl genrsa -traditional 2048`): no prime search, which
    /// takes long in a debug build on a busy machine.
    pub fn from_private_pem(private_pem: &str) -> Result<Self, String> {
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(private_pem).map_err(|e| e.to_string())?;
        let public_pem = key.to_public_key().to_pkcs1_pem(LineEnding::LF).map_err(|e| e.to_string())?;
        Ok(Self { private_pem: private_pem.to_owned(), public_pem })
    }

    /// One key pair per test process, generated on first use.
    pub fn shared() -> &'static AppKey {
        static KEY: OnceLock<AppKey> = OnceLock::new();
        KEY.get_or_init(|| Self::generate().unwrap_or_else(|e| panic!("RSA key generation failed: {e}")))
    }
}
