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

/// Checks one output file. PNG, JPEG and OpenEXR (every layer and channel) are fully decoded,
/// and their size compared with `expected` when given (a border crop has no fixed size); EXR
/// samples that are NaN or infinite are counted. Other formats (TIFF, …) are checked for
/// presence and length only, as the worker carries no decoder for them.
pub fn check_frame(frame: i32, path: &Path, expected: Option<(u32, u32)>) -> Result<Checked, OutputError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|_| OutputError::Missing { frame, path: shown.clone() })?;
    if meta.len() == 0 {
        return Err(OutputError::Empty { frame, path: shown });
    }
    let ext = path.extension().and_then(|it| it.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext == "exr" {
        return check_exr(frame, path, expected);
    }
    if !matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
        return Ok(Checked::default());
    }
    let image =
        image::open(path).map_err(|e| OutputError::Undecodable { frame, path: shown, reason: e.to_string() })?;
    let (actual_w, actual_h) = (image.width(), image.height());
    if let Some((expected_w, expected_h)) = expected
        && (actual_w, actual_h) != (expected_w, expected_h)
    {
        return Err(OutputError::WrongSize { frame, actual_w, actual_h, expected_w, expected_h });
    }
    Ok(Checked { blank: is_one_colour(&image), non_finite: 0 })
}

/// An OpenEXR frame (single or multilayer): every layer decodes, the first has the expected
/// size, NaN and infinite samples are counted (a shader dividing by zero, a broken normal:
/// they poison every composite and filter downstream), and a first layer whose every channel
/// holds one value is blank.
fn check_exr(frame: i32, path: &Path, expected: Option<(u32, u32)>) -> Result<Checked, OutputError> {
    use exr::prelude::{FlatSamples, ReadChannels as _, ReadLayers as _, read};
    let shown = path.display().to_string();
    let image = read()
        .no_deep_data()
        .largest_resolution_level()
        .all_channels()
        .all_layers()
        .all_attributes()
        .non_parallel()
        .from_file(path)
        .map_err(|e| OutputError::Undecodable { frame, path: shown.clone(), reason: e.to_string() })?;
    let Some(first) = image.layer_data.first() else {
        return Err(OutputError::Undecodable { frame, path: shown, reason: "no layer".into() });
    };
    let (actual_w, actual_h) = (first.size.width() as u32, first.size.height() as u32);
    if let Some((expected_w, expected_h)) = expected
        && (actual_w, actual_h) != (expected_w, expected_h)
    {
        return Err(OutputError::WrongSize { frame, actual_w, actual_h, expected_w, expected_h });
    }
    let mut non_finite = 0u64;
    for layer in &image.layer_data {
        for channel in &layer.channel_data.list {
            non_finite += match &channel.sample_data {
                FlatSamples::F16(samples) => samples.iter().filter(|it| !it.is_finite()).count(),
                FlatSamples::F32(samples) => samples.iter().filter(|it| !it.is_finite()).count(),
                FlatSamples::U32(_) => 0,
            } as u64;
        }
    }
    let constant = |samples: &FlatSamples| match samples {
        FlatSamples::F16(it) => it.windows(2).all(|pair| pair[0].to_bits() == pair[1].to_bits()),
        FlatSamples::F32(it) => it.windows(2).all(|pair| pair[0].to_bits() == pair[1].to_bits()),
        FlatSamples::U32(it) => it.windows(2).all(|pair| pair[0] == pair[1]),
    };
    let blank = first.channel_data.list.iter().all(|it| constant(&it.sample_data));
    Ok(Checked { blank, non_finite })
}

/// What a check found beyond "it is a good frame".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Every pixel is the same colour: a camera in the void, a missing light, a hidden object.
    pub blank: bool,
    /// Samples that are NaN or infinite (EXR).
    pub non_finite: u64,
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
        assert_eq!(check_frame(1, &good, Some((64, 48))), Ok(Checked::default()));
        let blank = dir.path().join("0009.png");
        image::RgbaImage::from_pixel(64, 48, image::Rgba([10, 20, 30, 255])).save(&blank).unwrap();
        assert_eq!(check_frame(9, &blank, Some((64, 48))), Ok(Checked { blank: true, non_finite: 0 }), "one colour");
        let mut dithered = image::RgbaImage::from_pixel(64, 48, image::Rgba([255, 0, 0, 255]));
        dithered.put_pixel(5, 5, image::Rgba([255, 1, 1, 255]));
        let noisy = dir.path().join("0010.png");
        dithered.save(&noisy).unwrap();
        assert_eq!(
            check_frame(10, &noisy, None),
            Ok(Checked { blank: true, non_finite: 0 }),
            "Blender's dither is no picture"
        );
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

    #[test]
    fn exr_frames_are_decoded_sized_and_searched_for_nan_and_infinity() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bad: f32| {
            let path = dir.path().join(name);
            exr::prelude::write_rgba_file(&path, 64, 48, |x, y| {
                let value = if (x, y) == (3, 4) { bad } else { x as f32 / 64.0 };
                (value, 0.25_f32, 0.5_f32, 1.0_f32)
            })
            .unwrap();
            path
        };
        let good = write("0001.exr", 0.75);
        assert_eq!(check_frame(1, &good, Some((64, 48))), Ok(Checked::default()));
        assert!(matches!(check_frame(1, &good, Some((32, 24))), Err(OutputError::WrongSize { .. })));
        let nan = write("0002.exr", f32::NAN);
        assert_eq!(check_frame(2, &nan, Some((64, 48))), Ok(Checked { blank: false, non_finite: 1 }));
        let infinite = write("0003.exr", f32::INFINITY);
        assert_eq!(check_frame(3, &infinite, None).map(|it| it.non_finite), Ok(1));
        let flat = dir.path().join("0004.exr");
        exr::prelude::write_rgba_file(&flat, 64, 48, |_, _| (0.1_f32, 0.1_f32, 0.1_f32, 1.0_f32)).unwrap();
        assert_eq!(check_frame(4, &flat, None), Ok(Checked { blank: true, non_finite: 0 }));
        let truncated = dir.path().join("0005.exr");
        let bytes = std::fs::read(&good).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(check_frame(5, &truncated, None), Err(OutputError::Undecodable { .. })));
    }
}
