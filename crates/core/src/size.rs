//! Sizes as people read them, for pages and messages alike.

/// A size in bytes as people read it: "840 bytes", "12.5 KB", "3.2 MB", "1.1 GB".
#[must_use]
pub fn human_size(bytes: u64) -> String {
    const KB: u64 = 1024;
    #[allow(clippy::cast_precision_loss)]
    let scaled = |unit: u64| {
        let v = bytes as f64 / unit as f64;
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
    };
    if bytes < KB {
        format!("{bytes} bytes")
    } else if bytes < KB * KB {
        format!("{} KB", scaled(KB))
    } else if bytes < KB * KB * KB {
        format!("{} MB", scaled(KB * KB))
    } else {
        format!("{} GB", scaled(KB * KB * KB))
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn each_unit_reads_naturally() {
        assert_eq!(human_size(840), "840 bytes");
        assert_eq!(human_size(1024), "1 KB");
        assert_eq!(human_size(12_800), "12.5 KB");
        assert_eq!(human_size(3 * 1024 * 1024 + 200 * 1024), "3.2 MB");
        assert_eq!(human_size(25 * 1024 * 1024 * 1024), "25 GB");
    }
}
