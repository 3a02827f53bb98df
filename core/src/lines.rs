//! Sorting the lines of a JSONL event log into the report's worker shares, without decoding them
//! (`carepath.drivers.shard`): each worker reads the whole log and keeps the lines of its share.
//! A line's share is `crc32(case) % workers` when its bytes show its `case` plainly, as
//! `carepath.drivers.shard._case_in_bytes` reads it. A line without a case goes by its type and
//! id (`carepath.drivers.shard.share_of`) when its bytes show both plainly and the caller says
//! which types stay together; a line whose bytes do not place it is kept by every worker, which
//! decodes it to know.

use std::collections::HashSet;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

const CASE_KEY: &[u8] = b"\"case\"";
const ID_KEY: &[u8] = b"\"id\"";
const TYPE_KEY: &[u8] = b"\"type\"";
const AT_KEY: &[u8] = b"\"at\"";
/// The searchers of the keys, built once (memchr's vectorised substring search: every worker
/// scans every line of the log).
static CASE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(CASE_KEY));
static ID_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(ID_KEY));
static TYPE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(TYPE_KEY));
static AT_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(AT_KEY));
static ESCAPE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\\u"));

/// What a line's bytes say about its case: `None` when they do not show it plainly (decode to
/// know); `Some(None)` for no `"case"` at all, or one `"case"` key whose value is `null`;
/// `Some(Some(bytes))` for one `"case"` key whose value is a string without escapes. The same
/// reading of a case as `_case_in_bytes` (and its regular expression
/// `"case"[ \t]*:[ \t]*"([^"\\]*)"`), which leaves every line without one to be decoded.
pub fn case_in_bytes(line: &[u8]) -> Option<Option<&[u8]>> {
    plain_value(line, &CASE_FINDER, CASE_KEY.len())
}

/// [`case_in_bytes`] for any key (`finder` searches it quoted, `key_len` bytes): `None` when the
/// bytes do not show its value plainly, `Some(None)` when the key is absent or `null`,
/// `Some(Some(bytes))` for one such key whose value is a string without escapes.
fn plain_value<'a>(
    line: &'a [u8],
    finder: &Finder<'_>,
    key_len: usize,
) -> Option<Option<&'a [u8]>> {
    let mut found = None;
    let mut count = 0;
    let mut from = 0;
    while let Some(i) = finder.find(&line[from..]) {
        count += 1;
        if count > 1 {
            return None;
        }
        found = Some(from + i);
        from += i + 1;
    }
    let Some(at) = found else {
        return Some(None);
    };
    let rest = &line[at + key_len..];
    let rest = skip_blanks(rest);
    let rest = rest.strip_prefix(b":")?;
    let rest = skip_blanks(rest);
    if let Some(after) = rest.strip_prefix(b"null") {
        // `null`, then the end of the value: no case (a line that is not JSON fails to decode)
        return matches!(skip_blanks(after).first(), Some(b',' | b'}')).then_some(None);
    }
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    Some(Some(&rest[..end]))
}

fn skip_blanks(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

/// The share of a line: `Some(share)` when its bytes show its case, else `None` (see the
/// module; a line without a case goes by its decoded id and type).
pub fn share_of_line(line: &[u8], workers: u32) -> Option<u32> {
    let case = case_in_bytes(line)??;
    Some(crc32fast::hash(case) % workers)
}

/// The share of a line without a case, from its bytes: the first when its `type` (shown plainly)
/// is one of `together`, else `crc32(id) % workers` when its `id` is shown plainly; `None` when
/// the bytes do not tell (decode to know). As `carepath.drivers.shard.share_of` places the
/// decoded event: a plain string's bytes are its UTF-8 text.
pub fn caseless_share(line: &[u8], workers: u32, together: &HashSet<Vec<u8>>) -> Option<u32> {
    let kind = plain_value(line, &TYPE_FINDER, TYPE_KEY.len())??;
    if together.contains(kind) {
        return Some(0);
    }
    let id = plain_value(line, &ID_FINDER, ID_KEY.len())??;
    Some(crc32fast::hash(id) % workers)
}

/// Whether worker `me` of `workers` reads `line`: `Some(shown)` when it does (`shown`: its bytes
/// placed it in this share), `None` when the bytes place it in another share, or (with `only`)
/// show a case outside `only`, or no case (the what-if's reached cases all have one).
/// `together` (the types whose lines without a case stay in the first share): given, a line
/// without a case is placed by its type and id ([`caseless_share`]); not given, it is decoded.
pub fn kept(
    line: &[u8],
    me: u32,
    workers: u32,
    only: Option<&HashSet<Vec<u8>>>,
    together: Option<&HashSet<Vec<u8>>>,
) -> Option<bool> {
    let case = case_in_bytes(line);
    let unwanted = only.is_some_and(|set| !matches!(case, Some(Some(b)) if set.contains(b)));
    if unwanted && case.is_some() {
        return None; // another case, or none: not a reached case's line
    }
    let share = match case {
        None => return Some(false),
        Some(Some(case)) => crc32fast::hash(case) % workers,
        Some(None) => match together.and_then(|t| caseless_share(line, workers, t)) {
            Some(share) => share,
            None => return Some(false),
        },
    };
    (share == me).then_some(true)
}

/// The instant of a line, in POSIX seconds as `carepath.events` computes an event's `_ts`
/// (`round(datetime.fromisoformat(at).timestamp() * 1e6) / 1e6`), when the line is plain
/// enough for the decoder to skip its byte checks and the core to read its `at`: at most
/// `max_bytes` bytes, at most `max_depth` opening brackets, no `\u` escape, and one `"at"` key
/// whose value is a string `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)` of a valid date and time
/// within 2^53 microseconds of 1970 (years 1685 to 2255).
/// `None` otherwise: the decoder checks and reads the line itself.
pub fn plain_instant(line: &[u8], max_bytes: usize, max_depth: usize) -> Option<f64> {
    if line.len() > max_bytes || ESCAPE_FINDER.find(line).is_some() {
        return None;
    }
    if memchr::memchr2_iter(b'{', b'[', line).count() > max_depth {
        return None;
    }
    let at = plain_value(line, &AT_FINDER, AT_KEY.len())??;
    let us = iso_micros(at)?;
    // as Python: the microseconds over 10^6, times 10^6, rounded half to even, over 10^6. Python
    // divides the exact integers (one rounding); so does a double below 2^53 (years 1685 to
    // 2255); beyond, the decoder computes it
    if us.unsigned_abs() >= 1 << 53 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)] // |us| < 2^53: exact
    let seconds = us as f64 / 1e6;
    Some((seconds * 1e6).round_ties_even() / 1e6)
}

/// POSIX microseconds of `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)`, as `datetime.fromisoformat`
/// reads it (a shorter fraction is padded with zeros; the offset is below 24 hours); `None`
/// for any other text or an invalid date or time.
fn iso_micros(t: &[u8]) -> Option<i64> {
    fn num(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    }
    if t.len() < 20
        || t[4] != b'-'
        || t[7] != b'-'
        || t[10] != b'T'
        || t[13] != b':'
        || t[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(&t[0..4])?, num(&t[5..7])?, num(&t[8..10])?);
    let (hour, minute, second) = (num(&t[11..13])?, num(&t[14..16])?, num(&t[17..19])?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let ordinal = crate::value::ymd_to_ordinal(year, month, day)?;
    let mut rest = &t[19..];
    let mut micros = 0;
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=6).contains(&digits) {
            return None;
        }
        micros = num(&rest[1..=digits])? * 10i64.pow(6 - digits as u32);
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    // 719_163: the ordinal of 1970-01-01
    let seconds = (ordinal - 719_163) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(seconds * 1_000_000 + micros)
}

/// The whole lines of `block` (each ending with `\n`) that worker `me` of `workers` reads:
/// `(lines, count, consumed)` where `lines` holds `(index, shown, bytes)` for every line of its
/// share (`shown`: its bytes showed it) or that its bytes do not place (the newline included;
/// `index`: the line's position among the block's lines, from 0), `count` the lines consumed and
/// `consumed` their bytes. It stops before the first line longer than `limit` bytes without its
/// newline (the caller reads that one as the general reader does) and at the last newline.
/// `only` (a set of case keys as UTF-8 bytes): a line whose bytes show a case outside it, or
/// no case, is not this worker's either (the what-if reads the reached cases' lines again).
/// `together`: see [`kept`]. `plain` (`(max_bytes, max_depth)`): each kept line's tuple gets a
/// fourth item, its [`plain_instant`] (or `None`).
#[pyfunction]
#[pyo3(name = "_share_lines", signature = (block, me, workers, limit, only=None, together=None, plain=None))]
#[allow(clippy::too_many_arguments)]
pub fn share_lines<'py>(
    py: Python<'py>,
    block: &[u8],
    me: u32,
    workers: u32,
    limit: usize,
    only: Option<HashSet<Vec<u8>>>,
    together: Option<HashSet<Vec<u8>>>,
    plain: Option<(usize, usize)>,
) -> PyResult<(Bound<'py, PyList>, usize, usize)> {
    let out = PyList::empty(py);
    if workers == 0 {
        return Ok((out, 0, 0));
    }
    let mut start = 0;
    let mut index = 0;
    while start < block.len() {
        let Some(nl) = memchr::memchr(b'\n', &block[start..]) else {
            break;
        };
        let line = &block[start..start + nl + 1];
        if nl > limit {
            break;
        }
        if let Some(shown) = kept(line, me, workers, only.as_ref(), together.as_ref()) {
            let bytes = PyBytes::new(py, line);
            match plain {
                None => out.append((index, shown, bytes))?,
                Some((max_bytes, max_depth)) => {
                    let at = plain_instant(line, max_bytes, max_depth);
                    out.append((index, shown, bytes, at))?;
                }
            }
        }
        start += nl + 1;
        index += 1;
    }
    Ok((out, index, start))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(share_lines, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_cases_asked_for_are_kept() {
        let only: HashSet<Vec<u8>> = [b"a".to_vec()].into_iter().collect();
        let keep = |line: &str| kept(line.as_bytes(), 0, 1, Some(&only), None);
        assert_eq!(keep(r#"{"case":"a"}"#), Some(true));
        assert_eq!(keep(r#"{"case":"b"}"#), None);
        assert_eq!(keep(r#"{"id":"x"}"#), None); // no case: no reached case's line
        assert_eq!(keep(r#"{"id":"x","case":null}"#), None);
        assert_eq!(
            kept(br#"{"id":"x","case":null}"#, 0, 2, None, None),
            Some(false)
        ); // decoded
        assert_eq!(keep(r#"{"case":"\u0061"}"#), Some(false)); // decoded to know
        assert_eq!(kept(br#"{"case":"b"}"#, 0, 1, None, None), Some(true));
        let share = crc32fast::hash(b"a") % 2;
        assert_eq!(
            kept(br#"{"case":"a"}"#, 1 - share, 2, Some(&only), None),
            None
        );
    }

    #[test]
    fn the_case_is_read_only_when_plain() {
        let read = |s: &str| case_in_bytes(s.as_bytes()).map(|c| c.map(|b| b.to_vec()));
        assert_eq!(
            read(r#"{"id":"a","case":"T-1","data":{}}"#),
            Some(Some(b"T-1".to_vec()))
        );
        assert_eq!(
            read(r#"{"id":"a", "case" : "Đặng-1"}"#),
            Some(Some("Đặng-1".as_bytes().to_vec()))
        );
        assert_eq!(read(r#"{"id":"a","type":"case"}"#), None);
        assert_eq!(read(r#"{"id":"a"}"#), Some(None));
        assert_eq!(read(r#"{"case":"T\u002d1"}"#), None);
        assert_eq!(read(r#"{"case":"T-1","data":{"case":"T-2"}}"#), None);
        assert_eq!(read(r#"{"case":null}"#), Some(None));
        assert_eq!(read(r#"{"id":"a", "case" : null ,"data":{}}"#), Some(None));
        assert_eq!(read(r#"{"case":nullx}"#), None);
        assert_eq!(read(r#"{"case":null"#), None);
        assert_eq!(read(r#"{"case":"T-1"#), None);
        assert_eq!(read(r#"{"case""#), None);
        // two keys that share a quote are two: decoded to know
        assert_eq!(read(r#"{"case"case":"T-1"}"#), None);
    }

    #[test]
    fn the_share_is_zlib_s_crc32() {
        // zlib.crc32(b"T-0000001") == 0xFC2442D2 (as Python's zlib computes it)
        assert_eq!(crc32fast::hash(b"T-0000001"), 0xFC24_42D2);
        assert_eq!(
            share_of_line(br#"{"case":"T-0000001"}"#, 7),
            Some(0xFC24_42D2 % 7)
        );
        assert_eq!(share_of_line(br#"{"id":"x"}"#, 3), None); // no case: decoded to know
        assert_eq!(share_of_line(br#"{"case":1}"#, 3), None);
    }

    #[test]
    fn a_line_without_a_case_goes_by_its_type_and_id_when_plain() {
        let together: HashSet<Vec<u8>> = [b"agent.replied".to_vec()].into_iter().collect();
        let place = |s: &str| caseless_share(s.as_bytes(), 2, &together);
        // zlib.crc32(b"g-1") % 2, as Python's zlib computes it
        let by_id = crc32fast::hash(b"g-1") % 2;
        assert_eq!(
            place(r#"{"id":"g-1","type":"order.placed","case":null}"#),
            Some(by_id)
        );
        assert_eq!(place(r#"{"id":"g-1","type":"agent.replied"}"#), Some(0));
        // the type stays together whatever the id shows
        assert_eq!(
            place(r#"{"id":"g\u002d1","type":"agent.replied"}"#),
            Some(0)
        );
        assert_eq!(place(r#"{"id":"g\u002d1","type":"order.placed"}"#), None);
        assert_eq!(place(r#"{"id":"g-1","type":"order\u002eplaced"}"#), None);
        assert_eq!(
            place(r#"{"id":"g-1","type":"order.placed","data":{"id":"x"}}"#),
            None
        );
        assert_eq!(
            place(r#"{"id":"g-1","type":"order.placed","data":{"type":"x"}}"#),
            None
        );
        assert_eq!(place(r#"{"id":1,"type":"order.placed"}"#), None);
        assert_eq!(place(r#"{"type":"order.placed"}"#), None);
        assert_eq!(place(r#"{"id":"id","type":"order.placed"}"#), None); // two "id": decoded
        let line = br#"{"id":"g-1","type":"order.placed","case":null}"#;
        assert_eq!(kept(line, by_id, 2, None, Some(&together)), Some(true));
        assert_eq!(kept(line, 1 - by_id, 2, None, Some(&together)), None);
        assert_eq!(kept(line, 1 - by_id, 2, None, None), Some(false)); // decoded
        assert_eq!(kept(line, by_id, 2, Some(&together), Some(&together)), None);
        // only: no case
    }

    #[test]
    fn the_instant_is_read_as_python_reads_it() {
        let at = |s: &str| iso_micros(s.as_bytes());
        // datetime.fromisoformat("2026-11-01T00:16:30+07:00").timestamp() == 1793466990
        assert_eq!(at("2026-11-01T00:16:30+07:00"), Some(1_793_466_990_000_000));
        assert_eq!(at("2026-10-31T17:16:30Z"), Some(1_793_466_990_000_000));
        assert_eq!(
            at("2026-10-31T17:16:30.5-00:00"),
            Some(1_793_466_990_500_000)
        );
        assert_eq!(at("1970-01-01T00:00:00.000001Z"), Some(1));
        assert_eq!(at("1969-12-31T23:59:59-00:30"), Some(1_799_000_000));
        assert_eq!(at("2024-02-29T12:00:00Z"), Some(1_709_208_000_000_000));
        for bad in [
            "2023-02-29T12:00:00Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01T00:00:60Z",
            "2026-11-01T00:00:00",
            "2026-11-01T00:00:00+0700",
            "2026-11-01T00:00:00+24:00",
            "2026-11-01T00:00:00.1234567Z",
            "2026-11-01T00:00:00.Z",
            "2026-11-01 00:00:00Z",
            "2026-11-01T00:00:00z",
            "+026-11-01T00:00:00Z",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        let line = br#"{"id":"a","type":"t","at":"2026-11-01T00:16:30+07:00","case":"c"}"#;
        assert_eq!(plain_instant(line, 1000, 32), Some(1_793_466_990.0));
        assert_eq!(plain_instant(line, 10, 32), None); // too long
        assert_eq!(plain_instant(line, 1000, 0), None); // too deep
        let escaped = br#"{"id":"\u0061","at":"2026-11-01T00:16:30+07:00"}"#;
        assert_eq!(plain_instant(escaped, 1000, 32), None);
        let two = br#"{"at":"2026-11-01T00:16:30+07:00","data":{"at":"x"}}"#;
        assert_eq!(plain_instant(two, 1000, 32), None);
        let far = br#"{"at":"3112-01-01T00:00:00.0003+00:01"}"#; // beyond 2^53 µs
        assert_eq!(plain_instant(far, 1000, 32), None);
    }
}
