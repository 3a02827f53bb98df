//! `carepath_core`: the engine step of carepath in Rust, behind the Python API of
//! `carepath.Engine(playbook, backend="native")`. The Python engine is the reference; this core
//! must give byte-identical steps (see `tests/test_native_diff.py`).

use pyo3::prelude::*;

pub mod calendar;
pub mod columns;
pub mod engine;
pub mod expr;
pub mod hashes;
pub mod lines;
pub mod state;
pub mod state_json;
pub mod value;

#[pymodule]
fn carepath_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::Scope>()?;
    calendar::register(m)?;
    columns::register(m)?;
    expr::register(m)?;
    hashes::register(m)?;
    lines::register(m)?;
    state_json::register(m)?;
    Ok(())
}
