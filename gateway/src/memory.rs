//! How the daemon asks glibc's allocator to behave on a small edge box.
//!
//! By default glibc gives each busy thread its own arena (up to eight per core)
//! and raises its mmap threshold each time a large block is freed, so that
//! camera frames (a megabyte or more each, allocated by the camera threads,
//! FFmpeg and OpenCV) end up recycled inside the arenas and stay resident for
//! good. Measured with 4 cameras and 100k templates (`gatewayd bench --only
//! rss`), two arenas and a fixed threshold keep blocks of frame size out of
//! the heap: freed, they go back to the system at once.

/// Arenas for all threads (the engine, the matcher and the cameras contend
/// little: they spend their time in I/O and inference, not in malloc).
const ARENAS: i32 = 2;
/// Blocks at least this large are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// Free memory at the top of the heap beyond this is returned to the system.
const TRIM_THRESHOLD: i32 = 1024 * 1024;

/// Sets the allocator up; call first thing in `main`, before threads start.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
