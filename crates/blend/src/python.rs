//! Python a `.blend` carries, which never runs on the farm (Blender runs with `--disable-autoexec`):
//! text blocks registered to run as modules when the file opens, and drivers with scripted
//! expressions.
//!
//! A text block runs on load when `Text.flags` has `TXT_ISSCRIPT` (RNA `Text.use_module`). A driver
//! is scripted when `ChannelDriver.type` is `DRIVER_TYPE_PYTHON`; drivers are reached from any local
//! ID's `AnimData` (`adt`), and from the `AnimData` of the node tree an ID embeds (`nodetree`:
//! materials, worlds, lights, scenes, textures, line styles), through its `drivers` list of `FCurve`s.
//! Blender evaluates a scripted expression that is simple arithmetic of its variables and `frame`
//! without Python, so such a driver still works on the farm; any other one does not.

use crate::blocks::Block;
use crate::read::{BlendFile, MAX_LIST_ITEMS, StructView, id_name, is_linked};

/// `Text.flags & TXT_ISSCRIPT` (DNA_text_types.h): run as a module when the file opens.
const TXT_ISSCRIPT: i64 = 1 << 4;
/// `ChannelDriver.type` DRIVER_TYPE_PYTHON (eDriver_Types: AVERAGE 0, PYTHON 1, SUM 2, MIN 3, MAX 4).
const DRIVER_TYPE_PYTHON: i64 = 1;
/// Most items of each kind kept; the rest are only counted, so a hostile file cannot make the
/// message (or the walk's memory) large.
pub(crate) const MAX_NAMED: usize = 20;
/// Longest expression quoted, in characters.
const MAX_EXPRESSION_CHARS: usize = 60;

/// What a file carries, each list at most [`MAX_NAMED`] long, with the totals.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Python {
    /// Names of text blocks that run on load.
    pub(crate) modules: Vec<String>,
    /// Every text block that runs on load, named or not.
    pub(crate) modules_total: usize,
    /// `(owner ID name, shortened expression)` of each scripted driver.
    pub(crate) drivers: Vec<(String, String)>,
    /// Every scripted driver, named or not.
    pub(crate) drivers_total: usize,
}

/// The module text blocks and scripted drivers of the file's local IDs.
pub(crate) fn read(file: &BlendFile<'_>) -> Python {
    let mut out = Python::default();
    for block in file.blocks.with_code(b"TX\0\0") {
        let Some(text) = file.view_block_as(block, "Text") else {
            continue;
        };
        if is_linked(&text) || text.int("flags").is_none_or(|f| f & TXT_ISSCRIPT == 0) {
            continue;
        }
        out.modules_total += 1;
        if out.modules.len() < MAX_NAMED {
            out.modules.push(id_name(&text).unwrap_or_default());
        }
    }
    for block in file.blocks.blocks.iter().filter(|b| is_id_block(b)) {
        let Some(id) = file.view_block(block) else {
            continue;
        };
        if is_linked(&id) {
            continue;
        }
        let owner = id_name(&id).unwrap_or_default();
        drivers_of(&id, &owner, &mut out);
        if let Some(tree) = id.ptr("nodetree").filter(|&p| p != 0).and_then(|p| file.deref(p)) {
            drivers_of(&tree, &owner, &mut out);
        }
    }
    out
}

/// An ID block: a two-letter code padded with NULs (`OB\0\0`), not `DATA`, `GLOB`, `DNA1`, ...
fn is_id_block(block: &Block) -> bool {
    let [a, b, 0, 0] = block.code else {
        return false;
    };
    a.is_ascii_uppercase() && b.is_ascii_uppercase()
}

/// Scripted drivers in the `AnimData` of `owner` (an ID, or the node tree it embeds).
fn drivers_of(owner: &StructView<'_>, owner_name: &str, out: &mut Python) {
    let file = owner.file();
    let Some(adt) = owner.ptr("adt").filter(|&p| p != 0).and_then(|p| file.deref_as(p, "AnimData")) else {
        return;
    };
    for fcurve in adt.list("drivers", "FCurve", MAX_LIST_ITEMS) {
        let Some(driver) = fcurve.ptr("driver").filter(|&p| p != 0).and_then(|p| file.deref_as(p, "ChannelDriver"))
        else {
            continue;
        };
        if driver.int("type") != Some(DRIVER_TYPE_PYTHON) {
            continue;
        }
        let expression = driver.string("expression").or_else(|| driver.string_ptr("expression")).unwrap_or_default();
        if expression.trim().is_empty() {
            continue;
        }
        out.drivers_total += 1;
        if out.drivers.len() < MAX_NAMED {
            out.drivers.push((owner_name.to_string(), shorten(&expression)));
        }
    }
}

/// The expression on one line, at most [`MAX_EXPRESSION_CHARS`] characters (`…` marks a cut).
fn shorten(expression: &str) -> String {
    let one_line: String = expression.split_whitespace().collect::<Vec<_>>().join(" ");
    let one_line: String = one_line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.chars().count() <= MAX_EXPRESSION_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_EXPRESSION_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn expressions_are_put_on_one_line_and_cut_at_sixty_characters() {
        assert_eq!(shorten("frame * 0.1 + 1"), "frame * 0.1 + 1");
        assert_eq!(shorten("a\n  +\tb\u{7}"), "a + b ");
        let long = "x".repeat(200);
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with('…'));
        assert_eq!(shorten(&"é".repeat(61)).chars().count(), 60);
    }
}
