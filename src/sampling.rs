//! Sampling parameters and the host side of GPU sampling.
