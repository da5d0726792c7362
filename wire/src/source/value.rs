//! Field values checked against their ESP type (esp-protocol.md §5.1, §5.5),
//! without allocating: the text is kept as the source gave it (numbers
//! trimmed of padding), and only judged here.

use crate::schema::FieldType;

pub use super::dates::{
    civil_from_days, days_from_civil, write_i64, DateFormat, EngineDates, DATE_CONVERSIONS,
};

/// Whether a type's text is trimmed of surrounding spaces (numbers and
/// times: ESP's own CSV writer pads them, e.g. `I,N, 10.000000`).
pub fn trims(ty: FieldType) -> bool {
    !matches!(ty, FieldType::String | FieldType::Rstring | FieldType::Blob)
}

/// Checks one non-null value. `Err` says what was expected; the caller adds
/// where.
pub fn check(ty: FieldType, v: &[u8], dates: Option<&DateFormat>) -> Result<(), String> {
    let ok = match ty {
        FieldType::Int32 => integer(v, i32::MIN.into(), i32::MAX.into()),
        FieldType::Int64 => integer(v, i64::MIN, i64::MAX),
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

/// Whether `v` is an integer in `min..=max` as `str::parse` reads one (a
/// sign, then one digit or more), without the UTF-8 check and the parser's
/// generality (every integer field of every event).
fn integer(v: &[u8], min: i64, max: i64) -> bool {
    let (negative, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() {
        return false;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return false;
        }
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
        {
            Some(n) => n,
            None => return false,
        };
    }
    if negative {
        n <= min.unsigned_abs()
    } else {
        n <= max as u64
    }
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

    proptest::proptest! {
        #[test]
        fn integers_are_written_as_format_writes_them(n in proptest::num::i64::ANY) {
            let mut out = b"x".to_vec();
            write_i64(n, &mut out);
            proptest::prop_assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    proptest::proptest! {
        #[test]
        fn integers_are_checked_as_the_parser_reads_them(v in "[-+]?[0-9a ]{0,21}") {
            let b = v.as_bytes();
            proptest::prop_assert_eq!(check(FieldType::Int32, b, None).is_ok(), v.parse::<i32>().is_ok());
            proptest::prop_assert_eq!(check(FieldType::Int64, b, None).is_ok(), v.parse::<i64>().is_ok());
        }
    }

    #[test]
    fn integers_at_the_ends_are_written_whole() {
        for n in [0, -1, 9, 10, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_i64(n, &mut out);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

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
        assert!(check(FieldType::Int64, b"-9223372036854775808", None).is_ok());
        assert!(check(FieldType::Int64, b"9223372036854775808", None).is_err());
        assert!(check(FieldType::Int64, b"-9223372036854775809", None).is_err());
        assert!(check(FieldType::Int32, b"-2147483649", None).is_err());
        assert!(check(FieldType::Int32, b"+", None).is_err());
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
