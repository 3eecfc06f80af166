//! The harmony chat format of gpt-oss.
