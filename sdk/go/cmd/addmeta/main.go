// Command addmeta appends the `engine.task` custom section to a wasm module:
//
//	go run engine.local/sdk/cmd/addmeta -o out.wasm in.wasm meta.json
//
// Go has no way to emit a custom section, so the Go SDK adds it after the
// build. meta.json must be one JSON object (e.g. {"abi":1,"name":"x",...});
// it is checked and written compactly. A module that already has an
// `engine.task` section is an error. Runs on the build machine, not in wasm.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func uleb(n int) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			b = append(b, c|0x80)
		} else {
			return append(b, c)
		}
	}
}

func readUleb(b []byte) (int, int, error) {
	n, shift := 0, 0
	for i, c := range b {
		if i == 5 {
			break
		}
		n |= int(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			return n, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("malformed LEB128")
}

// hasSection reports whether module m has a custom section called name.
func hasSection(m []byte, name string) (bool, error) {
	if len(m) < 8 || !bytes.Equal(m[:4], []byte("\x00asm")) {
		return false, fmt.Errorf("not a wasm module")
	}
	for p := 8; p < len(m); {
		id := m[p]
		size, k, err := readUleb(m[p+1:])
		if err != nil || p+1+k+size > len(m) {
			return false, fmt.Errorf("truncated section at byte %d", p)
		}
		body := m[p+1+k : p+1+k+size]
		if id == 0 {
			nl, j, err := readUleb(body)
			if err == nil && j+nl <= len(body) && string(body[j:j+nl]) == name {
				return true, nil
			}
		}
		p += 1 + k + size
	}
	return false, nil
}

func main() {
	out := flag.String("o", "", "output file (default: overwrite the input)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: addmeta [-o out.wasm] in.wasm meta.json")
		os.Exit(2)
	}
	in, metaPath := flag.Arg(0), flag.Arg(1)
	if *out == "" {
		*out = in
	}
	if err := run(in, metaPath, *out); err != nil {
		fmt.Fprintf(os.Stderr, "addmeta: %v\n", err)
		os.Exit(1)
	}
}

func run(in, metaPath, out string) error {
	m, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(metaPath)
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("%s is not a JSON object: %v", metaPath, err)
	}
	var meta bytes.Buffer
	if err := json.Compact(&meta, raw); err != nil {
		return err
	}
	if has, err := hasSection(m, "engine.task"); err != nil {
		return fmt.Errorf("%s: %v", in, err)
	} else if has {
		return fmt.Errorf("%s already has an engine.task section", in)
	}
	name := "engine.task"
	body := append(uleb(len(name)), name...)
	body = append(body, meta.Bytes()...)
	m = append(m, 0)
	m = append(m, uleb(len(body))...)
	m = append(m, body...)
	return os.WriteFile(out, m, 0o644)
}
