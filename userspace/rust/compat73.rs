// SPDX-License-Identifier: MIT
//
// A VMM's Rust code written against 7.3's iommufd.h, built against the
// bindings bindgen generates from the patched header (module `patched`),
// beside the bindings of 7.3's own header (module `v73`). It compiles only
// if every field 7.3 names is still there under its name and type; it
// exits 0 only if each sits at 7.3's offset in a struct no smaller than
// 7.3's: the series extends structures by appending, never by renaming or
// overlaying. Prints TAP. scripts/bindgen-check builds and runs it.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case,
         dead_code, deref_nullptr, clippy::all)]

mod v73 {
    include!(concat!(env!("BINDINGS_DIR"), "/iommufd-7.3.rs"));
}
mod patched {
    include!(concat!(env!("BINDINGS_DIR"), "/iommufd-patched.rs"));
}

use std::mem::size_of;

static mut FAILED: u32 = 0;
static mut N: u32 = 0;

fn check(what: &str, ok: bool) {
    unsafe {
        N += 1;
        if !ok {
            FAILED += 1;
        }
        println!("{}ok {} {}", if ok { "" } else { "not " }, N, what);
    }
}

// The offset of a field, from a value of the struct: what offset_of! does
// in newer Rust, in the Rust Debian 12 ships
macro_rules! off {
    ($v:expr, $f:ident) => {
        (&$v.$f as *const _ as usize) - (&$v as *const _ as usize)
    };
}

// Every field 7.3 names, at 7.3's offset, in a struct at least 7.3's size
macro_rules! same_layout {
    ($s:ident, $($f:ident),+) => {{
        let old: v73::$s = unsafe { std::mem::zeroed() };
        let new: patched::$s = unsafe { std::mem::zeroed() };
        let mut ok = size_of::<patched::$s>() >= size_of::<v73::$s>();
        $( ok &= off!(old, $f) == off!(new, $f); )+
        check(&format!("struct {}: 7.3's fields at 7.3's offsets ({} -> {} bytes)",
                       stringify!($s), size_of::<v73::$s>(),
                       size_of::<patched::$s>()), ok);
    }};
}

fn main() {
    println!("TAP version 13");
    println!("1..7");

    // What a 7.3 VMM writes: the field names of 7.3, on the new bindings
    let mut fault: patched::iommu_fault_alloc = unsafe { std::mem::zeroed() };
    fault.size = size_of::<v73::iommu_fault_alloc>() as u32;
    fault.flags = 0;
    let _ = (fault.out_fault_id, fault.out_fault_fd);
    let mut veventq: patched::iommu_veventq_alloc = unsafe { std::mem::zeroed() };
    veventq.size = size_of::<v73::iommu_veventq_alloc>() as u32;
    veventq.viommu_id = 1;
    veventq.type_ = 0;
    veventq.veventq_depth = 64;
    veventq.__reserved = 0;
    let _ = (veventq.flags, veventq.out_veventq_id, veventq.out_veventq_fd);
    let mut hwpt: patched::iommu_hwpt_alloc = unsafe { std::mem::zeroed() };
    hwpt.size = size_of::<v73::iommu_hwpt_alloc>() as u32;
    hwpt.__reserved = 0;
    hwpt.__reserved2 = 0;
    let _ = (hwpt.flags, hwpt.dev_id, hwpt.pt_id, hwpt.out_hwpt_id,
             hwpt.data_type, hwpt.data_len, hwpt.data_uptr, hwpt.fault_id);
    check("a program written against 7.3's field names builds on the patched bindings",
          true);

    same_layout!(iommu_fault_alloc, size, flags, out_fault_id, out_fault_fd);
    same_layout!(iommu_veventq_alloc, size, flags, viommu_id, type_,
                 veventq_depth, out_veventq_id, out_veventq_fd, __reserved);
    same_layout!(iommu_hwpt_alloc, size, flags, dev_id, pt_id, out_hwpt_id,
                 __reserved, data_type, data_len, data_uptr, fault_id,
                 __reserved2);
    same_layout!(iommu_hwpt_pgfault, flags, dev_id, pasid, grpid, perm,
                 __reserved, addr, length, cookie);
    same_layout!(iommu_hwpt_page_response, cookie, code);
    same_layout!(iommufd_vevent_header, flags, sequence);

    unsafe {
        std::process::exit(if FAILED == 0 { 0 } else { 1 });
    }
}
