//! ID properties: the untyped key/value trees where add-ons (Cycles among them) keep settings.
//!
//! An `IDProperty` has a `type`, a `name[64]`, a `data` union (`pointer`, `group` list, `val`,
//! `val2`) and a `len`. Groups hold their children as a `ListBase` of `IDProperty`s, each in its
//! own `DATA` block. Only values that differ from the add-on's defaults are stored, and enum values
//! are stored as integers.

use crate::read::{BlendFile, StructView, c_string};

/// Deepest nesting decoded; real Cycles groups are two levels deep.
const MAX_DEPTH: usize = 16;
/// Most properties decoded from one tree, to bound work on a hostile file.
const MAX_NODES: usize = 10_000;

/// IDProperty type codes (`DNA_ID_enums.h`).
mod kind {
    pub(super) const STRING: i64 = 0;
    pub(super) const INT: i64 = 1;
    pub(super) const FLOAT: i64 = 2;
    pub(super) const ARRAY: i64 = 5;
    pub(super) const GROUP: i64 = 6;
    pub(super) const DOUBLE: i64 = 8;
    pub(super) const BOOLEAN: i64 = 10;
}

/// One decoded property.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IdProperty {
    /// The key.
    pub name: String,
    /// The value.
    pub value: IdValue,
}

/// The value of a property; types the analysis has no use for are kept as [`IdValue::Other`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IdValue {
    /// STRING (UTF-8 or raw bytes, decoded lossily).
    String(String),
    /// INT.
    Int(i32),
    /// FLOAT, bit-cast from `data.val`.
    Float(f32),
    /// DOUBLE, the 8 bytes starting at `data.val`.
    Double(f64),
    /// BOOLEAN (Blender 4.x+; Python bools are still often stored as INT).
    Bool(bool),
    /// ARRAY: only its element type and length are kept.
    Array {
        /// The element type code.
        subtype: i64,
        /// Number of elements.
        len: i64,
    },
    /// GROUP: the children in order.
    Group(Vec<IdProperty>),
    /// Any other type code (ID, IDPARRAY, ...).
    Other(i64),
}

impl IdValue {
    /// INT or BOOLEAN as an integer; Cycles' enums and Python bools are stored either way.
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            IdValue::Int(v) => Some(i64::from(*v)),
            IdValue::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The children of a GROUP.
    pub(crate) fn as_group(&self) -> Option<&[IdProperty]> {
        match self {
            IdValue::Group(children) => Some(children),
            _ => None,
        }
    }
}

/// Finds a child by key in a group's children.
pub(crate) fn child<'p>(children: &'p [IdProperty], name: &str) -> Option<&'p IdValue> {
    children.iter().find(|p| p.name == name).map(|p| &p.value)
}

/// Decodes the property tree that a pointer (e.g. `ID.properties`) points at.
pub(crate) fn read_tree(file: &BlendFile<'_>, ptr: u64) -> Option<IdProperty> {
    let root = file.deref_as(ptr, "IDProperty")?;
    let mut budget = MAX_NODES;
    Some(decode(&root, 0, &mut budget))
}

fn decode(prop: &StructView<'_>, depth: usize, budget: &mut usize) -> IdProperty {
    *budget = budget.saturating_sub(1);
    let name = prop.string("name").unwrap_or_default();
    let ty = prop.int("type").unwrap_or(-1);
    let data = prop.sub("data");
    let e = prop.file().endian();
    // `val` and `val2` are two ints in a row; a DOUBLE spans both.
    let val_bytes = data.and_then(|d| d.field("val")).map(|(f, _)| f.offset);
    let val_at = |len: usize| -> Option<&[u8]> {
        let d = data?;
        let off = val_bytes?;
        d.bytes().get(off..off.checked_add(len)?)
    };
    let value = match ty {
        kind::INT => val_at(4).and_then(|b| e.i32(b, 0)).map(IdValue::Int),
        kind::BOOLEAN => val_at(4).and_then(|b| e.i32(b, 0)).map(|v| IdValue::Bool(v != 0)),
        kind::FLOAT => val_at(4).and_then(|b| e.f32(b, 0)).map(IdValue::Float),
        kind::DOUBLE => val_at(8).and_then(|b| e.f64(b, 0)).map(IdValue::Double),
        kind::STRING => {
            let ptr = data.and_then(|d| d.ptr("pointer")).unwrap_or(0);
            let bytes = prop.file().deref_bytes(ptr).unwrap_or(&[]);
            // `len` counts the trailing NUL; the block may be shorter in a damaged file.
            let len = prop.int("len").and_then(|l| usize::try_from(l).ok()).unwrap_or(0);
            Some(IdValue::String(c_string(bytes.get(..len).unwrap_or(bytes))))
        }
        kind::ARRAY => {
            Some(IdValue::Array { subtype: prop.int("subtype").unwrap_or(-1), len: prop.int("len").unwrap_or(0) })
        }
        kind::GROUP => {
            let mut children = Vec::new();
            if depth < MAX_DEPTH
                && let Some(d) = data
            {
                for item in d.list("group", "IDProperty", *budget) {
                    if *budget == 0 {
                        break;
                    }
                    children.push(decode(&item, depth + 1, budget));
                }
            }
            Some(IdValue::Group(children))
        }
        other => Some(IdValue::Other(other)),
    };
    IdProperty { name, value: value.unwrap_or(IdValue::Other(ty)) }
}
