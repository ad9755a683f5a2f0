//! Randomness from the operating system: secrets and unique ids; and secrets compared in
//! constant time.

use crate::error::CredentialError;

/// Fills `buf` from the operating system's random number generator, or fails: a secret made
/// of zeros is worse than no secret.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CredentialError> {
    getrandom::fill(buf).map_err(|e| CredentialError::Random(e.to_string()))
}

/// A new unique id, as a UUID's 128 bits in 32 hex digits: random bytes from the operating
/// system. Ids need to be unique, not secret: should the random number generator fail, the
/// time, the process id and a counter make it.
pub fn random_uuid() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if random_bytes(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&nanos.to_le_bytes());
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        bytes[12..].copy_from_slice(&(count as u32).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random `u64` from the operating system, or an error.
pub fn random_u64() -> Result<u64, CredentialError> {
    let mut bytes = [0u8; 8];
    random_bytes(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// Compares two secrets in time that depends only on their lengths.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
