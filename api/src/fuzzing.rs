//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never in a shipped build).

/// Parses `bytes` as each JSON body the API takes. Returns, for each, `None` when it parsed, or the
/// status and code of the error the API would answer.
pub fn json_bodies(bytes: &[u8]) -> Vec<Option<(u16, &'static str)>> {
    crate::routes::parse_every_body(bytes).into_iter().map(|r| r.err().map(|e| (e.status().as_u16(), e.code()))).collect()
}
