//! Properties of the built `leannodes` binary itself (its ELF file), which no behaviour test can see.

/// The entries of the ELF64 little-endian dynamic section (`PT_DYNAMIC`) of `file`, as (tag, value).
fn dynamic_entries(file: &[u8]) -> Vec<(u64, u64)> {
    let u16_at = |at: usize| u16::from_le_bytes(file[at..at + 2].try_into().expect("2 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().expect("8 bytes"));
    assert_eq!(&file[..6], b"\x7fELF\x02\x01", "an ELF64 little-endian file");
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    let dynamic = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| u32::from_le_bytes(file[ph..ph + 4].try_into().expect("4 bytes")) == 2)
        .expect("a PT_DYNAMIC program header");
    let (offset, size) = (u64_at(dynamic + 0x08) as usize, u64_at(dynamic + 0x20) as usize);
    (offset..offset + size).step_by(16).map(|at| (u64_at(at), u64_at(at + 8))).take_while(|&(tag, _)| tag != 0).collect()
}

/// The dynamic loader reads every relocation at start-up and those pages stay resident: unpacked, the
/// relative relocations were 2.1 MB of the idle server's memory (docs/benchmarks.md). `build.rs` packs them.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn relative_relocations_are_packed() {
    const DT_RELASZ: u64 = 8;
    const DT_RELRSZ: u64 = 35;
    let file = std::fs::read(env!("CARGO_BIN_EXE_leannodes")).expect("read the binary");
    let entries = dynamic_entries(&file);
    let size = |tag: u64| entries.iter().find(|e| e.0 == tag).map_or(0, |e| e.1);
    assert!(size(DT_RELRSZ) > 0, "no packed relative relocations (DT_RELR): {entries:?}");
    assert!(size(DT_RELASZ) < 256 * 1024, "{} bytes of RELA relocations left unpacked", size(DT_RELASZ));
}
