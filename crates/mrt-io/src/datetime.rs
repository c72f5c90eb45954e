//! DICOM dates and times (DA, TM, DT) as seconds on a common time line.
//!
//! Only differences matter to dosimetry (hours after injection), so a civil date-time is turned
//! into seconds since 1970-01-01 of the same clock. A UTC offset in a DT value is honoured;
//! values without one are taken in the scanner's local clock, which is the same clock for all
//! series of one study.

/// Seconds since 1970-01-01T00:00:00 of the (local or offset-corrected) clock.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
pub struct Timestamp(pub f64);

impl Timestamp {
    /// `self - earlier` in hours.
    pub fn hours_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) / 3600.0
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Parses a DA value `YYYYMMDD` into days since epoch.
pub fn parse_da(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: i64 = s[4..6].parse().ok()?;
    let d: i64 = s[6..8].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses a TM value `HH[MM[SS[.FFFFFF]]]` (optionally with legacy colons) into seconds of day.
pub fn parse_tm(s: &str) -> Option<f64> {
    let cleaned: String = s.trim().chars().filter(|&c| c != ':').collect();
    let (int_part, frac) = match cleaned.split_once('.') {
        Some((a, b)) => (a.to_string(), format!("0.{b}")),
        None => (cleaned.clone(), "0".to_string()),
    };
    if int_part.is_empty() || int_part.len() % 2 != 0 || int_part.len() > 6 {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| -> Option<f64> {
        int_part
            .get(2 * i..2 * i + 2)
            .map(|p| p.parse::<f64>().ok())
            .unwrap_or(Some(0.0))
    };
    let (h, m, sec) = (field(0)?, field(1)?, field(2)?);
    if h >= 24.0 || m >= 60.0 || sec >= 61.0 {
        return None;
    }
    let frac: f64 = frac.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + sec + frac)
}

/// Parses DA + TM.
pub fn from_da_tm(date: &str, time: &str) -> Option<Timestamp> {
    let days = parse_da(date)?;
    let secs = parse_tm(time)?;
    Some(Timestamp(days as f64 * 86400.0 + secs))
}

/// Parses a DT value `YYYYMMDDHHMMSS.FFFFFF&ZZXX`; the UTC offset, if present, is removed.
pub fn parse_dt(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let (body, offset_s) = match s.find(['+', '-']) {
        Some(pos) if pos >= 8 => {
            let (b, z) = s.split_at(pos);
            let sign = if z.starts_with('-') { -1.0 } else { 1.0 };
            let digits = &z[1..];
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let hh: f64 = digits[0..2].parse().ok()?;
            let mm: f64 = digits[2..4].parse().ok()?;
            (b, sign * (hh * 3600.0 + mm * 60.0))
        }
        Some(_) => return None,
        None => (s, 0.0),
    };
    if body.len() < 8 {
        return None;
    }
    let days = parse_da(&body[0..8])?;
    let secs = if body.len() > 8 {
        parse_tm(&body[8..])?
    } else {
        0.0
    };
    Some(Timestamp(days as f64 * 86400.0 + secs - offset_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(parse_da("19700101"), Some(0));
        assert_eq!(parse_da("20000301"), Some(11017));
        assert_eq!(parse_da("2000-03-01"), None);
        assert_eq!(parse_da("20001301"), None);
    }

    #[test]
    fn times_and_offsets() {
        assert_eq!(parse_tm("1230"), Some(12.0 * 3600.0 + 30.0 * 60.0));
        assert_eq!(parse_tm("07:05:03"), Some(7.0 * 3600.0 + 5.0 * 60.0 + 3.0));
        assert_eq!(parse_tm("235959.5"), Some(86399.5));
        assert_eq!(parse_tm("25"), None);
        let a = parse_dt("20261127120000+0100").expect("valid");
        let b = parse_dt("20261127110000").expect("valid");
        assert_eq!(a, b);
        let inj = from_da_tm("20261126", "0900").expect("valid");
        let acq = parse_dt("20261127130000").expect("valid");
        assert_eq!(acq.hours_since(inj), 28.0);
    }
}

/// Civil date from days since 1970-01-01 (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Timestamp {
    /// `(DA, TM)` strings: `YYYYMMDD`, `HHMMSS.ffffff` (microseconds).
    pub fn to_da_tm(self) -> (String, String) {
        let micros = (self.0 * 1e6).round() as i64;
        let days = micros.div_euclid(86_400_000_000);
        let rem = micros.rem_euclid(86_400_000_000);
        let (y, m, d) = civil_from_days(days);
        let (h, rem) = (rem / 3_600_000_000, rem % 3_600_000_000);
        let (mi, rem) = (rem / 60_000_000, rem % 60_000_000);
        let (s, us) = (rem / 1_000_000, rem % 1_000_000);
        (
            format!("{y:04}{m:02}{d:02}"),
            format!("{h:02}{mi:02}{s:02}.{us:06}"),
        )
    }

    /// DT string `YYYYMMDDHHMMSS.ffffff`.
    pub fn to_dt(self) -> String {
        let (da, tm) = self.to_da_tm();
        format!("{da}{tm}")
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn format_round_trips() {
        for s in [
            "20261127130000.250000",
            "19991231235959.000001",
            "20000229000000.000000",
        ] {
            let t = parse_dt(s).expect("valid");
            assert_eq!(t.to_dt(), s);
        }
    }
}
