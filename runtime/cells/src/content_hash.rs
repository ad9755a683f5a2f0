//! Names made from content: compiled cells and built dependencies are kept under the hash of
//! what made them.

/// The SHA-256 of `bytes`, in hex.
pub(crate) fn hash_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
