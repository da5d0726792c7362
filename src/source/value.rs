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
                Item::Year4 => number(v, &mut i, 4, 4, 0, 9999),
                Item::Year2 => number(v, &mut i, 2, 2, 0, 99),
                Item::Month => number(v, &mut i, 1, 2, 1, 12),
                Item::Day => {
                    // `%e` pads with a space.
                    if v.get(i) == Some(&b' ') {
                        i += 1;
                    }
                    number(v, &mut i, 1, 2, 1, 31)
                }
                Item::DayOfYear => number(v, &mut i, 1, 3, 1, 366),
                Item::Hour24 => number(v, &mut i, 1, 2, 0, 23),
                Item::Hour12 => number(v, &mut i, 1, 2, 1, 12),
                Item::Minute => number(v, &mut i, 1, 2, 0, 59),
                Item::Second => {
                    // 60: a leap second.
                    let ok = number(v, &mut i, 1, 2, 0, 60);
                    if ok && after_seconds_fraction && v.get(i) == Some(&b'.') {
                        i += 1;
                        after_seconds_fraction = false;
                        if !number(v, &mut i, 1, 9, 0, u32::MAX) {
                            return false;
                        }
                    }
                    ok
                }
                Item::Fraction => number(v, &mut i, 1, 9, 0, u32::MAX),
                Item::AmPm => {
                    let ok = v.len() >= i + 2
                        && (v[i..i + 2].eq_ignore_ascii_case(b"am")
                            || v[i..i + 2].eq_ignore_ascii_case(b"pm"));
                    i += 2;
                    ok
                }
                Item::MonthName => {
                    let rest = &v[i.min(v.len())..];
                    let found = MONTHS.iter().find_map(|m| {
                        let m = m.as_bytes();
                        if rest.len() >= m.len() && rest[..m.len()].eq_ignore_ascii_case(m) {
                            Some(m.len())
                        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(&m[..3]) {
                            Some(3)
                        } else {
                            None
                        }
                    });
                    i += found.unwrap_or(0);
                    found.is_some()
                }
            };
            if !ok || i > v.len() {
                return false;
            }
        }
        i == v.len()
    }
}

/// Reads `min..=max` digits at `*i` whose value is in `lo..=hi`.
fn number(v: &[u8], i: &mut usize, min: usize, max: usize, lo: u32, hi: u32) -> bool {
    let start = *i;
    let mut n: u64 = 0;
    while *i < v.len() && *i - start < max && v[*i].is_ascii_digit() {
        n = n * 10 + u64::from(v[*i] - b'0');
        *i += 1;
    }
    let len = *i - start;
    len >= min && n >= u64::from(lo) && n <= u64::from(hi)
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
}
