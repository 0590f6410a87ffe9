//! azbook's own CPU time and peak memory, without the az processes it ran: what `-v` reports
//! and what the benchmarks compare against the wall time; and the allocator setting that keeps
//! that memory down.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OwnUsage {
    /// User plus system CPU time of this process (all its threads).
    pub cpu: Duration,
    /// Peak resident set size, in bytes.
    pub peak_rss: u64,
}

impl OwnUsage {
    pub fn now() -> Option<OwnUsage> {
        // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF counts this process only,
        // not its children (the az processes).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
        Some(OwnUsage {
            cpu: time(usage.ru_utime) + time(usage.ru_stime),
            // Linux reports ru_maxrss in kilobytes.
            peak_rss: usage.ru_maxrss as u64 * 1024,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "azbook itself used {:.2}s of CPU and at most {:.1} MB of memory (az processes not included)",
            self.cpu.as_secs_f64(),
            self.peak_rss as f64 / 1_048_576.0
        )
    }
}

/// Caps glibc's malloc at two arenas. glibc gives threads that allocate at once arenas of their
/// own (up to eight per core), and memory freed into one arena is not reused by another: with
/// sixteen workers, apply and backout on the large benchmark fleet held 105 and 147 MB resident
/// for a heap of about 70 and 85 MB; with two arenas, 77 and 111 MB (BENCHMARKS.md). Two, not
/// one, so that workers parsing az's output do not all queue on one lock. Call before any thread
/// starts.
pub fn limit_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_this_process() {
        let before = OwnUsage::now().unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let after = OwnUsage::now().unwrap();
        assert!(after.cpu >= before.cpu);
        assert!(
            after.peak_rss > 1_000_000,
            "a Rust test binary holds more than 1 MB"
        );
        assert!(after.describe().contains("MB"));
    }
}
