//! Every header and block layout reads the same scene: 4- and 8-byte pointers, little and big
//! endian, and the Blender 5.0 layout. Blender 3.4 cannot write most of these, so the files are
//! built here, with a small DNA of their own: the reader knows structs only through the file's
//! DNA, so a file describing just the fields it uses is a valid test of every layout.

use orchard_blend::{AnalyzeOptions, analyze_bytes};

#[derive(Clone, Copy, Debug)]
struct Layout {
    ptr: usize,
    big: bool,
    /// Blender 5.0's 17-byte header and 32-byte block headers.
    large: bool,
}

/// Struct definitions: (name, fields as (type, DNA field name)).
const STRUCTS: &[(&str, &[(&str, &str)])] = &[
    ("ID", &[("char", "name[66]"), ("void", "*lib"), ("void", "*properties")]),
    ("ListBase", &[("void", "*first"), ("void", "*last")]),
    (
        "ImageFormatData",
        &[
            ("char", "imtype"),
            ("char", "depth"),
            ("char", "planes"),
            ("char", "quality"),
            ("char", "compress"),
            ("char", "exr_codec"),
        ],
    ),
    (
        "RenderData",
        &[
            ("ImageFormatData", "im_format"),
            ("int", "sfra"),
            ("int", "efra"),
            ("int", "frame_step"),
            ("int", "xsch"),
            ("int", "ysch"),
            ("short", "size"),
            ("short", "frs_sec"),
            ("float", "frs_sec_base"),
            ("char", "engine[32]"),
            ("char", "pic[64]"),
        ],
    ),
    ("Scene", &[("ID", "id"), ("void", "*camera"), ("RenderData", "r"), ("ListBase", "view_layers")]),
    ("Object", &[("ID", "id")]),
    (
        "FileGlobal",
        &[("short", "subversion"), ("short", "minversion"), ("short", "minsubversion"), ("void", "*curscene")],
    ),
    ("ViewLayer", &[("void", "*next"), ("void", "*prev"), ("char", "name[64]"), ("short", "flag")]),
];

const PRIMITIVES: &[(&str, usize)] = &[("char", 1), ("short", 2), ("int", 4), ("float", 4), ("void", 0)];

struct Dna {
    ptr: usize,
}

impl Dna {
    fn fields(&self, name: &str) -> &'static [(&'static str, &'static str)] {
        STRUCTS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).unwrap_or(&[])
    }

    fn type_size(&self, ty: &str) -> usize {
        PRIMITIVES.iter().find(|(n, _)| *n == ty).map(|(_, s)| *s).unwrap_or_else(|| self.struct_size(ty))
    }

    fn field_size(&self, ty: &str, raw: &str) -> usize {
        let count: usize =
            raw.split('[').skip(1).map(|p| p.trim_end_matches(']').parse::<usize>().unwrap_or(1)).product();
        let elem = if raw.starts_with('*') { self.ptr } else { self.type_size(ty) };
        elem * count
    }

    fn struct_size(&self, name: &str) -> usize {
        self.fields(name).iter().map(|(t, n)| self.field_size(t, n)).sum()
    }

    /// Offset of a `.`-separated field path, and the size of the last field.
    fn offset(&self, strct: &str, path: &str) -> (usize, usize) {
        let mut off = 0;
        let mut current = strct;
        let mut size = 0;
        for part in path.split('.') {
            let mut o = 0;
            for (ty, raw) in self.fields(current) {
                let bare = raw.trim_start_matches('*').split('[').next().unwrap_or("");
                if bare == part {
                    size = self.field_size(ty, raw);
                    current = ty;
                    break;
                }
                o += self.field_size(ty, raw);
            }
            off += o;
        }
        (off, size)
    }
}

struct Writer {
    layout: Layout,
    out: Vec<u8>,
}

impl Writer {
    fn num(&self, v: u64, size: usize) -> Vec<u8> {
        let le = v.to_le_bytes();
        let mut b = le[..size].to_vec();
        if self.layout.big {
            b.reverse();
        }
        b
    }

    fn block(&mut self, code: &[u8; 4], sdna: u32, old: u64, data: &[u8]) {
        let len = data.len() as u64;
        let mut head = code.to_vec();
        if self.layout.large {
            head.extend(self.num(u64::from(sdna), 4));
            head.extend(self.num(old, 8));
            head.extend(self.num(len, 8));
            head.extend(self.num(1, 8));
        } else {
            head.extend(self.num(len, 4));
            head.extend(self.num(old, self.layout.ptr));
            head.extend(self.num(u64::from(sdna), 4));
            head.extend(self.num(1, 4));
        }
        self.out.extend(head);
        self.out.extend_from_slice(data);
    }
}

/// A struct's bytes, filled field by field.
struct Fill<'a> {
    dna: &'a Dna,
    w: &'a Writer,
    strct: &'static str,
    bytes: Vec<u8>,
}

impl<'a> Fill<'a> {
    fn new(dna: &'a Dna, w: &'a Writer, strct: &'static str) -> Self {
        Fill { dna, w, strct, bytes: vec![0; dna.struct_size(strct)] }
    }

    fn num(mut self, path: &str, v: u64) -> Self {
        let (off, size) = self.dna.offset(self.strct, path);
        let b = self.w.num(v, size);
        self.bytes[off..off + size].copy_from_slice(&b);
        self
    }

    fn float(self, path: &str, v: f32) -> Self {
        self.num(path, u64::from(v.to_bits()))
    }

    fn text(mut self, path: &str, s: &str) -> Self {
        let (off, _) = self.dna.offset(self.strct, path);
        self.bytes[off..off + s.len()].copy_from_slice(s.as_bytes());
        self
    }
}

fn sdna_block(dna: &Dna, w: &Writer) -> Vec<u8> {
    let mut type_names: Vec<&str> = PRIMITIVES.iter().map(|(n, _)| *n).collect();
    type_names.extend(STRUCTS.iter().map(|(n, _)| *n));
    let mut names: Vec<&str> = Vec::new();
    for (_, fields) in STRUCTS {
        for (_, raw) in *fields {
            if !names.contains(raw) {
                names.push(raw);
            }
        }
    }
    let pad = |b: &mut Vec<u8>| {
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
    };
    let mut b = b"SDNANAME".to_vec();
    b.extend(w.num(names.len() as u64, 4));
    for n in &names {
        b.extend(n.as_bytes());
        b.push(0);
    }
    pad(&mut b);
    b.extend(b"TYPE");
    b.extend(w.num(type_names.len() as u64, 4));
    for t in &type_names {
        b.extend(t.as_bytes());
        b.push(0);
    }
    pad(&mut b);
    b.extend(b"TLEN");
    for t in &type_names {
        b.extend(w.num(dna.type_size(t) as u64, 2));
    }
    pad(&mut b);
    b.extend(b"STRC");
    b.extend(w.num(STRUCTS.len() as u64, 4));
    let idx = |list: &[&str], x: &str| list.iter().position(|n| *n == x).unwrap_or(0) as u64;
    for (name, fields) in STRUCTS {
        b.extend(w.num(idx(&type_names, name), 2));
        b.extend(w.num(fields.len() as u64, 2));
        for (ty, raw) in *fields {
            b.extend(w.num(idx(&type_names, ty), 2));
            b.extend(w.num(idx(&names, raw), 2));
        }
    }
    b
}

fn struct_index(name: &str) -> u32 {
    STRUCTS.iter().position(|(n, _)| *n == name).unwrap_or(0) as u32
}

fn build(layout: Layout) -> Vec<u8> {
    let dna = Dna { ptr: layout.ptr };
    let header = if layout.large {
        b"BLENDER17-01v0500".to_vec()
    } else {
        let mut h = b"BLENDER".to_vec();
        h.push(if layout.ptr == 4 { b'_' } else { b'-' });
        h.push(if layout.big { b'V' } else { b'v' });
        h.extend(b"304");
        h
    };
    let mut w = Writer { layout, out: header };
    let glob = Fill::new(&dna, &w, "FileGlobal").num("subversion", 7).num("minversion", 300).num("curscene", 0x2000);
    let scene = Fill::new(&dna, &w, "Scene")
        .text("id.name", "SCSynth")
        .num("camera", 0x3000)
        .num("r.im_format.imtype", 23)
        .num("r.im_format.depth", 64)
        .num("r.im_format.planes", 32)
        .num("r.im_format.quality", 90)
        .num("r.im_format.compress", 15)
        .num("r.im_format.exr_codec", 3)
        .num("r.sfra", 5)
        .num("r.efra", 42)
        .num("r.frame_step", 3)
        .num("r.xsch", 640)
        .num("r.ysch", 360)
        .num("r.size", 50)
        .num("r.frs_sec", 25)
        .float("r.frs_sec_base", 1.0)
        .text("r.engine", "BLENDER_WORKBENCH")
        .text("r.pic", "//out/####")
        .num("view_layers.first", 0x4000)
        .num("view_layers.last", 0x4000);
    let camera = Fill::new(&dna, &w, "Object").text("id.name", "OBCam");
    // The layer's `next` points at itself: the list walk must notice the loop and stop.
    let layer = Fill::new(&dna, &w, "ViewLayer").num("next", 0x4000).text("name", "Layer").num("flag", 1);
    let (glob, scene, camera, layer) = (glob.bytes, scene.bytes, camera.bytes, layer.bytes);
    let sdna = sdna_block(&dna, &w);
    w.block(b"GLOB", struct_index("FileGlobal"), 0x1000, &glob);
    w.block(b"SC\0\0", struct_index("Scene"), 0x2000, &scene);
    w.block(b"OB\0\0", struct_index("Object"), 0x3000, &camera);
    w.block(b"DATA", struct_index("ViewLayer"), 0x4000, &layer);
    w.block(b"DNA1", 0, 0x5000, &sdna);
    w.block(b"ENDB", 0, 0, &[]);
    w.out
}

#[test]
fn every_pointer_size_byte_order_and_header_layout_reads_the_same_scene() {
    let layouts = [
        Layout { ptr: 8, big: false, large: false },
        Layout { ptr: 4, big: false, large: false },
        Layout { ptr: 8, big: true, large: false },
        Layout { ptr: 4, big: true, large: false },
        Layout { ptr: 8, big: false, large: true },
    ];
    for layout in layouts {
        let bytes = build(layout);
        let a = analyze_bytes(&bytes, "synthetic.blend", &AnalyzeOptions::default())
            .unwrap_or_else(|e| panic!("{layout:?}: {e}"));
        let want_version = if layout.large { "5.0" } else { "3.4" };
        assert_eq!(a.blender_version, want_version, "{layout:?}");
        assert_eq!(a.file_version.subversion, 7, "{layout:?}");
        assert_eq!(a.min_blender_version.as_deref(), Some("3.0"), "{layout:?}");
        assert_eq!(a.active_scene.as_deref(), Some("Synth"), "{layout:?}");
        let s = &a.scenes[0];
        let rc = &s.render_config;
        assert_eq!((s.frame_start, s.frame_end, s.frame_step), (5, 42, 3), "{layout:?}");
        assert_eq!((rc.resolution, rc.resolution_percentage), ([640, 360], 50), "{layout:?}");
        assert_eq!(s.fps, 25.0, "{layout:?}");
        assert_eq!(rc.render_engine, "BLENDER_WORKBENCH", "{layout:?}");
        assert_eq!(rc.sample_count, None, "{layout:?}");
        assert_eq!(rc.output_format, "OPEN_EXR", "{layout:?}");
        let os = &rc.output_settings;
        assert_eq!(
            (os.color_mode.as_deref(), os.color_depth.as_deref(), os.exr_codec.as_deref()),
            (Some("RGBA"), Some("32"), Some("PIZ")),
            "{layout:?}"
        );
        assert_eq!(s.camera.as_deref(), Some("Cam"), "{layout:?}");
        assert_eq!(s.output_path, "//out/####", "{layout:?}");
        assert_eq!(s.view_layers.len(), 1, "{layout:?}: the looping list is walked once");
        assert!(s.view_layers[0].use_for_render, "{layout:?}");
    }
}

/// The synthetic files, one per layout, in cargo's temporary directory: a few hundred bytes each
/// with a complete DNA, they make fast seeds for the fuzzer (`crates/blend/fuzz/README.md`).
#[test]
fn synthetic_files_of_every_layout_are_written_as_fuzzing_seeds() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-seeds");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    for (i, layout) in [
        Layout { ptr: 8, big: false, large: false },
        Layout { ptr: 4, big: false, large: false },
        Layout { ptr: 8, big: true, large: false },
        Layout { ptr: 4, big: true, large: false },
        Layout { ptr: 8, big: false, large: true },
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = build(layout);
        assert!(bytes.len() < 4096, "{layout:?}: {} bytes", bytes.len());
        std::fs::write(dir.join(format!("synthetic_{i}.blend")), bytes).unwrap_or_else(|e| panic!("{e}"));
    }
}
