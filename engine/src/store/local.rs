//! The local-filesystem blob store.
