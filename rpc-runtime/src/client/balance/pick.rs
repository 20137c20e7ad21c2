//! Power of two choices: of two endpoints drawn at random, the one that
//! costs less. Cheaper than comparing every endpoint, and, unlike always
//! taking the cheapest, it does not send a burst of calls all to the one
//! endpoint that looked best a moment ago.

use std::cell::Cell;

/// The endpoint of `n` to send a call to: `usable(i)` says whether
/// endpoint `i` may take it, `cost(i)` what it would cost there. `None`
/// when none is usable.
pub(super) fn pick(
    n: usize,
    usable: impl Fn(usize) -> bool,
    cost: impl Fn(usize) -> f64,
) -> Option<usize> {
    pick_with(n, random(), usable, cost)
}

/// [`pick`], with the randomness given.
fn pick_with(
    n: usize,
    random: u64,
    usable: impl Fn(usize) -> bool,
    cost: impl Fn(usize) -> f64,
) -> Option<usize> {
    let first = |start: usize| (0..n).map(|k| (start + k) % n).find(|&i| usable(i));
    match n {
        0 => None,
        1 => usable(0).then_some(0),
        _ => {
            let n64 = n as u64;
            // Two distinct draws from one random number.
            let a = usize::try_from(random % n64).unwrap_or(0);
            let step = usize::try_from((random >> 32) % (n64 - 1)).unwrap_or(0) + 1;
            let b = (a + step) % n;
            match (usable(a), usable(b)) {
                (true, true) => Some(if cost(b) < cost(a) { b } else { a }),
                (true, false) => Some(a),
                (false, true) => Some(b),
                (false, false) => first(a),
            }
        }
    }
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// A fresh random number (xorshift64*, one state per thread).
fn random() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A seed from the standard library's per-process random keys (never 0).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(0);
    hasher.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::{pick, pick_with};

    #[test]
    fn of_the_two_drawn_the_cheaper_is_taken() {
        let costs = [5.0, 1.0, 9.0];
        for random in 0..1000u64 {
            let random = random.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let chosen = pick_with(3, random, |_| true, |i| costs[i]).unwrap();
            // The most expensive of three loses every pair it is drawn in.
            assert_ne!(chosen, 2);
        }
    }

    #[test]
    fn both_draws_differ_so_a_lone_expensive_endpoint_never_wins_a_pair() {
        let costs = [1.0, 100.0];
        for random in 0..1000u64 {
            let random = random.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            assert_eq!(pick_with(2, random, |_| true, |i| costs[i]), Some(0));
        }
    }

    #[test]
    fn endpoints_that_may_not_take_the_call_are_passed_over() {
        for random in 0..200u64 {
            let random = random.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            assert_eq!(pick_with(5, random, |i| i == 3, |_| 1.0), Some(3));
        }
        assert_eq!(pick(4, |_| false, |_| 1.0), None);
        assert_eq!(pick(0, |_| true, |_| 1.0), None);
        assert_eq!(pick(1, |_| true, |_| 1.0), Some(0));
        assert_eq!(pick(1, |_| false, |_| 1.0), None);
    }

    #[test]
    fn equal_costs_spread_calls_over_every_endpoint() {
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[pick(4, |_| true, |_| 1.0).unwrap()] += 1;
        }
        assert!(counts.iter().all(|&c| c > 600), "{counts:?}");
    }
}
