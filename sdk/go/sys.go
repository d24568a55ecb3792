package engine

import "unsafe"

// The raw guest ABI v1: the functions a task imports from module "engine"
// (docs/abi.md). Pointers are offsets into the module's exported memory.

//go:wasmimport engine input_count
func sysInputCount() int32

//go:wasmimport engine input_name
func sysInputName(item int32, buf unsafe.Pointer, bufLen int32) int32

//go:wasmimport engine input_index
func sysInputIndex(item int32) int32

//go:wasmimport engine input_len
func sysInputLen(item int32) int64

//go:wasmimport engine input_read
func sysInputRead(item int32, offset int64, buf unsafe.Pointer, len int32) int32

//go:wasmimport engine output_open
func sysOutputOpen(name unsafe.Pointer, nameLen int32) int32

//go:wasmimport engine output_write
func sysOutputWrite(handle int32, buf unsafe.Pointer, len int32) int32

//go:wasmimport engine params_len
func sysParamsLen() int32

//go:wasmimport engine params_read
func sysParamsRead(buf unsafe.Pointer, len int32) int32

//go:wasmimport engine log
func sysLog(level int32, msg unsafe.Pointer, len int32)

//go:wasmimport engine error
func sysError(msg unsafe.Pointer, len int32)

// ptr is the address of b's first byte (nil for an empty slice).
func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func strPtr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}
