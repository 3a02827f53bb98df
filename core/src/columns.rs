//! Moving the columns of a replay's facts (`carepath.drivers.cycles.ClockFacts`): the items of a
//! fixed-size column (an `array.array`'s bytes) taken in a given order, as one copy. Sorting and
//! merging a million-event report's facts moves a dozen columns of 400,000 items; Python's
//! `itemgetter` builds an object per item to do it.

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The items of `data` (items of `itemsize` bytes) at `indexes`, in that order, as bytes.
/// Raises `ValueError` when `data` is not whole items, `IndexError` for an index out of range.
pub fn take(data: &[u8], itemsize: usize, indexes: &[usize]) -> Result<Vec<u8>, String> {
    if itemsize == 0 || !data.len().is_multiple_of(itemsize) {
        return Err(format!(
            "{} bytes are not whole items of {itemsize} bytes",
            data.len()
        ));
    }
    let n = data.len() / itemsize;
    let mut out = Vec::with_capacity(indexes.len() * itemsize);
    for &i in indexes {
        if i >= n {
            return Err(format!("index {i} out of range for {n} items"));
        }
        out.extend_from_slice(&data[i * itemsize..(i + 1) * itemsize]);
    }
    Ok(out)
}

#[pyfunction]
#[pyo3(name = "_take")]
fn take_py<'py>(
    py: Python<'py>,
    data: &[u8],
    itemsize: usize,
    indexes: Vec<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    match take(data, itemsize, &indexes) {
        Ok(out) => Ok(PyBytes::new(py, &out)),
        Err(msg) if msg.starts_with("index") => Err(PyIndexError::new_err(msg)),
        Err(msg) => Err(PyValueError::new_err(msg)),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(take_py, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_taken_in_order() {
        let data: Vec<u8> = (0u8..12).collect();
        assert_eq!(
            take(&data, 4, &[2, 0, 2]).unwrap(),
            vec![8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11]
        );
        assert_eq!(take(&data, 4, &[]).unwrap(), Vec::<u8>::new());
        assert!(take(&data, 4, &[3]).unwrap_err().starts_with("index"));
        assert!(take(&data, 5, &[0]).is_err());
        assert!(take(&data, 0, &[0]).is_err());
    }
}
