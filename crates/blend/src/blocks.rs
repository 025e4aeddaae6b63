//! The block index: every block header of the file, and a map from the blocks' saved addresses.
//!
//! A `.blend` body is a flat run of blocks, each a header (code, DNA struct index, the address the
//! data had in memory when saved, length, element count) followed by `len` bytes. Pointers inside
//! the data are those saved addresses, so following one means finding the block whose `old`
//! matches. The run ends with an `ENDB` block.

use crate::error::AnalyzeError;
use crate::header::{BlockLayout, Header};

/// A block's four-byte code: `SC\0\0`, `DATA`, `GLOB`, `DNA1`, ...
pub(crate) type Code = [u8; 4];

/// One block header, with where its data lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    /// The block code; ID blocks use their two-letter code padded with NULs.
    pub code: Code,
    /// Index into the DNA struct list describing the data.
    pub sdna: u32,
    /// The address the data had when saved; the key pointers refer to.
    pub old: u64,
    /// Offset of the data (just after the block header) in the decompressed file.
    pub offset: usize,
    /// Length of the data in bytes.
    pub len: usize,
    /// Number of structs stored one after the other in the data.
    pub nr: u64,
}

/// All blocks of a file, in file order.
#[derive(Debug)]
pub(crate) struct BlockIndex {
    /// The blocks up to (not including) `ENDB`.
    pub blocks: Vec<Block>,
    /// `(old, index)` for every block with an address, sorted by address, the first block of each
    /// address only. A sorted table rather than a hash map: it is as fast to build and to search
    /// for a file's few thousand blocks, and no choice of addresses in a hostile file can make its
    /// lookups slow.
    by_old: Vec<(u64, usize)>,
}

impl BlockIndex {
    /// Walks the block headers that follow the file header.
    ///
    /// Every length is checked against what is left of the data before it is used, so a hostile
    /// file cannot make the reader allocate or seek beyond what it actually holds. A file that
    /// ends without `ENDB` is reported as truncated: it was cut at a block boundary.
    pub(crate) fn parse(data: &[u8], header: &Header) -> Result<BlockIndex, AnalyzeError> {
        let e = header.endian;
        let head_len = header.layout.header_len();
        let mut blocks = Vec::new();
        let mut by_old = Vec::new();
        let mut pos = header.len;
        loop {
            let head = match pos.checked_add(head_len).and_then(|end| data.get(pos..end)) {
                Some(head) => head,
                None if pos == data.len() => {
                    return Err(AnalyzeError::truncated("the end-of-file (ENDB) block", pos));
                }
                None => return Err(AnalyzeError::truncated("a block header", pos)),
            };
            let Some(&[c0, c1, c2, c3]) = head.first_chunk::<4>() else {
                return Err(AnalyzeError::truncated("a block header", pos));
            };
            let code: Code = [c0, c1, c2, c3];
            if &code == b"ENDB" {
                break;
            }
            let bad = |what: &str| AnalyzeError::corrupt(format!("{what} in the block header at byte {pos}"));
            let (sdna, old, len, nr) = match header.layout {
                BlockLayout::Legacy4 => (
                    i64::from(e.i32(head, 12).ok_or_else(|| bad("short header"))?),
                    u64::from(e.u32(head, 8).ok_or_else(|| bad("short header"))?),
                    i64::from(e.i32(head, 4).ok_or_else(|| bad("short header"))?),
                    i64::from(e.i32(head, 16).ok_or_else(|| bad("short header"))?),
                ),
                BlockLayout::Legacy8 => (
                    i64::from(e.i32(head, 16).ok_or_else(|| bad("short header"))?),
                    e.u64(head, 8).ok_or_else(|| bad("short header"))?,
                    i64::from(e.i32(head, 4).ok_or_else(|| bad("short header"))?),
                    i64::from(e.i32(head, 20).ok_or_else(|| bad("short header"))?),
                ),
                BlockLayout::Large8 => (
                    i64::from(e.i32(head, 4).ok_or_else(|| bad("short header"))?),
                    e.u64(head, 8).ok_or_else(|| bad("short header"))?,
                    e.i64(head, 16).ok_or_else(|| bad("short header"))?,
                    e.i64(head, 24).ok_or_else(|| bad("short header"))?,
                ),
            };
            let sdna = u32::try_from(sdna).map_err(|_| bad("negative DNA struct index"))?;
            let len = usize::try_from(len).map_err(|_| bad("negative block length"))?;
            let nr = u64::try_from(nr).map_err(|_| bad("negative element count"))?;
            let offset = pos + head_len;
            let end = offset.checked_add(len).filter(|&end| end <= data.len());
            let Some(end) = end else {
                return Err(AnalyzeError::truncated("block data", offset));
            };
            if old != 0 {
                by_old.push((old, blocks.len()));
            }
            blocks.push(Block { code, sdna, old, offset, len, nr });
            pos = end;
        }
        // Sorted by address, then by position, so that the first block of an address stays.
        by_old.sort_unstable();
        by_old.dedup_by_key(|&mut (old, _)| old);
        Ok(BlockIndex { blocks, by_old })
    }

    /// The block saved at address `old`, if any.
    pub(crate) fn by_old(&self, old: u64) -> Option<&Block> {
        if old == 0 {
            return None;
        }
        let at = self.by_old.binary_search_by_key(&old, |&(o, _)| o).ok()?;
        self.by_old.get(at).and_then(|&(_, i)| self.blocks.get(i))
    }

    /// Blocks with the given code, in file order.
    pub(crate) fn with_code<'a>(&'a self, code: &'a Code) -> impl Iterator<Item = &'a Block> + 'a {
        self.blocks.iter().filter(move |b| &b.code == code)
    }
}
