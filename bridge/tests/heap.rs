//! glibc's free-heap figure is the whole process's: measured here, in a test binary of its
//! own, where no other test allocates or frees while it reads. The tests here take turns.

/// Held by each test here: each reads figures of the whole process.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_heap_is_counted_and_a_trim_leaves_it_usable() {
    use swarm_bridge::heap::{WORTH, allocator};
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = allocator::free_bytes().expect("glibc reports its free heap");
    // Blocks below glibc's mmap threshold, each followed by one that stays: freed, they
    // are holes the heap keeps, as a flood's buffers between long-lived allocations.
    let (blocks, kept): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (0..256)
        .map(|i| (vec![i as u8; 16 * 1024], vec![i as u8; 64]))
        .unzip();
    drop(blocks);
    let after = allocator::free_bytes().expect("glibc reports its free heap");
    assert!(
        after >= before + 2 * WORTH,
        "4 MiB freed, free heap {before} -> {after}"
    );
    allocator::give_back();
    let again: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 16 * 1024]).collect();
    assert!(again.iter().enumerate().all(|(i, b)| b[0] == i as u8));
    assert!(kept.iter().enumerate().all(|(i, b)| b[63] == i as u8));
}

#[cfg(target_os = "linux")]
#[test]
fn this_process_reads_its_resident_anonymous_memory() {
    use swarm_bridge::heap::resident_anonymous_bytes;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = resident_anonymous_bytes().expect("/proc/self/statm");
    let touched = vec![1u8; 8 << 20];
    let after = resident_anonymous_bytes().expect("/proc/self/statm");
    assert!(touched.iter().all(|b| *b == 1));
    assert!(
        after >= before + (4 << 20),
        "8 MiB written: {before} -> {after} bytes"
    );
    drop(touched);
    let freed = resident_anonymous_bytes().expect("/proc/self/statm");
    assert!(
        freed + (4 << 20) <= after,
        "8 MiB unmapped: {after} -> {freed} bytes"
    );
}
