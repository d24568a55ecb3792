//! Resource requests and machine capacity: parsing, limits and detection.
//!
//! Values are kept in integer units ([`crate::plan::Resources`]): CPUs and custom
//! resources in thousandths, memory in bytes, GPUs as a count. The limits below
//! reject values that are certainly mistakes (a typo'd exponent, a negative
//! number) before anything is scheduled.

use std::collections::BTreeMap;

use crate::plan::Resources;

/// Largest CPU or custom amount accepted (in units, not thousandths).
pub const MAX_AMOUNT: f64 = 1e6;
/// Largest memory accepted for a request or a capacity.
pub const MAX_MEMORY: u64 = 16 << 40;
/// Largest GPU count accepted.
pub const MAX_GPU: u64 = 1_000_000;

/// A partial request: what one `resources` table says; unset keys fall back.
#[derive(Debug, Clone, Default)]
pub struct Partial {
    pub cpu_milli: Option<u64>,
    pub memory: Option<u64>,
    pub gpu: Option<u64>,
    pub custom: BTreeMap<String, u64>,
}

impl Partial {
    /// `self` over `base`, key by key.
    pub fn over(&self, base: &Partial) -> Partial {
        let mut custom = base.custom.clone();
        custom.extend(self.custom.iter().map(|(k, v)| (k.clone(), *v)));
        Partial {
            cpu_milli: self.cpu_milli.or(base.cpu_milli),
            memory: self.memory.or(base.memory),
            gpu: self.gpu.or(base.gpu),
            custom,
        }
    }

    /// Fill unset keys with the given defaults.
    pub fn resolve(&self, cpu_milli: u64, memory: u64, gpu: u64) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.unwrap_or(cpu_milli),
            memory: self.memory.unwrap_or(memory),
            gpu: self.gpu.unwrap_or(gpu),
            custom: self.custom.clone(),
        }
    }
}

/// Is `name` acceptable as a custom resource name?
pub fn valid_resource_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Convert a CPU or custom amount to thousandths, checking the limits.
/// `allow_zero` is true for custom amounts and capacities of custom resources.
pub fn amount_milli(v: f64, allow_zero: bool) -> Result<u64, String> {
    if !v.is_finite() {
        return Err("must be a finite number".into());
    }
    if v < 0.0 {
        return Err(format!("must not be negative (got {v})"));
    }
    if v > MAX_AMOUNT {
        return Err(format!("is too large (got {v}; the limit is 1000000)"));
    }
    let m = (v * 1000.0).round() as u64;
    if m == 0 && !(allow_zero && v == 0.0) {
        return Err(if v == 0.0 {
            "must be greater than 0".into()
        } else {
            format!("is too small (got {v}; the smallest amount is 0.001)")
        });
    }
    Ok(m)
}

/// Check a memory amount in bytes.
pub fn check_memory(bytes: u64) -> Result<u64, String> {
    if bytes == 0 {
        return Err("must be greater than 0".into());
    }
    if bytes > MAX_MEMORY {
        return Err(format!("is too large ({}; the limit is 16TiB)", crate::units::format_size(bytes)));
    }
    Ok(bytes)
}

/// Check a GPU count.
pub fn check_gpu(n: i64) -> Result<u64, String> {
    if n < 0 {
        return Err(format!("must not be negative (got {n})"));
    }
    if n as u64 > MAX_GPU {
        return Err(format!("is too large (got {n}; the limit is 1000000)"));
    }
    Ok(n as u64)
}

/// The machine's capacity when nothing overrides it: the CPUs and memory
/// this process may use (affinity mask, cgroup limits, `MemTotal`; see
/// [`super::cgroup`]), no GPU.
pub fn detect_capacity() -> Resources {
    let d = super::cgroup::detect();
    Resources { cpu_milli: d.cpus * 1000, memory: d.memory, gpu: 0, custom: BTreeMap::new() }
}

/// Parse `cpu=4,memory=8GiB,gpu=1,licence=2` into the keys it sets.
pub fn parse_list(s: &str) -> Result<Partial, String> {
    let mut p = Partial::default();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("`{item}` is not of the form name=value"));
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "cpu" => {
                let n: f64 = v.parse().map_err(|_| format!("cpu `{v}` is not a number"))?;
                p.cpu_milli = Some(amount_milli(n, false).map_err(|e| format!("cpu {e}"))?);
            }
            "memory" => {
                let b = crate::units::parse_size(v)?;
                p.memory = Some(check_memory(b).map_err(|e| format!("memory {e}"))?);
            }
            "gpu" => {
                let n: i64 = v.parse().map_err(|_| format!("gpu `{v}` is not a whole number"))?;
                p.gpu = Some(check_gpu(n).map_err(|e| format!("gpu {e}"))?);
            }
            _ => {
                if !valid_resource_name(k) {
                    return Err(format!(
                        "`{k}` is not a valid resource name (letters, digits, `_` and `-`, starting with a letter or `_`)"
                    ));
                }
                let n: f64 = v.parse().map_err(|_| format!("{k} `{v}` is not a number"))?;
                p.custom.insert(k.to_string(), amount_milli(n, true).map_err(|e| format!("{k} {e}"))?);
            }
        }
    }
    Ok(p)
}

/// Format a capacity the way `--resources` takes it: `cpu=4, memory=8GiB, gpu=0, licence=2`.
pub fn format_resources(r: &Resources) -> String {
    let mut s = format!(
        "cpu={}, memory={}, gpu={}",
        crate::plan::fmt_milli(r.cpu_milli),
        crate::units::format_size(r.memory),
        r.gpu
    );
    for (k, v) in &r.custom {
        s.push_str(&format!(", {k}={}", crate::plan::fmt_milli(*v)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        let p = parse_list("cpu=4,memory=8GiB,gpu=1,licence=2").unwrap();
        assert_eq!(p.cpu_milli, Some(4000));
        assert_eq!(p.memory, Some(8 << 30));
        assert_eq!(p.gpu, Some(1));
        assert_eq!(p.custom.get("licence"), Some(&2000));
        assert_eq!(parse_list("cpu=0").unwrap_err(), "cpu must be greater than 0");
        assert_eq!(parse_list("cpu").unwrap_err(), "`cpu` is not of the form name=value");
        assert_eq!(parse_list("gpu=-1").unwrap_err(), "gpu must not be negative (got -1)");
    }
}
