//! Deterministic synthetic update data in columnar form.
//!
//! A *columnar chunk* of `n` updates `(key: u64, val: u64, time: u64, diff: i64)` is four
//! little-endian columns of `n` words each: keys, then vals, times, diffs. Keys ascend over the
//! whole stream with about four updates per key (keys uniform over N/4), values are uniform
//! below 2^20, times are one of ten rounds, and about one diff in ten is a retraction.

/// The splitmix64 finalizer: a bijective 64-bit mix.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small, fast, deterministic generator (splitmix64).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
}

/// Bytes per update in a columnar chunk.
pub const UPDATE_BYTES: usize = 32;

/// Fills `out` (a multiple of 32 bytes) with columnar chunk number `index` of the stream
/// `seed`. Chunk `index` starts at key `index * updates / 4`, so chunks are sorted among
/// themselves as a sealed run would be.
pub fn fill_columnar_chunk(seed: u64, index: u64, out: &mut [u8]) {
    assert_eq!(
        out.len() % UPDATE_BYTES,
        0,
        "chunk length must be a multiple of 32"
    );
    let n = out.len() / UPDATE_BYTES;
    let mut rng = SplitMix64::new(seed ^ index.wrapping_mul(0xA24BAED4963EE407));
    let (keys, rest) = out.split_at_mut(n * 8);
    let (vals, rest) = rest.split_at_mut(n * 8);
    let (times, diffs) = rest.split_at_mut(n * 8);
    let mut key = index * n as u64 / 4;
    for i in 0..n {
        let r = rng.next_u64();
        // A new key with probability 1/4: about four updates per key.
        key += u64::from(r & 3 == 0);
        let val = (r >> 8) & ((1 << 20) - 1);
        let time = (r >> 40) % 10;
        let diff: i64 = if (r >> 50).is_multiple_of(10) { -1 } else { 1 };
        let at = i * 8..i * 8 + 8;
        keys[at.clone()].copy_from_slice(&key.to_le_bytes());
        vals[at.clone()].copy_from_slice(&val.to_le_bytes());
        times[at.clone()].copy_from_slice(&time.to_le_bytes());
        diffs[at].copy_from_slice(&diff.to_le_bytes());
    }
}

/// An order-sensitive 64-bit fingerprint of a byte slice (FNV-1a over words).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf29ce484222325u64;
    for w in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..w.len()].copy_from_slice(w);
        h ^= u64::from_le_bytes(word);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_deterministic_and_sorted() {
        let mut a = vec![0u8; 32 * 1000];
        let mut b = vec![0u8; 32 * 1000];
        fill_columnar_chunk(7, 3, &mut a);
        fill_columnar_chunk(7, 3, &mut b);
        assert_eq!(a, b);
        fill_columnar_chunk(8, 3, &mut b);
        assert_ne!(a, b);
        let keys: Vec<u64> = a[..8000]
            .chunks(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
    }
}
