//! The duration histogram: log-scale buckets, eight per doubling (about 9 % wide), so p95 is
//! known to within a bucket without keeping every duration.

/// The bucket a duration (ms) falls in. Bucket 0 holds everything under 1 ms.
pub fn bucket(ms: f64) -> i64 {
    if ms.is_nan() || ms < 1.0 {
        return 0;
    }
    (1.0 + (8.0 * ms.log2()).floor()).min(400.0) as i64
}

/// The range of durations (ms) a bucket holds: `[lower, upper)`.
pub fn bounds(b: i64) -> (f64, f64) {
    if b <= 0 {
        (0.0, 1.0)
    } else {
        (2f64.powf((b - 1) as f64 / 8.0), 2f64.powf(b as f64 / 8.0))
    }
}

/// A representative value for a bucket (its geometric middle).
pub fn bucket_value(b: i64) -> f64 {
    if b <= 0 {
        return 0.5;
    }
    2f64.powf((b as f64 - 0.5) / 8.0)
}

/// The `q` quantile (0..1) from `(bucket, count)` pairs sorted by bucket, clamped to the
/// observed min and max.
pub fn quantile(buckets: &[(i64, u64)], q: f64, min: f64, max: f64) -> f64 {
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for &(b, c) in buckets {
        seen += c;
        if seen >= rank {
            return bucket_value(b).clamp(min, max);
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = -1;
        for ms in [0.2, 1.0, 1.5, 2.0, 10.0, 50.0, 51.0, 1000.0, 1e6] {
            let b = bucket(ms);
            assert!(b >= last, "{ms}");
            last = b;
            let (lower, upper) = bounds(b);
            assert!(lower <= ms && ms < upper, "{ms} not in bucket {b} [{lower}, {upper})");
            if ms >= 1.0 {
                let v = bucket_value(b);
                assert!((v - ms).abs() / ms < 0.1, "{ms} -> {v}");
            }
        }
    }

    #[test]
    fn p95_of_skewed_durations() {
        // 95 fast (10 ms) and 5 slow (500 ms): p95 is still fast; p96 is slow.
        let buckets = vec![(bucket(10.0), 95), (bucket(500.0), 5)];
        let p95 = quantile(&buckets, 0.95, 10.0, 500.0);
        assert!((p95 - 10.0).abs() < 1.0, "{p95}");
        let p99 = quantile(&buckets, 0.99, 10.0, 500.0);
        assert!((p99 - 500.0).abs() < 50.0, "{p99}");
        // A single value is exact thanks to the clamp.
        assert_eq!(quantile(&[(bucket(812.0), 1)], 0.95, 812.0, 812.0), 812.0);
    }
}
