//! Synthetic values that a world does not store but Azure always prints (database GUIDs, key
//! thumbprints, current key versions, timestamps). Derived from names so the same world always
//! prints the same output, and a small PRNG for the seeder and the latency jitter of both faces.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 64-bit FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
fn fnv1a(data: &[u8], salt: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    SplitMix64(h).next_u64()
}

/// `len` lowercase hex digits derived from `seed`.
pub fn hex(seed: &str, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut salt = 0;
    while out.len() < len {
        out.push_str(&format!(
            "{:016x}",
            fnv1a(seed.to_ascii_lowercase().as_bytes(), salt)
        ));
        salt += 1;
    }
    out.truncate(len);
    out
}

/// A GUID-shaped id derived from `seed`.
pub fn guid(seed: &str) -> String {
    let h = hex(seed, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..]
    )
}

/// An X.509 thumbprint shape (40 uppercase hex digits, like SHA-1) derived from a key URI.
pub fn thumbprint(uri: &str) -> String {
    hex(uri, 40).to_ascii_uppercase()
}

/// The current version Key Vault would report for a versionless key (32 hex digits).
pub fn key_version(vault_uri: &str, key_name: &str) -> String {
    hex(
        &format!("{}|{key_name}", vault_uri.trim_end_matches('/')),
        32,
    )
}

/// The current time as az prints datetimes: `2026-01-02T03:04:05.123456+00:00`.
pub fn now_iso() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    iso_utc(now.as_secs() as i64, now.subsec_micros())
}

pub fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Formats a UTC timestamp (days-from-civil algorithm by Howard Hinnant).
pub fn iso_utc(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// How long a call waits before it answers: `latencyMs` plus a random 0..=`jitterMs`.
pub fn latency(latency_ms: u64, jitter_ms: u64) -> Duration {
    let jitter = if jitter_ms == 0 {
        0
    } else {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        SplitMix64(nanos ^ u64::from(std::process::id())).below(jitter_ms + 1)
    };
    Duration::from_millis(latency_ms + jitter)
}

/// SplitMix64: tiny, fast and good enough for seeding fleets and jitter.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_values_are_stable_and_shaped() {
        assert_eq!(hex("a", 32), hex("A", 32));
        assert_ne!(hex("a", 32), hex("b", 32));
        assert_eq!(thumbprint("https://kv/keys/k/1").len(), 40);
        let g = guid("db");
        assert_eq!(g.len(), 36);
        assert_eq!(g.matches('-').count(), 4);
    }

    #[test]
    fn formats_utc_dates() {
        assert_eq!(iso_utc(0, 0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            iso_utc(1_704_067_200, 5),
            "2024-01-01T00:00:00.000005+00:00"
        );
        assert_eq!(
            iso_utc(951_782_400 + 3_661, 0),
            "2000-02-29T01:01:01.000000+00:00"
        );
    }
}
