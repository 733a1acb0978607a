//! The YCSB zipfian generator and a bijective scrambler.
//!
//! [`Zipfian`] is Gray et al.'s "Quickly generating billion-record synthetic databases"
//! algorithm exactly as YCSB's `ZipfianGenerator` implements it: rank `0` is the most popular
//! item and rank `i` is drawn with probability `1 / ((i + 1)^theta * zeta(n, theta))`.
//!
//! [`ScrambledZipfian`] spreads the hot ranks over the key space, like YCSB's
//! `ScrambledZipfianGenerator`. YCSB draws from a zipfian over 10^10 items and reduces an FNV
//! hash modulo `n`; with a zipfian over `n` items that reduction would leave about 1/e of the
//! keys unreachable (hash collisions), so we instead map each rank through a keyed Feistel
//! permutation of `[0, n)` (cycle-walking). The distribution shape is therefore exactly the
//! zipfian over `n` items, just relabelled: the hottest key's share is `1 / zeta(n, theta)`.

use rand::Rng;

/// Errors building a generator.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ZipfError {
    /// The item count must be at least 1.
    #[error("zipfian item count must be >= 1")]
    NoItems,
    /// YCSB's formula needs `0 < theta < 1` (`alpha = 1 / (1 - theta)`).
    #[error("zipfian theta must be in (0, 1), got {theta}")]
    BadTheta {
        /// The rejected value.
        theta: f64,
    },
}

/// `zeta(n, theta) = sum_{i=1..=n} 1 / i^theta`.
pub fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

/// Zipfian ranks over `[0, n)`, rank 0 most popular (YCSB `ZipfianGenerator`).
#[derive(Debug, Clone)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    /// `1 + 0.5^theta`: the cut below which rank 1 is returned.
    half_pow_theta: f64,
}

impl Zipfian {
    /// A generator over `items` ranks with skew `theta` (YCSB default 0.99).
    pub fn new(items: u64, theta: f64) -> Result<Self, ZipfError> {
        if items == 0 {
            return Err(ZipfError::NoItems);
        }
        if !(theta > 0.0 && theta < 1.0) {
            return Err(ZipfError::BadTheta { theta });
        }
        let zetan = zeta(items, theta);
        let zeta2 = zeta(2, theta);
        let eta = (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Ok(Self {
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
            half_pow_theta: 1.0 + 0.5f64.powf(theta),
        })
    }

    /// Number of ranks.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The skew parameter.
    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// `zeta(n, theta)`; the most popular rank has probability `1 / zetan`.
    pub fn zetan(&self) -> f64 {
        self.zetan
    }

    /// Draws one rank in `[0, items)`.
    pub fn next_rank<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < self.half_pow_theta && self.items > 1 {
            return 1;
        }
        let r = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.items - 1)
    }
}

/// FNV-1a 64-bit over the 8 little-endian bytes of `v` (YCSB's `fnvhash64` uses the same
/// constants).
pub fn fnv1a64(v: u64) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    v.to_le_bytes()
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// A keyed bijection of `[0, n)`: a 4-round Feistel network on the smallest even bit width
/// covering `n`, with cycle-walking to stay in range.
#[derive(Debug, Clone)]
pub struct Scrambler {
    n: u64,
    half_bits: u32,
    half_mask: u64,
    round_keys: [u64; 4],
}

impl Scrambler {
    /// A permutation of `[0, n)` keyed by `seed`. `n` must be at least 1.
    pub fn new(n: u64, seed: u64) -> Self {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let half_mask = (1u64 << half_bits) - 1;
        let mut k = seed;
        let round_keys = std::array::from_fn(|_| {
            k = fnv1a64(k.wrapping_add(0x9e37_79b9_7f4a_7c15));
            k
        });
        Self {
            n: n.max(1),
            half_bits,
            half_mask,
            round_keys,
        }
    }

    fn feistel(&self, x: u64) -> u64 {
        let mut l = x >> self.half_bits;
        let mut r = x & self.half_mask;
        for key in self.round_keys {
            let f = fnv1a64(r ^ key) & self.half_mask;
            (l, r) = (r, l ^ f);
        }
        (l << self.half_bits) | r
    }

    /// Maps `x < n` to its image in `[0, n)`.
    ///
    /// Cycle-walking terminates: the Feistel network permutes a domain of at most `4n`
    /// values, so the cycle through `x` returns to `[0, n)` within that many steps.
    pub fn permute(&self, x: u64) -> u64 {
        let mut y = self.feistel(x % self.n);
        while y >= self.n {
            y = self.feistel(y);
        }
        y
    }
}

/// Zipfian draws whose hot items are spread over `[0, n)` (see the module docs).
#[derive(Debug, Clone)]
pub struct ScrambledZipfian {
    zipf: Zipfian,
    scrambler: Scrambler,
}

impl ScrambledZipfian {
    /// A scrambled zipfian over `items` with skew `theta`; `seed` keys the permutation.
    pub fn new(items: u64, theta: f64, seed: u64) -> Result<Self, ZipfError> {
        Ok(Self {
            zipf: Zipfian::new(items, theta)?,
            scrambler: Scrambler::new(items, seed),
        })
    }

    /// The underlying (unscrambled) generator.
    pub fn zipfian(&self) -> &Zipfian {
        &self.zipf
    }

    /// Draws one item in `[0, items)`.
    pub fn next_item<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        self.scrambler.permute(self.zipf.next_rank(rng))
    }
}

#[cfg(test)]
mod tests;
