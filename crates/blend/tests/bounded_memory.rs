//! The reader's memory stays proportional to the file, whatever the file claims: every fixture and
//! damaged variants of them (truncated at block boundaries, bytes flipped, lengths and counts set
//! to huge values), measured with a counting global allocator.
//!
//! This binary holds a single test so nothing else allocates while it measures.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use orchard_blend::{AnalyzeOptions, analyze_bytes};

use common::{XorShift, block_offsets, fixture_bytes};

/// Counts live bytes and the highest count since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    // Forwarded as a realloc (not alloc + copy + free) so growing a buffer counts as the system
    // allocator makes it cost: the larger of the two sizes, not both.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated at the peak of one analysis, beyond what was live before it.
fn peak_of(bytes: &[u8], opts: &AnalyzeOptions) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let _ = analyze_bytes(bytes, "measured.blend", opts);
    PEAK.load(Ordering::Relaxed).saturating_sub(before)
}

/// Decompressed size of a fixture (the reader holds the decompressed file; that is the unit).
fn decompressed_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"BLENDER") {
        bytes.len()
    } else {
        zstd::decode_all(bytes).map(|d| d.len()).unwrap_or(bytes.len())
    }
}

#[test]
fn memory_stays_proportional_to_the_file_for_real_and_damaged_input() {
    let opts = AnalyzeOptions { max_decompressed_bytes: 256 * 1024 * 1024 };
    // Allowance: the decompressed data, the block index and the decoded DNA, plus a fixed 4 MiB
    // for buffers (zstd's window among them).
    let bound = |len: usize| 3 * len + 4 * 1024 * 1024;
    let mut over = Vec::new();
    let mut check = |label: String, bytes: &[u8], unit: usize| {
        let peak = peak_of(bytes, &opts);
        if peak > bound(unit) {
            over.push(format!("{label}: peak {peak} bytes for a {unit}-byte file"));
        }
        peak
    };
    let mut worst = 0.0f64;
    for name in [
        "v3_4/cube_uncompressed.blend",
        "v3_4/deps/deps.blend",
        "v4_5/cube_uncompressed.blend",
        "v4_5/formats.blend",
        "v5_0/cube_uncompressed.blend",
        "v5_0/scenes.blend",
        "older/2_80.blend",
    ] {
        let data = fixture_bytes(name);
        let unit = decompressed_len(&data);
        let peak = check(name.to_string(), &data, unit);
        worst = worst.max(peak as f64 / unit as f64);
    }

    // Damaged plain files: cut at block boundaries, random flips, and every block length and
    // element count in turn set to a huge value.
    for name in ["v4_5/cube_uncompressed.blend", "v5_0/cube_uncompressed.blend"] {
        let data = fixture_bytes(name);
        let unit = data.len();
        let offsets = block_offsets(&data);
        for &cut in offsets.iter().step_by(25) {
            check(format!("{name} cut at {cut}"), &data[..cut], unit);
        }
        let large = data.get(7).is_some_and(u8::is_ascii_digit);
        let mut bytes = data.clone();
        for &at in offsets.iter().step_by(20) {
            // Legacy: len i32 at +4, nr i32 at +20. 5.0: len i64 at +16, nr i64 at +24.
            let fields: &[(usize, usize)] = if large { &[(16, 8), (24, 8)] } else { &[(4, 4), (20, 4)] };
            for &(off, size) in fields {
                let range = at + off..at + off + size;
                let saved = bytes[range.clone()].to_vec();
                bytes[range.clone()].iter_mut().for_each(|b| *b = 0x7F);
                check(format!("{name} huge field at {}", at + off), &bytes, unit);
                bytes[range].copy_from_slice(&saved);
            }
        }
        let mut rng = XorShift(0x3E3E_0000_0000_0007);
        for _ in 0..60 {
            let at = rng.below(bytes.len());
            let mask = (rng.next_u64() % 255 + 1) as u8;
            bytes[at] ^= mask;
            check(format!("{name} flip {mask:#04x} at {at}"), &bytes, unit);
            bytes[at] ^= mask;
        }
    }

    // A zstd bomb: a few kilobytes that inflate to more than the cap must stop at the cap.
    let bomb = zstd::encode_all(&vec![0u8; 64 * 1024 * 1024][..], 19).unwrap_or_default();
    let small = AnalyzeOptions { max_decompressed_bytes: 8 * 1024 * 1024 };
    let peak = peak_of(&bomb, &small);
    assert!(peak <= 3 * 8 * 1024 * 1024, "a zstd bomb took {peak} bytes with an 8 MiB cap");

    eprintln!("worst peak / decompressed size over the real fixtures: {worst:.2}");
    assert!(over.is_empty(), "memory beyond 3x the file + 4 MiB:\n{}", over.join("\n"));
}
