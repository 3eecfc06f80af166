//! Splitting tensors by rows so that no storage binding exceeds the device's limit.

use crate::error::{Error, Result};

/// A contiguous range of rows of a logical matrix, held in its own buffer(s).
#[derive(Debug)]
pub struct RowSlice {
    pub row_start: u32,
    pub row_end: u32,
    pub buffers: Vec<wgpu::Buffer>,
}

/// Row ranges of at most `max_bytes` per slice for a matrix of `rows` rows of `row_bytes` bytes.
/// Slice boundaries fall on multiples of `granule` rows (e.g. 2 keeps gate/up pairs together).
pub fn plan_slices(what: &str, rows: u64, row_bytes: u64, granule: u64, max_bytes: u64) -> Result<Vec<(u32, u32)>> {
    let unit = row_bytes.next_multiple_of(4) * granule;
    if unit > max_bytes {
        return Err(Error::tensor(
            what,
            format!("{granule} row(s) of {row_bytes} bytes exceed the storage binding limit of {max_bytes} bytes"),
        ));
    }
    let per_slice = (max_bytes / row_bytes.max(1)) / granule * granule;
    let per_slice = per_slice.max(granule);
    if rows > u32::MAX as u64 {
        return Err(Error::tensor(what, format!("{rows} rows is more than this runtime addresses")));
    }
    let mut out = Vec::new();
    let mut r = 0;
    while r < rows {
        let end = (r + per_slice).min(rows);
        out.push((r as u32, end as u32));
        r = end;
    }
    if out.is_empty() {
        out.push((0, 0));
    }
    Ok(out)
}

/// Rows `rows` of part `part` of a matrix stacked from parts by rows (q, k, v) land in slice
/// `slice`, from its row `at` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRows {
    pub slice: usize,
    pub part: usize,
    pub rows: std::ops::Range<u64>,
    pub at: u64,
}

/// Every overlap of parts of `part_rows` rows, stacked in order, with the slices of a matrix.
pub fn stacked_parts(slices: &[RowSlice], part_rows: &[u64]) -> Vec<PartRows> {
    let mut out = Vec::new();
    for (si, s) in slices.iter().enumerate() {
        let (r0, r1) = (s.row_start as u64, s.row_end as u64);
        let mut start = 0u64;
        for (part, &n) in part_rows.iter().enumerate() {
            let (a, b) = (r0.max(start), r1.min(start + n));
            if a < b {
                out.push(PartRows { slice: si, part, rows: a - start..b - start, at: a - r0 });
            }
            start += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_rows_within_limit() {
        let s = plan_slices("t", 201088, 5760, 1, 128 << 20).unwrap();
        assert_eq!(s.first().unwrap().0, 0);
        assert_eq!(s.last().unwrap().1, 201088);
        for w in s.windows(2) {
            assert_eq!(w[0].1, w[1].0);
        }
        for &(a, b) in &s {
            assert!((b - a) as u64 * 5760 <= 128 << 20);
        }
        assert_eq!(s.len(), 9);
    }

    #[test]
    fn granule_keeps_pairs_and_rejects_impossible_limits() {
        let s = plan_slices("t", 10, 100, 2, 450).unwrap();
        assert!(s.iter().all(|&(a, _)| a % 2 == 0));
        assert_eq!(s.last().unwrap().1, 10);
        assert!(plan_slices("t", 10, 100, 2, 150).is_err());
    }

    #[test]
    fn stacked_parts_cover_every_row_once() {
        let slices: Vec<RowSlice> =
            [(0, 5), (5, 9), (9, 12)].iter().map(|&(a, b)| RowSlice { row_start: a, row_end: b, buffers: vec![] }).collect();
        let got = stacked_parts(&slices, &[6, 3, 3]);
        let p = |slice, part, rows: std::ops::Range<u64>, at| PartRows { slice, part, rows, at };
        assert_eq!(got, vec![p(0, 0, 0..5, 0), p(1, 0, 5..6, 0), p(1, 1, 0..3, 1), p(2, 2, 0..3, 0)]);
    }
}
