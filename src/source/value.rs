//! Field values checked against their ESP type (esp-protocol.md §5.1, §5.5),
//! without allocating: the text is kept as the source gave it (numbers
//! trimmed of padding), and only judged here.

use crate::config::project::FieldType;

/// One piece of a compiled `dateformat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// A literal byte that must match.
    Lit(u8),
    /// A space in the format: one or more spaces or tabs in the value.
    Space,
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    DayOfYear,
    Hour24,
    Hour12,
    Minute,
    Second,
    AmPm,
    /// `%f`: 1 to 9 fraction digits.
    Fraction,
}

/// A strftime-like `dateformat`, compiled once per source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat {
    text: String,
    items: Vec<Item>,
    has_fraction: bool,
}

/// The conversions `dateformat` accepts, for error messages.
pub const DATE_CONVERSIONS: &str = "%Y %y %m %b %h %B %d %e %j %H %I %M %S %p %f %T %F %D %R %%";

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

impl DateFormat {
    pub fn parse(text: &str) -> Result<DateFormat, String> {
        let mut items = Vec::new();
        let mut bytes = text.bytes();
        while let Some(b) = bytes.next() {
            if b != b'%' {
                items.push(if b == b' ' { Item::Space } else { Item::Lit(b) });
                continue;
            }
            let Some(c) = bytes.next() else {
                return Err(format!("dateformat {text:?} ends with a lone '%'"));
            };
            match c {
                b'Y' => items.push(Item::Year4),
                b'y' => items.push(Item::Year2),
                b'm' => items.push(Item::Month),
                b'b' | b'h' | b'B' => items.push(Item::MonthName),
                b'd' | b'e' => items.push(Item::Day),
                b'j' => items.push(Item::DayOfYear),
                b'H' => items.push(Item::Hour24),
                b'I' => items.push(Item::Hour12),
                b'M' => items.push(Item::Minute),
                b'S' => items.push(Item::Second),
                b'p' => items.push(Item::AmPm),
                b'f' => items.push(Item::Fraction),
                b'T' => items.extend([
                    Item::Hour24,
                    Item::Lit(b':'),
                    Item::Minute,
                    Item::Lit(b':'),
                    Item::Second,
                ]),
                b'R' => items.extend([Item::Hour24, Item::Lit(b':'), Item::Minute]),
                b'F' => items.extend([
                    Item::Year4,
                    Item::Lit(b'-'),
                    Item::Month,
                    Item::Lit(b'-'),
                    Item::Day,
                ]),
                b'D' => items.extend([
                    Item::Month,
                    Item::Lit(b'/'),
                    Item::Day,
                    Item::Lit(b'/'),
                    Item::Year2,
                ]),
                b'%' => items.push(Item::Lit(b'%')),
                other => {
                    return Err(format!(
                    "dateformat {text:?}: unknown conversion '%{}'; accepted: {DATE_CONVERSIONS}",
                    other as char
                ))
                }
            }
        }
        let has_fraction = items.contains(&Item::Fraction);
        Ok(DateFormat {
            text: text.to_string(),
            items,
            has_fraction,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `v` is a date in this format. A stamp may carry `.ffffff`
    /// after the seconds even when the format has no `%f` (§5.5).
    fn matches(&self, v: &[u8], stamp: bool) -> bool {
        self.scan(v, stamp).is_some()
    }

    /// `v` read with this format, as microseconds since 1970-01-01 00:00:00
    /// UTC (the format carries no zone: UTC is assumed, esp-protocol.md §5.5).
    pub fn to_micros(&self, v: &[u8], stamp: bool) -> Option<i64> {
        self.scan(v, stamp)?.micros()
    }

    /// Reads `v` item by item into its parts; None when it does not match.
    fn scan(&self, v: &[u8], stamp: bool) -> Option<Parts> {
        let mut p = Parts::default();
        let mut i = 0;
        let mut after_seconds_fraction = stamp && !self.has_fraction;
        for item in &self.items {
            let ok = match *item {
                Item::Lit(b) => {
                    let ok = v.get(i) == Some(&b);
                    i += 1;
                    ok
                }
                Item::Space => {
                    let n = v[i..]
                        .iter()
                        .take_while(|c| **c == b' ' || **c == b'\t')
                        .count();
                    i += n;
                    n > 0
                }
                Item::Year4 => read(v, &mut i, 4, 4, 0, 9999)
                    .map(|n| p.year = Some(n.0 as i64))
                    .is_some(),
                Item::Year2 => read(v, &mut i, 2, 2, 0, 99)
                    // POSIX strptime: 69-99 are 1969-1999, 00-68 are 2000-2068.
                    .map(|n| p.year = Some(if n.0 < 69 { 2000 } else { 1900 } + n.0 as i64))
                    .is_some(),
                Item::Month => read(v, &mut i, 1, 2, 1, 12)
                    .map(|n| p.month = n.0)
                    .is_some(),
                Item::Day => {
                    // `%e` pads with a space.
                    if v.get(i) == Some(&b' ') {
                        i += 1;
                    }
                    read(v, &mut i, 1, 2, 1, 31).map(|n| p.day = n.0).is_some()
                }
                Item::DayOfYear => read(v, &mut i, 1, 3, 1, 366)
                    .map(|n| p.yday = Some(n.0))
                    .is_some(),
                Item::Hour24 => read(v, &mut i, 1, 2, 0, 23).map(|n| p.hour = n.0).is_some(),
                Item::Hour12 => read(v, &mut i, 1, 2, 1, 12)
                    .map(|n| {
                        p.hour = n.0 % 12;
                        p.twelve = true;
                    })
                    .is_some(),
                Item::Minute => read(v, &mut i, 1, 2, 0, 59)
                    .map(|n| p.minute = n.0)
                    .is_some(),
                Item::Second => {
                    // 60: a leap second.
                    let ok = read(v, &mut i, 1, 2, 0, 60)
                        .map(|n| p.second = n.0)
                        .is_some();
                    if ok && after_seconds_fraction && v.get(i) == Some(&b'.') {
                        i += 1;
                        after_seconds_fraction = false;
                        match read(v, &mut i, 1, 9, 0, u32::MAX) {
                            Some(f) => p.micros = scale_fraction(f),
                            None => return None,
                        }
                    }
                    ok
                }
                Item::Fraction => read(v, &mut i, 1, 9, 0, u32::MAX)
                    .map(|f| p.micros = scale_fraction(f))
                    .is_some(),
                Item::AmPm => {
                    let ok = v.len() >= i + 2
                        && (v[i..i + 2].eq_ignore_ascii_case(b"am")
                            || v[i..i + 2].eq_ignore_ascii_case(b"pm"));
                    if ok {
                        p.pm = v[i..i + 2].eq_ignore_ascii_case(b"pm");
                    }
                    i += 2;
                    ok
                }
                Item::MonthName => {
                    let rest = &v[i.min(v.len())..];
                    let found = MONTHS.iter().enumerate().find_map(|(k, m)| {
                        let m = m.as_bytes();
                        if rest.len() >= m.len() && rest[..m.len()].eq_ignore_ascii_case(m) {
                            Some((k, m.len()))
                        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(&m[..3]) {
                            Some((k, 3))
                        } else {
                            None
                        }
                    });
                    if let Some((k, n)) = found {
                        p.month = k as u32 + 1;
                        i += n;
                    }
                    found.is_some()
                }
            };
            if !ok || i > v.len() {
                return None;
            }
        }
        (i == v.len()).then_some(p)
    }

    /// Writes `micros` (since 1970, UTC) in this format; `%f` as six digits.
    pub fn format(&self, micros: i64, out: &mut Vec<u8>) {
        use std::io::Write;
        let secs = micros.div_euclid(1_000_000);
        let frac = micros.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (tod / 3600, tod / 60 % 60, tod % 60);
        for item in &self.items {
            let _ = match *item {
                Item::Lit(b) => {
                    out.push(b);
                    Ok(())
                }
                Item::Space => {
                    out.push(b' ');
                    Ok(())
                }
                Item::Year4 => write!(out, "{y:04}"),
                Item::Year2 => write!(out, "{:02}", y.rem_euclid(100)),
                Item::Month => write!(out, "{m:02}"),
                Item::MonthName => {
                    let name = MONTHS[m as usize - 1];
                    write!(out, "{}{}", name[..1].to_ascii_uppercase(), &name[1..3])
                }
                Item::Day => write!(out, "{d:02}"),
                Item::DayOfYear => write!(out, "{:03}", days - days_from_civil(y, 1, 1) + 1),
                Item::Hour24 => write!(out, "{hh:02}"),
                Item::Hour12 => write!(out, "{:02}", if hh % 12 == 0 { 12 } else { hh % 12 }),
                Item::Minute => write!(out, "{mm:02}"),
                Item::Second => write!(out, "{ss:02}"),
                Item::AmPm => write!(out, "{}", if hh < 12 { "AM" } else { "PM" }),
                Item::Fraction => write!(out, "{frac:06}"),
            };
        }
    }
}

/// The parts of a time as a format read them.
#[derive(Debug, Default)]
struct Parts {
    year: Option<i64>,
    month: u32,
    day: u32,
    yday: Option<u32>,
    hour: u32,
    twelve: bool,
    pm: bool,
    minute: u32,
    second: u32,
    micros: u32,
}

impl Parts {
    fn micros(&self) -> Option<i64> {
        let y = self.year.unwrap_or(1970);
        let days = match self.yday {
            Some(yd) => days_from_civil(y, 1, 1) + i64::from(yd) - 1,
            None => {
                let (m, d) = (self.month.max(1), self.day.max(1));
                if d > days_in_month(y, m) {
                    return None;
                }
                days_from_civil(y, m, d)
            }
        };
        let hour = if self.twelve && self.pm {
            self.hour + 12
        } else {
            self.hour
        };
        let secs = days * 86_400
            + i64::from(hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        Some(secs * 1_000_000 + i64::from(self.micros))
    }
}

/// `(digits read, value)` of a fraction, to microseconds.
fn scale_fraction((value, len): (u32, usize)) -> u32 {
    let mut v = u64::from(value);
    let mut n = len;
    while n > 6 {
        v /= 10;
        n -= 1;
    }
    while n < 6 {
        v *= 10;
        n += 1;
    }
    v as u32
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub use crate::clock::civil_from_days;

/// The form a date or stamp field goes to the engine in (the engine cannot
/// know a raw-source's `dateformat`): by default the numbers ESP itself
/// writes for them as text, seconds (date) or microseconds (stamp) since
/// 1970 (esp-protocol.md §5.1); with `-engine-dateformat`, that format.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EngineDates {
    #[default]
    Epoch,
    Format(DateFormat),
}

impl EngineDates {
    /// Writes `micros` as a `date` (`stamp` false) or a `stamp`.
    pub fn write(&self, micros: i64, stamp: bool, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = match self {
            EngineDates::Epoch if stamp => write!(out, "{micros}"),
            EngineDates::Epoch => write!(out, "{}", micros.div_euclid(1_000_000)),
            EngineDates::Format(f) => {
                f.format(micros, out);
                Ok(())
            }
        };
    }
}

/// Reads `min..=max` digits at `*i` whose value is in `lo..=hi`: the value
/// and how many digits it had.
fn read(v: &[u8], i: &mut usize, min: usize, max: usize, lo: u32, hi: u32) -> Option<(u32, usize)> {
    let start = *i;
    let mut n: u64 = 0;
    while *i < v.len() && *i - start < max && v[*i].is_ascii_digit() {
        n = n * 10 + u64::from(v[*i] - b'0');
        *i += 1;
    }
    let len = *i - start;
    (len >= min && n >= u64::from(lo) && n <= u64::from(hi)).then_some((n as u32, len))
}

/// Whether a type's text is trimmed of surrounding spaces (numbers and
/// times: ESP's own CSV writer pads them, e.g. `I,N, 10.000000`).
pub fn trims(ty: FieldType) -> bool {
    !matches!(ty, FieldType::String | FieldType::Rstring | FieldType::Blob)
}

/// Checks one non-null value. `Err` says what was expected; the caller adds
/// where.
pub fn check(ty: FieldType, v: &[u8], dates: Option<&DateFormat>) -> Result<(), String> {
    let ok = match ty {
        FieldType::Int32 => text(v).is_some_and(|s| s.parse::<i32>().is_ok()),
        FieldType::Int64 => text(v).is_some_and(|s| s.parse::<i64>().is_ok()),
        // Plain decimals (nearly every double in CSV) are checked without
        // the float parser; every text `decimal` takes, `f64` parses too.
        FieldType::Double => decimal(v) || text(v).is_some_and(|s| s.parse::<f64>().is_ok()),
        FieldType::Money => decimal(v),
        FieldType::String | FieldType::Rstring => {
            return std::str::from_utf8(v)
                .map(|_| ())
                .map_err(|e| format!("is not valid UTF-8 (byte {})", e.valid_up_to()))
        }
        FieldType::Blob => base64(v),
        FieldType::Date | FieldType::Stamp => match dates {
            Some(f) => f.matches(v, ty == FieldType::Stamp),
            None => text(v).is_some_and(|s| s.parse::<i64>().is_ok()),
        },
        FieldType::ArrayDbl => array(v, |s| s.parse::<f64>().is_ok()),
        FieldType::ArrayI32 => array(v, |s| s.parse::<i32>().is_ok()),
        FieldType::ArrayI64 => array(v, |s| s.parse::<i64>().is_ok()),
    };
    if ok {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(&v[..v.len().min(64)]);
    let more = if v.len() > 64 { "..." } else { "" };
    let expected = match ty {
        FieldType::Int32 => "an integer from -2147483648 to 2147483647".to_string(),
        FieldType::Int64 => "a 64-bit integer".to_string(),
        FieldType::Double => "a number".to_string(),
        FieldType::Money => "a decimal number like -12.50".to_string(),
        FieldType::Blob => "base64 text".to_string(),
        FieldType::Date | FieldType::Stamp => match dates {
            Some(f) if ty == FieldType::Stamp => {
                format!(
                    "a time in dateformat {:?} (optionally .ffffff after the seconds)",
                    f.text
                )
            }
            Some(f) => format!("a time in dateformat {:?}", f.text),
            None if ty == FieldType::Stamp => {
                "microseconds since 1970 (no dateformat is set)".to_string()
            }
            None => "seconds since 1970 (no dateformat is set)".to_string(),
        },
        FieldType::ArrayDbl => "an array of numbers like [1.0;2.5]".to_string(),
        FieldType::ArrayI32 => "an array of 32-bit integers like [1;2]".to_string(),
        FieldType::ArrayI64 => "an array of 64-bit integers like [1;2]".to_string(),
        FieldType::String | FieldType::Rstring => unreachable!("strings returned above"),
    };
    Err(format!("{shown:?}{more} is not {expected}"))
}

fn text(v: &[u8]) -> Option<&str> {
    std::str::from_utf8(v).ok()
}

fn decimal(v: &[u8]) -> bool {
    let v = v.strip_prefix(b"-").or(v.strip_prefix(b"+")).unwrap_or(v);
    let (int, frac) = match v.iter().position(|&c| c == b'.') {
        Some(p) => (&v[..p], &v[p + 1..]),
        None => (v, &v[v.len()..]),
    };
    (!int.is_empty() || !frac.is_empty())
        && int.iter().all(u8::is_ascii_digit)
        && frac.iter().all(u8::is_ascii_digit)
}

fn base64(v: &[u8]) -> bool {
    let body = v.trim_ascii_end();
    let pad = body.iter().rev().take_while(|&&c| c == b'=').count();
    pad <= 2
        && body[..body.len() - pad]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'\n' | b'\r'))
}

fn array(v: &[u8], elem: impl Fn(&str) -> bool) -> bool {
    let Some(inner) = v.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) else {
        return false;
    };
    if inner.trim_ascii().is_empty() {
        return true;
    }
    inner
        .split(|&c| c == b';')
        .all(|e| text(e.trim_ascii()).is_some_and(&elem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert!(check(FieldType::Int32, b"2147483647", None).is_ok());
        assert!(check(FieldType::Int32, b"-2147483648", None).is_ok());
        let e = check(FieldType::Int32, b"2147483648", None).unwrap_err();
        assert_eq!(
            e,
            "\"2147483648\" is not an integer from -2147483648 to 2147483647"
        );
        assert!(check(FieldType::Int64, b"9223372036854775807", None).is_ok());
        assert!(check(FieldType::Int64, b"1.5", None).is_err());
        assert!(check(FieldType::Double, b"10.6454", None).is_ok());
        assert!(check(FieldType::Double, b"-1e-3", None).is_ok());
        assert!(check(FieldType::Double, b"abc", None).is_err());
        for d in [
            "5.", ".5", "+1", "-0.0", "007", "1e5", "inf", "NaN", ".", "-", "+.", "1..2",
        ] {
            assert_eq!(
                check(FieldType::Double, d.as_bytes(), None).is_ok(),
                d.parse::<f64>().is_ok(),
                "{d}"
            );
        }
        assert!(check(FieldType::Money, b"-12.50", None).is_ok());
        assert!(check(FieldType::Money, b".5", None).is_ok());
        assert!(check(FieldType::Money, b"1e3", None).is_err());
        assert!(check(FieldType::Money, b"-", None).is_err());
    }

    #[test]
    fn arrays_blobs_strings() {
        assert!(check(FieldType::ArrayDbl, b"[1.0;2.0]", None).is_ok());
        assert!(check(FieldType::ArrayDbl, b"[-3.0; -5.0]", None).is_ok());
        assert!(check(FieldType::ArrayDbl, b"[]", None).is_ok());
        assert!(check(FieldType::ArrayI32, b"[1;x]", None).is_err());
        assert!(check(FieldType::ArrayI64, b"1;2", None).is_err());
        assert!(check(FieldType::Blob, b"aGVsbG8=", None).is_ok());
        assert!(check(FieldType::Blob, b"aGV*bG8=", None).is_err());
        assert!(check(FieldType::String, "ünï".as_bytes(), None).is_ok());
        assert_eq!(
            check(FieldType::String, b"ab\xff", None).unwrap_err(),
            "is not valid UTF-8 (byte 2)"
        );
    }

    #[test]
    fn dates_with_and_without_format() {
        let f = DateFormat::parse("%Y-%m-%d %H:%M:%S").unwrap();
        assert!(check(FieldType::Date, b"2010-09-07 16:09:01", Some(&f)).is_ok());
        assert!(check(FieldType::Stamp, b"2010-09-07 16:09:01.123", Some(&f)).is_ok());
        assert!(check(FieldType::Stamp, b"2016-01-16 08:30:00.000468", Some(&f)).is_ok());
        // A date has second resolution: no fraction.
        assert!(check(FieldType::Date, b"2010-09-07 16:09:01.123", Some(&f)).is_err());
        assert!(check(FieldType::Date, b"2010-13-07 16:09:01", Some(&f)).is_err());
        assert!(check(FieldType::Date, b"2010-09-07", Some(&f)).is_err());
        assert!(check(FieldType::Date, b"2010-09-07 16:09:01x", Some(&f)).is_err());
        let e = check(FieldType::Date, b"yesterday", Some(&f)).unwrap_err();
        assert_eq!(
            e,
            "\"yesterday\" is not a time in dateformat \"%Y-%m-%d %H:%M:%S\""
        );
        // esppy's pubsub_dateformat.csv: month names and a 12-hour clock.
        let f = DateFormat::parse("%d%b%Y %I:%M:%S %p").unwrap();
        assert!(check(FieldType::Date, b"07Apr2013 01:03:00 PM", Some(&f)).is_ok());
        assert!(check(FieldType::Stamp, b"07Apr2013 01:03:00.111111 PM", Some(&f)).is_ok());
        assert!(check(FieldType::Date, b"07Foo2013 01:03:00 PM", Some(&f)).is_err());
        let f = DateFormat::parse("%Y%m%dT%H:%M:%S.%f").unwrap();
        assert!(check(FieldType::Stamp, b"20200101T10:00:00.5", Some(&f)).is_ok());
        let f = DateFormat::parse("%d/%b/%Y:%H:%M:%S").unwrap();
        assert!(check(FieldType::Date, b"10/Oct/2000:13:55:36", Some(&f)).is_ok());
        // Without a format: epoch numbers.
        assert!(check(FieldType::Date, b"1452951000", None).is_ok());
        assert!(check(FieldType::Stamp, b"1452951000000468", None).is_ok());
        assert!(check(FieldType::Stamp, b"2016-01-16", None).is_err());
    }

    #[test]
    fn dateformat_errors() {
        let e = DateFormat::parse("%Y-%Q").unwrap_err();
        assert!(
            e.starts_with("dateformat \"%Y-%Q\": unknown conversion '%Q'; accepted: %Y"),
            "{e}"
        );
        assert!(DateFormat::parse("%").is_err());
        assert!(DateFormat::parse("%T %F %D %R %%").is_ok());
    }

    #[test]
    fn times_are_read_to_microseconds_since_1970_utc() {
        let f = DateFormat::parse("%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(f.to_micros(b"1970-01-01 00:00:00", false), Some(0));
        assert_eq!(
            f.to_micros(b"2016-01-16 08:30:00", false),
            Some(1_452_933_000_000_000)
        );
        // A stamp may carry a fraction the format does not name (§5.5).
        assert_eq!(
            f.to_micros(b"2016-01-16 08:30:00.000468", true),
            Some(1_452_933_000_000_468)
        );
        assert_eq!(
            f.to_micros(b"2016-01-16 08:30:00.5", true),
            Some(1_452_933_000_500_000)
        );
        assert_eq!(
            f.to_micros(b"2016-01-16 08:30:00.1234567", true),
            Some(1_452_933_000_123_456)
        );
        assert_eq!(
            f.to_micros(b"2016-02-30 00:00:00", false),
            None,
            "no 30 February"
        );
        assert_eq!(
            f.to_micros(b"2016-02-29 00:00:00", false)
                .map(|u| u / 86_400_000_000),
            Some(16_860)
        );
        assert_eq!(f.to_micros(b"1969-12-31 23:59:59", false), Some(-1_000_000));
        let pm = DateFormat::parse("%d%b%Y %I:%M:%S %p").unwrap();
        assert_eq!(
            pm.to_micros(b"16Jan2016 08:30:00 PM", false),
            Some(1_452_976_200_000_000)
        );
        assert_eq!(
            pm.to_micros(b"16JAN2016 12:00:00 AM", false),
            Some(1_452_902_400_000_000)
        );
        let y2 = DateFormat::parse("%y%j").unwrap();
        assert_eq!(
            y2.to_micros(b"16016", false),
            f.to_micros(b"2016-01-16 00:00:00", false)
        );
    }

    #[test]
    fn formatting_reads_back_the_same_time() {
        for fmt in [
            "%Y-%m-%d %H:%M:%S",
            "%Y%m%dT%H:%M:%S.%f",
            "%d/%b/%Y:%I:%M:%S %p",
            "%y-%j %T",
        ] {
            let f = DateFormat::parse(fmt).unwrap();
            for us in [
                0i64,
                1_452_933_000_000_468,
                951_782_400_123_456,
                -86_400_000_000,
            ] {
                let mut out = Vec::new();
                f.format(us, &mut out);
                let back = f.to_micros(&out, true).unwrap();
                let keep = if fmt.contains("%f") {
                    us
                } else {
                    us - us.rem_euclid(1_000_000)
                };
                assert_eq!(back, keep, "{fmt}: {}", String::from_utf8_lossy(&out));
            }
        }
        let mut out = Vec::new();
        EngineDates::Epoch.write(1_452_933_000_000_468, true, &mut out);
        out.push(b' ');
        EngineDates::Epoch.write(1_452_933_000_000_468, false, &mut out);
        assert_eq!(out, b"1452933000000468 1452933000");
        for z in [-800_000i64, -1, 0, 59, 365, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
