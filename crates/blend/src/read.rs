//! A parsed file and bounds-checked access to struct fields by name.

use std::cell::Cell;
use std::collections::HashSet;

use crate::blocks::{Block, BlockIndex};
use crate::error::AnalyzeError;
use crate::header::{Endian, Header};
use crate::sdna::{FieldDef, Sdna, StructDef};

/// Longest linked list the reader follows. A list in a hostile file may loop or be absurdly long;
/// real scenes have a handful of view layers and a few dozen properties per group.
pub(crate) const MAX_LIST_ITEMS: usize = 100_000;

/// List elements followed in one file, all lists together. A hostile file can hold a million scenes
/// that all share one long list; this bounds the total work whatever the shape, while real files
/// use a few hundred steps.
pub(crate) const MAX_LIST_STEPS: usize = 1_000_000;

/// A decompressed `.blend` file with its block index and DNA decoded.
#[derive(Debug)]
pub(crate) struct BlendFile<'a> {
    /// The decompressed bytes.
    pub data: &'a [u8],
    /// The file header.
    pub header: Header,
    /// Every block, in file order.
    pub blocks: BlockIndex,
    /// The file's struct definitions.
    pub sdna: Sdna<'a>,
    /// List steps left to take (see [`MAX_LIST_STEPS`]).
    list_steps: Cell<usize>,
}

impl<'a> BlendFile<'a> {
    /// Parses the header, indexes the blocks and decodes the `DNA1` block.
    pub(crate) fn parse(data: &'a [u8]) -> Result<BlendFile<'a>, AnalyzeError> {
        let header = Header::parse(data)?;
        let blocks = BlockIndex::parse(data, &header)?;
        let dna = blocks
            .with_code(b"DNA1")
            .next()
            .ok_or_else(|| AnalyzeError::corrupt("the file has no DNA1 block describing its structs"))?;
        let body = data.get(dna.offset..dna.offset.saturating_add(dna.len)).unwrap_or(&[]);
        let sdna = Sdna::parse(body, header.endian, header.pointer_size)?;
        Ok(BlendFile { data, header, blocks, sdna, list_steps: Cell::new(MAX_LIST_STEPS) })
    }

    /// The byte order of the file.
    pub(crate) fn endian(&self) -> Endian {
        self.header.endian
    }

    /// The data bytes of a block.
    pub(crate) fn block_data(&self, block: &Block) -> &'a [u8] {
        // BlockIndex::parse checked offset + len against the data, so this never falls back.
        self.data.get(block.offset..block.offset.saturating_add(block.len)).unwrap_or(&[])
    }

    /// The block's first struct, read as `struct_name` whatever the block's DNA index says.
    pub(crate) fn view_block_as(&self, block: &Block, struct_name: &str) -> Option<StructView<'_>> {
        let def = self.sdna.struct_by_name(struct_name)?;
        self.view(def, self.block_data(block))
    }

    /// Follows a saved pointer to its block and reads it as `struct_name`.
    pub(crate) fn deref_as(&self, ptr: u64, struct_name: &str) -> Option<StructView<'_>> {
        let block = self.blocks.by_old(ptr)?;
        self.view_block_as(block, struct_name)
    }

    /// The block's first struct, read as the struct its header names (a modifier block holds a
    /// `ClothModifierData`, not a bare `ModifierData`).
    pub(crate) fn view_block(&self, block: &Block) -> Option<StructView<'_>> {
        let def = self.sdna.struct_at(usize::try_from(block.sdna).ok()?)?;
        self.view(def, self.block_data(block))
    }

    /// Follows a saved pointer to its block, read as the struct its header names.
    pub(crate) fn deref(&self, ptr: u64) -> Option<StructView<'_>> {
        self.view_block(self.blocks.by_old(ptr)?)
    }

    /// Follows a saved pointer to an array of `struct_name` (the block's `nr` elements, as many as
    /// its data holds, at most `cap`).
    pub(crate) fn deref_array(&self, ptr: u64, struct_name: &str, cap: usize) -> Vec<StructView<'_>> {
        let (Some(block), Some(def)) = (self.blocks.by_old(ptr), self.sdna.struct_by_name(struct_name)) else {
            return Vec::new();
        };
        let data = self.block_data(block);
        let fits = data.len().checked_div(def.size).unwrap_or(0);
        let n = usize::try_from(block.nr).unwrap_or(usize::MAX).min(fits).min(cap);
        (0..n).filter_map(|i| self.view(def, data.get(i * def.size..)?)).collect()
    }

    /// Follows a saved pointer to its block's raw bytes.
    pub(crate) fn deref_bytes(&self, ptr: u64) -> Option<&'a [u8]> {
        self.blocks.by_old(ptr).map(|b| self.block_data(b))
    }

    fn view<'f>(&'f self, def: &'f StructDef, bytes: &'f [u8]) -> Option<StructView<'f>> {
        let bytes = bytes.get(..def.size)?;
        Some(StructView { file: self, def, bytes })
    }
}

/// One struct in the file: its DNA definition and exactly its bytes.
#[derive(Clone, Copy)]
pub(crate) struct StructView<'f> {
    file: &'f BlendFile<'f>,
    def: &'f StructDef,
    bytes: &'f [u8],
}

impl std::fmt::Debug for StructView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StructView")
            .field("struct", &self.file.sdna.struct_name(self.def))
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Primitive types whose integers are signed. Everything else that is an integer-sized non-struct
/// (`char`, `uchar`, `ushort`, 5.x C++ enum types such as `MediaType`) is read unsigned: Blender
/// stores small non-negative enum values and flags in them.
const SIGNED: &[&str] = &["short", "int", "long", "int8_t", "int16_t", "int32_t", "int64_t"];

impl<'f> StructView<'f> {
    /// The file this struct belongs to.
    pub(crate) fn file(&self) -> &'f BlendFile<'f> {
        self.file
    }

    /// The name of the struct, e.g. `Scene`.
    pub(crate) fn struct_name(&self) -> Option<&'f str> {
        self.file.sdna.struct_name(self.def)
    }

    /// The raw bytes of the struct.
    pub(crate) fn bytes(&self) -> &'f [u8] {
        self.bytes
    }

    /// The field definition and its bytes, if this version of the struct has the field.
    pub(crate) fn field(&self, name: &str) -> Option<(&'f FieldDef, &'f [u8])> {
        let f = self.file.sdna.field(self.def, name)?;
        let bytes = self.bytes.get(f.offset..f.offset.checked_add(f.size)?)?;
        Some((f, bytes))
    }

    fn type_name(&self, f: &FieldDef) -> Option<&'f str> {
        self.file.sdna.type_name(f.type_idx)
    }

    /// An embedded struct field (`r` in `Scene`, `im_format` in `RenderData`).
    pub(crate) fn sub(&self, name: &str) -> Option<StructView<'f>> {
        let (f, bytes) = self.field(name)?;
        if f.is_pointer {
            return None;
        }
        let def = self.file.sdna.struct_by_name(self.type_name(f)?)?;
        Some(StructView { file: self.file, def, bytes: bytes.get(..def.size)? })
    }

    /// An integer field (first element of an array), sign-extended by its DNA type.
    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        let (f, bytes) = self.field(name)?;
        let ty = self.type_name(f)?;
        if f.is_pointer || matches!(ty, "float" | "double") || self.file.sdna.struct_by_name(ty).is_some() {
            return None;
        }
        let elem = f.size.checked_div(f.array_len)?;
        let e = self.file.endian();
        let signed = SIGNED.contains(&ty);
        match (elem, signed) {
            (1, false) => bytes.first().map(|&b| i64::from(b)),
            (1, true) => bytes.first().map(|&b| i64::from(b as i8)),
            (2, false) => e.u16(bytes, 0).map(i64::from),
            (2, true) => e.i16(bytes, 0).map(i64::from),
            (4, false) => e.u32(bytes, 0).map(i64::from),
            (4, true) => e.i32(bytes, 0).map(i64::from),
            (8, _) => e.i64(bytes, 0),
            _ => None,
        }
    }

    /// A `float` or `double` field (first element of an array).
    pub(crate) fn float(&self, name: &str) -> Option<f64> {
        let (f, bytes) = self.field(name)?;
        if f.is_pointer {
            return None;
        }
        match self.type_name(f)? {
            "float" => self.file.endian().f32(bytes, 0).map(f64::from),
            "double" => self.file.endian().f64(bytes, 0),
            _ => None,
        }
    }

    /// A `char[N]` field as text, up to the first NUL (invalid UTF-8 replaced).
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        let (f, bytes) = self.field(name)?;
        if f.is_pointer || self.type_name(f)? != "char" {
            return None;
        }
        Some(c_string(bytes))
    }

    /// A pointer field's saved address (first element of an array); 0 is a null pointer.
    pub(crate) fn ptr(&self, name: &str) -> Option<u64> {
        let (f, bytes) = self.field(name)?;
        if !f.is_pointer {
            return None;
        }
        let e = self.file.endian();
        match self.file.header.pointer_size {
            4 => e.u32(bytes, 0).map(u64::from),
            _ => e.u64(bytes, 0),
        }
    }

    /// The `next` link of a list element: its own `next` field, or that of the struct it starts
    /// with (a `ClothModifierData` begins with a `ModifierData modifier` that holds the links).
    fn next_ptr(&self) -> Option<u64> {
        let first = self.file.sdna.field_name(self.def.fields.first()?);
        self.ptr("next").or_else(|| self.sub(first)?.ptr("next"))
    }

    /// A `char *` field: the text of the block it points at, up to the first NUL.
    pub(crate) fn string_ptr(&self, name: &str) -> Option<String> {
        let ptr = self.ptr(name).filter(|&p| p != 0)?;
        self.file.deref_bytes(ptr).map(c_string)
    }

    /// The elements of a `ListBase` field, each read as `elem`, following `next` pointers.
    ///
    /// Stops at a null or unknown pointer, at a pointer already visited (a loop), after `cap`
    /// (at most [`MAX_LIST_ITEMS`]) elements, and when the file's [`MAX_LIST_STEPS`] are spent.
    pub(crate) fn list(&self, name: &str, elem: &str, cap: usize) -> Vec<StructView<'f>> {
        self.walk_list(name, cap, |ptr| self.file.deref_as(ptr, elem))
    }

    /// The elements of a `ListBase` field, each read as the struct its block names (a modifier
    /// list holds `ClothModifierData`, `FluidModifierData`, ...). Stops like [`StructView::list`].
    pub(crate) fn list_typed(&self, name: &str, cap: usize) -> Vec<StructView<'f>> {
        self.walk_list(name, cap, |ptr| self.file.deref(ptr))
    }

    fn walk_list(&self, name: &str, cap: usize, view: impl Fn(u64) -> Option<StructView<'f>>) -> Vec<StructView<'f>> {
        let mut out = Vec::new();
        let Some(first) = self.sub(name).and_then(|lb| lb.ptr("first")) else {
            return out;
        };
        let cap = cap.min(MAX_LIST_ITEMS);
        let steps = &self.file.list_steps;
        let mut seen = HashSet::new();
        let mut next = first;
        while next != 0 && out.len() < cap && steps.get() > 0 && seen.insert(next) {
            steps.set(steps.get() - 1);
            let Some(item) = view(next) else {
                break;
            };
            next = item.next_ptr().unwrap_or(0);
            out.push(item);
        }
        out
    }
}

/// Bytes up to the first NUL as text.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or(bytes)).into_owned()
}

/// The name of an ID (`SCScene` -> `Scene`): the struct's `id.name` without its two-letter code.
pub(crate) fn id_name(view: &StructView<'_>) -> Option<String> {
    let full = view.sub("id")?.string("name")?;
    Some(full.get(2..).unwrap_or("").to_string())
}

/// Whether an ID block is linked from a library (`id.lib` set): such blocks are placeholders
/// whose data lives in the other file.
pub(crate) fn is_linked(view: &StructView<'_>) -> bool {
    view.sub("id").and_then(|id| id.ptr("lib")).is_some_and(|lib| lib != 0)
}
