// uniq: a plain WASI command in Go (no SDK): the command-task contract of
// docs/abi.md (stdin/stdout can be wired to an input/output, every file
// written under /out is an output).
//
//	go_uniq [-c] [-min N]
//
// Reads lines from stdin and prints each distinct line once, sorted by bytes,
// to stdout. With -c, each line is followed by a tab and the number of times
// it occurred (a counts table, as `wordcount` writes). -min N keeps only the
// lines that occurred at least N times. Also writes the number of distinct
// lines printed, in decimal with a newline, to /out/distinct.
// A `\r` before a `\n` is removed; empty lines are skipped.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
)

func main() {
	counts := flag.Bool("c", false, "print each line's count after a tab")
	min := flag.Int("min", 1, "keep lines that occur at least this often")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "go_uniq: unexpected argument `%s`\n", flag.Arg(0))
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout, *counts, *min); err != nil {
		fmt.Fprintf(os.Stderr, "go_uniq: %v\n", err)
		os.Exit(1)
	}
}

func run(stdin io.Reader, stdout io.Writer, withCounts bool, min int) error {
	seen := map[string]int{}
	r := bufio.NewReaderSize(stdin, 64*1024)
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: collect the rest.
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			if len(line) > 0 {
				seen[string(line)]++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
	}
	lines := make([]string, 0, len(seen))
	for l, n := range seen {
		if n >= min {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	w := bufio.NewWriterSize(stdout, 64*1024)
	for _, l := range lines {
		w.WriteString(l)
		if withCounts {
			w.WriteByte('\t')
			w.WriteString(strconv.Itoa(seen[l]))
		}
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing stdout: %w", err)
	}
	return os.WriteFile("/out/distinct", []byte(strconv.Itoa(len(lines))+"\n"), 0o644)
}
