//! The pipeline format: parse, validate and expand `pipeline.toml` into a [`crate::plan::Plan`].
//! (Placeholder on `main` until the pipeline branch lands.)

use std::path::Path;

use crate::plan::{Plan, Resources};

pub struct LoadOptions {
    pub capacity_override: Option<String>,
    pub check_plugins: bool,
}

#[derive(Debug)]
pub struct Diagnostics(pub String);

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Diagnostics {}

pub fn load(_path: &Path, _opts: &LoadOptions) -> Result<Plan, Diagnostics> {
    Err(Diagnostics("not implemented".into()))
}

pub fn parse_capacity_override(_s: &str) -> Result<Resources, String> {
    Err("not implemented".into())
}
