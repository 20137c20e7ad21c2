//! This package holds the workspace's examples (`examples/`) and end-to-end tests (`tests/`); it has no library code of its own.
