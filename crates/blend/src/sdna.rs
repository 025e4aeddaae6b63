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

use std::collections::HashMap;

use crate::error::AnalyzeError;
use crate::header::Endian;

/// A type of the DNA: a primitive (`int`, `float`, ...) or a struct name.
#[derive(Debug, Clone)]
pub struct TypeDef {
    /// The type's name, e.g. `Scene` or `short`.
    pub name: String,
    /// Its size in bytes (for structs, the whole struct).
    pub size: usize,
}

/// One field of a struct, with its place worked out.
#[derive(Debug, Clone)]
pub struct FieldDef {
    /// The bare name: `next` for `*next`, `name` for `name[66]`, `func` for `(*func)()`.
    pub name: String,
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

/// One struct of the DNA.
#[derive(Debug, Clone)]
pub struct StructDef {
    /// Index into [`Sdna::types`] of the struct's own name.
    pub type_idx: usize,
    /// Size of one struct in bytes.
    pub size: usize,
    /// Fields in declaration order.
    pub fields: Vec<FieldDef>,
}

impl StructDef {
    /// The field called `name`, if the struct has one in this file's version.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The decoded `DNA1` block.
#[derive(Debug)]
pub struct Sdna {
    /// Every type, primitives first.
    pub types: Vec<TypeDef>,
    /// Every struct; a block's `sdna` number indexes this list.
    pub structs: Vec<StructDef>,
    by_name: HashMap<String, usize>,
}

impl Sdna {
    /// Decodes the body of a `DNA1` block. `pointer_size` comes from the file header.
    pub fn parse(body: &[u8], endian: Endian, pointer_size: usize) -> Result<Sdna, AnalyzeError> {
        let mut r = Cursor { data: body, pos: 0, endian };
        r.tag(b"SDNA")?;
        r.tag(b"NAME")?;
        let n_names = r.count("name count")?;
        let mut names = Vec::with_capacity(n_names.min(r.remaining()));
        for _ in 0..n_names {
            names.push(r.cstr()?);
        }
        r.align4();
        r.tag(b"TYPE")?;
        let n_types = r.count("type count")?;
        let mut type_names = Vec::with_capacity(n_types.min(r.remaining()));
        for _ in 0..n_types {
            type_names.push(r.cstr()?);
        }
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
            let size = types.get(type_idx).ok_or_else(|| bad_index("struct type", type_idx))?.size;
            let mut fields = Vec::with_capacity(n_fields.min(r.remaining() / 4));
            let mut offset = 0usize;
            for _ in 0..n_fields {
                let ftype = usize::from(r.u16()?);
                let fname = usize::from(r.u16()?);
                let type_size = types.get(ftype).ok_or_else(|| bad_index("field type", ftype))?.size;
                let raw = names.get(fname).ok_or_else(|| bad_index("field name", fname))?;
                let parsed = parse_name(raw)?;
                let elem = if parsed.is_pointer { pointer_size } else { type_size };
                let fsize = elem
                    .checked_mul(parsed.array_len)
                    .ok_or_else(|| AnalyzeError::corrupt(format!("DNA field {raw:?} is impossibly large")))?;
                fields.push(FieldDef {
                    name: parsed.name,
                    type_idx: ftype,
                    is_pointer: parsed.is_pointer,
                    array_len: parsed.array_len,
                    offset,
                    size: fsize,
                });
                offset =
                    offset.checked_add(fsize).ok_or_else(|| AnalyzeError::corrupt("DNA struct is impossibly large"))?;
            }
            structs.push(StructDef { type_idx, size, fields });
        }
        let mut by_name = HashMap::with_capacity(structs.len());
        for (i, s) in structs.iter().enumerate() {
            if let Some(t) = types.get(s.type_idx) {
                by_name.entry(t.name.clone()).or_insert(i);
            }
        }
        Ok(Sdna { types, structs, by_name })
    }

    /// The struct called `name` (`Scene`, `IDProperty`, ...).
    pub fn struct_by_name(&self, name: &str) -> Option<&StructDef> {
        self.by_name.get(name).and_then(|&i| self.structs.get(i))
    }

    /// The name of a type by index.
    pub fn type_name(&self, idx: usize) -> Option<&str> {
        self.types.get(idx).map(|t| t.name.as_str())
    }

    /// The name of a struct, e.g. to check which struct a block holds.
    pub fn struct_name(&self, s: &StructDef) -> Option<&str> {
        self.type_name(s.type_idx)
    }
}

fn bad_index(what: &str, idx: usize) -> AnalyzeError {
    AnalyzeError::corrupt(format!("DNA {what} index {idx} is out of range"))
}

struct ParsedName {
    name: String,
    is_pointer: bool,
    array_len: usize,
}

/// Splits a DNA field name such as `*next`, `name[66]`, `(*func)()` or `mat[3][3]`.
fn parse_name(raw: &str) -> Result<ParsedName, AnalyzeError> {
    let is_pointer = raw.contains('*');
    let bare = raw.trim_start_matches(['*', '(']);
    let end = bare.find(['[', ')', '(']).unwrap_or(bare.len());
    let name = bare.get(..end).unwrap_or(bare).to_string();
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
    Ok(ParsedName { name, is_pointer, array_len })
}

/// A bounds-checked reader over the DNA block.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    endian: Endian,
}

impl Cursor<'_> {
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

    /// A non-negative count that cannot exceed the bytes left (each item takes at least one).
    fn count(&mut self, what: &'static str) -> Result<usize, AnalyzeError> {
        let v = self.endian.i32(self.data, self.pos).ok_or_else(|| self.short(what))?;
        self.pos += 4;
        usize::try_from(v)
            .ok()
            .filter(|&n| n <= self.remaining())
            .ok_or_else(|| AnalyzeError::corrupt(format!("the DNA {what} {v} does not fit the block")))
    }

    fn cstr(&mut self) -> Result<String, AnalyzeError> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let len = rest.iter().position(|&b| b == 0).ok_or_else(|| self.short("names"))?;
        let s = String::from_utf8_lossy(rest.get(..len).unwrap_or(&[])).into_owned();
        self.pos += len + 1;
        Ok(s)
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
            assert_eq!((p.name.as_str(), p.is_pointer, p.array_len), (name, ptr, len), "{raw}");
        }
    }

    #[test]
    fn malformed_field_names_are_corrupt_not_panics() {
        for raw in ["name[66", "name[x]", "a[99999999999][99999999999]"] {
            assert!(matches!(parse_name(raw), Err(AnalyzeError::Corrupt { .. })), "{raw}");
        }
    }
}
