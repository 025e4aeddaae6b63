//! Frame selections: Renderjuice `frameRanges` strings and the set of frames they name.

use std::collections::BTreeSet;

/// Blender's frame limit (`MAXFRAME`).
pub const MAX_FRAME: i64 = 1_048_574;
/// Most frames one job may render; a typo like `1-9999999` should be an error, not a million tasks.
pub const MAX_FRAMES_PER_JOB: usize = 100_000;
/// Most range strings in one selection.
pub const MAX_RANGES: usize = 1_000;

/// A sorted set of distinct frame numbers, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSet(Vec<i32>);

/// Why a frame range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not `N`, `A-B` or `A-BxS`.
    #[error("{0:?} is not a frame range: use \"7\", \"1-250\" or \"1-250x5\"")]
    Syntax(String),
    /// `A-B` with `A > B`.
    #[error("{0:?} is reversed: the first frame must not be after the last")]
    Reversed(String),
    /// A step of zero.
    #[error("{0:?} has a step of 0: the step must be at least 1")]
    ZeroStep(String),
    /// Outside Blender's frame limits.
    #[error("{0:?} is outside Blender's frame limits (-{MAX_FRAME}..={MAX_FRAME})")]
    OutOfRange(String),
    /// No frames at all.
    #[error("no frames selected")]
    Empty,
    /// More frames than one job may hold.
    #[error("{0} frames selected; one job renders at most {MAX_FRAMES_PER_JOB}")]
    TooMany(usize),
    /// More range strings than one selection may hold.
    #[error("{0} ranges given; at most {MAX_RANGES}")]
    TooManyRanges(usize),
}

impl FrameSet {
    /// Parses a union of range strings.
    pub fn parse<S: AsRef<str>>(ranges: &[S]) -> Result<FrameSet, FrameError> {
        if ranges.len() > MAX_RANGES {
            return Err(FrameError::TooManyRanges(ranges.len()));
        }
        let mut frames = BTreeSet::new();
        // Overlapping ranges repeat frames: bound the work by what was walked, not only by
        // what was kept.
        let mut walked = 0usize;
        for range in ranges {
            let (start, end, step) = parse_one(range.as_ref())?;
            let mut frame = start;
            while frame <= end {
                frames.insert(frame as i32);
                walked += 1;
                if frames.len() > MAX_FRAMES_PER_JOB || walked > 4 * MAX_FRAMES_PER_JOB {
                    return Err(FrameError::TooMany(frames.len().max(walked)));
                }
                // Steps are at most 2 × MAX_FRAME (checked in parse_one): no overflow.
                frame += step;
            }
        }
        if frames.is_empty() {
            return Err(FrameError::Empty);
        }
        Ok(FrameSet(frames.into_iter().collect()))
    }

    /// `start..=end` every `step` frames, as a scene's own range is.
    pub fn from_scene_range(start: i32, end: i32, step: i32) -> Result<FrameSet, FrameError> {
        FrameSet::parse(&[format!("{start}-{end}x{}", step.max(1))])
    }

    /// Builds a set from frames already known to be valid, such as a stored task's.
    pub fn from_frames(frames: impl IntoIterator<Item = i32>) -> Result<FrameSet, FrameError> {
        let set: BTreeSet<i32> = frames.into_iter().collect();
        if set.is_empty() {
            return Err(FrameError::Empty);
        }
        Ok(FrameSet(set.into_iter().collect()))
    }

    /// The frames, ascending.
    pub fn frames(&self) -> &[i32] {
        &self.0
    }

    /// How many frames.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `FrameSet` is never empty. Present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Splits into consecutive chunks of at most `chunk_size` frames, in order.
    pub fn chunks(&self, chunk_size: usize) -> Vec<FrameSet> {
        self.0.chunks(chunk_size.max(1)).map(|it| FrameSet(it.to_vec())).collect()
    }

    /// The shortest range strings that name exactly these frames (`["1-3", "7"]`).
    pub fn to_ranges(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut idx = 0;
        while idx < self.0.len() {
            let start = self.0[idx];
            let mut end_idx = idx;
            while end_idx + 1 < self.0.len() && self.0[end_idx + 1] == self.0[end_idx] + 1 {
                end_idx += 1;
            }
            let end = self.0[end_idx];
            out.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
            idx = end_idx + 1;
        }
        out
    }
}

fn parse_one(text: &str) -> Result<(i64, i64, i64), FrameError> {
    let syntax = || FrameError::Syntax(text.to_string());
    let trimmed = text.trim();
    let (span, step) = match trimmed.split_once(['x', 'X']) {
        Some((span, step)) => (span, Some(step)),
        None => (trimmed, None),
    };
    let step: i64 = match step {
        Some(step) => step.trim().parse().map_err(|_| syntax())?,
        None => 1,
    };
    // A leading '-' is a negative frame, not a separator.
    let (start, end) = match span.char_indices().skip(1).find(|(_, c)| *c == '-') {
        Some((idx, _)) => (&span[..idx], &span[idx + 1..]),
        None => (span, span),
    };
    let start: i64 = start.trim().parse().map_err(|_| syntax())?;
    let end: i64 = end.trim().parse().map_err(|_| syntax())?;
    if step == 0 {
        return Err(FrameError::ZeroStep(text.to_string()));
    }
    if step < 0 {
        return Err(syntax());
    }
    if step > 2 * MAX_FRAME {
        return Err(FrameError::OutOfRange(text.to_string()));
    }
    if start.abs() > MAX_FRAME || end.abs() > MAX_FRAME {
        return Err(FrameError::OutOfRange(text.to_string()));
    }
    if start > end {
        return Err(FrameError::Reversed(text.to_string()));
    }
    Ok((start, end, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_documented() {
        let cases: &[(&[&str], &[i32])] = &[
            (&["7"], &[7]),
            (&["1-3"], &[1, 2, 3]),
            (&["1-10x4"], &[1, 5, 9]),
            (&["5", "1-2", "2-3"], &[1, 2, 3, 5]),
            (&["-2--1"], &[-2, -1]),
            (&[" 4 - 5 "], &[4, 5]),
        ];
        for (input, expected) in cases {
            let set = FrameSet::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(set.frames(), *expected, "{input:?}");
        }
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        let cases: &[(&[&str], FrameError)] = &[
            (&[], FrameError::Empty),
            (&["3-1"], FrameError::Reversed("3-1".into())),
            (&["1-5x0"], FrameError::ZeroStep("1-5x0".into())),
            (&["a-b"], FrameError::Syntax("a-b".into())),
            (&[""], FrameError::Syntax("".into())),
            (&["1-2000000"], FrameError::OutOfRange("1-2000000".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(FrameSet::parse(input).unwrap_err(), *expected, "{input:?}");
        }
        assert!(matches!(FrameSet::parse(&["0-200000"]), Err(FrameError::TooMany(_))));
        assert_eq!(
            FrameSet::parse(&["1-10x9223372036854775807"]).unwrap_err(),
            FrameError::OutOfRange("1-10x9223372036854775807".into())
        );
        let repeated = vec!["1-99999"; 50];
        assert!(matches!(FrameSet::parse(&repeated), Err(FrameError::TooMany(_))), "repeats cost work too");
        let many = vec!["1"; 1001];
        assert_eq!(FrameSet::parse(&many).unwrap_err(), FrameError::TooManyRanges(1001));
    }

    #[test]
    fn chunks_and_ranges_cover_every_frame_once() {
        let set = FrameSet::parse(&["1-5", "9"]).unwrap();
        let chunks = set.chunks(2);
        let flat: Vec<i32> = chunks.iter().flat_map(|c| c.frames().to_vec()).collect();
        assert_eq!(flat, set.frames());
        assert_eq!(set.to_ranges(), vec!["1-5", "9"]);
    }
}
