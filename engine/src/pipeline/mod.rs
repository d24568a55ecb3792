//! The pipeline format: parse, validate and expand `pipeline.toml` into a [`crate::plan::Plan`].
