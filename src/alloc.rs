//! The process allocator: mimalloc, called the way the standard library calls `malloc`.
//!
//! The `mimalloc` crate sends every allocation through `mi_malloc_aligned`, whose fast path
//! only covers blocks up to 1 KiB; the event path's bodies and hyper's buffers are larger and
//! took mimalloc's slower aligned fallback. Plain `mi_malloc` already guarantees 16-byte
//! alignment, so only stricter layouts need the aligned calls.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every `mi_malloc` block of at least that size has (`MI_MAX_ALIGN_SIZE`).
const GUARANTEED_ALIGN: usize = 16;

/// mimalloc as the global allocator.
pub struct MiMalloc;

/// Whether a block of `size` bytes from plain `mi_malloc` satisfies `align`.
fn naturally_aligned(align: usize, size: usize) -> bool {
    align <= GUARANTEED_ALIGN && align <= size
}

// SAFETY: every call forwards to mimalloc with a layout it can satisfy; blocks are freed by
// `mi_free` whichever call allocated them, as mimalloc allows.
unsafe impl GlobalAlloc for MiMalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc accepts any size; the alignment is a power of two (Layout).
        unsafe {
            if naturally_aligned(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()) as *mut u8
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if naturally_aligned(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()) as *mut u8
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc contract).
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (GlobalAlloc contract).
        unsafe {
            if naturally_aligned(layout.align(), new_size) {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_their_layout_asks_for() {
        let a = MiMalloc;
        for (size, align) in [
            (1, 1),
            (8, 8),
            (12, 4),
            (24, 8),
            (100, 16),
            (2000, 16),
            (64, 64),
            (8, 32),
            (5000, 4096),
        ] {
            let layout = Layout::from_size_align(size, align).unwrap();
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null() && p as usize % align == 0, "size {size}, align {align}");
                let q = a.realloc(p, layout, size * 3);
                assert!(!q.is_null() && q as usize % align == 0, "realloc: size {size}, align {align}");
                a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                let z = a.alloc_zeroed(layout);
                assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                a.dealloc(z, layout);
            }
        }
    }
}
