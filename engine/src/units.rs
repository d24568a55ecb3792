//! Sizes and durations as users write them ("512MiB", "2GiB", "30s", "5m").
//!
//! Parsing is strict: a number, optional spaces, and a known unit. Sizes accept
//! B, KB/MB/GB/TB (powers of 1000) and KiB/MiB/GiB/TiB (powers of 1024);
//! a bare integer is bytes. Durations accept ms, s, m, h and d; a bare number
//! is rejected because its unit would be a guess.

use std::time::Duration;

/// Parse a size such as `512MiB`, `2GiB`, `1.5GB` or `1048576`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num = num.replace('_', "");
    if num.is_empty() {
        return Err(format!("invalid size `{s}`: expected a number followed by a unit such as MiB or GiB"));
    }
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "kB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "T" | "TB" => 1_000_000_000_000,
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        "Ti" | "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "invalid size `{s}`: unknown unit `{other}` (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ));
        }
    };
    let value: f64 = num.parse().map_err(|_| format!("invalid size `{s}`: `{num}` is not a number"))?;
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("invalid size `{s}`: too large"));
    }
    Ok(bytes.round() as u64)
}

/// Parse a duration such as `30s`, `5m`, `1.5h`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("invalid duration `{s}`: expected a number followed by ms, s, m, h or d"));
    }
    let secs: f64 = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        "" => {
            return Err(format!("invalid duration `{s}`: missing unit (ms, s, m, h or d)"));
        }
        other => {
            return Err(format!("invalid duration `{s}`: unknown unit `{other}` (use ms, s, m, h or d)"));
        }
    };
    let value: f64 = num.parse().map_err(|_| format!("invalid duration `{s}`: `{num}` is not a number"))?;
    let total = value * secs;
    if !total.is_finite() || total > 365.0 * 86400.0 {
        return Err(format!("invalid duration `{s}`: longer than a year"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Format bytes with a binary unit: 1536 -> "1.5KiB", 2147483648 -> "2GiB".
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else if (v - v.round()).abs() < 0.005 {
        format!("{}{}", v.round() as u64, UNITS[i])
    } else {
        format!("{:.2}{}", v, UNITS[i]).replace(".00", "")
    }
}

/// Format a duration compactly for summaries: "850µs", "12.3ms", "4.20s", "3m05s".
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else if us < 60_000_000 {
        format!("{:.2}s", us as f64 / 1e6)
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12parsecs").unwrap_err().contains("unknown unit `parsecs`"));
        assert!(parse_size("MiB").is_err());
        assert_eq!(format_size(2 << 30), "2GiB");
        assert_eq!(format_size(1536), "1.50KiB");
        assert_eq!(format_size(100), "100B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("30").unwrap_err().contains("missing unit"));
        assert!(parse_duration("9999d").unwrap_err().contains("longer than a year"));
    }
}
