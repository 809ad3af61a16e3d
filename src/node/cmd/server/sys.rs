//! Process facts INFO reports, read from `/proc` (no libc calls: the crate forbids `unsafe`).
//! Everything degrades to zeros where `/proc` is unavailable.

use std::sync::OnceLock;

/// A value from the ELF auxiliary vector (`getauxval`), read from `/proc/self/auxv`.
fn auxv(key: u64) -> Option<u64> {
    let data = std::fs::read("/proc/self/auxv").ok()?;
    data.chunks_exact(16).find_map(|pair| {
        let k = u64::from_ne_bytes(pair[..8].try_into().ok()?);
        let v = u64::from_ne_bytes(pair[8..].try_into().ok()?);
        (k == key).then_some(v)
    })
}

pub fn page_size() -> u64 {
    static P: OnceLock<u64> = OnceLock::new();
    *P.get_or_init(|| auxv(6).filter(|p| *p > 0).unwrap_or(4096))
}

fn clock_ticks() -> u64 {
    static T: OnceLock<u64> = OnceLock::new();
    *T.get_or_init(|| auxv(17).filter(|t| *t > 0).unwrap_or(100))
}

/// Resident set size in bytes (`/proc/self/statm`, second field, in pages).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map(|pages| pages * page_size())
        .unwrap_or(0)
}

/// Physical memory of the machine (`/proc/meminfo` MemTotal).
pub fn total_system_memory() -> u64 {
    static M: OnceLock<u64> = OnceLock::new();
    *M.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    let rest = l.strip_prefix("MemTotal:")?;
                    rest.split_whitespace().next()?.parse::<u64>().ok()
                })
            })
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    })
}

/// CPU time as `getrusage` reports it: (user, system) seconds and microseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuTimes {
    pub user: (u64, u64),
    pub sys: (u64, u64),
    pub children_user: (u64, u64),
    pub children_sys: (u64, u64),
}

fn ticks_to_timeval(ticks: u64) -> (u64, u64) {
    let hz = clock_ticks();
    (ticks / hz, (ticks % hz) * 1_000_000 / hz)
}

/// utime, stime, cutime, cstime of a `stat` file (fields 14-17; the command name before them may
/// hold spaces, so counting starts after its closing parenthesis).
fn stat_times(path: &str) -> Option<[u64; 4]> {
    let s = std::fs::read_to_string(path).ok()?;
    let after = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok()).map(|v| v.max(0) as u64);
    Some([get(11)?, get(12)?, get(13)?, get(14)?])
}

pub fn cpu_process() -> CpuTimes {
    let t = stat_times("/proc/self/stat").unwrap_or_default();
    CpuTimes {
        user: ticks_to_timeval(t[0]),
        sys: ticks_to_timeval(t[1]),
        children_user: ticks_to_timeval(t[2]),
        children_sys: ticks_to_timeval(t[3]),
    }
}

/// The thread running the server loop (the caller's thread).
pub fn cpu_main_thread() -> CpuTimes {
    let t = stat_times("/proc/thread-self/stat").unwrap_or_default();
    CpuTimes { user: ticks_to_timeval(t[0]), sys: ticks_to_timeval(t[1]), ..Default::default() }
}

/// `uname -s -r -m`, as Redis prints it in INFO `os`.
pub fn os_name() -> String {
    static O: OnceLock<String> = OnceLock::new();
    O.get_or_init(|| {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).ok();
        let sys = read("/proc/sys/kernel/ostype").unwrap_or_else(|| std::env::consts::OS.to_string());
        let rel = read("/proc/sys/kernel/osrelease").unwrap_or_default();
        format!("{sys} {rel} {}", std::env::consts::ARCH)
    })
    .clone()
}

/// Redis's `bytesToHuman`.
pub fn bytes_to_human(n: u64) -> String {
    const K: f64 = 1024.0;
    let d = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if n < 1 << 20 {
        format!("{:.2}K", d / K)
    } else if n < 1 << 30 {
        format!("{:.2}M", d / (K * K))
    } else if n < 1 << 40 {
        format!("{:.2}G", d / (K * K * K))
    } else if n < 1 << 50 {
        format!("{:.2}T", d / (K * K * K * K))
    } else if n < 1 << 60 {
        format!("{:.2}P", d / (K * K * K * K * K))
    } else {
        format!("{n}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(940960), "918.91K");
        assert_eq!(bytes_to_human(7163904), "6.83M");
        assert_eq!(bytes_to_human(25276510208), "23.54G");
    }

    #[test]
    fn proc_readings() {
        if std::path::Path::new("/proc/self/statm").exists() {
            assert!(rss_bytes() > 0);
            assert!(page_size() >= 4096);
            assert!(!os_name().is_empty());
        }
    }
}
