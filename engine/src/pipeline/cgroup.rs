//! The machine's default capacity as the engine may use it: CPUs from the
//! affinity mask and the cgroup CPU quota, memory from `MemTotal` and the
//! cgroup memory limit, each with where it came from (`engine check` shows
//! it; docs/pipeline.md, "`[resources]`").
//!
//! Everything here is a pure function of file contents: [`detect_with`] reads
//! through a closure, so the unit tests below run it on fixture strings for
//! cgroup v1, v2, `max`, hybrid mounts and nested groups. Only [`detect`]
//! touches the real `/proc` and `/sys`.
//!
//! The rules. A process is limited by its own cgroup and every ancestor, so
//! the limit is the smallest found walking from its group up to the root of
//! the hierarchy's mount (found in `/proc/self/mountinfo`, with the group's
//! path from `/proc/self/cgroup`). cgroup v2 gives `memory.max` and `cpu.max`
//! (`QUOTA PERIOD`, or `max`); v1 gives `memory.limit_in_bytes` and
//! `cpu.cfs_quota_us`/`cpu.cfs_period_us` (quota `-1`: none). A CPU quota is
//! rounded up to whole CPUs (at least 1), as tasks request whole CPUs by
//! default; a memory limit counts only when it is below `MemTotal`.

use std::path::{Path, PathBuf};

/// A detected default and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// CPUs, whole.
    pub cpus: u64,
    /// `affinity mask`, `available parallelism`, `cgroup cpu.max` or `cgroup cpu.cfs_quota_us`.
    pub cpu_source: &'static str,
    /// Bytes.
    pub memory: u64,
    /// `MemTotal`, `cgroup memory.max`, `cgroup memory.limit_in_bytes`, or
    /// `default` (1 GiB, when nothing could be read).
    pub memory_source: &'static str,
}

/// Memory assumed when neither `MemTotal` nor a cgroup limit can be read.
pub const FALLBACK_MEMORY: u64 = 1 << 30;

/// A cgroup limit file's number, or `None` for `max` (no limit) and anything unreadable.
pub fn parse_max(s: &str) -> Option<u64> {
    match s.trim() {
        "max" => None,
        v => v.parse().ok(),
    }
}

/// v2 `cpu.max` (`QUOTA PERIOD` or `max PERIOD`) as whole CPUs, rounded up.
pub fn parse_cpu_max(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let quota = it.next()?;
    let period: u64 = it.next().map_or(Some(100_000), |p| p.parse().ok())?;
    if quota == "max" {
        return None;
    }
    quota_cpus(quota.parse().ok()?, period)
}

/// v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` as whole CPUs, rounded up
/// (`-1`: no quota).
pub fn parse_cfs(quota: &str, period: &str) -> Option<u64> {
    let q: i64 = quota.trim().parse().ok()?;
    let p: u64 = period.trim().parse().ok()?;
    quota_cpus(u64::try_from(q).ok()?, p)
}

fn quota_cpus(quota: u64, period: u64) -> Option<u64> {
    (quota > 0 && period > 0).then(|| quota.div_ceil(period).max(1))
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn parse_meminfo(s: &str) -> Option<u64> {
    s.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// The process's groups from `/proc/self/cgroup`: the v2 path (line
/// `0::PATH`) and the v1 `(controllers, path)` pairs.
pub fn parse_proc_cgroup(s: &str) -> (Option<String>, Vec<(Vec<String>, String)>) {
    let (mut v2, mut v1) = (None, Vec::new());
    for line in s.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if id == "0" && ctrl.is_empty() {
            v2 = Some(path.to_string());
        } else {
            v1.push((ctrl.split(',').map(str::to_string).collect(), path.to_string()));
        }
    }
    (v2, v1)
}

/// A cgroup filesystem mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The group the mount shows at its mount point (`/` unless in a namespace).
    pub root: String,
    pub point: PathBuf,
    /// True for cgroup2, false for a v1 hierarchy.
    pub v2: bool,
    /// Super options (a v1 mount names its controllers there).
    pub options: Vec<String>,
}

/// The cgroup and cgroup2 mounts of a `/proc/self/mountinfo`.
pub fn parse_mountinfo(s: &str) -> Vec<Mount> {
    let mut v = Vec::new();
    for line in s.lines() {
        // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let v2 = match r[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        v.push(Mount {
            root: unescape(l[3]),
            point: PathBuf::from(unescape(l[4])),
            v2,
            options: r[2].split(',').map(str::to_string).collect(),
        });
    }
    v
}

/// mountinfo writes space, tab, newline and backslash as `\NNN` (octal).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let n = b[i + 1..i + 4].iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0'));
            out.push(n as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directories of `group` on `mount`, from the group's own up to the
/// mount point (the hierarchy's root as this process sees it).
fn group_dirs(mount: &Mount, group: &str) -> Vec<PathBuf> {
    let rel = if mount.root == "/" {
        Some(group)
    } else {
        group.strip_prefix(mount.root.as_str()).filter(|r| r.is_empty() || r.starts_with('/'))
    };
    let mut dir = mount.point.clone();
    // A group outside the mount's root (another namespace's view): the mount
    // point is all this process can read.
    for part in rel.unwrap_or("").split('/').filter(|p| !p.is_empty() && *p != "..") {
        dir.push(part);
    }
    let mut dirs = vec![dir.clone()];
    while dir != mount.point && dir.pop() {
        dirs.push(dir.clone());
    }
    dirs
}

/// The smallest of `parse` over `dirs`.
fn smallest(dirs: &[PathBuf], parse: &dyn Fn(&Path) -> Option<u64>) -> Option<u64> {
    dirs.iter().filter_map(|d| parse(d)).min()
}

/// The limits of the process's cgroups: (cpus, source) and (memory, source).
#[allow(clippy::type_complexity)]
fn cgroup_limits(read: &dyn Fn(&Path) -> Option<String>) -> (Option<(u64, &'static str)>, Option<(u64, &'static str)>) {
    let (v2, v1) = parse_proc_cgroup(&read(Path::new("/proc/self/cgroup")).unwrap_or_default());
    let mut mounts = parse_mountinfo(&read(Path::new("/proc/self/mountinfo")).unwrap_or_default());
    if mounts.is_empty() {
        // No mountinfo: the usual places.
        mounts.push(Mount { root: "/".into(), point: "/sys/fs/cgroup".into(), v2: true, options: vec![] });
        for c in ["memory", "cpu"] {
            mounts.push(Mount {
                root: "/".into(),
                point: PathBuf::from("/sys/fs/cgroup").join(c),
                v2: false,
                options: vec![c.into()],
            });
        }
    }
    let file = |d: &Path, name: &str| read(&d.join(name));
    let (mut cpu, mut mem): (Option<(u64, &'static str)>, Option<(u64, &'static str)>) = (None, None);
    let keep = |slot: &mut Option<(u64, &'static str)>, v: Option<u64>, src: &'static str| {
        if let Some(v) = v
            && slot.is_none_or(|(old, _)| v < old)
        {
            *slot = Some((v, src));
        }
    };
    if let Some(group) = &v2 {
        for m in mounts.iter().filter(|m| m.v2) {
            let dirs = group_dirs(m, group);
            let c = smallest(&dirs, &|d| file(d, "cpu.max").and_then(|s| parse_cpu_max(&s)));
            keep(&mut cpu, c, "cgroup cpu.max");
            let mm = smallest(&dirs, &|d| file(d, "memory.max").and_then(|s| parse_max(&s)));
            keep(&mut mem, mm, "cgroup memory.max");
        }
    }
    for (ctrls, group) in &v1 {
        for m in mounts.iter().filter(|m| !m.v2 && ctrls.iter().any(|c| m.options.contains(c))) {
            let dirs = group_dirs(m, group);
            if ctrls.iter().any(|c| c == "cpu") && m.options.iter().any(|o| o == "cpu") {
                let c = smallest(&dirs, &|d| parse_cfs(&file(d, "cpu.cfs_quota_us")?, &file(d, "cpu.cfs_period_us")?));
                keep(&mut cpu, c, "cgroup cpu.cfs_quota_us");
            }
            if ctrls.iter().any(|c| c == "memory") && m.options.iter().any(|o| o == "memory") {
                let mm = smallest(&dirs, &|d| file(d, "memory.limit_in_bytes").and_then(|s| parse_max(&s)));
                keep(&mut mem, mm, "cgroup memory.limit_in_bytes");
            }
        }
    }
    (cpu, mem)
}

/// The defaults from what `read` returns for `/proc/self/cgroup`,
/// `/proc/self/mountinfo`, `/proc/meminfo` and the cgroup files, with
/// `affinity` the CPUs of the affinity mask (if known) and `parallelism`
/// the fallback count.
pub fn detect_with(read: &dyn Fn(&Path) -> Option<String>, affinity: Option<u64>, parallelism: u64) -> Detected {
    let (cores, core_source) = match affinity {
        Some(n) if n > 0 => (n, "affinity mask"),
        _ => (parallelism.max(1), "available parallelism"),
    };
    let (cg_cpu, cg_mem) = cgroup_limits(read);
    let (cpus, cpu_source) = match cg_cpu {
        Some((q, src)) if q < cores => (q, src),
        _ => (cores, core_source),
    };
    let total = read(Path::new("/proc/meminfo")).and_then(|s| parse_meminfo(&s));
    let (memory, memory_source) = match (total, cg_mem) {
        (Some(t), Some((l, src))) if l < t => (l, src),
        (Some(t), _) => (t, "MemTotal"),
        (None, Some((l, src))) => (l, src),
        (None, None) => (FALLBACK_MEMORY, "default"),
    };
    Detected { cpus, cpu_source, memory, memory_source }
}

/// The CPUs in this thread's affinity mask.
fn affinity() -> Option<u64> {
    // SAFETY: `set` is a plain bitmask that sched_getaffinity fills.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some(libc::CPU_COUNT(&set) as u64)
    }
}

/// The defaults of this process, read once.
pub fn detect() -> Detected {
    static ONCE: std::sync::OnceLock<Detected> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let parallelism = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
        detect_with(&|p: &Path| std::fs::read_to_string(p).ok(), affinity(), parallelism)
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const MEMINFO: &str = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n";
    const V2_MOUNT: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    const V1_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    fn fs(files: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> {
        let m: HashMap<PathBuf, String> = files.iter().map(|(p, c)| (PathBuf::from(p), c.to_string())).collect();
        move |p: &Path| m.get(p).cloned()
    }

    #[test]
    fn limit_files() {
        assert_eq!(parse_max("max\n"), None);
        assert_eq!(parse_max("2147483648\n"), Some(2 << 30));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(2));
        assert_eq!(parse_cpu_max("200000 100000"), Some(2));
        assert_eq!(parse_cpu_max("50000 100000"), Some(1));
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("300000\n", "100000\n"), Some(3));
        assert_eq!(parse_meminfo(MEMINFO), Some(16384000 * 1024));
        assert_eq!(parse_meminfo("nothing"), None);
        let (v2, v1) = parse_proc_cgroup("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/user.slice/a\n");
        assert_eq!(v2.as_deref(), Some("/user.slice/a"));
        assert_eq!(v1[0], (vec!["cpu".to_string(), "cpuacct".to_string()], "/docker/abc".to_string()));
        let m = parse_mountinfo(
            "40 31 0:37 / /sys/fs/my\\040cg rw - cgroup2 cgroup2 rw\n1 0 8:1 / / rw - ext4 /dev/sda rw\n",
        );
        assert_eq!(
            m,
            vec![Mount { root: "/".into(), point: "/sys/fs/my cg".into(), v2: true, options: vec!["rw".into()] }]
        );
    }

    #[test]
    fn without_cgroup_limits_the_machine_counts() {
        let read = fs(&[
            ("/proc/self/cgroup", "0::/\n"),
            ("/proc/self/mountinfo", V2_MOUNT),
            ("/proc/meminfo", MEMINFO),
            ("/sys/fs/cgroup/cpu.max", "max 100000\n"),
        ]);
        let d = detect_with(&read, Some(8), 16);
        assert_eq!(
            d,
            Detected { cpus: 8, cpu_source: "affinity mask", memory: 16384000 * 1024, memory_source: "MemTotal" }
        );
        let d = detect_with(&fs(&[]), None, 4);
        assert_eq!(
            d,
            Detected { cpus: 4, cpu_source: "available parallelism", memory: 1 << 30, memory_source: "default" }
        );
    }

    #[test]
    fn v2_limits_nested_groups_take_the_smallest() {
        // The process is in /a/b; /a limits memory to 2 GiB, /a/b to 3 GiB
        // (which /a caps), /a/b limits CPU to 1.5 CPUs (rounded up to 2).
        let read = fs(&[
            ("/proc/self/cgroup", "0::/a/b\n"),
            ("/proc/self/mountinfo", V2_MOUNT),
            ("/proc/meminfo", MEMINFO),
            ("/sys/fs/cgroup/a/memory.max", "2147483648\n"),
            ("/sys/fs/cgroup/a/cpu.max", "max 100000\n"),
            ("/sys/fs/cgroup/a/b/memory.max", "3221225472\n"),
            ("/sys/fs/cgroup/a/b/cpu.max", "150000 100000\n"),
        ]);
        let d = detect_with(&read, Some(8), 8);
        assert_eq!(
            d,
            Detected { cpus: 2, cpu_source: "cgroup cpu.max", memory: 2 << 30, memory_source: "cgroup memory.max" }
        );
        // A limit above MemTotal, or `max`, does not count; nor does a quota above the affinity.
        let read = fs(&[
            ("/proc/self/cgroup", "0::/a\n"),
            ("/proc/self/mountinfo", V2_MOUNT),
            ("/proc/meminfo", MEMINFO),
            ("/sys/fs/cgroup/a/memory.max", "max\n"),
            ("/sys/fs/cgroup/memory.max", "99999999999999\n"),
            ("/sys/fs/cgroup/a/cpu.max", "400000 100000\n"),
        ]);
        let d = detect_with(&read, Some(2), 8);
        assert_eq!(
            d,
            Detected { cpus: 2, cpu_source: "affinity mask", memory: 16384000 * 1024, memory_source: "MemTotal" }
        );
    }

    #[test]
    fn v2_in_a_namespace_reads_its_mount_root() {
        // A container whose cgroup namespace shows its own group as `/`.
        let read = fs(&[
            ("/proc/self/cgroup", "0::/\n"),
            ("/proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"),
            ("/proc/meminfo", MEMINFO),
            ("/sys/fs/cgroup/memory.max", "536870912\n"),
            ("/sys/fs/cgroup/cpu.max", "100000 100000\n"),
        ]);
        let d = detect_with(&read, Some(4), 4);
        assert_eq!(
            d,
            Detected { cpus: 1, cpu_source: "cgroup cpu.max", memory: 512 << 20, memory_source: "cgroup memory.max" }
        );
    }

    #[test]
    fn v1_limits_with_hybrid_mounts() {
        let read = fs(&[
            ("/proc/self/cgroup", "5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n"),
            ("/proc/self/mountinfo", V1_MOUNTS),
            ("/proc/meminfo", MEMINFO),
            ("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "1073741824\n"),
            ("/sys/fs/cgroup/memory/docker/memory.limit_in_bytes", "9223372036854771712\n"),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n"),
            ("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n"),
            ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"),
            ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
        ]);
        let d = detect_with(&read, Some(16), 16);
        assert_eq!(
            d,
            Detected {
                cpus: 3,
                cpu_source: "cgroup cpu.cfs_quota_us",
                memory: 1 << 30,
                memory_source: "cgroup memory.limit_in_bytes"
            }
        );
        // v1 "unlimited" is a huge number: MemTotal wins.
        let read = fs(&[
            ("/proc/self/cgroup", "4:memory:/process_api/x\n"),
            ("/proc/self/mountinfo", V1_MOUNTS),
            ("/proc/meminfo", MEMINFO),
            ("/sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes", "9223372036854771712\n"),
        ]);
        assert_eq!(detect_with(&read, Some(2), 2).memory_source, "MemTotal");
    }
}
