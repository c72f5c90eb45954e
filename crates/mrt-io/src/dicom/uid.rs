//! DICOM UID generation (2.25 UUID-derived form, no registered root needed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new `2.25.<decimal 128-bit>` UID, unique per process, time and call.
pub fn new_uid() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let count = u128::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    let pid = u128::from(std::process::id());
    // Mix into 128 bits: SplitMix-style avalanche of the three inputs.
    let mut x = nanos ^ (pid << 96) ^ (count << 64) ^ count;
    x ^= x >> 67;
    x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    x ^= x >> 59;
    format!("2.25.{x}")
}

/// A deterministic UID derived from `seed` and `parts` (for reproducible phantoms).
pub fn derived_uid(seed: u64, parts: &[u64]) -> String {
    let mut x: u128 = u128::from(seed) | 0x5a5a_0000_0000_0000_0000_0000_0000_0000;
    for &p in parts {
        x ^= u128::from(p).wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = x.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15);
        x ^= x >> 61;
    }
    format!("2.25.{x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_and_distinct() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        for u in [&a, &b, &derived_uid(3, &[1, 2])] {
            assert!(u.len() <= 64, "{u}");
            assert!(u.starts_with("2.25."));
            assert!(!u[5..].starts_with('0') || u.len() == 6);
        }
        assert_eq!(derived_uid(3, &[1, 2]), derived_uid(3, &[1, 2]));
        assert_ne!(derived_uid(3, &[1, 2]), derived_uid(3, &[2, 1]));
    }
}
