//! Key naming and key choice (uniform or scrambled zipfian).

use crate::zipf::{ScrambledZipfian, ZipfError};
use rand::Rng;

/// Minimum zero-padded width of the numeric part of a key (`user0000000042`).
pub const KEY_DIGITS: usize = 10;

/// The key for item `n`: `user` followed by `n` zero-padded to [`KEY_DIGITS`].
pub fn key_name(n: u64) -> String {
    format!("user{n:0KEY_DIGITS$}")
}

/// How keys are drawn.
#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// YCSB scrambled zipfian (see [`crate::zipf`]).
    Zipfian,
}

/// Draws item numbers in `[0, keys)`.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    /// Uniform over `[0, n)`.
    Uniform {
        /// Key count.
        n: u64,
    },
    /// Scrambled zipfian.
    Zipfian(ScrambledZipfian),
}

impl KeyChooser {
    /// Builds a chooser. `seed` keys the zipfian scrambler (same seed, same hot keys).
    pub fn new(dist: Distribution, keys: u64, theta: f64, seed: u64) -> Result<Self, ZipfError> {
        if keys == 0 {
            return Err(ZipfError::NoItems);
        }
        Ok(match dist {
            Distribution::Uniform => Self::Uniform { n: keys },
            Distribution::Zipfian => Self::Zipfian(ScrambledZipfian::new(keys, theta, seed)?),
        })
    }

    /// Draws one item number.
    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self {
            Self::Uniform { n } => rng.random_range(0..*n),
            Self::Zipfian(z) => z.next_item(rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_zero_padded() {
        assert_eq!(key_name(42), "user0000000042");
        assert_eq!(key_name(12_345_678_901), "user12345678901");
    }
}
