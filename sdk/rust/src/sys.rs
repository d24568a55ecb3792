//! The raw guest ABI v1: the functions a task imports from module `engine`
//! (see `docs/abi.md`). Everything else in the SDK is a safe wrapper over
//! these. On targets other than wasm32 the imports are replaced by stubs that
//! behave like a task with no inputs and no params, so the crate (and code
//! using it) still type-checks and unit-tests on the host.

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "engine")]
unsafe extern "C" {
    pub fn input_count() -> i32;
    pub fn input_name(item: i32, buf: *mut u8, buf_len: i32) -> i32;
    pub fn input_index(item: i32) -> i32;
    pub fn input_len(item: i32) -> i64;
    pub fn input_read(item: i32, offset: i64, buf: *mut u8, len: i32) -> i32;
    pub fn output_open(name: *const u8, name_len: i32) -> i32;
    pub fn output_write(handle: i32, buf: *const u8, len: i32) -> i32;
    pub fn params_len() -> i32;
    pub fn params_read(buf: *mut u8, len: i32) -> i32;
    pub fn attempt() -> i32;
    pub fn log(level: i32, msg: *const u8, len: i32);
    pub fn error(msg: *const u8, len: i32);
}

#[cfg(not(target_arch = "wasm32"))]
mod host_stubs {
    pub unsafe fn input_count() -> i32 {
        0
    }
    pub unsafe fn input_name(_item: i32, _buf: *mut u8, _buf_len: i32) -> i32 {
        -1
    }
    pub unsafe fn input_index(_item: i32) -> i32 {
        -2
    }
    pub unsafe fn input_len(_item: i32) -> i64 {
        -1
    }
    pub unsafe fn input_read(_item: i32, _offset: i64, _buf: *mut u8, _len: i32) -> i32 {
        -1
    }
    pub unsafe fn output_open(_name: *const u8, _name_len: i32) -> i32 {
        0
    }
    pub unsafe fn output_write(_handle: i32, _buf: *const u8, _len: i32) -> i32 {
        0
    }
    pub unsafe fn params_len() -> i32 {
        0
    }
    pub unsafe fn params_read(_buf: *mut u8, _len: i32) -> i32 {
        0
    }
    pub unsafe fn attempt() -> i32 {
        1
    }
    pub unsafe fn log(_level: i32, _msg: *const u8, _len: i32) {}
    pub unsafe fn error(_msg: *const u8, _len: i32) {}
}
#[cfg(not(target_arch = "wasm32"))]
pub use host_stubs::*;
