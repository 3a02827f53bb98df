//! Sorting the lines of a JSONL event log into the report's worker shares, without decoding them
//! (`carepath.drivers.shard`): each worker reads the whole log and keeps the lines of its share.
//! A line's share is `crc32(case) % workers` when its bytes show its `case` plainly, as
//! `carepath.drivers.shard._case_in_bytes` reads it; a line that does not show it (nor a line
//! without a case, whose share the decoded event decides) is kept by every worker, which decodes
//! it to know.

use std::collections::HashSet;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

const CASE_KEY: &[u8] = b"\"case\"";
/// The searcher of [`CASE_KEY`], built once (memchr's vectorised substring search: every worker
/// scans every line of the log).
static CASE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(CASE_KEY));

/// What a line's bytes say about its case: `None` when they do not show it plainly (decode to
/// know); `Some(None)` for no `"case"` at all, or one `"case"` key whose value is `null`;
/// `Some(Some(bytes))` for one `"case"` key whose value is a string without escapes. The same
/// reading of a case as `_case_in_bytes` (and its regular expression
/// `"case"[ \t]*:[ \t]*"([^"\\]*)"`), which leaves every line without one to be decoded.
pub fn case_in_bytes(line: &[u8]) -> Option<Option<&[u8]>> {
    let mut found = None;
    let mut count = 0;
    let mut from = 0;
    while let Some(i) = CASE_FINDER.find(&line[from..]) {
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
    let rest = &line[at + CASE_KEY.len()..];
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

/// Whether worker `me` of `workers` reads `line`: `Some(shown)` when it does (`shown`: its bytes
/// showed its case), `None` when the bytes show another share's case, or (with `only`) a case
/// outside `only`, or no case (the what-if's reached cases all have one).
pub fn kept(line: &[u8], me: u32, workers: u32, only: Option<&HashSet<Vec<u8>>>) -> Option<bool> {
    let unwanted =
        only.is_some_and(|set| !matches!(case_in_bytes(line), Some(Some(b)) if set.contains(b)));
    if unwanted && case_in_bytes(line).is_some() {
        return None; // another case, or none: not a reached case's line
    }
    let Some(share) = share_of_line(line, workers) else {
        return Some(false);
    };
    (share == me).then_some(true)
}

/// The whole lines of `block` (each ending with `\n`) that worker `me` of `workers` reads:
/// `(lines, count, consumed)` where `lines` holds `(index, shown, bytes)` for every line of its
/// share (`shown`: its bytes showed it) or that its bytes do not place (the newline included;
/// `index`: the line's position among the block's lines, from 0), `count` the lines consumed and
/// `consumed` their bytes. It stops before the first line longer than `limit` bytes without its
/// newline (the caller reads that one as the general reader does) and at the last newline.
/// `only` (a set of case keys as UTF-8 bytes): a line whose bytes show a case outside it, or
/// no case, is not this worker's either (the what-if reads the reached cases' lines again).
#[pyfunction]
#[pyo3(name = "_share_lines", signature = (block, me, workers, limit, only=None))]
pub fn share_lines<'py>(
    py: Python<'py>,
    block: &[u8],
    me: u32,
    workers: u32,
    limit: usize,
    only: Option<HashSet<Vec<u8>>>,
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
        if let Some(shown) = kept(line, me, workers, only.as_ref()) {
            out.append((index, shown, PyBytes::new(py, line)))?;
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
        let keep = |line: &str| kept(line.as_bytes(), 0, 1, Some(&only));
        assert_eq!(keep(r#"{"case":"a"}"#), Some(true));
        assert_eq!(keep(r#"{"case":"b"}"#), None);
        assert_eq!(keep(r#"{"id":"x"}"#), None); // no case: no reached case's line
        assert_eq!(keep(r#"{"id":"x","case":null}"#), None);
        assert_eq!(kept(br#"{"id":"x","case":null}"#, 0, 2, None), Some(false)); // decoded
        assert_eq!(keep(r#"{"case":"\u0061"}"#), Some(false)); // decoded to know
        assert_eq!(kept(br#"{"case":"b"}"#, 0, 1, None), Some(true));
        let share = crc32fast::hash(b"a") % 2;
        assert_eq!(kept(br#"{"case":"a"}"#, 1 - share, 2, Some(&only)), None);
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
}
