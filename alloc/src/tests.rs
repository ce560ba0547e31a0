use super::*;

#[global_allocator]
static TEST_ALLOCATOR: Allocator = ALLOCATOR;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS value")
}

#[cfg(feature = "mimalloc")]
#[test]
fn freed_memory_goes_back_to_the_os_when_asked() {
    use std::time::{Duration, Instant};

    let baseline = rss_kib();
    // 64 MiB in 64 KiB blocks, every page touched.
    let blocks: Vec<Vec<u8>> = (0..1024u32).map(|i| vec![u8::try_from(i % 251).expect("small"); 64 * 1024]).collect();
    let kept = vec![7u8; 1024 * 1024];
    assert!(rss_kib() >= baseline + 60 * 1024, "the blocks are resident");
    drop(blocks);
    // Freed, the blocks stay resident until the allocator is asked to collect after its purge delay.
    assert!(rss_kib() >= baseline + 48 * 1024, "freed blocks stay resident until collected");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        give_back();
        let rss = rss_kib();
        if rss < baseline + 16 * 1024 {
            break;
        }
        assert!(Instant::now() < deadline, "RSS {rss} KiB did not fall back towards {baseline} KiB");
        std::thread::sleep(Duration::from_millis(100));
    }
    // What is still in use is untouched.
    assert!(kept.iter().all(|b| *b == 7));
}

#[cfg(not(feature = "mimalloc"))]
#[test]
fn give_back_is_harmless_with_the_system_allocator() {
    let kept = vec![7u8; 1024 * 1024];
    give_back();
    assert!(kept.iter().all(|b| *b == 7) && rss_kib() > 0);
}
