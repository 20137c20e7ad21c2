//! A hasher for ids the peer cannot use against a table.

use std::hash::Hasher;

/// Hashes a call id (or a method id) with one multiplication: for tables
/// whose keys the peer cannot choose (this side's own call ids, a
/// counter) or cannot add to (the methods served), which need no defence
/// against collisions made on purpose. SipHash was a tenth of the
/// client's time per call.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0 ^ u64::from(byte));
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.write_u64(u64::from(id));
    }

    fn write_u64(&mut self, id: u64) {
        // Fibonacci hashing; the fold brings high bits down, since the
        // table indexes by the low ones and ids step by two.
        let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}
