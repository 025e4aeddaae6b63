//! The contact sheet: one PNG of every frame's thumbnail in a grid, each labelled with its frame
//! number, for dailies and for the dashboard. Made when a job finalizes, reading the stored
//! frames one at a time (PNG and JPEG; other formats have no decoder here): only thumbnails
//! are held.

use std::path::Path;

use image::{Rgba, RgbaImage};

/// Width of each thumbnail (height from the frames' aspect).
const CELL_WIDTH: u32 = 160;
/// Most columns.
const MAX_COLUMNS: u32 = 10;
/// Most frames on one sheet: a longer job shows every n-th frame.
pub(crate) const MAX_FRAMES: usize = 400;
/// Pixels around and between cells.
const GAP: u32 = 4;
/// Scale of the 3×5 digit glyphs.
const GLYPH_SCALE: u32 = 2;
/// Height of the label under each cell.
const LABEL: u32 = 5 * GLYPH_SCALE + 4;
const BACKGROUND: Rgba<u8> = Rgba([24, 24, 24, 255]);
const INK: Rgba<u8> = Rgba([230, 230, 230, 255]);

/// What a sheet shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sheet {
    /// Frames on it.
    pub(crate) frames: usize,
    /// Its columns.
    pub(crate) columns: u32,
}

/// Writes the contact sheet of `frames` (frame number, file name) to `out` as a PNG, reading
/// the bytes of the `i`th frame with `load(i)` for those it shows; `None` when no frame
/// decodes here.
pub(crate) fn write(
    frames: &[(i32, &str)],
    mut load: impl FnMut(usize) -> anyhow::Result<Vec<u8>>,
    out: &Path,
) -> anyhow::Result<Option<Sheet>> {
    let decodable: Vec<usize> = (0..frames.len())
        .filter(|index| {
            let name = frames[*index].1;
            let ext = name.rsplit_once('.').map(|(_, it)| it.to_ascii_lowercase()).unwrap_or_default();
            matches!(ext.as_str(), "png" | "jpg" | "jpeg")
        })
        .collect();
    if decodable.is_empty() {
        return Ok(None);
    }
    let step = decodable.len().div_ceil(MAX_FRAMES);
    let shown: Vec<usize> = decodable.into_iter().step_by(step).collect();
    let mut cells = Vec::with_capacity(shown.len());
    for index in shown {
        let frame = frames[index].0;
        let image = image::load_from_memory(&load(index)?)?;
        let height = (u64::from(CELL_WIDTH) * u64::from(image.height()) / u64::from(image.width().max(1))).max(1);
        let thumb = image.thumbnail_exact(CELL_WIDTH, height.min(u64::from(CELL_WIDTH) * 4) as u32).to_rgba8();
        cells.push((frame, thumb));
    }
    let cell_height = cells.iter().map(|(_, it)| it.height()).max().unwrap_or(1);
    let columns = (cells.len() as f64).sqrt().ceil().clamp(1.0, f64::from(MAX_COLUMNS)) as u32;
    let rows = (cells.len() as u32).div_ceil(columns);
    let width = GAP + columns * (CELL_WIDTH + GAP);
    let height = GAP + rows * (cell_height + LABEL + GAP);
    let mut sheet = RgbaImage::from_pixel(width, height, BACKGROUND);
    for (index, (frame, thumb)) in cells.iter().enumerate() {
        let (column, row) = (index as u32 % columns, index as u32 / columns);
        let x = GAP + column * (CELL_WIDTH + GAP);
        let y = GAP + row * (cell_height + LABEL + GAP);
        image::imageops::overlay(&mut sheet, thumb, i64::from(x), i64::from(y));
        draw_number(&mut sheet, *frame, x, y + cell_height + 2);
    }
    sheet.save_with_format(out, image::ImageFormat::Png)?;
    Ok(Some(Sheet { frames: cells.len(), columns }))
}

/// 3×5 glyphs of `0`–`9` and `-`, a row per 3 bits.
fn glyph(character: char) -> Option<[u8; 5]> {
    Some(match character {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        _ => return None,
    })
}

/// Draws `number` with its top left at (`x`, `y`).
fn draw_number(sheet: &mut RgbaImage, number: i32, x: u32, y: u32) {
    for (index, character) in number.to_string().chars().enumerate() {
        let Some(rows) = glyph(character) else { continue };
        let left = x + index as u32 * 4 * GLYPH_SCALE;
        for (row, bits) in rows.iter().enumerate() {
            for column in 0..3 {
                if bits & (0b100 >> column) == 0 {
                    continue;
                }
                for dy in 0..GLYPH_SCALE {
                    for dx in 0..GLYPH_SCALE {
                        let (px, py) = (left + column * GLYPH_SCALE + dx, y + row as u32 * GLYPH_SCALE + dy);
                        if px < sheet.width() && py < sheet.height() {
                            sheet.put_pixel(px, py, INK);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_gets_a_labelled_cell() {
        let dir = tempfile::tempdir().unwrap();
        let mut frames = Vec::new();
        for frame in 1..=5 {
            let path = dir.path().join(format!("{frame}.png"));
            RgbaImage::from_pixel(320, 180, Rgba([200, 0, 0, 255])).save(&path).unwrap();
            frames.push((frame, path));
        }
        let exr = dir.path().join("6.exr");
        std::fs::write(&exr, b"v/1\x01").unwrap();
        frames.push((6, exr));
        let names: Vec<String> = frames.iter().map(|(_, path)| path.display().to_string()).collect();
        let listed: Vec<(i32, &str)> =
            frames.iter().zip(&names).map(|((frame, _), name)| (*frame, name.as_str())).collect();
        let out = dir.path().join("sheet.png");
        let mut loaded = Vec::new();
        let load = |index: usize| -> anyhow::Result<Vec<u8>> { Ok(std::fs::read(&frames[index].1)?) };
        let sheet = write(
            &listed,
            |index| {
                loaded.push(index);
                load(index)
            },
            &out,
        )
        .unwrap()
        .expect("a sheet");
        assert_eq!(loaded, [0, 1, 2, 3, 4], "only what it shows is read, one at a time");
        assert_eq!(sheet, Sheet { frames: 5, columns: 3 }, "the EXR is left out");
        let image = image::open(&out).unwrap().to_rgba8();
        assert_eq!(image.dimensions(), (GAP + 3 * (CELL_WIDTH + GAP), GAP + 2 * (90 + LABEL + GAP)));
        assert_eq!(image.get_pixel(GAP + 10, GAP + 10), &Rgba([200, 0, 0, 255]), "a thumbnail");
        // The label under the first cell: "1" has ink in its middle column.
        let label_y = GAP + 90 + 2;
        assert_eq!(image.get_pixel(GAP + GLYPH_SCALE, label_y), &INK);
        assert!(write(&listed[5..], load, &out).unwrap().is_none(), "nothing decodable, no sheet");
    }
}
