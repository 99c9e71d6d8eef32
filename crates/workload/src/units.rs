//! Counts and rates as people write and read them: `10M` updates, gigabytes per second.
//! Every count parses to the integer it spells or is refused; nothing is rounded silently.

/// A count: an integer with `_` separators or a `K`/`M`/`G` suffix (decimal: `10M` is
/// 10,000,000).
pub fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (digits, scale) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        Some('g' | 'G') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (&t[..], 1),
    };
    let n: f64 = digits
        .parse()
        .map_err(|_| format!("cannot parse count {s:?} (examples: 1000000, 1_000_000, 10M)"))?;
    if n.is_nan()
        || n < 0.0
        || n * scale as f64 > u64::MAX as f64
        || (scale == 1 && n.fract() != 0.0)
    {
        return Err(format!(
            "cannot parse count {s:?} (examples: 1000000, 1_000_000, 10M)"
        ));
    }
    Ok((n * scale as f64).round() as u64)
}

/// Gigabytes (10^9 bytes) per second.
pub fn gbps(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / secs / 1e9
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_with_separators_and_suffixes() {
        assert_eq!(parse_count("10M"), Ok(10_000_000));
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("2.5k"), Ok(2_500));
        assert_eq!(parse_count("0"), Ok(0));
        assert!(parse_count("ten").is_err());
        assert!(parse_count("-5").is_err());
        assert!(parse_count("1.5").is_err());
    }
}
