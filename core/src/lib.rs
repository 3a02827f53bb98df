//! `carepath_core`: the engine step of carepath in Rust.
use pyo3::prelude::*;

#[pymodule]
fn carepath_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
