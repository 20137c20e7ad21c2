//! How a request names its method and carries its deadline, compactly:
//! a 4-byte method id instead of two names, and the time left in a unit
//! coarse enough for one to three bytes (`docs/PROTOCOL.md` §5.0).
//!
//! Both are stateless: every request says everything about itself, so
//! consecutive requests of one caller may go to different servers (a
//! broker's queue group does that).

/// The id of method `method` of service `service`: FNV-1a (32 bits) over
/// the service's wire name, the byte `0xFF` (which no UTF-8 text holds),
/// and the method's wire name. A server refuses two methods whose ids
/// collide when they are added, so an id names one method.
#[must_use]
pub const fn method_id(service: &str, method: &str) -> u32 {
    let hash = fnv1a(0x811c_9dc5, service.as_bytes());
    let hash = fnv1a(hash, &[0xFF]);
    fnv1a(hash, method.as_bytes())
}

const fn fnv1a(mut hash: u32, bytes: &[u8]) -> u32 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

/// The units a deadline travels in, finest first, in microseconds: the
/// low two bits of the encoded value say which.
const UNITS: [u64; 4] = [1, 1_000, 1_000_000, 60_000_000];

/// An encoded value below this takes at most three bytes (a varint).
const COMPACT: u64 = 1 << 16;

/// The time a caller still waits, in microseconds (`None`: no deadline),
/// as it travels: 0 for none, 1 for no time left; otherwise `n << 2 |
/// unit`, in the finest unit for which that stays below 2^16 (so at most
/// three bytes; the default 30 s is one byte), rounded up, so the receiver
/// never stops a call sooner than its caller would.
pub(crate) fn timeout_to_wire(micros: Option<u64>) -> u64 {
    let Some(micros) = micros else {
        return 0;
    };
    if micros == 0 {
        // No time left: zero of a unit other than microseconds.
        return 1;
    }
    let mut encoded = 0;
    for (code, unit) in (0u64..).zip(UNITS) {
        let n = micros.div_ceil(unit);
        encoded = n.saturating_mul(4).saturating_add(code);
        if encoded < COMPACT {
            break;
        }
    }
    encoded
}

/// The time a request's caller still waits, in microseconds, from its
/// encoded value; `None`: no deadline.
pub(crate) fn timeout_from_wire(encoded: u64) -> Option<u64> {
    if encoded == 0 {
        return None;
    }
    let unit = UNITS.get((encoded & 3) as usize).copied().unwrap_or(1);
    Some((encoded >> 2).saturating_mul(unit))
}

#[cfg(test)]
mod tests {
    use super::{method_id, timeout_from_wire, timeout_to_wire};

    #[test]
    fn method_ids_are_fnv1a_over_both_names() {
        // FNV-1a of the empty input is its offset basis; of "\xff" alone:
        assert_eq!(
            method_id("", ""),
            (0x811c_9dc5u32 ^ 0xFF).wrapping_mul(0x0100_0193)
        );
        assert_eq!(method_id("Calculator", "add"), 0x1a8f_f985);
        assert_ne!(method_id("ab", "c"), method_id("a", "bc"));
    }

    #[test]
    fn deadlines_round_up_into_at_most_three_bytes() {
        let s = 1_000_000;
        // (micros, encoded)
        let cases = [
            (1, 4),
            (999, 999 * 4),
            (16_383, 16_383 * 4),
            (16_384, 17 * 4 + 1),
            (30 * s, 30 * 4 + 2),
            (30 * s - 1, 30 * 4 + 2),
            (16_383 * 1_000, 16_383 * 4 + 1),
            (16_384 * 1_000, 17 * 4 + 2),
            (3_600 * s, 3_600 * 4 + 2),
            (20_000 * s, 334 * 4 + 3),
            // The examples of docs/PROTOCOL.md §5.0.
            (5 * s, 20_001),
            (1_500, 6_000),
        ];
        for (micros, encoded) in cases {
            assert_eq!(timeout_to_wire(Some(micros)), encoded, "{micros} µs");
            let back = timeout_from_wire(encoded).unwrap();
            assert!(back >= micros, "never sooner: {micros} µs became {back}");
        }
        assert_eq!(timeout_to_wire(None), 0);
        assert_eq!(timeout_from_wire(0), None);
        // No time left still reads as a deadline, of zero.
        assert_eq!(timeout_to_wire(Some(0)), 1);
        assert_eq!(timeout_from_wire(1), Some(0));
        assert_eq!(timeout_from_wire(2), Some(0));
        assert_eq!(timeout_from_wire(u64::MAX), Some(u64::MAX));
    }

    #[test]
    fn every_deadline_comes_back_no_sooner_and_close() {
        let mut micros = 1u64;
        while micros < 1 << 40 {
            let back = timeout_from_wire(timeout_to_wire(Some(micros))).unwrap();
            assert!(back >= micros, "{micros} → {back}");
            // Within the unit: at most 1/16,383 late, or one unit of a
            // deadline of at least 16,384 of the unit below.
            assert!(back - micros <= (micros / 16).max(1), "{micros} → {back}");
            micros = micros * 3 / 2 + 1;
        }
    }
}
