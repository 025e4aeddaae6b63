//! The file's own description of its structs (the `DNA1` block, "SDNA").
//!
//! Blender writes, in every file, the names, types, sizes and field lists of all the structs it
//! saved. Field offsets move between versions (`ID` is 192 bytes in 3.4 and 408 in 5.0), so every
//! field is looked up here by name and never at a fixed offset. The names are the *old* on-disk
//! names (`Image.name` holds what Python calls `filepath`).
//!
//! Layout: `SDNA`, `NAME` + count + NUL-terminated names, pad to 4, `TYPE` + count + type names,
//! pad to 4, `TLEN` + one `u16` size per type, pad to 4, `STRC` + count + per struct
//! `(type, n_fields, n_fields × (type, name))` as `u16`s.

use std::cell::OnceCell;
use std::collections::HashMap;

use crate::error::AnalyzeError;
use crate::header::Endian;

/// A type of the DNA: a primitive (`int`, `float`, ...) or a struct name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeDef<'a> {
    /// The type's name, e.g. `Scene` or `short`, as bytes (read as text when asked for).
    pub name: &'a [u8],
    /// Its size in bytes (for structs, the whole struct).
    pub size: usize,
}

/// One field of a struct, with its place worked out.
#[derive(Debug, Clone)]
pub(crate) struct FieldDef {
    /// Index into the DNA's names of the field's full name (`*next`, `name[66]`).
    name_idx: usize,
    /// Where the bare name (`next`, `name`) lies within the full one.
    bare: (usize, usize),
    /// Index into [`Sdna::types`].
    pub type_idx: usize,
    /// Whether the field is a pointer (or an array of pointers); its bytes are then saved addresses.
    pub is_pointer: bool,
    /// Number of elements: the product of every `[n]` in the name, 1 when there is none.
    pub array_len: usize,
    /// Offset from the start of the struct.
    pub offset: usize,
    /// Total size in bytes (all elements).
    pub size: usize,
}

/// One struct of the DNA, its fields laid out.
#[derive(Debug, Clone)]
pub(crate) struct StructDef {
    /// Index into [`Sdna::types`] of the struct's own name.
    pub type_idx: usize,
    /// Size of one struct in bytes.
    pub size: usize,
    /// Fields in declaration order.
    pub fields: Vec<FieldDef>,
}

/// Where a struct's field list starts in the `STRC` section; laid out on first use.
#[derive(Debug)]
struct RawStruct {
    type_idx: usize,
    n_fields: usize,
    /// Offset of its first `(type, name)` pair in the DNA block.
    at: usize,
}

/// The decoded `DNA1` block.
///
/// A file describes some 800 structs and an analysis reads a few dozen, so the tables are indexed
/// up front (borrowing the names from the block, no copies) and each struct's fields are laid out
/// the first time it is asked for. A struct whose definition is broken is then simply unknown.
#[derive(Debug)]
pub(crate) struct Sdna<'a> {
    body: &'a [u8],
    endian: Endian,
    pointer_size: usize,
    /// Every field name, as written (`*next`, `name[66]`). Kept as bytes: a file has thousands and
    /// an analysis looks at the fields of a few dozen structs, which are checked as text then.
    names: Vec<&'a [u8]>,
    /// Every type, primitives first.
    pub types: Vec<TypeDef<'a>>,
    structs: Vec<RawStruct>,
    laid_out: Vec<OnceCell<Option<StructDef>>>,
    by_name: HashMap<&'a [u8], usize>,
}

impl<'a> Sdna<'a> {
    /// Decodes the body of a `DNA1` block. `pointer_size` comes from the file header.
    pub(crate) fn parse(body: &'a [u8], endian: Endian, pointer_size: usize) -> Result<Sdna<'a>, AnalyzeError> {
        let mut r = Cursor { data: body, pos: 0, endian };
        r.tag(b"SDNA")?;
        r.tag(b"NAME")?;
        let n_names = r.count("name count")?;
        let names = r.cstrs(n_names)?;
        r.align4();
        r.tag(b"TYPE")?;
        let n_types = r.count("type count")?;
        let type_names = r.cstrs(n_types)?;
        r.align4();
        r.tag(b"TLEN")?;
        let mut types = Vec::with_capacity(type_names.len());
        for name in type_names {
            let size = usize::from(r.u16()?);
            types.push(TypeDef { name, size });
        }
        r.align4();
        r.tag(b"STRC")?;
        let n_structs = r.count("struct count")?;
        let mut structs = Vec::with_capacity(n_structs.min(r.remaining() / 4));
        for _ in 0..n_structs {
            let type_idx = usize::from(r.u16()?);
            let n_fields = usize::from(r.u16()?);
            if type_idx >= types.len() {
                return Err(bad_index("struct type", type_idx));
            }
            let at = r.pos;
            r.skip(n_fields * 4, "struct fields")?;
            structs.push(RawStruct { type_idx, n_fields, at });
        }
        let mut by_name = HashMap::with_capacity(structs.len());
        for (i, s) in structs.iter().enumerate() {
            if let Some(t) = types.get(s.type_idx) {
                by_name.entry(t.name).or_insert(i);
            }
        }
        let laid_out = (0..structs.len()).map(|_| OnceCell::new()).collect();
        Ok(Sdna { body, endian, pointer_size, names, types, structs, laid_out, by_name })
    }

    /// The struct called `name` (`Scene`, `IDProperty`, ...).
    pub(crate) fn struct_by_name(&self, name: &str) -> Option<&StructDef> {
        self.struct_at(*self.by_name.get(name.as_bytes())?)
    }

    /// The struct with this index in the `STRC` list (a block's `SDNAnr`).
    pub(crate) fn struct_at(&self, idx: usize) -> Option<&StructDef> {
        self.laid_out.get(idx)?.get_or_init(|| self.lay_out(self.structs.get(idx)?)).as_ref()
    }

    /// The name of a type by index.
    pub(crate) fn type_name(&self, idx: usize) -> Option<&'a str> {
        // A name that is not UTF-8 reads as empty: it can never match a name the reader asks for.
        self.types.get(idx).map(|t| std::str::from_utf8(t.name).unwrap_or(""))
    }

    /// The name of a struct, e.g. to check which struct a block holds.
    pub(crate) fn struct_name(&self, s: &StructDef) -> Option<&'a str> {
        self.type_name(s.type_idx)
    }

    /// A field's bare name (`next` for `*next`).
    pub(crate) fn field_name(&self, f: &FieldDef) -> &'a str {
        std::str::from_utf8(self.bare_name(f)).unwrap_or("")
    }

    fn bare_name(&self, f: &FieldDef) -> &'a [u8] {
        self.names.get(f.name_idx).and_then(|n| n.get(f.bare.0..f.bare.1)).unwrap_or(&[])
    }

    /// The field called `name` in `def`, if this version of the struct has it.
    pub(crate) fn field<'d>(&self, def: &'d StructDef, name: &str) -> Option<&'d FieldDef> {
        def.fields.iter().find(|f| self.bare_name(f) == name.as_bytes())
    }

    /// Works out the offsets and sizes of a struct's fields; `None` when its definition is broken.
    fn lay_out(&self, raw: &RawStruct) -> Option<StructDef> {
        let size = self.types.get(raw.type_idx)?.size;
        let mut fields = Vec::with_capacity(raw.n_fields);
        let mut offset = 0usize;
        for i in 0..raw.n_fields {
            let at = raw.at.checked_add(i.checked_mul(4)?)?;
            let ftype = usize::from(self.endian.u16(self.body, at)?);
            let name_idx = usize::from(self.endian.u16(self.body, at.checked_add(2)?)?);
            let type_size = self.types.get(ftype)?.size;
            // A name that is not UTF-8 reads as empty: it can never match a name the reader asks for.
            let raw = std::str::from_utf8(self.names.get(name_idx)?).unwrap_or("");
            let parsed = parse_name(raw).ok()?;
            let elem = if parsed.is_pointer { self.pointer_size } else { type_size };
            let fsize = elem.checked_mul(parsed.array_len)?;
            fields.push(FieldDef {
                name_idx,
                bare: parsed.bare,
                type_idx: ftype,
                is_pointer: parsed.is_pointer,
                array_len: parsed.array_len,
                offset,
                size: fsize,
            });
            offset = offset.checked_add(fsize)?;
        }
        Some(StructDef { type_idx: raw.type_idx, size, fields })
    }
}

fn bad_index(what: &str, idx: usize) -> AnalyzeError {
    AnalyzeError::corrupt(format!("DNA {what} index {idx} is out of range"))
}

#[derive(Debug)]
struct ParsedName {
    /// Byte range of the bare name within the full one.
    bare: (usize, usize),
    is_pointer: bool,
    array_len: usize,
}

/// Splits a DNA field name such as `*next`, `name[66]`, `(*func)()` or `mat[3][3]`.
fn parse_name(raw: &str) -> Result<ParsedName, AnalyzeError> {
    let is_pointer = raw.contains('*');
    let start = raw.len() - raw.trim_start_matches(['*', '(']).len();
    let bare = raw.get(start..).unwrap_or("");
    let end = bare.find(['[', ')', '(']).unwrap_or(bare.len());
    let mut array_len = 1usize;
    let mut rest = bare.get(end..).unwrap_or("");
    while let Some(open) = rest.find('[') {
        let after = rest.get(open + 1..).unwrap_or("");
        let close = after
            .find(']')
            .ok_or_else(|| AnalyzeError::corrupt(format!("DNA field name {raw:?} has an unclosed '['")))?;
        let n: usize = after
            .get(..close)
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| AnalyzeError::corrupt(format!("DNA field name {raw:?} has a bad array size")))?;
        array_len = array_len
            .checked_mul(n)
            .ok_or_else(|| AnalyzeError::corrupt(format!("DNA field {raw:?} is impossibly large")))?;
        rest = after.get(close + 1..).unwrap_or("");
    }
    Ok(ParsedName { bare: (start, start + end), is_pointer, array_len })
}

/// A bounds-checked reader over the DNA block.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    endian: Endian,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn short(&self, what: &'static str) -> AnalyzeError {
        AnalyzeError::corrupt(format!("the DNA block ends inside its {what} (byte {})", self.pos))
    }

    fn tag(&mut self, tag: &[u8; 4]) -> Result<(), AnalyzeError> {
        let end = self.pos.checked_add(4).ok_or_else(|| self.short("section tags"))?;
        match self.data.get(self.pos..end) {
            Some(got) if got == tag => {
                self.pos = end;
                Ok(())
            }
            _ => Err(AnalyzeError::corrupt(format!(
                "the DNA block lacks its {} section at byte {}",
                String::from_utf8_lossy(tag),
                self.pos
            ))),
        }
    }

    fn u16(&mut self) -> Result<u16, AnalyzeError> {
        let v = self.endian.u16(self.data, self.pos).ok_or_else(|| self.short("tables"))?;
        self.pos += 2;
        Ok(v)
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), AnalyzeError> {
        if n > self.remaining() {
            return Err(self.short(what));
        }
        self.pos += n;
        Ok(())
    }

    /// A non-negative count that cannot exceed the bytes left (each item takes at least one).
    fn count(&mut self, what: &'static str) -> Result<usize, AnalyzeError> {
        let v = self.endian.i32(self.data, self.pos).ok_or_else(|| self.short(what))?;
        self.pos += 4;
        usize::try_from(v)
            .ok()
            .filter(|&n| n <= self.remaining())
            .ok_or_else(|| AnalyzeError::corrupt(format!("the DNA {what} {v} does not fit the block")))
    }

    /// `n` NUL-terminated names in a row, borrowed. A file holds thousands of short names: the
    /// NULs are found eight bytes at a time.
    fn cstrs(&mut self, n: usize) -> Result<Vec<&'a [u8]>, AnalyzeError> {
        const LOW: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let mut out = Vec::with_capacity(n.min(self.remaining()));
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let mut start = 0;
        let mut base = 0;
        for word in rest.chunks_exact(8) {
            if out.len() == n {
                break;
            }
            let v = u64::from_le_bytes(word.try_into().unwrap_or([1; 8]));
            // Marks every zero byte, and perhaps a 0x01 byte just after one (a borrow): each
            // mark is checked against the byte itself.
            let mut zeros = v.wrapping_sub(LOW) & !v & HIGH;
            while zeros != 0 && out.len() < n {
                let at = base + (zeros.trailing_zeros() / 8) as usize;
                zeros &= zeros - 1;
                if rest.get(at) == Some(&0) {
                    out.push(rest.get(start..at).unwrap_or(&[]));
                    start = at + 1;
                }
            }
            base += 8;
        }
        // Names in the tail shorter than a word.
        while out.len() < n {
            let tail = rest.get(start..).unwrap_or(&[]);
            let len = tail.iter().position(|&b| b == 0).ok_or_else(|| self.short("names"))?;
            out.push(tail.get(..len).unwrap_or(&[]));
            start += len + 1;
        }
        self.pos += start;
        Ok(out)
    }

    fn align4(&mut self) {
        self.pos = self.pos.saturating_add(3) & !3;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_split_into_name_pointer_and_array_length() {
        let cases = [
            ("*next", "next", true, 1),
            ("name[66]", "name", false, 66),
            ("(*func)()", "func", true, 1),
            ("gputexture[3][2]", "gputexture", false, 6),
            ("**mat", "mat", true, 1),
            ("*mtex[18]", "mtex", true, 18),
            ("sfra", "sfra", false, 1),
        ];
        for (raw, name, ptr, len) in cases {
            let p = parse_name(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!((&raw[p.bare.0..p.bare.1], p.is_pointer, p.array_len), (name, ptr, len), "{raw}");
        }
    }

    #[test]
    fn names_are_split_at_each_nul_whatever_their_length_or_place_in_a_word() {
        let mut data = Vec::new();
        let mut want: Vec<Vec<u8>> = Vec::new();
        // Empty names, 0x01 bytes after a NUL (a borrow in the word trick), names across words.
        for (i, name) in
            ["", "\u{1}a", "*next", "", "name[66]", "\u{1}", "a_rather_long_name_over_a_word"].iter().enumerate()
        {
            let name = format!("{name}{i}");
            data.extend_from_slice(name.as_bytes());
            data.push(0);
            want.push(name.into_bytes());
        }
        for n in 0..=want.len() {
            let mut cursor = Cursor { data: &data, pos: 0, endian: Endian::Little };
            let got = cursor.cstrs(n).unwrap_or_else(|e| panic!("{n}: {e}"));
            let expected: Vec<&[u8]> = want.iter().take(n).map(Vec::as_slice).collect();
            assert_eq!(got, expected, "{n}");
            let read: usize = expected.iter().map(|name| name.len() + 1).sum();
            assert_eq!(cursor.pos, read, "{n}");
        }
        let mut short = Cursor { data: b"abc\0de", pos: 0, endian: Endian::Little };
        assert!(short.cstrs(2).is_err());
    }

    #[test]
    fn malformed_field_names_are_corrupt_not_panics() {
        for raw in ["name[66", "name[x]", "a[99999999999][99999999999]"] {
            assert!(matches!(parse_name(raw), Err(AnalyzeError::Corrupt { .. })), "{raw}");
        }
    }
}
