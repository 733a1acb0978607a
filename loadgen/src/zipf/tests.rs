use super::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::HashMap;

const DRAWS: usize = 200_000;

fn counts(mut draw: impl FnMut() -> u64) -> HashMap<u64, usize> {
    let mut c = HashMap::new();
    for _ in 0..DRAWS {
        *c.entry(draw()).or_default() += 1;
    }
    c
}

#[test]
fn zipfian_rejects_bad_parameters() {
    assert_eq!(Zipfian::new(0, 0.99).err(), Some(ZipfError::NoItems));
    assert!(matches!(
        Zipfian::new(10, 1.0),
        Err(ZipfError::BadTheta { .. })
    ));
    assert!(matches!(
        Zipfian::new(10, 0.0),
        Err(ZipfError::BadTheta { .. })
    ));
}

#[test]
fn zipfian_values_in_range_and_head_matches_theory() {
    let n = 1000;
    let z = Zipfian::new(n, 0.99).expect("valid");
    let mut rng = SmallRng::seed_from_u64(7);
    let c = counts(|| z.next_rank(&mut rng));
    assert!(c.keys().all(|k| *k < n));
    // P(rank i) = 1 / ((i+1)^theta * zeta(n)). Gray's algorithm is exact for ranks 0 and 1
    // and a continuous approximation beyond, so the tail gets a looser tolerance.
    for (rank, tolerance) in [(0u64, 0.05), (1, 0.05), (2, 0.25), (9, 0.25)] {
        let expect = 1.0 / ((rank + 1) as f64).powf(0.99) / z.zetan();
        let got = *c.get(&rank).unwrap_or(&0) as f64 / DRAWS as f64;
        let rel = (got - expect).abs() / expect;
        assert!(
            rel < tolerance,
            "rank {rank}: got {got:.4}, theory {expect:.4}"
        );
    }
    // Monotone-ish tail: rank 0 beats rank 9 beats rank 99.
    let at = |r: u64| *c.get(&r).unwrap_or(&0);
    assert!(at(0) > at(9) && at(9) > at(99));
}

#[test]
fn zipfian_single_item_always_zero() {
    let z = Zipfian::new(1, 0.5).expect("valid");
    let mut rng = SmallRng::seed_from_u64(1);
    assert!((0..1000).all(|_| z.next_rank(&mut rng) == 0));
}

#[test]
fn scrambler_is_a_bijection() {
    for n in [1u64, 2, 3, 7, 1000, 4097] {
        let s = Scrambler::new(n, 42);
        let mut seen: Vec<u64> = (0..n).map(|x| s.permute(x)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
    }
}

#[test]
fn scrambled_zipfian_keeps_shape_and_spreads_hot_keys() {
    let n = 10_000;
    let theta = 0.99;
    let z = ScrambledZipfian::new(n, theta, 3).expect("valid");
    let mut rng = SmallRng::seed_from_u64(11);
    let c = counts(|| z.next_item(&mut rng));
    assert!(c.keys().all(|k| *k < n));
    let mut by_freq: Vec<(u64, usize)> = c.into_iter().collect();
    by_freq.sort_by_key(|e| std::cmp::Reverse(e.1));
    let (hottest, hits) = by_freq[0];
    let share = hits as f64 / DRAWS as f64;
    let theory = 1.0 / zeta(n, theta);
    assert!(
        (share - theory).abs() / theory < 0.05,
        "hottest share {share:.4}, theory {theory:.4}"
    );
    // The ten hottest keys are not clustered at the start of the key space.
    let hot: Vec<u64> = by_freq.iter().take(10).map(|(k, _)| *k).collect();
    assert!(hot.iter().any(|k| *k > n / 2), "hot keys {hot:?}");
    assert!(hottest != 0 || hot[1] > 10);
}

#[test]
fn uniform_sanity() {
    use rand::Rng;
    let n = 100u64;
    let mut rng = SmallRng::seed_from_u64(5);
    let c = counts(|| rng.random_range(0..n));
    assert_eq!(c.len(), n as usize);
    let expect = DRAWS as f64 / n as f64;
    for (k, v) in c {
        assert!(k < n);
        assert!(((v as f64) - expect).abs() / expect < 0.15, "key {k}: {v}");
    }
}
