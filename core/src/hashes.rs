//! The event ids a sharded replay's workers met, as hashes (`carepath.drivers.shard`): a worker
//! sends the hashes of its half a million ids, the parent checks that no id is in two shares.
//! Python's `array("q", map(hash, ids))` makes an integer object of each hash, and the parent's
//! set of them another; here they stay 8-byte integers.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rustc_hash::FxHashSet;

/// Python's `hash` of each item of `items` (any iterable), as 8-byte integers in the machine's
/// order: the bytes of `array("q", map(hash, items))`.
#[pyfunction]
#[pyo3(name = "_hashes")]
fn hashes<'py>(py: Python<'py>, items: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(items.len().unwrap_or(0) * 8);
    for item in items.try_iter()? {
        let h = item?.hash()? as i64;
        out.extend_from_slice(&h.to_ne_bytes());
    }
    Ok(PyBytes::new(py, &out))
}

/// Whether no 8-byte integer is in two of `shares` (each the bytes of an `array("q")`; a value
/// twice in one share is no meeting). Raises `ValueError` for bytes that are not whole
/// integers.
#[pyfunction]
#[pyo3(name = "_disjoint")]
fn disjoint(shares: Vec<Bound<'_, PyBytes>>) -> PyResult<bool> {
    let shares: Vec<&[u8]> = shares.iter().map(|b| b.as_bytes()).collect();
    if shares.iter().any(|s| !s.len().is_multiple_of(8)) {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "the bytes are not whole 8-byte integers",
        ));
    }
    Ok(disjoint_values(&shares))
}

pub fn disjoint_values(shares: &[&[u8]]) -> bool {
    let total = shares.iter().map(|s| s.len()).sum::<usize>() / 8;
    let mut met: FxHashSet<i64> = FxHashSet::default();
    met.reserve(total);
    let values = |share: &[u8]| -> Vec<i64> {
        share
            .chunks_exact(8)
            .map(|c| i64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .collect()
    };
    for (i, share) in shares.iter().enumerate() {
        let share = values(share);
        if share.iter().any(|v| met.contains(v)) {
            return false; // met in an earlier share
        }
        if i + 1 < shares.len() {
            met.extend(share);
        }
    }
    true
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hashes, m)?)?;
    m.add_function(wrap_pyfunction!(disjoint, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    fn bytes(values: &[i64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    fn disjoint_values(shares: &[Vec<u8>]) -> bool {
        let shares: Vec<&[u8]> = shares.iter().map(Vec::as_slice).collect();
        super::disjoint_values(&shares)
    }

    #[test]
    fn shares_are_disjoint_when_no_value_is_in_two() {
        assert!(disjoint_values(&[
            bytes(&[1, 2]),
            bytes(&[3]),
            bytes(&[-4])
        ]));
        assert!(!disjoint_values(&[
            bytes(&[1, 2]),
            bytes(&[3]),
            bytes(&[2])
        ]));
        assert!(!disjoint_values(&[bytes(&[1, 2]), bytes(&[2, 3])]));
        assert!(!disjoint_values(&[bytes(&[5]), bytes(&[5]), bytes(&[])]));
        assert!(disjoint_values(&[]));
        assert!(disjoint_values(&[bytes(&[7])]));
        assert!(disjoint_values(&[bytes(&[7, 7]), bytes(&[8])])); // twice in one share
    }
}
