//! Output checks: a task counts as done only when every frame exists, decodes, and has the
//! size the config asks for. Blender exits 0 with missing textures or libraries, so its exit
//! status alone proves little.

use std::path::Path;

/// Why an output was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutputError {
    /// No file where Blender said it wrote one.
    #[error("frame {frame}: no output file at {path}")]
    Missing {
        /// The frame.
        frame: i32,
        /// Where it should be.
        path: String,
    },
    /// Empty file.
    #[error("frame {frame}: output file {path} is empty")]
    Empty {
        /// The frame.
        frame: i32,
        /// The file.
        path: String,
    },
    /// The image does not decode.
    #[error("frame {frame}: output {path} does not decode: {reason}")]
    Undecodable {
        /// The frame.
        frame: i32,
        /// The file.
        path: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// Decodes, but with other dimensions than configured.
    #[error("frame {frame}: output is {actual_w}×{actual_h}, expected {expected_w}×{expected_h}")]
    WrongSize {
        /// The frame.
        frame: i32,
        /// Width found.
        actual_w: u32,
        /// Height found.
        actual_h: u32,
        /// Width expected.
        expected_w: u32,
        /// Height expected.
        expected_h: u32,
    },
}

/// Checks one output file. PNG and JPEG are fully decoded, and their size compared with
/// `expected` when given (a border crop has no fixed size); other formats (EXR, TIFF, …) are
/// checked for presence and length only, as the worker carries no decoder for them.
pub fn check_frame(frame: i32, path: &Path, expected: Option<(u32, u32)>) -> Result<Checked, OutputError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|_| OutputError::Missing { frame, path: shown.clone() })?;
    if meta.len() == 0 {
        return Err(OutputError::Empty { frame, path: shown });
    }
    let ext = path.extension().and_then(|it| it.to_str()).unwrap_or("").to_ascii_lowercase();
    if !matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
        return Ok(Checked { blank: false });
    }
    let image =
        image::open(path).map_err(|e| OutputError::Undecodable { frame, path: shown, reason: e.to_string() })?;
    let (actual_w, actual_h) = (image.width(), image.height());
    if let Some((expected_w, expected_h)) = expected
        && (actual_w, actual_h) != (expected_w, expected_h)
    {
        return Err(OutputError::WrongSize { frame, actual_w, actual_h, expected_w, expected_h });
    }
    Ok(Checked { blank: is_one_colour(&image) })
}

/// What a check found beyond "it is a good frame".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Every pixel is the same colour: a camera in the void, a missing light, a hidden object.
    pub blank: bool,
}

/// Steps of 8-bit colour two pixels may differ by and still be "the same colour": Blender
/// dithers what it writes (±1 step by default), so a flat render is not bit-for-bit flat.
const BLANK_TOLERANCE: u8 = 2;

/// Whether every pixel of `image` is the same colour, within [`BLANK_TOLERANCE`].
fn is_one_colour(image: &image::DynamicImage) -> bool {
    let pixels = image.to_rgba8();
    let mut all = pixels.pixels();
    let Some(first) = all.next() else { return false };
    all.all(|pixel| pixel.0.iter().zip(first.0).all(|(a, b)| a.abs_diff(b) <= BLANK_TOLERANCE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_checked_for_presence_decoding_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("0001.png");
        let mut picture = image::RgbaImage::new(64, 48);
        picture.put_pixel(3, 4, image::Rgba([255, 0, 0, 255]));
        picture.save(&good).unwrap();
        assert_eq!(check_frame(1, &good, Some((64, 48))), Ok(Checked { blank: false }));
        let blank = dir.path().join("0009.png");
        image::RgbaImage::from_pixel(64, 48, image::Rgba([10, 20, 30, 255])).save(&blank).unwrap();
        assert_eq!(check_frame(9, &blank, Some((64, 48))), Ok(Checked { blank: true }), "one colour");
        let mut dithered = image::RgbaImage::from_pixel(64, 48, image::Rgba([255, 0, 0, 255]));
        dithered.put_pixel(5, 5, image::Rgba([255, 1, 1, 255]));
        let noisy = dir.path().join("0010.png");
        dithered.save(&noisy).unwrap();
        assert_eq!(check_frame(10, &noisy, None), Ok(Checked { blank: true }), "Blender's dither is no picture");
        assert!(matches!(check_frame(1, &good, Some((32, 24))), Err(OutputError::WrongSize { .. })));
        assert!(matches!(
            check_frame(2, &dir.path().join("0002.png"), Some((64, 48))),
            Err(OutputError::Missing { .. })
        ));
        let empty = dir.path().join("0003.png");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(check_frame(3, &empty, Some((64, 48))), Err(OutputError::Empty { .. })));
        let truncated = dir.path().join("0004.png");
        let bytes = std::fs::read(&good).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(check_frame(4, &truncated, Some((64, 48))), Err(OutputError::Undecodable { .. })));
    }
}
