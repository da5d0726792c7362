//! Times as sources write them: a compiled `dateformat` (ESP's strptime-like
//! conversions, esp-protocol.md §5.5), read to microseconds since 1970 and
//! written back, and the form a time goes to the engine in.

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
    pub(super) text: String,
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
    pub(super) fn matches(&self, v: &[u8], stamp: bool) -> bool {
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

/// The date (year, month, day) of a day since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): log lines and dates written for engines.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

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
        match self {
            EngineDates::Epoch if stamp => write_i64(micros, out),
            EngineDates::Epoch => write_i64(micros.div_euclid(1_000_000), out),
            EngineDates::Format(f) => f.format(micros, out),
        }
    }
}

/// `n` in decimal, as `write!(out, "{n}")` does, without the formatting
/// machinery (once per time field of every event).
pub fn write_i64(n: i64, out: &mut Vec<u8>) {
    if n < 0 {
        out.push(b'-');
    }
    let mut v = n.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
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
