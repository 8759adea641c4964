//! FNV-1a, the hash behind generated names and ids that must not change:
//! unlike std's hasher, it gives the same value in every process, on every
//! platform and with every Rust version.

/// FNV-1a's 64-bit offset basis: the seed of every hash but a second,
/// independent one.
pub(crate) const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a (64 bits) of `bytes`, starting from `seed` ([`OFFSET_BASIS`],
/// unless two independent hashes are wanted).
pub(crate) fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut hash = seed;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::fnv;

    #[test]
    fn matches_the_reference_values() {
        // FNV-1a's published 64-bit test vectors.
        let basis = 0xcbf2_9ce4_8422_2325;
        assert_eq!(fnv(basis, b""), basis);
        assert_eq!(fnv(basis, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(basis, b"foobar"), 0x8594_4171_f739_67e8);
    }
}
